"""Input and parameter checks shared by the activation functions (jax only).

`float_input`-style checks turn bad input into errors that name the function,
the argument and the fix; `_param` casts a parameter to the input's dtype and
takes every decision on that cast value (a float16 slope of `1e-8` is the
slope 0 it becomes). Small concrete parameters are kept as cached device
arrays so that an eager call transfers nothing.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

Array = jax.Array
ArrayLike = Any  # jax.typing.ArrayLike, kept loose for older jax versions

_FLOATS = frozenset(
    np.dtype(d) for d in (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64)
)
_MAX = {d: float(jnp.finfo(d).max) for d in _FLOATS}
_Tracer = jax.core.Tracer
try:  # the class of every concrete jax array: an exact type test is the fastest
    from jax._src.array import ArrayImpl as _ArrayImpl
except ImportError:  # pragma: no cover - a jax that moved it: the general path
    _ArrayImpl = None
_HALF = frozenset(np.dtype(d) for d in (jnp.bfloat16, jnp.float16))


def _float_input(x: ArrayLike, fn: str) -> Array:
    """Returns `x` as an array of a float dtype, or raises TypeError."""
    dtype = getattr(x, "dtype", None)
    if dtype in _FLOATS:  # fast paths: jnp.asarray alone costs microseconds
        if isinstance(x, jax.Array):  # also a tracer
            return x
        if isinstance(x, np.ndarray):
            return jnp.asarray(x)
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{fn}: x must be a floating-point array, got a bool.")
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return jnp.asarray(x, dtype=float)  # a Python scalar: jax's default float
    if x is None or isinstance(x, (str, bytes, complex)) or dtype is None:
        try:
            x = jnp.asarray(x)
        except (TypeError, ValueError):
            raise TypeError(
                f"{fn}: x must be a floating-point array, got {type(x).__name__} "
                f"{x!r:.60}. Pass a jax or numpy array, e.g. {fn}(jnp.asarray(x))."
            ) from None
        dtype = x.dtype
    if np.dtype(dtype) not in _FLOATS:
        raise TypeError(
            f"{fn}: x must be a floating-point array (float16, bfloat16, float32 or "
            f"float64), got dtype {dtype}. Cast it first, e.g. "
            f"{fn}(x.astype(jnp.float32))."
        )
    return jnp.asarray(x)


def _bad_param_type(value: Any, name: str, fn: str) -> TypeError:
    what = f"dtype {value.dtype}" if hasattr(value, "dtype") else type(value).__name__
    return TypeError(
        f"{fn}: {name} must be a real number or a real floating-point array, got "
        f"{what}. Pass a Python float or a float array (complex, bool and "
        "non-numeric values are not parameters)."
    )


def _real_dtype(dtype: Any) -> bool:
    d = np.dtype(dtype)
    return d in _FLOATS or d.kind in "iu"


def _param(
    value: ArrayLike,
    x: Array,
    name: str,
    fn: str,
    *,
    positive: bool = False,
) -> tuple[Any, np.ndarray | np.floating | None]:
    """Validates a parameter and casts it to `x.dtype`.

    Returns `(a, cast)`: `a` is the parameter in `x.dtype` with `x.ndim`
    dimensions (size-1 leading axes added, so per-channel parameters work under
    `jax_numpy_rank_promotion="raise"`) -- a numpy constant when the value is
    concrete, else a traced array -- and `cast` is the cast value as float64
    numpy (None when traced). Checks are made on the cast value.
    """
    dt = x.dtype
    if type(value) is float or type(value) is int:  # the common case, fast
        if not math.isfinite(value):
            raise ValueError(f"{fn}: {name} must be finite, got {value!r}.")
        if abs(value) > _MAX[dt]:
            with np.errstate(over="ignore"):
                a = dt.type(value)
            if not np.isfinite(a):
                raise ValueError(
                    f"{fn}: {name}={value!r} overflows {dt} (the dtype of x, to "
                    f"which parameters are cast); its largest value is {_MAX[dt]:.6g}."
                )
        else:
            a = dt.type(value)
        c = float(a)
        if positive and not c > 0:
            raise _not_positive(value, c, name, fn, dt)
        return a, np.float64(c)
    if type(value) is _ArrayImpl and _array_param_ok(value.dtype, value.shape, x.shape):
        return value, None  # a concrete device array, checked: see below
    if isinstance(value, (bool, np.bool_, complex, str, bytes)) or value is None:
        raise _bad_param_type(value, name, fn)
    if isinstance(value, _Tracer):
        if not _real_dtype(value.dtype):
            raise _bad_param_type(value, name, fn)
        _check_broadcast(np.shape(value), x, name, fn)
        a = lax.convert_element_type(value, dt)
        return _expand(a, x.ndim), None
    if isinstance(value, jax.Array):
        # A concrete device array (an nnx or equinox PReLU's slope outside jit):
        # its shape and dtype are checked here, on the host; its values are not
        # (reading them would copy the array to the host on every call), and it
        # is cast inside the compiled program (`_cast`), as a traced one is.
        if not _real_dtype(value.dtype):
            raise _bad_param_type(value, name, fn)
        _check_broadcast(value.shape, x, name, fn)
        return value, None
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        raise _bad_param_type(value, name, fn) from None
    if not _real_dtype(arr.dtype):
        raise _bad_param_type(value, name, fn)
    _check_broadcast(arr.shape, x, name, fn)
    f64 = arr.astype(np.float64)
    if not np.all(np.isfinite(f64)):
        raise ValueError(f"{fn}: {name} must be finite, got {value!r}.")
    with np.errstate(over="ignore"):
        a = f64.astype(dt)
    c = a.astype(np.float64)
    if not np.all(np.isfinite(c)):
        raise ValueError(
            f"{fn}: {name} overflows {dt} (the dtype of x, to which parameters "
            f"are cast); its largest value is {_MAX[dt]:.6g}, got {value!r}."
        )
    if positive and not np.all(c > 0):
        raise _not_positive(value, c, name, fn, dt)
    return _expand(a, x.ndim), c


def _cast(a: Any, x: Array) -> Any:
    """A parameter from `_param` in `x`'s dtype with `x.ndim` dimensions:
    a no-op for what `_param` already cast; the cast of a device array, inside
    the program that uses it."""
    if getattr(a, "dtype", x.dtype) != x.dtype:
        a = lax.convert_element_type(a, x.dtype)
    return _expand(a, x.ndim)


def _not_positive(value, cast, name, fn, dt) -> ValueError:
    if np.all(np.asarray(value, np.float64) > 0):
        return ValueError(
            f"{fn}: {name}={value!r} rounds to 0 in {dt} (the dtype of x, to which "
            f"parameters are cast); it must be > 0 there. Use a larger {name} or "
            "a wider dtype."
        )
    return ValueError(f"{fn}: {name} must be > 0, got {value!r}.")


def _broadcasts(shape: tuple, x_shape: tuple) -> bool:
    """Whether a parameter of `shape` broadcasts to `x_shape` without adding
    axes to `x` (no implicit rank promotion)."""
    return len(shape) <= len(x_shape) and all(
        s in (1, d) for s, d in zip(shape[::-1], x_shape[::-1])
    )


def _check_broadcast(shape: tuple, x: Array, name: str, fn: str) -> None:
    if _broadcasts(tuple(shape), x.shape):
        return
    raise ValueError(
        f"{fn}: {name} of shape {tuple(shape)} does not broadcast to x of shape "
        f"{x.shape}. Give a scalar, or an array whose shape broadcasts to "
        f"x.shape (e.g. shape ({x.shape[-1] if x.ndim else 1},) for one value "
        "per channel on the last axis)."
    )


@functools.lru_cache(maxsize=256)
def _array_param_ok(dtype: Any, shape: tuple, x_shape: tuple) -> bool:
    """Whether a concrete device-array parameter passes the host-side checks
    (a real dtype, a shape that broadcasts to `x`'s), once per combination: an
    eager call repeats them. False: the general path names the error."""
    try:
        real = _real_dtype(dtype)
    except TypeError:
        return False
    return real and _broadcasts(shape, x_shape)


def _expand(a: Any, ndim: int) -> Any:
    """`a` with size-1 leading axes up to `ndim` (no implicit rank promotion)."""
    if a.ndim in (0, ndim):
        return a
    return a.reshape((1,) * (ndim - a.ndim) + tuple(a.shape))


@functools.lru_cache(maxsize=256)
def _device_constant(data: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> Array:
    return jnp.asarray(np.frombuffer(data, dtype=dtype).reshape(shape))


def _on_device(a: Any) -> Any:
    """A small concrete parameter as a cached device array (an eager call then
    transfers nothing: a numpy argument costs a jitted call more than the call)."""
    if isinstance(a, (np.ndarray, np.generic)) and a.size <= 64:
        return _device_constant(a.tobytes(), a.dtype, a.shape)
    return a


def _eager(*args: Any) -> bool:
    """True when no argument is traced: call the cached jitted program."""
    return not any(isinstance(a, _Tracer) for a in args)


def _is_zero(t: Any) -> bool:
    return isinstance(t, SymbolicZero)


def _zeros(t: Any) -> Array:
    return jnp.zeros(t.shape, t.dtype) if _is_zero(t) else t
