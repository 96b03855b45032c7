"""Per-target steering: which derivative rule each function uses on each compiler.

Every trick here is a bet on today's XLA, kept with the measurement that
justifies it (train-step temp memory of `benchmarks/zoo.py`, compiled for the
target: `python -m benchmarks.zoo --target cpu|h100|tpu-v5e`) and with a plain
fallback: the `"plain"` rule is the function's own jax autodiff, the program
jax.nn compiles to.

Rules (the residual reverse mode keeps between the forward and the backward):

- `"bits"`: the piece of `x`, one bit per element, packed (`_bits.py`).
- `"plain"`: the tangent as jax's autodiff writes it, no checkpoint: jax keeps a
  mask or `x` and XLA decides; XLA:GPU and XLA:TPU recompute it from an array
  the step keeps anyway (the pre-activation that a following matmul fusion
  reads, or a BatchNorm input), so it costs what jax.nn's costs.
- `"y"` (exponential family): the derivative read from the output, which the
  next layer's matmul keeps anyway on CPU.
- `"neg"` (a learnable prelu slope): `min(x, 0)`, the one array both gradients
  need.
- `"x"` (a learnable prelu slope): `x` itself, with no CSE barrier around the
  recomputed tangent, so XLA may recompute `x` from its producer's inputs as it
  does for jax's own autodiff, or keep it.

`RULES` holds the choice per family and target; `by_target` stages the
choices with `jax.lax.platform_dependent`, which XLA resolves at compile time
(the branch not taken, and its residuals, vanish from the program).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from jax import lax

from leakyjax._src._inputs import Array

Rule = Literal["bits", "plain", "y", "neg", "x"]


class Choice(NamedTuple):
    """The rule of one family on each target."""

    cpu: Rule
    gpu: Rule
    tpu: Rule


# Measured with `python -m benchmarks.zoo --target T` (jax 0.10.2; the
# committed results are benchmarks/results/zoo_T_*.json): train-step temp MiB at
# the zoo's bench shapes, f32 unless marked. On XLA:TPU jax.nn's residuals cost
# nothing (the ResNet: identity 391 MiB, jax.nn.relu 391, leaky_relu 391, elu
# 391) while any saved residual is an addition (bits: relu 463, leaky 526; elu
# from y: 488): every family takes "plain" there.
RULES: dict[str, Choice] = {
    # cpu: jax.nn.relu keeps a byte mask and y (transformer 444 vs 320 with
    # bits). h100: XLA fuses max(x, 0) into the next matmul and recomputes the
    # mask from the pre-activation it keeps for it: plain is jax.nn.relu's
    # program (transformer 228) where the bits add their n/8 (232).
    "relu": Choice(cpu="bits", gpu="plain", tpu="plain"),
    # relu6, hard_tanh, hard_sigmoid: the same clip-and-mask story as relu.
    "clip": Choice(cpu="bits", gpu="plain", tpu="plain"),
    # h100: jax.nn.leaky_relu keeps x and y where a matmul follows (transformer
    # 332, MLP 21.0: XLA does not fuse the select into the matmul as it does
    # relu's max), and the bits would be lower there (232, 7.11); but after a
    # BatchNorm XLA recomputes jax.nn's mask for free and the bits are then n/8
    # above it (test shapes: ResNet f32 3.07 vs 3.04 MiB, the flax CNN 1.81 vs
    # 1.80, the data-parallel MLP 2.030 vs 2.028). Never above: plain. A rule
    # reading the sign of y would be lowest of all (transformer 228) but is not
    # exact: where a*x underflows to -0.0 it cannot tell x < 0 from x = -0.0.
    "leaky": Choice(cpu="bits", gpu="plain", tpu="plain"),
    # a learnable slope. cpu: min(x, 0) alone (ResNet 674 = flax's 674, MLP 9.0
    # vs 13.0; x instead: MLP 13.0, transformer 564 vs 436). h100: x, with no
    # CSE barrier, is flax.linen.PReLU's memory (ResNet 340 = 340, where
    # min(x, 0) takes 416; MLP 21.5 = 21.5) and below it under lax.scan (20.5
    # vs 21.5). With the barrier the MLP took 11.0 but the ResNet 416.
    "prelu": Choice(cpu="neg", gpu="x", tpu="x"),
    # elu, celu, selu. cpu: from y (transformer 548 = jax.nn's, MLP 5.5 vs
    # 12.5). h100: from y is lower in the transformer (252 vs 332) but higher
    # in the ResNet (304 vs jax.nn.elu's 288): plain, never above jax.nn.
    "exp": Choice(cpu="y", gpu="plain", tpu="plain"),
    # rrelu with a key against the plain formula (the slopes drawn in the
    # forward, jax's autodiff). cpu: bits and key (transformer 320 vs 508).
    # h100, test shapes: bits and key (transformer 3.64 vs 5.00 MiB, the flax
    # CNN 1.84 vs 2.05). tpu: XLA recomputes the draw from the key; the bits
    # and key are above it (MLP 1024x1024, 1.75 vs 1.54 MiB): plain.
    "rrelu": Choice(cpu="bits", gpu="bits", tpu="plain"),
}


def by_target(choice: Choice, rules: dict[str, Callable], *args: Any) -> Any:
    """`rules[rule](*args)` for the rule `choice` names on the target that
    compiles the program; one rule for all targets is called directly."""
    if choice.cpu == choice.gpu == choice.tpu:
        return rules[choice.cpu](*args)
    return lax.platform_dependent(
        *args,
        cpu=rules[choice.cpu],
        cuda=rules[choice.gpu],
        rocm=rules[choice.gpu],
        tpu=rules[choice.tpu],
        default=rules["plain"],
    )


# --------------------------------------------------------------------------- #
# XLA:CPU scheduling tricks of the one-bit rule
# --------------------------------------------------------------------------- #
def _bits_first(bits: Array, x: Array) -> tuple[Array, Array]:
    """Orders the bits before the output: `y` is computed from the returned
    `x`, so the input dies once `y` exists (else XLA may schedule the bits
    after `y` and keep the input alive across the end of the forward pass)."""
    return lax.optimization_barrier((bits, x))


def _in_own_shape(fn: Callable, *args: Any) -> Array:
    """`fn(*args)`, computed in the shape it has, also when reshaped after.

    XLA (CPU) folds a reshape into the loop that computes its operand and
    iterates over the reshaped (here flat) index; unpacking the bits of a row
    view then costs a division per element. A conditional keeps the result in
    its own shape: both branches are `fn`, so the predicate (a byte of the
    first argument, which XLA cannot fold) does not matter. Other platforms,
    and a predicate batched by `vmap` (its two identical branches merge),
    call `fn` plainly. On several CPU devices with automatic sharding the
    predicate costs a one-byte all-reduce (a conditional's predicate is the
    same on every device).
    """

    def cpu(*a):
        pred = lax.index_in_dim(a[0].reshape(-1), 0, keepdims=False) != 0
        return lax.cond(pred, fn, fn, *a)

    return lax.platform_dependent(*args, cpu=cpu, default=fn)


def _diagonal(fn: Callable, bits: Array, t: Array) -> Array:
    """`fn(t)`, a diagonal linear map, as one operation for jax's transforms.

    Transposing a `jax.lax.cond` splits it in two: its nonlinear part
    (unpacking the bits) becomes a conditional of its own whose result, one
    full array, is an input of the linear one. A
    `jax.lax.custom_linear_solve` is jax's linear function with a given
    transpose (`fn` itself: a diagonal map is symmetric), kept whole. Its
    `matvec` (the identity here, as the map may be singular: relu's zeros) is
    a placeholder jax only traces: it has no constants, so neither the JVP nor
    the transpose of the solve evaluates it. The map closes over its
    parameters; with no tangent they cannot make jax use `matvec`.
    """
    bits = lax.stop_gradient(bits)
    return lax.custom_linear_solve(
        lambda v: v, t, lambda _, v: _in_own_shape(fn, bits, v), symmetric=True
    )
