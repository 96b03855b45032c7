r"""Dying-unit diagnostics: dead and rarely-active units per layer, inside jit.

Definitions
-----------
A *unit* is one channel on the feature axis of a layer's pre-activations: one
neuron of a Dense layer (shape ``(B, F)``), one channel of a convolution (shapes
``(B, H, W, C)`` or ``(B, L, C)``). Every other axis is reduced, so for a
convolution every spatial position of every example counts as one *example* of
its channel (a channel is dead only if it is non-positive at every position of
every image).

A unit is **dead** on a data set if its pre-activation is :math:`\le 0` for every
example seen: a ReLU unit then outputs 0 everywhere and receives no gradient,
and it stays dead unless something else moves its inputs. For leaky units
(leaky_relu, PReLU, RReLU, ELU, ...) the same "never positive" statistic is
reported: such a unit still passes a gradient (the slope) and can recover, which
is the point of the leaky family. A unit is **rarely active** if it is positive
on fewer than ``rare_threshold`` (default 1%) of the examples; dead units are
rarely active too, so ``rarely_active_fraction >= dead_fraction``.

The statistics are streaming: :func:`init` a :class:`UnitState`, :func:`update`
it batch by batch (inside :func:`jax.jit` or :func:`jax.lax.scan` if you like),
:func:`merge` states from different batches or devices, and read the result
with :func:`result`. Counts are exact integers (int32: at most
:math:`2^{31}-1` examples per unit), so dead and rarely-active fractions are
identical however the data is split into batches, jitted or not. Means and
standard deviations use Chan et al.'s parallel update (numerically stable) in
float32 (or the dtype given to :func:`init`); they agree across batchings to
float rounding.

All functions also take a mapping ``{layer name: ...}`` in place of a single
state or array, for many layers at once.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = jax.Array

__all__ = [
    "UnitState",
    "LayerStats",
    "LeafGradientStats",
    "GradientStats",
    "init",
    "update",
    "result",
    "merge",
    "merge_across",
    "dead_units",
    "gradient_stats",
    "format_report",
    "format_gradient_stats",
]


# --------------------------------------------------------------------------- #
# Results
# --------------------------------------------------------------------------- #
class UnitState(NamedTuple):
    """Streaming per-unit statistics of one layer's pre-activations.

    The arrays have the *layout shape* ``(units,) + (1,) * (k - 1)`` for a feature
    axis ``-k``: the feature axis is read back from the layout, so the state is a
    plain pytree of arrays (a ``lax.scan`` carry, a jit argument) and
    :func:`update` needs no options.

    Attributes:
        count: ``()`` int32, the number of examples seen (the same for every unit).
        positive_count: int32, per unit, the number of examples with
            pre-activation ``> 0``.
        nan_count: int32, per unit, the number of NaN pre-activations (NaN is
            neither positive nor ``<= 0``: a unit that saw one is not dead).
        mean: per unit, the running mean of the pre-activation.
        m2: per unit, the running sum of squared deviations from the mean.
        maximum: per unit, the largest pre-activation seen (``-inf`` at first).
    """

    # A field named count shadows tuple.count on purpose (public API, as in the docs).
    count: Array  # pyright: ignore[reportIncompatibleMethodOverride]
    positive_count: Array
    nan_count: Array
    mean: Array
    m2: Array
    maximum: Array


class LayerStats(NamedTuple):
    """The report for one layer, from :func:`result`.

    Fractions are over units; rates over examples. All are ``nan`` when no
    example has been seen.

    Attributes:
        units: number of units (channels on the feature axis).
        count: number of examples seen per unit.
        dead_fraction: fraction of units never positive on any example.
        rarely_active_fraction: fraction of units positive on fewer than
            ``rare_threshold`` of the examples (dead units included).
        nan_fraction: fraction of units with a NaN pre-activation (a diverged
            model; such units are not counted as dead).
        mean_active_rate: mean over units of the fraction of examples on which
            the unit is positive.
        mean: mean of the pre-activation over all units and examples.
        std: standard deviation (population, ``ddof=0``) over all units and
            examples.
        unit_active_rate: ``(units,)`` the fraction of examples on which each
            unit is positive.
        unit_mean: ``(units,)`` per-unit mean pre-activation.
        unit_std: ``(units,)`` per-unit standard deviation (``ddof=0``).
        unit_max: ``(units,)`` per-unit maximum pre-activation; a unit is dead
            exactly when this is ``<= 0``.
        dead: ``(units,)`` bool, which units are dead.
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


