"""The derivative rules: `custom_jvp` factories of the activation functions.

Every nonlinear function is a `jax.custom_jvp`. Its JVP rule computes a small
*residual* from the primal input and calls a tangent map wrapped in
`jax.checkpoint` over `(residual, tangent, parameters)`. Forward mode
(`jax.jvp`, `jax.jacfwd`) runs the map directly. Reverse mode linearizes the
rule: everything outside the checkpoint is primal work, and the checkpoint makes
the residual -- not anything derived from it -- the one thing saved for the
backward pass, where the map is recomputed and transposed. The maps are
ordinary jax code, so `jax.hessian` and jvp-of-grad work too.

Which residual a function keeps depends on the compiler (`_platform.py`):
the one-bit rule of the piecewise-linear family (`_bits.py`), the output `y`
of the exponential family, `min(x, 0)` or `x` for a learnable prelu slope, or, where
the compiler recomputes jax.nn's own residual for free, the plain autodiff
rule. Every rule gives the same values: jax.nn's conventions at the kinks.

For bfloat16/float16 the leaky tangent is written `t * where(m, 1, a)` rather
than `where(m, t, a * t)` (the same values): its transpose is one product,
where the select's is two selects and a sum, each 16-bit op rounded through
float32 on CPU (the backward was 3-4x slower than relu's).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from leakyjax._src._bits import _as_rows, _pack, _rows, _spec, _traced, _unpack
from leakyjax._src._inputs import (
    _HALF,
    Array,
    _ArrayImpl,
    _cast,
    _eager,
    _is_zero,
    _on_device,
    _Tracer,
)
from leakyjax._src._platform import RULES, Choice, _bits_first, _diagonal, by_target
from leakyjax._src._rrelu_draw import _after, _rrelu_slopes


# --------------------------------------------------------------------------- #
# The piecewise-linear family (parameter-free)
# --------------------------------------------------------------------------- #
def _pwl(
    primal: Callable,
    piece: Callable,
    tangent: Callable,
    choice: Choice,
    *,
    plain: Callable | None = None,
) -> Callable:
    """A parameter-free piecewise-linear activation.

    `primal(x)`; `piece(x)`: the bool mask of the piece the derivative
    depends on; `tangent(m, t)`: the tangent `t * f'(x)` from that mask.
    `choice`: the rule per target (`"bits"` or `"plain"`). `plain(x)`: where
    jax.nn writes the function differently (the same values), its formula,
    whose jax autodiff is then the plain rule: jax.nn's own program (XLA
    fuses the two forms differently).
    """

    def tangent_map(bits, t):
        return tangent(_unpack(bits, t.shape), t)

    ckpt = jax.checkpoint(tangent_map)
    ckpt_rows = jax.checkpoint(lambda bits, t: _diagonal(tangent_map, bits, t))

    def bits_rule(x, t):
        rows = _rows(x.shape, _spec(x))
        if rows is not None:
            shape = x.shape
            bits, x2 = _bits_first(_pack(piece(x.reshape(rows))), x.reshape(rows))
            dt = ckpt_rows(bits, jnp.reshape(t, rows))
            return primal(x2).reshape(shape), dt.reshape(shape)
        bits, x = _bits_first(_pack(piece(x)), x)
        return primal(x), ckpt(bits, t)

    def plain_rule(x, t):
        if plain is not None:
            return jax.jvp(plain, (x,), (t,))
        return primal(x), tangent(piece(x), t)

    rules = {"bits": bits_rule, "plain": plain_rule}

    @jax.custom_jvp
    def f(x):
        return primal(x)

    @f.defjvp
    def _jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        x = jnp.asarray(x)  # the primal of a Python scalar is a Python scalar
        return by_target(choice, rules, x, t)

    return f


# --------------------------------------------------------------------------- #
# The leaky rectifier (leaky_relu, prelu share it; rrelu draws its slopes)
# --------------------------------------------------------------------------- #
def _leaky_value(x, a):
    return jnp.where(x >= 0, x, a * x)


def _leaky_bits_value(x, a):
    """`_leaky_value` where only the bits are saved: for bfloat16/float16
    the product `x * where(x >= 0, 1, a)` (the same values: `x * 1` is
    `x`, also for -0.0, inf and nan), one 16-bit op where the select takes
    two, each rounded through float32 on CPU. A learnable slope keeps the
    select: with the product, the bfloat16 ResNet of the zoo measured 2.5%
    above flax's PReLU."""
    if x.dtype in _HALF:
        return x * jnp.where(x >= 0, jnp.ones((), x.dtype), a)
    return _leaky_value(x, a)


