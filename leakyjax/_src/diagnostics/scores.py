r"""Three unit scores in one pass: never positive, τ-dormant (ReDo), gradient (GraMa).

For every unit $i$ of a layer (one channel on the feature axis; every other
axis -- batch and, for convolutions, space -- is averaged over), with
pre-activation $a_i$, output $h_i = f(a_i)$ and loss $L$:

* **never positive**: the share of examples with $a_i > 0$; a unit whose share
  is 0 is *dead* (what [leakyjax.diagnostics.result][] reports);
* **τ-dormant** (Sokar et al. 2023, ReDo):
  $s_i = \mathbb{E}|h_i| \,/\, \big(\tfrac{1}{H}\sum_k \mathbb{E}|h_k| + 10^{-9}\big)$,
  dormant when $s_i \le \tau$;
* **gradient** (GraMa, Liu et al. 2025): the same normalisation of the loss
  gradient that reaches the unit,
  $g_i = \mathbb{E}|\partial L/\partial a_i| \,/\, \big(\tfrac{1}{H}\sum_k
  \mathbb{E}|\partial L/\partial a_k| + 10^{-9}\big)$, gradient-dormant when
  $g_i \le \tau_g$. It is taken at the pre-activation, i.e. what the unit's
  incoming weights and bias learn from: a never-positive ReLU unit has
  $g_i = 0$ exactly, a never-positive leaky unit still gets slope times the
  upstream gradient, so this is the score that compares relu, leaky_relu and
  elu on one footing.

[ScoreState][leakyjax.diagnostics.ScoreState] accumulates the three in one
streaming pass (exact integer counts; float sums), inside
`jax.jit` or `jax.lax.scan`; [value_grad_and_probes][leakyjax.diagnostics.value_grad_and_probes]
returns, from the train step's own backward pass, the pre-activations, outputs
and pre-activation gradients of every leakyjax activation module (linen and
nnx) and of every [tap][leakyjax.diagnostics.tap] in a plain function.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from leakyjax._src.diagnostics.accumulator import ScoreState as ScoreState
from leakyjax._src.diagnostics.accumulator import _normalize_axis, _spec_shape

Array = jax.Array

EPS = 1e-9  # ReDo's guard for an entirely silent layer (dopamine's code)


class Probe(NamedTuple):
    """One activation layer seen by a train step, from [`value_grad_and_probes`][leakyjax.diagnostics.value_grad_and_probes].

    Attributes:
        pre_activation: the layer's input $a$ (the activation's argument).
        output: the layer's output $h = f(a)$.
        grad: $\\partial L / \\partial a$, same shape as `pre_activation`.
    """

    pre_activation: Array
    output: Array
    grad: Array


class UnitScores(NamedTuple):
    """The three scores of one layer, from [`unit_scores`][leakyjax.diagnostics.unit_scores].

    Fractions are over units; all are `nan` when nothing has been seen
    (`grad_*` when no gradient has been seen).

    Attributes:
        units: number of units.
        count: examples seen per unit.
        active_rate: `(units,)` share of examples with pre-activation `> 0`.
        dormancy: `(units,)` ReDo's $s_i$ (the layer's scores average to 1).
        grad_score: `(units,)` the gradient score $g_i$ (average 1).
        never_positive: `(units,)` bool, active rate 0.
        dormant: `(units,)` bool, $s_i \\le \\tau$.
        grad_dormant: `(units,)` bool, $g_i \\le \\tau_g$.
        never_positive_fraction: share of units never positive.
        dormant_fraction: share of τ-dormant units.
        grad_dormant_fraction: share of gradient-dormant units.
    """

    units: Any
    count: Array  # pyright: ignore[reportIncompatibleMethodOverride]
    active_rate: Array
    dormancy: Array
    grad_score: Array
    never_positive: Array
    dormant: Array
    grad_dormant: Array
    never_positive_fraction: Array
    dormant_fraction: Array
    grad_dormant_fraction: Array


# --------------------------------------------------------------------------- #
# Accumulator
# --------------------------------------------------------------------------- #
def _init_one(spec: Any, feature_axis: Any, dtype: Any, where: str) -> ScoreState:
    if isinstance(spec, Probe):
        spec = spec.pre_activation
    shape, units = _spec_shape(spec, where)
    if shape is not None:
        if len(shape) == 0:
            raise ValueError(
                f"{where}: pre-activations need at least one axis (the feature "
                "axis), got a scalar shape ()."
            )
        axis = _normalize_axis(feature_axis, len(shape), where)
        units = shape[axis]
        if units == 0:
            raise ValueError(
                f"{where}: the feature axis {feature_axis} of shape {shape} has 0 "
                "units; give a layer with at least one unit."
            )
    else:
        axis = _normalize_axis(feature_axis, None, where)
    dtype = jnp.dtype(jnp.float32 if dtype is None else dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{where}: dtype must be a float dtype, got {dtype}.")
    layout = (units,) + (1,) * (-axis - 1)
    return ScoreState(
        count=jnp.zeros((), jnp.int32),
        positive_count=jnp.zeros(layout, jnp.int32),
        abs_sum=jnp.zeros(layout, dtype),
        grad_count=jnp.zeros((), jnp.int32),
        grad_abs_sum=jnp.zeros(layout, dtype),
    )


def init_scores(spec: Any, *, feature_axis: Any = -1, dtype: Any = None) -> Any:
    """Empty score sums for one layer, or for a mapping of layers.

    Args:
        spec: the number of units, the pre-activation shape, an example array,
            a [Probe][leakyjax.diagnostics.Probe], or a mapping
            `{layer name: spec}` (e.g. the probes of one step, or their
            `jax.eval_shape`).
        feature_axis: the unit axis (`-1`: Dense and channels-last conv), or
            `{layer name: int}`.
        dtype: float dtype of the sums (default float32).

    Returns:
        A [ScoreState][leakyjax.diagnostics.ScoreState] (or a dict of them).

    Raises:
        TypeError, ValueError: for a spec or feature axis that does not describe
            a layer.

    Example:
        >>> from leakyjax import diagnostics as dg
        >>> dg.init_scores((8, 5, 5, 3)).abs_sum.shape
        (3,)
    """
    if isinstance(spec, Mapping):
        return {
            name: _init_one(
                s,
                feature_axis[name]
                if isinstance(feature_axis, Mapping)
                else feature_axis,
                dtype,
                f"init_scores (layer {name!r})",
            )
            for name, s in spec.items()
        }
    if isinstance(feature_axis, Mapping):
        raise TypeError(
            "init_scores: feature_axis is a mapping but spec is a single layer; "
            "pass an int feature_axis."
        )
    return _init_one(spec, feature_axis, dtype, "init_scores")


def _flat(x: Any, state: ScoreState, what: str, where: str) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{where}: {what} must be a floating-point array, got dtype {x.dtype}."
        )
    layout = state.positive_count.shape
    k, units = len(layout), layout[0]
    if x.ndim < k or x.shape[-k] != units:
        got = x.shape[-k] if x.ndim >= k else None
        raise ValueError(
            f"{where}: {what} of shape {x.shape} does not match the state: "
            f"expected {units} units on feature axis {-k}, got {got}. Initialise "
            "the state with this layer's shape and feature_axis."
        )
    return jnp.moveaxis(x, x.ndim - k, -1).reshape(-1, units)


def _update_one(
    state: ScoreState, pre: Any, out: Any, grad: Any, where: str
) -> ScoreState:
    layout = state.positive_count.shape
    dtype = state.abs_sum.dtype
    a = _flat(pre, state, "pre_activations", where)
    h = _flat(out, state, "outputs", where)
    if h.shape != a.shape:
        raise ValueError(
            f"{where}: outputs of shape {jnp.shape(out)} differ from "
            f"pre_activations of shape {jnp.shape(pre)}."
        )
    n = a.shape[0]
    new = ScoreState(
        count=state.count + jnp.asarray(n, jnp.int32),
        positive_count=state.positive_count
        + jnp.sum(a > 0, axis=0, dtype=jnp.int32).reshape(layout),
        abs_sum=state.abs_sum
        + jnp.sum(jnp.abs(h.astype(dtype)), axis=0).reshape(layout),
        grad_count=state.grad_count,
        grad_abs_sum=state.grad_abs_sum,
    )
    if grad is None:
        return new
    g = _flat(grad, state, "grads", where)
    if g.shape != a.shape:
        raise ValueError(
            f"{where}: grads of shape {jnp.shape(grad)} differ from "
            f"pre_activations of shape {jnp.shape(pre)}."
        )
    return new._replace(
        grad_count=state.grad_count + jnp.asarray(n, jnp.int32),
        grad_abs_sum=state.grad_abs_sum
        + jnp.sum(jnp.abs(g.astype(dtype)), axis=0).reshape(layout),
    )


def _resolve_fn(activation: Any, name: Any, where: str) -> Callable | None:
    if isinstance(activation, Mapping):
        activation = activation.get(name)
    if activation is None:
        return None
    if isinstance(activation, str):
        from leakyjax._src import registry

        return registry.get(activation)
    if not callable(activation):
        raise TypeError(
            f"{where}: activation must be a registry spec such as 'relu', a "
            f"callable or a mapping of them, got {activation!r}."
        )
    return activation


def update_scores(
    state: Any,
    pre_activations: Any,
    outputs: Any = None,
    grads: Any = None,
    *,
    activation: Any = None,
) -> Any:
    r"""Adds one batch to the score sums.

    Args:
        state: a [ScoreState][leakyjax.diagnostics.ScoreState] (or a dict).
        pre_activations: the layer's inputs $a$ (any leading axes, all
            averaged), a [Probe][leakyjax.diagnostics.Probe] (then `outputs`
            and `grads` come from it), or a mapping `{layer: array or
            Probe}` with the state's names (what
            [value_grad_and_probes][leakyjax.diagnostics.value_grad_and_probes]
            returns).
        outputs: the outputs $h = f(a)$ (same shape); or give `activation`.
        grads: optional $\partial L / \partial a$ (same shape), for the
            gradient score.
        activation: the activation that maps pre-activations to outputs when
            `outputs` is None: a registry spec (`"leaky_relu:0.2"`), a
            callable, or `{layer: ...}`.

    Returns:
        The updated state (same pytree structure); jit- and scan-compatible.

    Raises:
        ValueError, TypeError: for shapes that do not fit the state, or no way to
            get the outputs.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> a = jnp.array([[1.0, -1.0, 2.0], [3.0, -2.0, 0.0]])
        >>> s = dg.update_scores(dg.init_scores(3), a, activation="relu")
        >>> dg.unit_scores(s).dormancy.tolist()
        [2.0, 0.0, 1.0]
    """
    where = "update_scores"
    if isinstance(state, Mapping):
        if not isinstance(pre_activations, Mapping):
            raise TypeError(
                f"{where}: state is a mapping of layers, so pre_activations must "
                f"be a mapping too, got {type(pre_activations).__name__}."
            )
        if set(state) != set(pre_activations):
            raise ValueError(
                f"{where}: the layers of the state {sorted(state, key=str)} and of "
                f"pre_activations {sorted(pre_activations, key=str)} differ; "
                "initialise the state with the same layer names."
            )
        pick = lambda m, n: None if m is None else m[n]
        return {
            n: update_scores(
                s,
                pre_activations[n],
                pick(outputs, n),
                pick(grads, n),
                activation=_resolve_fn(activation, n, where),
            )
            for n, s in state.items()
        }
    if not isinstance(state, ScoreState):
        raise TypeError(
            f"{where}: state must be a ScoreState from init_scores(), got "
            f"{type(state).__name__}."
        )
    if isinstance(pre_activations, Mapping):
        raise TypeError(
            f"{where}: pre_activations is a mapping but state is a single layer; "
            "create the state with init_scores({name: shape, ...})."
        )
    if isinstance(pre_activations, Probe):
        p = pre_activations
        pre_activations = p.pre_activation
        outputs = p.output if outputs is None else outputs
        grads = p.grad if grads is None else grads
    if outputs is None:
        fn = _resolve_fn(activation, None, where)
        if fn is None:
            raise TypeError(
                f"{where}: the τ-dormant score needs the layer's outputs: pass "
                "outputs=, or activation= (e.g. activation='relu')."
            )
        outputs = fn(jnp.asarray(pre_activations))
    return _update_jit(state, pre_activations, outputs, grads)


@jax.jit
def _update_jit(state, pre, out, grad):
    return _update_one(state, pre, out, grad, "update_scores")


def _normalised(total: Array, n: Array, dtype: Any) -> tuple[Array, Array]:
    mean = total / jnp.maximum(n, 1).astype(dtype)
    return mean, mean / (jnp.mean(mean) + EPS)


def _scores_one(state: ScoreState, tau: Any, grad_tau: Any) -> UnitScores:
    units = state.positive_count.shape[0]
    dtype = state.abs_sum.dtype
    nan = jnp.asarray(jnp.nan, dtype)
    seen, gseen = state.count > 0, state.grad_count > 0
    n = state.count.astype(dtype)
    rate = jnp.where(
        seen, state.positive_count.reshape(units).astype(dtype) / jnp.maximum(n, 1), nan
    )
    _, s = _normalised(state.abs_sum.reshape(units), state.count, dtype)
    _, g = _normalised(state.grad_abs_sum.reshape(units), state.grad_count, dtype)
    s = jnp.where(seen, s, nan)
    g = jnp.where(gseen, g, nan)
    never = (rate == 0) & seen
    dormant = (s <= tau) & seen
    gdormant = (g <= grad_tau) & gseen
    frac = lambda m, ok: jnp.where(ok, jnp.mean(m.astype(dtype)), nan)
    return UnitScores(
        units=units,
        count=state.count,
        active_rate=rate,
        dormancy=s,
        grad_score=g,
        never_positive=never,
        dormant=dormant,
        grad_dormant=gdormant,
        never_positive_fraction=frac(never, seen),
        dormant_fraction=frac(dormant, seen),
        grad_dormant_fraction=frac(gdormant, gseen),
    )


def _check_tau(value: Any, name: str) -> None:
    if isinstance(value, jax.core.Tracer):
        return
    v = float(np.asarray(value))
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(f"unit_scores: {name} must be finite and >= 0, got {value!r}.")


def unit_scores(state: Any, *, tau: Any = 0.1, grad_tau: Any = 0.1) -> Any:
    r"""The three scores of accumulated sums, per unit and per layer.

    Args:
        state: a [ScoreState][leakyjax.diagnostics.ScoreState] or a dict.
        tau: ReDo's threshold $\tau$ on $s_i$ (default 0.1, as
            [leakyjax.recycle.recycle_dormant][]); may be traced.
        grad_tau: the threshold on the gradient score $g_i$ (default 0.1).

    Returns:
        A [UnitScores][leakyjax.diagnostics.UnitScores] (or a dict). Works
        under `jax.jit`.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> a = jnp.array([[1.0, -1.0], [3.0, -2.0]])
        >>> g = jnp.array([[0.5, 0.0], [-0.5, 0.0]])
        >>> s = dg.update_scores(dg.init_scores(2), a, grads=g, activation="relu")
        >>> r = dg.unit_scores(s)
        >>> r.grad_score.tolist(), r.never_positive.tolist()
        ([2.0, 0.0], [False, True])
    """
    _check_tau(tau, "tau")
    _check_tau(grad_tau, "grad_tau")
    if isinstance(state, Mapping):
        return {n: unit_scores(s, tau=tau, grad_tau=grad_tau) for n, s in state.items()}
    if not isinstance(state, ScoreState):
        raise TypeError(
            f"unit_scores: state must be a ScoreState from init_scores(), got "
            f"{type(state).__name__}."
        )
    r = _scores_jit(state, tau, grad_tau)
    return r._replace(units=state.positive_count.shape[0])


@jax.jit
def _scores_jit(state, tau, grad_tau):
    return _scores_one(state, tau, grad_tau)


def pooled_fractions(scores: Mapping[str, UnitScores]) -> dict[str, Array]:
    """The three fractions over all units of many layers (weighted by units).

    Args:
        scores: `{layer: UnitScores}` from [`unit_scores`][leakyjax.diagnostics.unit_scores].

    Returns:
        `{"never_positive": ..., "dormant": ..., "grad_dormant": ...}`.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> s = dg.init_scores({"a": 1, "b": 3})
        >>> s = dg.update_scores(s, {"a": jnp.ones((2, 1)), "b": -jnp.ones((2, 3))},
        ...                      activation="relu")
        >>> float(dg.pooled_fractions(dg.unit_scores(s))["never_positive"])
        0.75
    """
    if not isinstance(scores, Mapping) or not scores:
        raise TypeError(
            "pooled_fractions: scores must be a non-empty mapping {layer: "
            "UnitScores} from unit_scores()."
        )
    out = {}
    for field in ("never_positive", "dormant", "grad_dormant"):
        masks = [getattr(s, field) for s in scores.values()]
        out[field] = jnp.mean(jnp.concatenate([m.astype(jnp.float32) for m in masks]))
    return out


# --------------------------------------------------------------------------- #
# Probes: pre-activations, outputs and their gradients from one backward pass
# --------------------------------------------------------------------------- #
class _Tape:
    def __init__(self, taps: Mapping | None):
        self.taps = taps  # None: the shape pass
        self.calls: list[tuple[str, Array, Array]] = []

    def hook(self, name: str, x: Any, apply: Callable[[Any], Any]) -> Any:
        x = jnp.asarray(x)
        n = sum(1 for c in self.calls if c[0] == name)
        key = f"{name}#{n}"
        if self.taps is not None:
            x = x + self.taps[key].astype(x.dtype)
        out = apply(x)
        self.calls.append((name, x, out))
        return out

    def named(self) -> dict[str, tuple[Array, Array]]:
        per: dict[str, list] = {}
        for name, x, out in self.calls:
            per.setdefault(name, []).append((x, out))
        res: dict[str, tuple[Array, Array]] = {}
        for name, xs in per.items():
            if len(xs) == 1:
                res[name] = xs[0]
            else:
                res.update({f"{name}[{i}]": v for i, v in enumerate(xs)})
        return res

    def keys(self) -> list[str]:
        seen: dict[str, int] = {}
        out = []
        for name, _, _ in self.calls:
            out.append(f"{name}#{seen.get(name, 0)}")
            seen[name] = seen.get(name, 0) + 1
        return out


_TAPES: list[_Tape] = []


def tap(name: str, pre_activation: Any, activation: Any) -> Array:
    """Applies `activation` to a layer of a plain function, visibly to probes.

    Outside [value_grad_and_probes][leakyjax.diagnostics.value_grad_and_probes]
    this is `activation(pre_activation)`; inside, the layer's pre-activation,
    output and loss gradient are recorded under `name`.

    Args:
        name: the layer name (a layer applied twice gives `name[0]`,
            `name[1]`).
        pre_activation: the activation's input.
        activation: a callable or a registry spec (`"leaky_relu:0.2"`).

    Returns:
        `activation(pre_activation)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> dg.tap("hidden", jnp.array([-1.0, 2.0]), "relu").tolist()
        [0.0, 2.0]
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"tap: name must be a non-empty str, got {name!r}.")
    fn = _resolve_fn(activation, None, "tap")
    if fn is None:
        raise TypeError("tap: activation is required (a callable or registry spec).")
    if not _TAPES:
        return fn(pre_activation)
    return _TAPES[-1].hook(name, pre_activation, fn)


def _linen_classes() -> tuple:
    mod = sys.modules.get("leakyjax._src.linen")
    return () if mod is None else (mod._Stateless, mod.PReLU, mod.RReLU)


def _nnx_classes() -> tuple:
    mod = sys.modules.get("leakyjax._src.nnx")
    return () if mod is None else (mod._Stateless, mod.PReLU, mod.RReLU)


@contextlib.contextmanager
def _recording(tape: _Tape) -> Iterator[None]:
    """Routes leakyjax linen / nnx activation modules through `tape`."""
    _TAPES.append(tape)
    patched: list[tuple[type, Any]] = []
    stack = contextlib.ExitStack()
    try:
        linen = _linen_classes()
        if linen:
            from flax import linen as nn

            def interceptor(next_fun, args, kwargs, context):
                m = context.module
                if context.method_name != "__call__" or not isinstance(m, linen):
                    return next_fun(*args, **kwargs)
                path = "/".join(str(p) for p in m.scope.path) or "(root)"
                rest = args[1:]
                return tape.hook(path, args[0], lambda x: next_fun(x, *rest, **kwargs))

            stack.enter_context(nn.intercept_methods(interceptor))
        counters: dict[str, int] = {}
        names: dict[int, str] = {}
        for cls in _nnx_classes():
            orig = cls.__dict__["__call__"]

            def call(self, x, *args, _orig=orig, **kwargs):
                name = names.get(id(self))
                if name is None:
                    base = type(self).__name__
                    name = f"{base}_{counters.get(base, 0)}"
                    counters[base] = counters.get(base, 0) + 1
                    names[id(self)] = name
                return tape.hook(name, x, lambda x: _orig(self, x, *args, **kwargs))

            cls.__call__ = call
            patched.append((cls, orig))
        yield
    finally:
        stack.close()
        for cls, orig in patched:
            cls.__call__ = orig
        _TAPES.remove(tape)


def value_grad_and_probes(
    fn: Callable[..., Any], *, argnums: int | tuple[int, ...] = 0, has_aux: bool = False
) -> Callable[..., tuple[Any, Any, dict[str, Probe]]]:
    r"""`jax.value_and_grad` that also returns every activation layer's probe.

    The returned function runs `fn` once forward and once backward (as
    `jax.value_and_grad` does) and returns `(value, grads, probes)`:
    `probes` maps each activation layer to a [Probe][leakyjax.diagnostics.Probe]
    (pre-activation, output, and $\partial L/\partial a$, taken by adding a zero
    to the pre-activation and differentiating with respect to it). Layers are

    * every leakyjax `flax.linen` activation module, named by module path as
      [capture_linen][leakyjax.diagnostics.capture_linen] names them;
    * every leakyjax `flax.nnx` activation module, named `ClassName_i` in
      order of first call (use it with `nnx.split` / `nnx.merge` inside
      `fn`);
    * every [tap][leakyjax.diagnostics.tap] in a plain function.

    Feed `probes` to [update_scores][leakyjax.diagnostics.update_scores] in the
    same jitted step: the three scores then cost a few reductions over arrays
    the step has anyway (see `benchmarks/bench_diagnostics.py`).

    Args:
        fn: the loss, `fn(*args) -> scalar` (or `(scalar, aux)` with
            `has_aux`).
        argnums: which arguments to differentiate, as in `jax.value_and_grad`.
        has_aux: whether `fn` returns `(loss, aux)`.

    Returns:
        `f(*args) -> (value, grads, probes)`; `value` is `(loss, aux)` with
        `has_aux`.

    Raises:
        ValueError: at the first call, if `fn` runs no activation layer.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> def loss(w, x):
        ...     h = dg.tap("hidden", x @ w, "relu")
        ...     return jnp.sum(h)
        >>> w = jnp.array([[1.0, -1.0]])
        >>> value, grads, probes = dg.value_grad_and_probes(loss)(w, jnp.ones((3, 1)))
        >>> float(value), probes["hidden"].grad.tolist()
        (3.0, [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    """
    if not callable(fn):
        raise TypeError(f"value_grad_and_probes: fn must be callable, got {fn!r}.")
    many = isinstance(argnums, tuple)
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in nums):
        raise TypeError(
            f"value_grad_and_probes: argnums must be an int or a tuple of ints, got "
            f"{argnums!r}."
        )

    def run(taps, args):
        tape = _Tape(taps)
        with _recording(tape):
            out = fn(*args)
        loss, aux = out if has_aux else (out, None)
        return loss, (aux, tape)

    def wrapped(*args):
        shape_tape: list[_Tape] = []

        def shapes(*a):
            loss, (_, tape) = run(None, a)
            shape_tape.append(tape)
            return loss

        jax.eval_shape(shapes, *args)
        tape0 = shape_tape[0]
        if not tape0.calls:
            raise ValueError(
                "value_grad_and_probes: fn runs no activation layer: use leakyjax "
                "linen / nnx activation modules, or dg.tap(name, x, activation) in "
                "a plain function."
            )
        taps = {
            k: jnp.zeros(x.shape, x.dtype)
            for k, (_, x, _) in zip(tape0.keys(), tape0.calls)
        }

        def inner(taps, *a):
            loss, (aux, tape) = run(taps, a)
            return loss, (aux, tape.named(), tape.keys())

        shifted = tuple(i + 1 for i in nums)
        # the tape's names are static: compute them once in the shape pass
        keys = tape0.keys()

        def inner_arrays(taps, *a):
            loss, (aux, named, _) = inner(taps, *a)
            return loss, (aux, named)

        (loss, (aux, named)), g = jax.value_and_grad(
            inner_arrays, argnums=(0, *shifted), has_aux=True
        )(taps, *args)
        g_taps, g_args = g[0], g[1:]
        per_key_grad = [g_taps[k] for k in keys]
        # keys and named entries line up call by call
        names_in_order = _call_names(tape0)
        probes = {
            name: Probe(named[name][0], named[name][1], grad)
            for name, grad in zip(names_in_order, per_key_grad)
        }
        value = (loss, aux) if has_aux else loss
        return value, (g_args if many else g_args[0]), probes

    return wrapped


def _call_names(tape: _Tape) -> list[str]:
    """The final name of each call, in call order (`name` or `name[i]`)."""
    totals: dict[str, int] = {}
    for name, _, _ in tape.calls:
        totals[name] = totals.get(name, 0) + 1
    seen: dict[str, int] = {}
    out = []
    for name, _, _ in tape.calls:
        i = seen.get(name, 0)
        seen[name] = i + 1
        out.append(name if totals[name] == 1 else f"{name}[{i}]")
    return out