class LeafGradientStats(NamedTuple):
    """Gradient statistics of one parameter array (or one layer's arrays).

    Attributes:
        norm: the L2 norm of the gradient entries.
        zero_fraction: the fraction of entries exactly equal to 0.
        max_abs: the largest absolute entry.
        size: the number of entries.
    """

    norm: Array
    zero_fraction: Array
    max_abs: Array
    size: Any


class GradientStats(NamedTuple):
    r"""Gradient-norm statistics of a gradient pytree, from :func:`gradient_stats`.

    Attributes:
        global_norm: :math:`\sqrt{\sum_\text{leaves} \lVert g \rVert^2}`, as
            :func:`optax.global_norm`.
        zero_fraction: fraction of all gradient entries exactly equal to 0.
        leaves: ``{"Dense_0/kernel": LeafGradientStats, ...}``, one per array.
        layers: ``{"Dense_0": LeafGradientStats, ...}``, the arrays grouped by
            their parent path (a layer's kernel and bias together).
    """

    global_norm: Array
    zero_fraction: Array
    leaves: dict
    layers: dict


# --------------------------------------------------------------------------- #
# Streaming accumulator
# --------------------------------------------------------------------------- #
def _is_state(x: Any) -> bool:
    return isinstance(x, UnitState)


def _normalize_axis(feature_axis: Any, ndim: int | None, where: str) -> int:
    """Returns the feature axis as a negative int ``-k``."""
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
        spec: the number of units (an int; ``feature_axis`` must then be
            negative), the shape of the pre-activations (a tuple of ints), an
            example array or :class:`jax.ShapeDtypeStruct`, or a mapping
            ``{layer name: spec}`` for many layers (e.g.
            ``jax.eval_shape(fn, batch)``).
        feature_axis: the axis that indexes units; every other axis is reduced.
            ``-1`` (default) for Dense ``(B, F)`` and channels-last convolutions
            ``(B, H, W, C)``; ``1`` for NCHW. With a mapping, one int for all
            layers or a mapping ``{layer name: int}``.
        dtype: float dtype of the running mean and variance; default float32
            (float64 for float64 example arrays).

    Returns:
        A :class:`UnitState` (or a dict of them) with zero counts.

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
    """The statistics of one batch alone, in the layout of ``state``."""
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


def _check_same_layout(a: UnitState, b: UnitState, where: str) -> None:
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
        state: a :class:`UnitState` from :func:`init` (or a dict of them).
        pre_activations: float array whose feature axis matches the state (any
            number of leading axes; all are reduced), or a mapping
            ``{layer name: array}`` with the same names as ``state``.
        mask: optional bool array over the leading non-feature axes (shape
            ``(B,)`` flags each example, e.g. padding in a fixed-size last
            batch); ``False`` entries are ignored. With a mapping of layers, the
            same mask is used for every layer.

    Returns:
        The updated state; jit- and ``lax.scan``-compatible (same pytree
        structure and dtypes as ``state``).

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

    ``merge(update(s, x1), update(s, x2))`` equals ``update(update(s, x1), x2)``
    (counts exactly, moments to rounding): use it for shards computed on
    different devices, hosts or in parallel scans.

    Args:
        a: a :class:`UnitState` or a dict of them.
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
    if not (_is_state(a) and _is_state(b)):
        raise TypeError("merge: a and b must be UnitState values from init().")
    _check_same_layout(a, b, "merge")
    return jax.jit(_merge_one)(a, b)


