"""The streaming accumulator: per-unit statistics of pre-activations.

[UnitState][leakyjax.diagnostics.UnitState] is a plain pytree updated batch by batch (inside jit or
scan), merged across batches or devices and read with [result][leakyjax.diagnostics.result].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = jax.Array


# --------------------------------------------------------------------------- #
# Results
# --------------------------------------------------------------------------- #
class UnitState(NamedTuple):
    """Streaming per-unit statistics of one layer's pre-activations.

    The arrays have the *layout shape* `(units,) + (1,) * (k - 1)` for a feature
    axis `-k`: the feature axis is read back from the layout, so the state is a
    plain pytree of arrays (a `lax.scan` carry, a jit argument) and
    [update][leakyjax.diagnostics.update] needs no options.

    Attributes:
        count: `()` int32, the number of examples seen (the same for every unit).
        positive_count: int32, per unit, the number of examples with
            pre-activation `> 0`.
        nan_count: int32, per unit, the number of NaN pre-activations (NaN is
            neither positive nor `<= 0`: a unit that saw one is not dead).
        mean: per unit, the running mean of the pre-activation.
        m2: per unit, the running sum of squared deviations from the mean.
        maximum: per unit, the largest pre-activation seen (`-inf` at first).
    """

    # A field named count shadows tuple.count on purpose (public API, as in the docs).
    count: Array  # pyright: ignore[reportIncompatibleMethodOverride]
    positive_count: Array
    nan_count: Array
    mean: Array
    m2: Array
    maximum: Array


class ScoreState(NamedTuple):
    """Streaming sums for the three unit scores of one layer.

    The per-unit arrays have the layout shape `(units,) + (1,) * (k - 1)` for
    feature axis `-k` (as [UnitState][leakyjax.diagnostics.UnitState]), so the
    state is a plain pytree: a jit argument, a scan carry.

    Attributes:
        count: `()` int32, examples (batch x spatial positions) seen.
        positive_count: int32 per unit, examples with pre-activation `> 0`.
        abs_sum: per unit, $\\sum |h_i|$ over the examples.
        grad_count: `()` int32, examples seen with a gradient.
        grad_abs_sum: per unit, $\\sum |\\partial L / \\partial a_i|$.
    """

    count: Array  # pyright: ignore[reportIncompatibleMethodOverride]
    positive_count: Array
    abs_sum: Array
    grad_count: Array
    grad_abs_sum: Array


class LayerStats(NamedTuple):
    """The report for one layer, from [result][leakyjax.diagnostics.result].

    Fractions are over units; rates over examples. All are `nan` when no
    example has been seen.

    Attributes:
        units: number of units (channels on the feature axis).
        count: number of examples seen per unit.
        dead_fraction: fraction of units never positive on any example.
        rarely_active_fraction: fraction of units positive on fewer than
            `rare_threshold` of the examples (dead units included).
        nan_fraction: fraction of units with a NaN pre-activation (a diverged
            model; such units are not counted as dead).
        mean_active_rate: mean over units of the fraction of examples on which
            the unit is positive.
        mean: mean of the pre-activation over all units and examples.
        std: standard deviation (population, `ddof=0`) over all units and
            examples.
        unit_active_rate: `(units,)` the fraction of examples on which each
            unit is positive.
        unit_mean: `(units,)` per-unit mean pre-activation.
        unit_std: `(units,)` per-unit standard deviation (`ddof=0`).
        unit_max: `(units,)` per-unit maximum pre-activation; a unit is dead
            exactly when this is `<= 0`.
        dead: `(units,)` bool, which units are dead.
    """

    units: Any
    count: Array  # pyright: ignore[reportIncompatibleMethodOverride]  (see UnitState)
    dead_fraction: Array
    rarely_active_fraction: Array
    nan_fraction: Array
    mean_active_rate: Array
    mean: Array
    std: Array
    unit_active_rate: Array
    unit_mean: Array
    unit_std: Array
    unit_max: Array
    dead: Array


# --------------------------------------------------------------------------- #
# Streaming accumulator
# --------------------------------------------------------------------------- #
def _is_state(x: Any) -> bool:
    return isinstance(x, UnitState)


def _normalize_axis(feature_axis: Any, ndim: int | None, where: str) -> int:
    """Returns the feature axis as a negative int `-k`."""
    if isinstance(feature_axis, (bool, np.bool_)) or not isinstance(
        feature_axis, (int, np.integer)
    ):
        raise TypeError(
            f"{where}: feature_axis must be an int (e.g. -1 for channels last, 1 "
            f"for NCHW), got {feature_axis!r}."
        )
    feature_axis = int(feature_axis)
    if ndim is None:
        if feature_axis >= 0:
            raise ValueError(
                f"{where}: with a number of units, feature_axis must be negative "
                f"(counted from the end), got {feature_axis}. Pass the "
                "pre-activation shape instead, e.g. init((32, 28, 28, 64)), to use "
                "a non-negative axis."
            )
        return feature_axis
    if not -ndim <= feature_axis < ndim:
        raise ValueError(
            f"{where}: feature_axis={feature_axis} is out of range for "
            f"pre-activations with {ndim} dimensions."
        )
    return feature_axis - ndim if feature_axis >= 0 else feature_axis


def _spec_shape(spec: Any, where: str) -> tuple[tuple[int, ...] | None, int | None]:
    """(shape, None) for a shape or an array-like, (None, units) for an int."""
    if isinstance(spec, (bool, np.bool_)):
        raise TypeError(f"{where}: expected a number of units or a shape, got {spec}.")
    if isinstance(spec, (int, np.integer)):
        if spec <= 0:
            raise ValueError(f"{where}: the number of units must be > 0, got {spec}.")
        return None, int(spec)
    if hasattr(spec, "shape"):
        return tuple(int(d) for d in spec.shape), None
    if isinstance(spec, (tuple, list)) and all(
        isinstance(d, (int, np.integer)) for d in spec
    ):
        return tuple(int(d) for d in spec), None
    raise TypeError(
        f"{where}: expected a number of units (int), a pre-activation shape (tuple "
        f"of ints), an array or jax.ShapeDtypeStruct, or a mapping of layer names "
        f"to those; got {type(spec).__name__}: {spec!r}."
    )


def _init_one(spec: Any, feature_axis: Any, dtype: Any, where: str) -> UnitState:
    shape, units = _spec_shape(spec, where)
    if shape is not None:
        if len(shape) == 0:
            raise ValueError(
                f"{where}: pre-activations need at least one axis (the feature "
                "axis), got a scalar shape ()."
            )
        axis = _normalize_axis(feature_axis, len(shape), where)
        units = shape[axis]
    else:
        axis = _normalize_axis(feature_axis, None, where)
    if dtype is None:
        dtype = jnp.float32
        in_dtype = getattr(spec, "dtype", None)
        if in_dtype is not None and jnp.issubdtype(in_dtype, jnp.floating):
            dtype = jnp.promote_types(in_dtype, jnp.float32)
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{where}: dtype must be a float dtype, got {dtype}.")
    layout = (units,) + (1,) * (-axis - 1)
    return UnitState(
        count=jnp.zeros((), jnp.int32),
        positive_count=jnp.zeros(layout, jnp.int32),
        nan_count=jnp.zeros(layout, jnp.int32),
        mean=jnp.zeros(layout, dtype),
        m2=jnp.zeros(layout, dtype),
        maximum=jnp.full(layout, -jnp.inf, dtype),
    )


def init(spec: Any, *, feature_axis: Any = -1, dtype: Any = None) -> Any:
    r"""Empty statistics for one layer, or for a mapping of layers.

    Args:
        spec: the number of units (an int; `feature_axis` must then be
            negative), the shape of the pre-activations (a tuple of ints), an
            example array or `jax.ShapeDtypeStruct`, or a mapping
            `{layer name: spec}` for many layers (e.g.
            `jax.eval_shape(fn, batch)`).
        feature_axis: the axis that indexes units; every other axis is reduced.
            `-1` (default) for Dense `(B, F)` and channels-last convolutions
            `(B, H, W, C)`; `1` for NCHW. With a mapping, one int for all
            layers or a mapping `{layer name: int}`.
        dtype: float dtype of the running mean and variance; default float32
            (float64 for float64 example arrays).

    Returns:
        A [UnitState][leakyjax.diagnostics.UnitState] (or a dict of them) with zero counts.

    Raises:
        TypeError, ValueError: for a spec or feature axis that does not describe
            a layer (the message names the argument).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> state = dg.init(3)
        >>> state = dg.update(state, jnp.array([[1.0, -1.0, 0.0], [2.0, -3.0, 0.0]]))
        >>> stats = dg.result(state)
        >>> stats.dead.tolist(), round(float(stats.dead_fraction), 4)
        ([False, True, True], 0.6667)
    """
    if isinstance(spec, Mapping):
        out = {}
        for name, s in spec.items():
            ax = (
                feature_axis[name]
                if isinstance(feature_axis, Mapping)
                else (feature_axis)
            )
            out[name] = _init_one(s, ax, dtype, f"init (layer {name!r})")
        return out
    if isinstance(feature_axis, Mapping):
        raise TypeError(
            "init: feature_axis is a mapping but spec is a single layer; pass an "
            "int feature_axis, or a mapping of layer names as spec."
        )
    return _init_one(spec, feature_axis, dtype, "init")


def _batch_stats(state: UnitState, x: Any, mask: Any, where: str) -> UnitState:
    """The statistics of one batch alone, in the layout of `state`."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{where}: pre_activations must be a floating-point array, got dtype "
            f"{x.dtype}."
        )
    layout = state.positive_count.shape
    k = len(layout)
    units = layout[0]
    if x.ndim < k or x.shape[-k] != units:
        got = x.shape[-k] if x.ndim >= k else None
        raise ValueError(
            f"{where}: pre_activations of shape {x.shape} do not match the state: "
            f"expected {units} units on feature axis {-k}, got {got}. Initialise "
            f"the state with this layer's shape (init(x.shape, feature_axis=...)) "
            f"and the same feature_axis."
        )
    axis = x.ndim - k
    dtype = state.mean.dtype
    flat = jnp.moveaxis(x, axis, -1).reshape(-1, units)
    positive = flat > 0
    isnan = jnp.isnan(flat)
    xf = flat.astype(dtype)
    if mask is None:
        n = flat.shape[0]
        count = jnp.asarray(n, jnp.int32)
        pos = jnp.sum(positive, axis=0, dtype=jnp.int32)
        nans = jnp.sum(isnan, axis=0, dtype=jnp.int32)
        mean = jnp.sum(xf, axis=0) / max(n, 1)
        m2 = jnp.sum(jnp.square(xf - mean), axis=0)
        mx = jnp.max(xf, axis=0, initial=-jnp.inf)
    else:
        mask = jnp.asarray(mask)
        rest = x.shape[:axis] + x.shape[axis + 1 :]
        if mask.ndim > len(rest) or mask.shape != rest[: mask.ndim]:
            raise ValueError(
                f"{where}: mask of shape {mask.shape} does not fit pre_activations "
                f"of shape {x.shape}: it must match the leading non-feature axes "
                f"{rest} (e.g. shape {rest[:1]} for one flag per example)."
            )
        w = jnp.broadcast_to(
            mask.reshape(mask.shape + (1,) * (len(rest) - mask.ndim)), rest
        )
        w = w.reshape(-1, 1).astype(bool)
        count = jnp.sum(w, dtype=jnp.int32)
        pos = jnp.sum(positive & w, axis=0, dtype=jnp.int32)
        nans = jnp.sum(isnan & w, axis=0, dtype=jnp.int32)
        wf = w.astype(dtype)
        mean = jnp.sum(xf * wf, axis=0) / jnp.maximum(count, 1).astype(dtype)
        m2 = jnp.sum(jnp.where(w, jnp.square(xf - mean), 0), axis=0)
        mx = jnp.max(jnp.where(w, xf, -jnp.inf), axis=0, initial=-jnp.inf)
    return UnitState(
        count=count,
        positive_count=pos.reshape(layout),
        nan_count=nans.reshape(layout),
        mean=mean.reshape(layout),
        m2=m2.reshape(layout),
        maximum=mx.reshape(layout),
    )


