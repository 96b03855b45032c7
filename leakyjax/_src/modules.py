"""What the linen, nnx and equinox modules share (jax only, no framework import).

* `apply_entry`: a named stateless module (`LeakyReLU`, `ELU`, ...) is
  its table entry (the class attribute `_entry`) plus attributes named as the entry's parameters; this calls
  the entry's function with them.
* `resolve`: the function of a generic `Activation` (a registry spec
  or a callable).
* `factory_args`: what `get(spec)` builds in each API -- the named
  module of the entry with the spec's parameters as attributes, or the generic
  `Activation` of the spec.
* the PReLU parameter checks (count, dtype, initial value, shape).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from leakyjax._src import registry as _registry
from leakyjax._src import table as _table

Array = jax.Array


def apply_entry(module: Any, x: Array) -> Array:
    """Applies `module`'s table entry (its class attribute `_entry`)."""
    e = _table.entry(module._entry)
    kwargs = {p.name: getattr(module, p.module_name) for p in e.params}
    return e.function(x, **kwargs)


def resolve(function: str | Callable[[Array], Array], module: str) -> Callable:
    """The callable of a generic Activation: a spec string or a function."""
    if isinstance(function, str):
        return _registry.get(function)
    if not callable(function):
        raise TypeError(
            f"{module}: function must be a registry spec such as 'gelu' or a "
            f"callable, got {function!r}."
        )
    return function


def named_modules(*classes: type) -> dict[str, type]:
    """`{entry name: class}` of an API's named modules."""
    return {cls._entry: cls for cls in classes}


def factory_args(
    spec: str | _registry.Spec, named: Mapping[str, type], generic: type
) -> tuple[type, dict[str, Any]]:
    """The class and keyword arguments `get(spec)` instantiates.

    The entry's named module when the API has one (the spec's parameters under
    their attribute names), else `generic(function=<canonical spec>)`.
    """
    parsed = spec if isinstance(spec, _registry.Spec) else _registry.parse(spec)
    cls = named.get(parsed.name)
    if cls is None:
        return generic, {"function": str(parsed)}
    e = _table.entry(parsed.name)
    return cls, {p.module_name: parsed.kwargs[p.name] for p in e.params}


# --------------------------------------------------------------------------- #
# PReLU parameters
# --------------------------------------------------------------------------- #
def check_num_parameters(num_parameters: Any, module: str) -> int:
    """Validates PReLU's `num_parameters` (1 or the channel count)."""
    if isinstance(num_parameters, bool) or not isinstance(
        num_parameters, (int, np.integer)
    ):
        raise TypeError(
            f"{module}: num_parameters must be an int (1 for one shared slope, C "
            f"for one slope per channel), got {num_parameters!r}."
        )
    if num_parameters < 1:
        raise ValueError(
            f"{module}: num_parameters must be >= 1 (1 for one shared slope, C "
            f"for one per channel), got {num_parameters}."
        )
    return int(num_parameters)


def check_param_dtype(dtype: Any, module: str, field: str = "param_dtype") -> Any:
    """Validates the dtype of PReLU's slope: a floating dtype (the slope learns).

    An integer slope would start at `int(0.25) == 0` (a ReLU) and never move:
    a `TypeError` naming `field` instead.
    """
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"{module}: {field} must be a floating dtype such as jnp.float32, got "
            f"{dtype!r}."
        ) from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(
            f"{module}: {field}={dt.name} is not a floating dtype; the slope is "
            f"learned, and a {dt.name} slope starts at 0 (a ReLU) and never "
            f"changes. Use {field}=jnp.float32 (or bfloat16, float16)."
        )
    return dtype


def check_slope_init(value: Any, module: str) -> Any:
    """Validates PReLU's `negative_slope_init`: a finite real number (or
    array of them); traced values pass unchecked."""
    if isinstance(value, jax.core.Tracer):
        return value
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        arr = None
    if (
        isinstance(value, (bool, np.bool_))
        or arr is None
        or arr.dtype.kind not in "fiu"
    ):
        raise TypeError(
            f"{module}: negative_slope_init must be a real number (the initial "
            f"slope; default 0.25), got {value!r}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            f"{module}: negative_slope_init must be finite, got {value!r}; use a "
            "number such as 0.25 (the default)."
        )
    return value


def slope_shape(num_parameters: int) -> tuple[int, ...]:
    """The shape of the slope parameter: () shared, (C,) per channel."""
    return () if num_parameters == 1 else (num_parameters,)


def slope_for(
    slope: Array, x: Array, num_parameters: int, axis: int, module: str
) -> Array:
    """Checks the slope parameter against `x` and reshapes it to broadcast."""
    expected = slope_shape(num_parameters)
    if tuple(jnp.shape(slope)) != expected:
        raise ValueError(
            f"{module}: the negative_slope parameter has shape "
            f"{tuple(jnp.shape(slope))}, expected {expected} for "
            f"num_parameters={num_parameters} (shape () for one shared slope, "
            "(C,) for one per channel). Re-initialise the module or fix the "
            "parameter."
        )
    if num_parameters == 1:
        return slope
    ndim = jnp.ndim(x)
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{module}: axis={axis} is out of range for an input of shape "
            f"{jnp.shape(x)}."
        )
    ax = axis % ndim
    if x.shape[ax] != num_parameters:
        raise ValueError(
            f"{module}: num_parameters={num_parameters} but the input has "
            f"{x.shape[ax]} channels on axis {axis} (shape {x.shape}). Set "
            f"num_parameters={x.shape[ax]}, or pick the feature axis with axis=."
        )
    shape = [1] * ndim
    shape[ax] = num_parameters
    return jnp.reshape(slope, shape)


def check_rrelu(lower: Any, upper: Any, convention: str) -> None:
    """Lets [`leakyjax.rrelu`][] check its bounds at construction (no compile)."""
    e = _table.entry("rrelu")
    jax.eval_shape(
        e.bind(lower=lower, upper=upper, convention=convention),
        jax.ShapeDtypeStruct((1,), jnp.float32),
    )