def merge_across(state: Any, axis_name: Any) -> Any:
    """Merges the statistics of every device along a named mapped axis.

    Use inside :func:`jax.shard_map`, :func:`jax.pmap` or a :func:`jax.vmap`
    with ``axis_name``: each member ends up with the statistics of all the data.
    Counts are summed (``psum``), maxima ``pmax``-ed, and means and variances
    combined with the parallel formula.

    Args:
        state: a :class:`UnitState` or a dict of them, one per device.
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

    A unit is *dead* if its pre-activation was :math:`\le 0` on every example
    seen (for leaky units: "never positive"), *rarely active* if it was
    positive on fewer than ``rare_threshold`` of the examples (dead units
    included).

    Args:
        state: a :class:`UnitState` or a dict of them.
        rare_threshold: the active-rate threshold below which a unit counts as
            rarely active; default 0.01 (1% of examples).

    Returns:
        A :class:`LayerStats` (or a dict ``{layer name: LayerStats}``). Works
        under :func:`jax.jit` (``rare_threshold`` may be traced).

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


# --------------------------------------------------------------------------- #
# Running functions and models over batches
# --------------------------------------------------------------------------- #
def _as_layer_dict(acts: Any, where: str) -> dict:
    """A function's pre-activations as ``{name: array}``."""
    if isinstance(acts, Mapping):
        return dict(acts)
    if isinstance(acts, (tuple, list)):
        return {str(i): a for i, a in enumerate(acts)}
    if hasattr(acts, "shape"):
        return {"pre_activation": acts}
    raise TypeError(
        f"{where}: the function must return its pre-activations as a mapping "
        f"{{layer name: array}}, a sequence of arrays or one array; got "
        f"{type(acts).__name__}."
    )


def _model_kind(obj: Any) -> str:
    """'linen', 'nnx', 'equinox' or 'function' -- without importing flax/equinox."""
    if sys.modules.get("leakyjax._src.equinox") is not None:  # leakyjax.equinox used
        import equinox

        if isinstance(obj, equinox.Module):
            return "equinox"
    if sys.modules.get("flax") is not None:  # a flax model needs flax imported
        try:
            from flax import linen, nnx
        except ImportError:  # pragma: no cover - a broken flax install
            return "function"
        if isinstance(obj, linen.Module):
            return "linen"
        if isinstance(obj, nnx.Module):
            return "nnx"
    return "function"


def _progress(batches: Iterable, enabled: bool, desc: str) -> Iterable:
    if not enabled:
        return batches
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the [train] extra
        return batches
    return tqdm(batches, desc=desc, leave=False)


_STEP_CACHE: dict = {}
_STEP_CACHE_SIZE = 32


def _cached_jit(key: Any, kwargs: Mapping, step: Any) -> Any:
    """The jitted step for a model or function seen before, so that calling
    :func:`dead_units` every few training steps compiles once per batch shape."""
    try:
        full_key = (key, tuple(sorted(kwargs.items())))
        hash(full_key)
    except TypeError:  # unhashable model or keyword values: no caching
        return jax.jit(step)
    if full_key not in _STEP_CACHE:
        if len(_STEP_CACHE) >= _STEP_CACHE_SIZE:
            _STEP_CACHE.pop(next(iter(_STEP_CACHE)))
        _STEP_CACHE[full_key] = jax.jit(step)
    return _STEP_CACHE[full_key]