def _merge_one(a: UnitState, b: UnitState) -> UnitState:
    """Chan et al.'s parallel combination of two states of one layer."""
    dtype = a.mean.dtype
    na = a.count.astype(dtype)
    nb = b.count.astype(dtype)
    n = na + nb
    safe = jnp.maximum(n, 1)
    delta = b.mean - a.mean
    mean = a.mean + delta * (nb / safe)
    m2 = a.m2 + b.m2 + jnp.square(delta) * (na * nb / safe)
    return UnitState(
        count=a.count + b.count,
        positive_count=a.positive_count + b.positive_count,
        nan_count=a.nan_count + b.nan_count,
        mean=mean.astype(dtype),
        m2=m2.astype(dtype),
        maximum=jnp.maximum(a.maximum, b.maximum),
    )


def _check_same_layout(a: Any, b: Any, where: str) -> None:
    if a.positive_count.shape != b.positive_count.shape:
        raise ValueError(
            f"{where}: the states describe different layers (layouts "
            f"{a.positive_count.shape} and {b.positive_count.shape})."
        )


def _check_keys(a: Mapping, b: Mapping, what: str, where: str) -> None:
    if set(a) != set(b):
        missing = sorted(set(a) - set(b), key=str)
        extra = sorted(set(b) - set(a), key=str)
        raise ValueError(
            f"{where}: the layers of the state and of {what} differ; missing in "
            f"{what}: {missing}, not in the state: {extra}. Initialise the state "
            f"with the same layer names."
        )