def _leaky_bits_tangent(bits, t, a):
    m = _unpack(bits, t.shape)
    if t.dtype in _HALF:
        # t * where(m, 1, a): the same values as where(m, t, a * t), and its
        # transpose is one product, where the select's is two selects and a
        # sum (CPU rounds each 16-bit op through float32: dx 3-4x slower).
        return t * jnp.where(m, jnp.ones((), t.dtype), a)
    return jnp.where(m, t, a * t)  # float32/64: XLA keeps less around it


_leaky_bits_ckpt = jax.checkpoint(_leaky_bits_tangent)


def _leaky_rows_tangent(a, bits, t):
    return _diagonal(lambda b, v: _leaky_bits_tangent(b, v, a), bits, t)


def _leaky_bits_rule(x, tx, a):
    """A constant slope: the sign bit is all the backward needs."""
    rows = None if isinstance(a, _Tracer) else _rows(x.shape, _spec(x))
    if rows is not None:
        shape, a2 = x.shape, _as_rows(a, rows)
        bits, x2 = _bits_first(_pack(x.reshape(rows) >= 0), x.reshape(rows))
        # The slope is concrete: a constant of the loop, not an operand of
        # the conditional (XLA reloads such a scalar for every element).
        tangent = functools.partial(_leaky_rows_tangent, a2)
        dt = jax.checkpoint(tangent)(bits, jnp.reshape(tx, rows))
        return _leaky_bits_value(x2, a2).reshape(shape), dt.reshape(shape)
    bits, x = _bits_first(_pack(x >= 0), x)
    return _leaky_bits_value(x, a), _leaky_bits_ckpt(bits, tx, a)


def _slope_tangent(r, tx, ta, a):
    """The tangent of `where(x >= 0, x, a * x)` in `x` and a learnable
    `a`, from `r`: `x` or `min(x, 0)` (`r >= 0` is `x >= 0` either way,
    also for -0.0 and nan; `r` is `x` where it is negative)."""
    if tx is None:
        return jnp.where(r >= 0, jnp.zeros_like(r), r * ta)
    if r.dtype in _HALF:
        # Two terms (min(r, 0) is r's negative part): one select over both kept
        # one array more in the bfloat16 transformer block on CPU.
        return jnp.minimum(r, 0) * ta + jnp.where(r >= 0, tx, a * tx)
    # float32/64: one select over both terms: XLA (CPU) keeps one array fewer
    # under lax.scan and in transformer blocks.
    return jnp.where(r >= 0, tx, a * tx + r * ta)


# No CSE barrier: where the residual is x itself, XLA may recompute it from its
# producer's inputs (a BatchNorm's) as it does for flax's PReLU, or keep it.
_slope_ckpt = jax.checkpoint(_slope_tangent, prevent_cse=False)


def _slope_rule(x, tx, ta, a):
    """A learnable slope: one residual, an array of `x`'s shape, chosen per
    target; the slope is used outside the per-target conditional, so under
    `lax.scan` its residual is the scanned parameter itself (from inside the
    conditional jax would save a copy stacked over the loop: +512 B in the
    float32 scanned MLP on the H100 compiler, +0.77 MiB on TPU v5e)."""
    rules = {
        "neg": lambda x: jnp.where(x >= 0, jnp.zeros_like(x), x),
        "x": lambda x: x,
        "plain": lambda x: x,
    }
    r = by_target(RULES["prelu"], rules, x)
    return _leaky_value(x, a), _slope_ckpt(r, tx, ta, a)


def _plain_jvp(fn: Callable, x, tx, a, ta):
    """`jax.jvp` of `fn(x, a)` itself (jax's own autodiff, what jax.nn and
    flax compile to), with a symbolic-zero tangent kept out of it."""
    if ta is None:
        return jax.jvp(lambda v: fn(v, a), (x,), (tx,))
    if tx is None:
        return jax.jvp(lambda b: fn(x, b), (a,), (ta,))
    return jax.jvp(fn, (x, a), (tx, ta))


@jax.custom_jvp
def _leaky(x, a):
    return _leaky_value(x, a)


def _leaky_jvp(primals, tangents):
    (x, a), (tx, ta) = primals, tangents
    x = jnp.asarray(x)
    if _is_zero(ta):
        if _is_zero(tx):
            y = _leaky_value(x, a)
            return y, jnp.zeros_like(y)
        rules = {
            "bits": lambda x, tx: _leaky_bits_rule(x, tx, a),
            "plain": lambda x, tx: _plain_jvp(_leaky_value, x, tx, a, None),
        }
        return by_target(RULES["leaky"], rules, x, tx)
    return _slope_rule(x, None if _is_zero(tx) else tx, ta, a)