def dead_units(
    fn: Any,
    batches: Iterable,
    *,
    variables: Any = None,
    feature_axis: Any = -1,
    rare_threshold: float = 0.01,
    jit: bool = True,
    progress: bool = False,
    return_state: bool = False,
    **apply_kwargs: Any,
) -> Any:
    r"""Runs a function or a Flax model over batches and reports every layer.

    Three kinds of ``fn``:

    * a plain function ``fn(batch)`` returning its pre-activations explicitly:
      a mapping ``{layer name: array}``, a sequence of arrays (named ``"0"``,
      ``"1"``, ...) or one array (named ``"pre_activation"``);
    * a ``flax.linen`` module built from leakyjax activation modules, with
      ``variables``: it is applied with ``mutable=["intermediates"]`` and every
      sown ``pre_activation`` is collected (see :func:`capture_linen`);
    * a ``flax.nnx`` module: ``record_pre_activation`` is switched on for every
      leakyjax activation module while it runs (see :func:`capture_nnx`). The
      model's state is updated as by calling it (call ``model.eval()`` first
      for inference-mode statistics);
    * an ``equinox`` module built from :mod:`leakyjax.equinox` activation
      modules, taking one example as equinox models do: it is mapped over the
      batch's leading axis and each activation's input is recorded (see
      :func:`leakyjax.equinox.capture`; use ``equinox.nn.inference_mode``
      first for RReLU's evaluation slope, or pass ``key=``).

    Layers are named by module path (``"Dense_0/LeakyReLU_0"``); a module
    called several times gives ``path[0]``, ``path[1]``, ....

    Args:
        fn: the function or model.
        batches: an iterable of inputs, each passed as the single argument
            (drop labels with ``(x for x, _ in loader)``).
        variables: the linen variables (``model.init(...)``); only for linen.
        feature_axis: the unit axis, an int or ``{layer name: int}``.
        rare_threshold: see :func:`result`.
        jit: compile the per-batch step (default). The compiled step is
            cached per function / model (and per nnx graph), so calling
            ``dead_units`` again during training does not recompile; batches
            of a new shape do.
        progress: show a tqdm progress bar.
        return_state: return the :class:`UnitState` dict instead of the report.
        **apply_kwargs: passed on to ``model.apply`` (linen, e.g. ``rngs``,
            ``method``) or to the nnx model call.

    Returns:
        ``{layer name: LayerStats}`` (or ``{layer name: UnitState}``).

    Raises:
        ValueError: if ``batches`` is empty, or no pre-activation is found.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> w = jnp.array([[1.0, -1.0, 0.5]])
        >>> b = jnp.array([0.0, 0.0, -100.0])  # unit 2 can never be positive
        >>> fn = lambda x: {"hidden": x @ w + b}
        >>> batches = [jnp.linspace(-1, 1, 8).reshape(8, 1)] * 3
        >>> report = dg.dead_units(fn, batches)
        >>> report["hidden"].dead.tolist(), int(report["hidden"].count)
        ([False, False, True], 24)
    """
    kind = _model_kind(fn)
    if kind != "linen" and variables is not None:
        raise TypeError(
            "dead_units: variables are only for flax.linen modules; a plain "
            "function should close over its parameters."
        )
    finish = lambda carry: None
    if kind == "linen":
        if variables is None:
            raise TypeError(
                "dead_units: a flax.linen module needs its variables: "
                "dead_units(model, batches, variables=model.init(key, x))."
            )
        from leakyjax._src.capture import _linen_pure

        pure, carry = _linen_pure(fn, variables, apply_kwargs)
        cache_key: Any = ("linen", fn)
    elif kind == "nnx":
        from leakyjax._src.capture import _nnx_pure

        pure, carry, finish, graphdef = _nnx_pure(fn, apply_kwargs)
        cache_key = ("nnx", graphdef)
    elif kind == "equinox":
        from leakyjax._src.equinox import _dead_units_pure

        pure, carry, cache_key = _dead_units_pure(fn, apply_kwargs)
    else:
        if apply_kwargs:
            raise TypeError(
                f"dead_units: unexpected keyword arguments {sorted(apply_kwargs)} "
                "for a plain function (they are passed to Flax models only)."
            )

        def pure(carry, batch):
            return _as_layer_dict(fn(batch), "dead_units"), carry

        carry = None
        cache_key = ("function", fn)

    def step(state, carry, batch):
        acts, carry = pure(carry, batch)
        return update(state, acts), carry

    step_fn = _cached_jit(cache_key, apply_kwargs, step) if jit else step
    state = None
    try:
        for batch in _progress(batches, progress, "dead units"):
            if state is None:
                shapes = jax.eval_shape(lambda c, b: pure(c, b)[0], carry, batch)
                if not shapes:
                    raise ValueError(
                        "dead_units: no pre-activations found. For Flax models use "
                        "leakyjax activation modules (leakyjax.linen / "
                        "leakyjax.nnx); a plain function must return them."
                    )
                state = init(shapes, feature_axis=feature_axis)
            state, carry = step_fn(state, carry, batch)
    finally:
        finish(carry)
    if state is None:
        raise ValueError("dead_units: batches is empty; give at least one batch.")
    if return_state:
        return state
    return result(state, rare_threshold=rare_threshold)