def update(state: Any, pre_activations: Any, *, mask: Any = None) -> Any:
    r"""Adds a batch of pre-activations to the statistics.

    Args:
        state: a [UnitState][leakyjax.diagnostics.UnitState] from [init][leakyjax.diagnostics.init] (or a dict of them).
        pre_activations: float array whose feature axis matches the state (any
            number of leading axes; all are reduced), or a mapping
            `{layer name: array}` with the same names as `state`.
        mask: optional bool array over the leading non-feature axes (shape
            `(B,)` flags each example, e.g. padding in a fixed-size last
            batch); `False` entries are ignored. With a mapping of layers, the
            same mask is used for every layer.

    Returns:
        The updated state; jit- and `lax.scan`-compatible (same pytree
        structure and dtypes as `state`).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> x = jnp.arange(-12.0, 12.0).reshape(2, 3, 4)  # (B, L, C): 6 examples
        >>> state = jax.jit(dg.update)(dg.init(x.shape), x)
        >>> int(state.count), state.positive_count.tolist()
        (6, [2, 3, 3, 3])
    """
    if isinstance(state, Mapping):
        if not isinstance(pre_activations, Mapping):
            raise TypeError(
                "update: state is a mapping of layers, so pre_activations must be "
                f"a mapping too, got {type(pre_activations).__name__}."
            )
        _check_keys(state, pre_activations, "pre_activations", "update")
        return {
            name: update(s, pre_activations[name], mask=mask)
            for name, s in state.items()
        }
    if not _is_state(state):
        raise TypeError(
            f"update: state must be a UnitState from init(), got "
            f"{type(state).__name__}."
        )
    if isinstance(pre_activations, Mapping):
        raise TypeError(
            "update: pre_activations is a mapping but state is a single layer; "
            "create the state with init({name: shape, ...})."
        )
    return _update_one(state, pre_activations, mask)