_leaky.defjvp(_leaky_jvp, symbolic_zeros=True)
_leaky_jit = jax.jit(lambda x, a: _leaky(x, _cast(a, x)))


def _leaky_call(x: Array, a) -> Array:
    """`_leaky(x, a)` for `a` from `_param`: one cached jitted program
    when nothing is traced."""
    if type(a) is _ArrayImpl and type(x) is _ArrayImpl:  # eager, a device slope
        return _leaky_jit(x, a)
    if _eager(x, a):
        return _leaky_jit(x, _on_device(a))
    return _traced(_leaky, x, _cast(a, x))


# --------------------------------------------------------------------------- #
# rrelu with a key: the bits and the key; the backward redraws the slopes
# --------------------------------------------------------------------------- #
def _rrelu_scale(bits, key, t, lo, hi, xu):
    """`t * rrelu'(x)`: `t` where `x >= 0`, else the slope redrawn from
    `key` times `t`. In reverse mode `t` is the cotangent: the draw waits
    for it, so the slopes of a layer are drawn during that layer's backward."""
    slopes = _rrelu_slopes(key, t.shape, t.dtype, lo, hi, xu, after=t)
    return jnp.where(_unpack(bits, t.shape), t, slopes * t)


def _rrelu_manual_tangent(bits, key, t, lo, hi, xu):
    slopes = _rrelu_slopes(key, t.shape, t.dtype, lo, hi, xu, like=t)
    return jnp.where(_unpack(bits, t.shape), t, slopes * t)


def _rrelu_tangent(bits, key, t, lo, hi, xu):
    # t -> D t, D = diag(1 or the slope), is linear and symmetric, and its
    # transpose must draw from the cotangent's data (above): a nonlinear use of
    # a linear input, which jax's transpose rules reject. lax.custom_linear_solve
    # is jax's linear function with a hand-written transpose: `solve` (also the
    # transpose, D being symmetric) applies D; `matvec` is D's inverse, only
    # traced (bits and key have no tangents, so jax never evaluates it). Reverse
    # mode saves just (bits, key).
    # No tangents for the constants, ever (e.g. from the barrier in the forward):
    # jax's linear_solve jvp needs a tangent for t whenever its constants have one.
    bits, key = lax.stop_gradient(bits), lax.stop_gradient(key)
    if jax.sharding.get_abstract_mesh().manual_axes:
        # Inside shard_map the transposed solve fails jax's varying-axes check
        # (jax 0.10): a checkpointed map, which also saves just (bits, key).
        return jax.checkpoint(_rrelu_manual_tangent, static_argnums=(3, 4, 5))(
            bits, key, t, lo, hi, xu
        )
    scale = functools.partial(_rrelu_scale, bits, key, lo=lo, hi=hi, xu=xu)

    def inverse(v):
        slopes = _rrelu_slopes(key, v.shape, v.dtype, lo, hi, xu, like=v)
        return jnp.where(_unpack(bits, v.shape), v, v / slopes)

    return lax.custom_linear_solve(inverse, t, lambda _, v: scale(v), symmetric=True)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def _rrelu(x, key, lo, hi, xu):
    return _leaky_value(x, _rrelu_slopes(key, x.shape, x.dtype, lo, hi, xu, like=x))


def _rrelu_bits_rule(x, key, tx, lo, hi, xu):
    # Save the bits and the key; the backward redraws the slopes from the key.
    bits, x = _bits_first(_pack(x >= 0), x)
    # The forward waits for x through the key (_after), not elementwise as the
    # backward does: x is written out anyway (the bits read it too), and the
    # elementwise zeros made XLA keep more in the unrolled bfloat16 MLP and the
    # float32 scanned one of the zoo.
    slopes = _rrelu_slopes(_after(key, x), x.shape, x.dtype, lo, hi, xu, like=x)
    y = _leaky_value(x, slopes)
    return y, _rrelu_tangent(bits, key, tx, lo, hi, xu)


def _rrelu_plain_rule(x, key, tx, lo, hi, xu):
    """jax's autodiff of the leaky rectifier at slopes drawn by
    `jax.random.uniform` itself: the plain formula's program, whose draw
    XLA:TPU recomputes from the key. With the written-out draw instead
    (`_uniform`) XLA:TPU kept 1.09 MiB more in the float32 transformer of the
    zoo and 14.46 MiB more in the bfloat16 flax CNN."""
    slopes = _rrelu_slopes(key, x.shape, x.dtype, lo, hi, xu, like=x, plain=True)
    return jax.jvp(lambda v: _leaky_value(v, slopes), (x,), (tx,))