# --------------------------------------------------------------------------- #
# Gradient statistics
# --------------------------------------------------------------------------- #
def _key_name(k: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)  # pragma: no cover


def _path_name(path: Sequence[Any]) -> str:
    parts = [_key_name(k) for k in path]
    # nnx.Variable leaves are reached through their ``value`` attribute.
    if len(parts) > 1 and parts[-1] in ("value", "raw_value"):
        parts = parts[:-1]
    return "/".join(parts) if parts else "(root)"


def _leaf_stats(leaves: Sequence[Array]) -> LeafGradientStats:
    sq = sum(jnp.sum(jnp.square(g.astype(jnp.float32))) for g in leaves)
    zeros = sum(jnp.sum(g == 0) for g in leaves)
    size = sum(int(g.size) for g in leaves)
    max_abs = jnp.max(
        jnp.stack([jnp.max(jnp.abs(g), initial=0).astype(jnp.float32) for g in leaves])
    )
    return LeafGradientStats(
        norm=jnp.sqrt(sq),
        zero_fraction=jnp.asarray(zeros, jnp.float32) / max(size, 1),
        max_abs=max_abs,
        size=size,
    )


def gradient_stats(grads: Any) -> GradientStats:
    r"""Norms and the fraction of exactly-zero entries of a gradient pytree.

    Dead ReLU units show up as exactly-zero gradient rows and columns of the
    adjacent weights; a collapsing global norm or a layer whose zero fraction
    grows over training is the same symptom seen from the gradients.

    Args:
        grads: a pytree of float arrays (from :func:`jax.grad`, ``nnx.grad``,
            ...). Leaves are named by their path (``"Dense_0/kernel"``).

    Returns:
        A :class:`GradientStats`: the global norm, the global zero fraction and
        :class:`LeafGradientStats` per leaf and per layer (leaves grouped by
        parent path). Works under :func:`jax.jit`.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> g = {"dense": {"kernel": jnp.array([[3.0, 0.0]]), "bias": jnp.zeros(2)}}
        >>> s = dg.gradient_stats(g)
        >>> float(s.global_norm), float(s.zero_fraction)
        (3.0, 0.75)
        >>> float(s.layers["dense"].norm), float(s.leaves["dense/bias"].norm)
        (3.0, 0.0)
    """
    flat, _ = jax.tree_util.tree_flatten_with_path(grads)
    if not flat:
        raise ValueError("gradient_stats: grads has no array leaves.")
    leaves: dict[str, list] = {}
    layers: dict[str, list] = {}
    for path, g in flat:
        g = jnp.asarray(g)
        if not jnp.issubdtype(g.dtype, jnp.inexact):
            raise TypeError(
                f"gradient_stats: leaf {_path_name(path)!r} has dtype {g.dtype}; "
                "grads must be float arrays (filter out integer state first)."
            )
        name = _path_name(path)
        leaves.setdefault(name, []).append(g)
        layer = name.rsplit("/", 1)[0] if "/" in name else "(root)"
        layers.setdefault(layer, []).append(g)
    all_leaves = [g for gs in leaves.values() for g in gs]
    total = _leaf_stats(all_leaves)
    return GradientStats(
        global_norm=total.norm,
        zero_fraction=total.zero_fraction,
        leaves={k: _leaf_stats(v) for k, v in leaves.items()},
        layers={k: _leaf_stats(v) for k, v in layers.items()},
    )