@jax.jit
def _update_one(state: UnitState, x: Any, mask: Any) -> UnitState:
    # One compiled program per layout and batch shape: eager updates dispatch
    # once instead of op by op; inside a caller's jit or scan this is inlined.
    return _merge_one(state, _batch_stats(state, x, mask, "update"))


def merge(a: Any, b: Any) -> Any:
    """Combines statistics of the same layers from disjoint data.

    `merge(update(s, x1), update(s, x2))` equals `update(update(s, x1), x2)`
    (counts exactly, moments to rounding): use it for shards computed on
    different devices, hosts or in parallel scans.

    Args:
        a: a [UnitState][leakyjax.diagnostics.UnitState] or a dict of them.
        b: the same structure.

    Returns:
        The combined state.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> s = dg.init(2)
        >>> a = dg.update(s, jnp.array([[1.0, -1.0]]))
        >>> b = dg.update(s, jnp.array([[-1.0, -2.0]]))
        >>> dg.merge(a, b).positive_count.tolist()
        [1, 0]
    """
    if isinstance(a, Mapping):
        if not isinstance(b, Mapping):
            raise TypeError("merge: a is a mapping of layers but b is not.")
        _check_keys(a, b, "b", "merge")
        return {name: merge(a[name], b[name]) for name in a}
    if isinstance(a, ScoreState) and isinstance(b, ScoreState):
        _check_same_layout(a, b, "merge")
        return ScoreState(*(x + y for x, y in zip(a, b)))
    if not (_is_state(a) and _is_state(b)):
        raise TypeError(
            "merge: a and b must both be UnitState values from init() or both "
            "ScoreState values from init_scores()."
        )
    _check_same_layout(a, b, "merge")
    return jax.jit(_merge_one)(a, b)