# jax < 0.9 cannot partially evaluate the rules' conditional around rrelu's
# linear solve (an assertion in its cond partial evaluation, jax 0.8.1): there
# rrelu keeps its bits and key on every target.
_ONE_RRELU_RULE = tuple(int(p) for p in jax.__version__.split(".")[:2]) < (0, 9)


@_rrelu.defjvp
def _rrelu_jvp(lo, hi, xu, primals, tangents):
    (x, key), (tx, _) = primals, tangents
    x = jnp.asarray(x)
    if _ONE_RRELU_RULE:
        return _rrelu_bits_rule(x, key, tx, lo, hi, xu)
    rules = {
        "bits": lambda x, tx: _rrelu_bits_rule(x, key, tx, lo, hi, xu),
        "plain": lambda x, tx: _rrelu_plain_rule(x, key, tx, lo, hi, xu),
    }
    return by_target(RULES["rrelu"], rules, x, tx)


_rrelu_jit = jax.jit(_rrelu, static_argnums=(2, 3, 4))


def _rrelu_one(x, key, lo, hi, xu):
    """rrelu with one slope for every element of `x` (what a scalar call
    draws): the leaky rectifier at that slope, which carries no tangent."""
    return _leaky(x, _rrelu_slopes(key, (), x.dtype, lo, hi, xu))


_rrelu_one_jit = jax.jit(_rrelu_one, static_argnums=(2, 3, 4))


# --------------------------------------------------------------------------- #
# The exponential family (read y, or x)
# --------------------------------------------------------------------------- #
def _unary(
    primal: Callable,
    tangent_from_y: Callable,
    choice: Choice,
    *,
    plain: Callable | None = None,
) -> Callable:
    """A parameter-free activation whose derivative is read from its output
    (`"y"`), or jax's autodiff of `primal` (`"plain"`). `plain(x)`: where
    jax.nn writes the function differently (values within rounding), its
    formula, whose jax autodiff is then the plain rule: jax.nn's program,
    values included (with `primal`'s values and jax.nn's tangent XLA:TPU kept
    as much more as with `primal`'s own autodiff)."""

    @jax.custom_jvp
    def f(x):
        return primal(x)

    def y_rule(x, t):
        y = f(x)
        return y, jax.checkpoint(tangent_from_y)(y, t)

    def plain_rule(x, t):
        return jax.jvp(primal if plain is None else plain, (x,), (t,))

    rules = {"y": y_rule, "plain": plain_rule}

    @f.defjvp
    def _jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return by_target(choice, rules, jnp.asarray(x), t)

    return f


def _parametric(
    primal: Callable,
    tangent_from_x: Callable,
    tangent_from_y: Callable,
    param_tangent: Callable,
    choice: Choice,
) -> tuple[Callable, Callable]:
    """Two custom_jvp versions of `primal(x, a)`.

    Returns `(from_y, from_x)`. Both differentiate in `x` and `a`. `from_y`
    reads the output `y` for the `x` derivative and is valid only for
    parameters where `tangent_from_y` is exact; `from_x` is always valid.
    Every tangent map is wrapped in `jax.checkpoint`, so reverse mode saves
    only its array inputs (`y`, or `x`), never derived masks or factors.
    Where `choice` names `"plain"` for the target, both are jax's autodiff
    of `primal`.
    """

    def build(use_y: bool) -> Callable:
        @jax.custom_jvp
        def f(x, a):
            return primal(x, a)

        def own_rule(x, tx, ta, a):
            y = f(x, a)
            out = None
            if tx is not None:
                # A constant parameter is closed over: no residual for it.
                tangent, v = (tangent_from_y, y) if use_y else (tangent_from_x, x)
                if isinstance(a, _Tracer):
                    out = jax.checkpoint(tangent)(v, tx, a)
                else:
                    out = jax.checkpoint(lambda v, t: tangent(v, t, a))(v, tx)
            if ta is not None:
                dt = jax.checkpoint(param_tangent)(x, ta, a)
                out = dt if out is None else out + dt
            return y, out

        def _jvp(primals, tangents):
            (x, a), (tx, ta) = primals, tangents
            tx = None if _is_zero(tx) else tx
            ta = None if _is_zero(ta) else ta
            if tx is None and ta is None:
                y = f(x, a)
                return y, jnp.zeros_like(y)
            rules = {
                "y": lambda x: own_rule(x, tx, ta, a),
                "plain": lambda x: _plain_jvp(primal, x, tx, a, ta),
            }
            return by_target(choice, rules, x)

        f.defjvp(_jvp, symbolic_zeros=True)
        return f

    return build(True), build(False)