# --------------------------------------------------------------------------- #
# Text reports
# --------------------------------------------------------------------------- #
def _pct(v: Any) -> str:
    v = float(v)
    return "nan" if math.isnan(v) else f"{100 * v:.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], title: Any) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(
        c.ljust(w) if i == 0 else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths))
    )
    lines = [title] if title else []
    lines += [fmt(header), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    return "\n".join(lines)


def format_report(report: Any, *, title: str | None = None) -> str:
    """A text table of a per-layer report.

    Columns: layer, units, dead % (never positive), rarely-active % (positive on
    fewer than the threshold of examples, dead included), mean active rate, and
    the pre-activation mean and std; a "NaN %" column is added when a unit saw a
    NaN pre-activation.

    Args:
        report: ``{layer name: LayerStats}`` (from :func:`result` or
            :func:`dead_units`) or a single :class:`LayerStats`.
        title: an optional first line.

    Returns:
        The table as a string (layers in the order of the mapping).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> s = dg.update(dg.init({"h1": 2}), {"h1": jnp.array([[1.0, -1.0]])})
        >>> print(dg.format_report(dg.result(s)))
        layer  units  dead %  rarely active %  mean rate  mean   std
        -----  -----  ------  ---------------  ---------  -----  -----
        h1         2    50.0             50.0      0.500  0.000  1.000
    """
    if isinstance(report, LayerStats):
        report = {"layer": report}
    if not isinstance(report, Mapping) or not all(
        isinstance(v, LayerStats) for v in report.values()
    ):
        raise TypeError(
            "format_report: report must be a LayerStats or a mapping of layer "
            "names to LayerStats (from result() or dead_units())."
        )
    header = [
        "layer",
        "units",
        "dead %",
        "rarely active %",
        "mean rate",
        "mean",
        "std",
    ]
    rows = [
        [
            str(name),
            str(int(s.units)),
            _pct(s.dead_fraction),
            _pct(s.rarely_active_fraction),
            f"{float(s.mean_active_rate):.3f}",
            f"{float(s.mean):.3f}",
            f"{float(s.std):.3f}",
        ]
        for name, s in report.items()
    ]
    if any(float(s.nan_fraction) > 0 for s in report.values()):
        header.append("NaN %")  # a diverged model: say so instead of "dead"
        for row, s in zip(rows, report.values()):
            row.append(_pct(s.nan_fraction))
    return _table(header, rows, title)


def format_gradient_stats(stats: GradientStats, *, title: str | None = None) -> str:
    """A text table of :class:`GradientStats` per layer, with the global norm.

    Args:
        stats: from :func:`gradient_stats`.
        title: an optional first line.

    Returns:
        The table as a string.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> g = {"dense": {"kernel": jnp.array([[3.0, 0.0]]), "bias": jnp.zeros(2)}}
        >>> print(dg.format_gradient_stats(dg.gradient_stats(g)))
        layer  size  grad norm  zero %  max |g|
        -----  ----  ---------  ------  -------
        dense     4      3.000    75.0    3.000
        (all)     4      3.000    75.0    3.000
    """
    if not isinstance(stats, GradientStats):
        raise TypeError("format_gradient_stats: stats must come from gradient_stats.")
    header = ["layer", "size", "grad norm", "zero %", "max |g|"]
    row = lambda name, s: [
        name,
        str(int(s.size)),
        f"{float(s.norm):.4g}" if float(s.norm) >= 1e4 else f"{float(s.norm):.3f}",
        _pct(s.zero_fraction),
        f"{float(s.max_abs):.3f}",
    ]
    rows = [row(name, s) for name, s in stats.layers.items()]
    total_max = max((float(s.max_abs) for s in stats.layers.values()), default=0.0)
    total_size = sum(int(s.size) for s in stats.layers.values())
    rows.append(
        row(
            "(all)",
            LeafGradientStats(
                stats.global_norm,
                stats.zero_fraction,
                jnp.asarray(total_max),
                total_size,
            ),
        )
    )
    return _table(header, rows, title)