def merge_across(state: Any, axis_name: Any) -> Any:
    """Merges the statistics of every device along a named mapped axis.

    Use inside `jax.shard_map`, `jax.pmap` or a `jax.vmap`
    with `axis_name`: each member ends up with the statistics of all the data.
    Counts are summed (`psum`), maxima `pmax`-ed, and means and variances
    combined with the parallel formula.

    Args:
        state: a [UnitState][leakyjax.diagnostics.UnitState] or a dict of them, one per device.
        axis_name: the mapped axis to reduce over.

    Returns:
        The merged state, identical on every member of the axis.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> x = jnp.array([[[1.0, -1.0]], [[-1.0, -2.0]]])  # 2 shards, 1 example
        >>> per_shard = lambda x: dg.merge_across(dg.update(dg.init(2), x), "i")
        >>> jax.vmap(per_shard, axis_name="i")(x).positive_count.tolist()
        [[1, 0], [1, 0]]
    """
    if isinstance(state, Mapping):
        return {name: merge_across(s, axis_name) for name, s in state.items()}
    if isinstance(state, ScoreState):  # sums and counts: psum each
        return ScoreState(*(lax.psum(x, axis_name) for x in state))
    if not _is_state(state):
        raise TypeError("merge_across: state must be a UnitState from init().")
    dtype = state.mean.dtype
    n = state.count.astype(dtype)
    total = lax.psum(n, axis_name)
    safe = jnp.maximum(total, 1)
    mean = lax.psum(n * state.mean, axis_name) / safe
    m2 = lax.psum(state.m2 + n * jnp.square(state.mean - mean), axis_name)
    return UnitState(
        count=lax.psum(state.count, axis_name),
        positive_count=lax.psum(state.positive_count, axis_name),
        nan_count=lax.psum(state.nan_count, axis_name),
        mean=mean.astype(dtype),
        m2=m2.astype(dtype),
        maximum=lax.pmax(state.maximum, axis_name),
    )


def _result_one(state: UnitState, rare_threshold: float) -> LayerStats:
    units = state.positive_count.shape[0]
    dtype = state.mean.dtype
    n = state.count.astype(dtype)
    seen = state.count > 0
    nan = jnp.asarray(jnp.nan, dtype)
    pos = state.positive_count.reshape(units)
    rate = jnp.where(seen, pos.astype(dtype) / jnp.maximum(n, 1), nan)
    unit_mean = jnp.where(seen, state.mean.reshape(units), nan)
    unit_var = jnp.where(seen, state.m2.reshape(units) / jnp.maximum(n, 1), nan)
    nans = state.nan_count.reshape(units)
    dead = (pos == 0) & (nans == 0) & seen
    rare = (rate < rare_threshold) & seen
    layer_mean = jnp.mean(unit_mean)
    layer_var = jnp.mean(unit_var + jnp.square(unit_mean - layer_mean))
    frac = lambda b: jnp.where(seen, jnp.mean(b.astype(dtype)), nan)
    return LayerStats(
        units=units,
        count=state.count,
        dead_fraction=frac(dead),
        rarely_active_fraction=frac(rare),
        nan_fraction=frac(nans > 0),
        mean_active_rate=jnp.mean(rate),
        mean=layer_mean,
        std=jnp.sqrt(layer_var),
        unit_active_rate=rate,
        unit_mean=unit_mean,
        unit_std=jnp.sqrt(unit_var),
        unit_max=state.maximum.reshape(units),
        dead=dead,
    )


def result(state: Any, *, rare_threshold: float = 0.01) -> Any:
    r"""The per-layer report of accumulated statistics.

    A unit is *dead* if its pre-activation was $\le 0$ on every example
    seen (for leaky units: "never positive"), *rarely active* if it was
    positive on fewer than `rare_threshold` of the examples (dead units
    included).

    Args:
        state: a [UnitState][leakyjax.diagnostics.UnitState] or a dict of them.
        rare_threshold: the active-rate threshold below which a unit counts as
            rarely active; default 0.01 (1% of examples).

    Returns:
        A [LayerStats][leakyjax.diagnostics.LayerStats] (or a dict `{layer name: LayerStats}`). Works
        under `jax.jit` (`rare_threshold` may be traced).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> x = jnp.array([[1.0, -1.0], [-1.0, -1.0], [-1.0, 2.0], [-1.0, -5.0]])
        >>> stats = dg.result(dg.update(dg.init(2), x), rare_threshold=0.3)
        >>> stats.unit_active_rate.tolist(), float(stats.rarely_active_fraction)
        ([0.25, 0.25], 1.0)
    """
    if isinstance(state, Mapping):
        return {
            name: result(s, rare_threshold=rare_threshold) for name, s in state.items()
        }
    if not _is_state(state):
        raise TypeError(
            f"result: state must be a UnitState from init(), got "
            f"{type(state).__name__}."
        )
    if not isinstance(rare_threshold, jax.core.Tracer):
        r = float(np.asarray(rare_threshold))
        if not 0.0 <= r <= 1.0:
            raise ValueError(
                f"result: rare_threshold must be in [0, 1] (a fraction of "
                f"examples), got {rare_threshold!r}."
            )
    stats = _result_jit(state, rare_threshold)
    return stats._replace(units=state.positive_count.shape[0])


@jax.jit
def _result_jit(state: UnitState, rare_threshold: Any) -> LayerStats:
    return _result_one(state, rare_threshold)
