"""Activation functions of the rectifier family, with hand-written derivatives.

How the derivatives work
------------------------
Every nonlinear function is a :func:`jax.custom_jvp`. Its JVP rule computes a
small *residual* from the primal input and calls a tangent map wrapped in
:func:`jax.checkpoint` over ``(residual, tangent, parameters)``. Forward mode
(``jax.jvp``, ``jax.jacfwd``) runs the map directly. Reverse mode linearizes
the rule: everything outside the checkpoint is primal work, and the checkpoint
makes the residual -- not anything derived from it -- the one thing saved for
the backward pass, where the map is recomputed and transposed. The maps are
ordinary jax code, so ``jax.hessian`` and jvp-of-grad work too.

The piecewise-linear family (:func:`relu`, :func:`leaky_relu`, :func:`rrelu`,
:func:`relu6`, :func:`hard_tanh`, :func:`hard_sigmoid` and the ``x``-derivative
of :func:`prelu`) needs only *which piece* ``x`` was on: its derivative takes two
values. The residual is that one bit per element, packed eight to a byte
(``uint8``) along one of the last two axes, chosen at trace time from the shape
(:func:`_pack_axis`): the second-to-last (the batch of an ``(N, C)`` layer, the
width of an NHWC image; ``ceil(N / 8) * C`` bytes) unless the last needs fewer
bytes. Along the second-to-last, a byte holds one element of eight rows and the
backward reads whole rows of bytes: on CPU its unpacking loop vectorizes, and a
``(1024, 1024)`` bfloat16 backward measured about 20% faster than along the
last axis. A long 1-D array (from ``2**16`` elements, when ``n / 8`` has a
power-of-two factor from 128 to 1024, :func:`_rows`) is differentiated as rows
``(n // w, w)`` so that it packs the same way; on CPU its backward is a
:func:`jax.lax.cond` over two identical branches, which keeps XLA's loop over
the rows (:func:`_in_own_shape`), inside a :func:`jax.lax.custom_linear_solve`
that keeps the unpacking and the product one linear operation when jax
transposes it (:func:`_diagonal`). A traced slope keeps the 1-D layout.
An array whose last two axes have at most one element each (a
scalar, a one-element vector, a ``(5, 1, 1)`` array) keeps a ``bool`` mask,
since packing cannot make it smaller there. A function of
a scalar under ``vmap`` (``equinox.nn.MLP`` applies its activation to scalars,
vmapped over the units and the batch) would be that case once per element; with
constant parameters it is applied to the whole batched array instead (a
:func:`jax.custom_batching.custom_vmap`, taken only when ``vmap`` is the
innermost transformation, see :func:`_traced`), so the bits are packed along the
units. A train step then needs the identity's memory plus ``n / 8`` bytes per
activation of ``n`` elements. The bit is exact for every parameter value
(negative, zero, > 1, traced, or one that rounds to 0 in the input's dtype).

:func:`rrelu` with a ``key`` saves the bits and the key and redraws its slopes
(the same draw) in the backward. Left alone, XLA would
hoist every redraw to the start of the step (its key is ready there) or merge
it with the forward draw, keeping full-size random bits of every layer alive;
on CPU it drops optimization barriers before scheduling, so they cannot order
it. Instead each draw takes a data dependency on the array it scales, through
zeros that XLA cannot fold. In the forward the key data is xored with
``popcount >> 6`` of one element of ``x`` (under ``vmap`` one unbatched 0 via
:func:`jax.custom_batching.custom_vmap`). In the backward each element's
threefry counter gets ``popcount >> 7`` of that element of the cotangent: an
elementwise read, fused into the op that scales the cotangent, so a cotangent
that XLA computes from a wider array (bfloat16 from a float32 dot) is not
written out for a second reader. There the array is a linear input that ordinary jax
code may not use nonlinearly, so the tangent map ``t -> D t`` is a
:func:`jax.lax.custom_linear_solve`: jax's linear function with a hand-written
(here symmetric) transpose, which may do anything inside. The redraw then
happens inside each layer's backward. The draw is ``jax.random.uniform``'s: its
threefry bits and their mapping to ``[lower, upper)``, with the hash written
out as elementwise ops (jax lowers its own on CPU to a rolled loop whose two
``uint32`` counters per element live in memory; written out, XLA fuses it into
the product that uses the slopes) and the final ``u * (upper - lower)`` and
``+ lower`` rounded one at a time, the same in every program (XLA fuses them
into one FMA in some programs and not in others: about one slope in five of
``jax.random.uniform`` on CPU is one ulp from ours). A key that is not
threefry's uses ``jax.random.uniform`` itself.
A learnable :func:`prelu` slope needs ``min(x, 0)`` for its gradient; then that
array (``where(x >= 0, 0, x)``) is the only residual, and it also gives the
``x``-derivative.

The exponential family (:func:`elu`, :func:`celu`, :func:`selu`) needs a full
array for an exact derivative. It reads the derivative from the output ``y``
(elu: ``y + alpha`` for ``y <= 0``), which the next layer's matmul usually
keeps anyway, when the parameter is concrete and in the domain where ``y``
determines the piece; otherwise from ``x``.

For bfloat16/float16 the leaky tangent is written ``t * where(m, 1, a)``
rather than ``where(m, t, a * t)`` (the same values): its transpose is one
product, where the select's is two selects and a sum, each 16-bit op rounded
through float32 on CPU (the backward was 3-4x slower than relu's).

Parameters are cast to the input's dtype first and every decision (the ``y``
rule, the checks) is taken on the cast value, so a float16 slope of ``1e-8`` is
the slope 0 it becomes. Called outside ``jit`` with concrete arrays, each
function dispatches one cached :func:`jax.jit` program (a new float parameter
value does not recompile).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

RReLUConvention = Literal["pytorch", "xu"]
"""How :func:`rrelu` draws its slopes: ``"pytorch"`` U(lower, upper), ``"xu"`` 1/U."""

Array = jax.Array
ArrayLike = Any  # jax.typing.ArrayLike, kept loose for older jax versions

__all__ = [
    "relu",
    "leaky_relu",
    "prelu",
    "rrelu",
    "relu6",
    "hard_tanh",
    "hard_sigmoid",
    "elu",
    "celu",
    "selu",
    "sigmoid",
    "tanh",
    "gelu",
    "silu",
    "softplus",
    "SELU_ALPHA",
    "SELU_SCALE",
]

#: The SELU constants of Klambauer et al. (2017), as in :func:`jax.nn.selu`.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

_FLOATS = frozenset(
    np.dtype(d) for d in (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64)
)
_MAX = {d: float(jnp.finfo(d).max) for d in _FLOATS}
_Tracer = jax.core.Tracer
try:  # private in jax; without it a scalar under vmap keeps a bool mask
    from jax._src.interpreters.batching import BatchTracer as _BatchTracer
except ImportError:  # pragma: no cover - a jax that moved it
    _BatchTracer = ()


# --------------------------------------------------------------------------- #
# Input and parameter checks
# --------------------------------------------------------------------------- #
def _float_input(x: ArrayLike, fn: str) -> Array:
    """Returns ``x`` as an array of a float dtype, or raises TypeError."""
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
    """Validates a parameter and casts it to ``x.dtype``.

    Returns ``(a, cast)``: ``a`` is the parameter in ``x.dtype`` with ``x.ndim``
    dimensions (size-1 leading axes added, so per-channel parameters work under
    ``jax_numpy_rank_promotion="raise"``) -- a numpy constant when the value is
    concrete, else a traced array -- and ``cast`` is the cast value as float64
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
    if isinstance(value, (bool, np.bool_, complex, str, bytes)) or value is None:
        raise _bad_param_type(value, name, fn)
    if isinstance(value, _Tracer):
        if not _real_dtype(value.dtype):
            raise _bad_param_type(value, name, fn)
        _check_broadcast(np.shape(value), x, name, fn)
        a = lax.convert_element_type(value, dt)
        return _expand(a, x.ndim), None
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


def _not_positive(value, cast, name, fn, dt) -> ValueError:
    if np.all(np.asarray(value, np.float64) > 0):
        return ValueError(
            f"{fn}: {name}={value!r} rounds to 0 in {dt} (the dtype of x, to which "
            f"parameters are cast); it must be > 0 there. Use a larger {name} or "
            "a wider dtype."
        )
    return ValueError(f"{fn}: {name} must be > 0, got {value!r}.")


def _check_broadcast(shape: tuple, x: Array, name: str, fn: str) -> None:
    if len(shape) <= x.ndim and all(
        s in (1, d) for s, d in zip(shape[::-1], x.shape[::-1])
    ):
        return
    raise ValueError(
        f"{fn}: {name} of shape {tuple(shape)} does not broadcast to x of shape "
        f"{x.shape}. Give a scalar, or an array whose shape broadcasts to "
        f"x.shape (e.g. shape ({x.shape[-1] if x.ndim else 1},) for one value "
        "per channel on the last axis)."
    )


def _expand(a: Any, ndim: int) -> Any:
    """``a`` with size-1 leading axes up to ``ndim`` (no implicit rank promotion)."""
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


# --------------------------------------------------------------------------- #
# The one-bit residual
# --------------------------------------------------------------------------- #
def _pack_axis(shape: tuple[int, ...]) -> int | None:
    """The axis :func:`_pack` packs along (from the end), or None for a bool mask.

    The one of the last two axes that needs fewer bytes (ties: the
    second-to-last, see the module docstring); None when packing would not
    make the residual smaller than a byte per element: an empty array, or one
    whose last two axes have at most one element each (a scalar, a vector of
    one element, ``(5, 1, 1)``).
    """
    n = math.prod(shape)
    best, axis = n, None
    for ax in (-2, -1):
        if len(shape) >= -ax:
            size = n // shape[ax] * -(-shape[ax] // 8) if shape[ax] else 0
            if size < best:
                best, axis = size, ax
    return axis


def _pack(mask: Array) -> Array:
    """The residual of a bool mask, chosen at trace time from its shape.

    Bits packed eight to a ``uint8`` along one axis (:func:`_pack_axis`; bit
    ``j`` of byte ``k`` is element ``8k + j`` of that axis), or the bool mask
    itself where packing saves nothing.
    """
    axis = _pack_axis(mask.shape)
    if axis is None:
        return mask
    ax = mask.ndim + axis
    c = mask.shape[ax]
    m = mask.astype(jnp.uint8)
    if c % 8:
        m = lax.pad(
            m, np.uint8(0), [(0, 8 - c % 8 if d == ax else 0, 0) for d in range(m.ndim)]
        )
    shape = m.shape
    m = m.reshape((*shape[:ax], shape[ax] // 8, 8, *shape[ax + 1 :]))
    shifts = lax.broadcasted_iota(jnp.uint8, m.shape, ax + 1)
    return jnp.sum(lax.shift_left(m, shifts), axis=ax + 1, dtype=jnp.uint8)


def _unpack(bits: Array, shape: tuple[int, ...]) -> Array:
    """Inverse of :func:`_pack`: the bool mask of ``shape``."""
    axis = _pack_axis(shape)
    if axis is None:
        return bits
    ax = len(shape) + axis
    full = (*bits.shape[: ax + 1], 8, *bits.shape[ax + 1 :])
    shifts = lax.broadcasted_iota(jnp.uint8, full, ax + 1)
    dims = [d for d in range(len(full)) if d != ax + 1]
    m = lax.shift_right_logical(lax.broadcast_in_dim(bits, full, dims), shifts)
    m = (m & np.uint8(1)).reshape(
        (*bits.shape[:ax], bits.shape[ax] * 8, *bits.shape[ax + 1 :])
    )
    return lax.slice_in_dim(m, 0, shape[ax], axis=ax) != 0


def _traced(f: Callable, x: Array, *params: Any) -> Array:
    """``f(x, *params)`` for a traced ``x``; a scalar ``x`` under ``vmap`` is
    given the whole batch.

    An elementwise ``f`` under ``vmap`` equals ``f`` of the batched array, but
    jax batches its derivative rule per example: for a scalar (e.g.
    ``equinox.nn.MLP``'s activation, vmapped over the units and the batch) the
    residual would be one ``bool`` per element. A
    :func:`jax.custom_batching.custom_vmap` whose rule applies ``f`` to the
    batched array lets :func:`_pack` see the last batched axis. It is taken
    only when ``vmap`` is the innermost transformation and the parameters are
    constants, so its (forward-mode only) derivative rule is never used: an
    outer ``grad`` differentiates ``f`` itself.
    """
    if (
        x.ndim == 0
        and isinstance(x, _BatchTracer)
        and getattr(x, "batch_dim", None) is not None
        and not any(isinstance(p, _Tracer) for p in params)
    ):
        whole = jax.custom_batching.custom_vmap(lambda v: f(v, *params))

        @whole.def_vmap
        def _rule(axis_size, in_batched, v):
            del axis_size, in_batched
            return _traced(f, v, *params), True

        return whole(x)
    return f(x, *params)


def _bits_first(bits: Array, x: Array) -> tuple[Array, Array]:
    """Orders the bits before the output: ``y`` is computed from the returned
    ``x``, so the input dies once ``y`` exists (else XLA may schedule the bits
    after ``y`` and keep the input alive across the end of the forward pass)."""
    return lax.optimization_barrier((bits, x))


_ROWS_MIN = 1 << 16  # below this the 1-D layout's slower loop costs little


def _rows(shape: tuple[int, ...], spec: Any = None) -> tuple[int, int] | None:
    """The 2-D view ``(n // w, w)`` a long 1-D array is differentiated in, or None.

    A 1-D array packs along its only axis, a byte holding eight neighbours; its
    backward then reads byte ``i // 8`` for element ``i``, a loop that does not
    vectorize on CPU (the 1-D rows of ``benchmarks/results/
    activations_speed_cpu.json`` against the 2-D ones). Viewed as rows of ``w``
    (a power of two, 128 to 1024, that divides ``n / 8``) it packs along the
    rows like any ``(N, C)`` array. ``spec``: the partition spec of an array
    sharded in its type (explicit mesh axes), which keeps the 1-D layout.
    """
    if len(shape) != 1 or shape[0] < _ROWS_MIN:
        return None
    if spec is not None and any(p is not None for p in spec):
        return None  # sharded in its type: keep the sharded axis as it is
    w = 1024
    while w >= 128 and shape[0] % (8 * w):
        w //= 2
    return (shape[0] // w, w) if w >= 128 else None


def _spec(x: Array) -> Any:
    """The partition spec in ``x``'s type (explicit sharding), else None."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    return getattr(sharding, "spec", None)


def _as_rows(a: Any, rows: tuple[int, int]) -> Any:
    """A parameter of a 1-D input (a scalar, shape (1,) or (n,)) in its 2-D view."""
    if np.ndim(a) == 0:
        return a
    return a.reshape((1, 1) if np.size(a) == 1 else rows)


def _in_own_shape(fn: Callable, *args: Any) -> Array:
    """``fn(*args)``, computed in the shape it has, also when reshaped after.

    XLA (CPU) folds a reshape into the loop that computes its operand and
    iterates over the reshaped (here flat) index; unpacking the bits of a row
    view then costs a division per element. A conditional keeps the result in
    its own shape: both branches are ``fn``, so the predicate (a byte of the
    first argument, which XLA cannot fold) does not matter. Other platforms,
    and a predicate batched by ``vmap`` (its two identical branches merge),
    call ``fn`` plainly. On several CPU devices with automatic sharding the
    predicate costs a one-byte all-reduce (a conditional's predicate is the
    same on every device).
    """

    def cpu(*a):
        pred = lax.index_in_dim(a[0].reshape(-1), 0, keepdims=False) != 0
        return lax.cond(pred, fn, fn, *a)

    return lax.platform_dependent(*args, cpu=cpu, default=fn)


def _diagonal(fn: Callable, bits: Array, t: Array) -> Array:
    """``fn(t)``, a diagonal linear map, as one operation for jax's transforms.

    Transposing a :func:`jax.lax.cond` splits it in two: its nonlinear part
    (unpacking the bits) becomes a conditional of its own whose result, one
    full array, is an input of the linear one. A
    :func:`jax.lax.custom_linear_solve` is jax's linear function with a given
    transpose (``fn`` itself: a diagonal map is symmetric), kept whole. Its
    ``matvec`` (the identity here, as the map may be singular: relu's zeros) is
    a placeholder jax only traces: it has no constants, so neither the JVP nor
    the transpose of the solve evaluates it. The map closes over its
    parameters; with no tangent they cannot make jax use ``matvec``.
    """
    bits = lax.stop_gradient(bits)
    return lax.custom_linear_solve(
        lambda v: v, t, lambda _, v: _in_own_shape(fn, bits, v), symmetric=True
    )


def _pwl(primal: Callable, piece: Callable, tangent: Callable) -> Callable:
    """A parameter-free piecewise-linear activation with a one-bit residual.

    ``primal(x)``; ``piece(x)``: the bool mask of the piece the derivative
    depends on; ``tangent(m, t)``: the tangent ``t * f'(x)`` from that mask.
    """

    def tangent_map(bits, t):
        return tangent(_unpack(bits, t.shape), t)

    ckpt = jax.checkpoint(tangent_map)
    ckpt_rows = jax.checkpoint(lambda bits, t: _diagonal(tangent_map, bits, t))

    @jax.custom_jvp
    def f(x):
        return primal(x)

    @f.defjvp
    def _jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        x = jnp.asarray(x)  # the primal of a Python scalar is a Python scalar
        rows = _rows(x.shape, _spec(x))
        if rows is not None:
            shape = x.shape
            bits, x2 = _bits_first(_pack(piece(x.reshape(rows))), x.reshape(rows))
            dt = ckpt_rows(bits, jnp.reshape(t, rows))
            return primal(x2).reshape(shape), dt.reshape(shape)
        bits, x = _bits_first(_pack(piece(x)), x)
        return primal(x), ckpt(bits, t)

    return f


# --------------------------------------------------------------------------- #
# The leaky rectifier (leaky_relu, prelu share it; rrelu draws its slopes)
# --------------------------------------------------------------------------- #
_HALF = frozenset(np.dtype(d) for d in (jnp.bfloat16, jnp.float16))


def _leaky_value(x, a):
    return jnp.where(x >= 0, x, a * x)


def _leaky_bits_value(x, a):
    """:func:`_leaky_value` where only the bits are saved: for bfloat16/float16
    the product ``x * where(x >= 0, 1, a)`` (the same values: ``x * 1`` is
    ``x``, also for -0.0, inf and nan), one 16-bit op where the select takes
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


def _leaky_neg_tangent(neg, tx, ta, a):
    # neg = where(x >= 0, 0, x): d/da = neg; the x-derivative's piece is neg == 0
    # (x >= 0 <=> neg == 0, also for -0.0 and nan).
    if tx is None:
        return neg * ta
    if neg.dtype in _HALF:
        return neg * ta + jnp.where(neg == 0, tx, a * tx)
    # float32/64: one select over both terms (neg * ta is 0 where neg == 0):
    # XLA (CPU) keeps one array fewer under lax.scan and in transformer blocks.
    return jnp.where(neg == 0, tx, a * tx + neg * ta)


_leaky_bits_ckpt = jax.checkpoint(_leaky_bits_tangent)
_leaky_neg_ckpt = jax.checkpoint(_leaky_neg_tangent)


def _leaky_rows_tangent(a, bits, t):
    return _diagonal(lambda b, v: _leaky_bits_tangent(b, v, a), bits, t)


@jax.custom_jvp
def _leaky(x, a):
    return _leaky_value(x, a)


def _leaky_jvp(primals, tangents):
    (x, a), (tx, ta) = primals, tangents
    x = jnp.asarray(x)
    if _is_zero(ta):  # a constant slope: the sign bit is all the backward needs
        if _is_zero(tx):
            y = _leaky_value(x, a)
            return y, jnp.zeros_like(y)
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
    y = _leaky_value(x, a)
    # A learnable slope: its gradient needs min(x, 0); that one array also
    # gives the x-derivative, so it is the only residual.
    neg = jnp.where(x >= 0, jnp.zeros_like(x), x)
    return y, _leaky_neg_ckpt(neg, None if _is_zero(tx) else tx, ta, a)


_leaky.defjvp(_leaky_jvp, symbolic_zeros=True)
_leaky_jit = jax.jit(_leaky)


def _leaky_call(x: Array, a: Any) -> Array:
    if _eager(x, a):
        return _leaky_jit(x, _on_device(a))
    return _traced(_leaky, x, a)


# --------------------------------------------------------------------------- #
# Public functions: the piecewise-linear family
# --------------------------------------------------------------------------- #
_relu = _pwl(
    # `maximum`, as jax.nn.relu (nan propagates, -0.0 maps to +0.0). As a select
    # with a zero, XLA on CPU hoists the zero out of a `lax.scan` body as a
    # full-size array carried through the loop (the zoo's scanned f32 MLP
    # measured above the one-bit bound).
    lambda x: jnp.maximum(x, jnp.zeros((), x.dtype)),
    lambda x: x > 0,
    lambda m, t: jnp.where(m, t, jnp.zeros_like(t)),
)
_relu_jit = jax.jit(_relu)


def relu(x: ArrayLike) -> Array:
    r"""Rectified linear unit.

    .. math::
        \mathrm{relu}(x) = \max(x, 0)

    Derivative: 1 for :math:`x > 0`, 0 for :math:`x \le 0`; at the kink
    ``relu'(+0.0) = relu'(-0.0) = 0``, as in :func:`jax.nn.relu`. ``nan``
    propagates in the value; its derivative is 0, as in jax.nn. Reverse mode
    saves one bit per element (``x > 0``, packed).

    Args:
        x: floating-point input array.

    Returns:
        ``relu(x)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.

    dtype: the output has the dtype of ``x`` (float16, bfloat16, float32,
    float64).

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.relu(jnp.array([-2.0, 0.0, 3.0]))
        Array([0., 0., 3.], dtype=float32)
    """
    x = _float_input(x, "relu")
    return _relu_jit(x) if _eager(x) else _traced(_relu, x)


def leaky_relu(x: ArrayLike, negative_slope: ArrayLike = 0.01) -> Array:
    r"""Leaky rectified linear unit.

    .. math::
        \mathrm{leaky\_relu}(x) = \begin{cases} x, & x \ge 0 \\
        a\,x, & x < 0 \end{cases} \qquad a = \text{negative\_slope}

    Derivative in ``x``: 1 for :math:`x \ge 0`, :math:`a` for :math:`x < 0`; at the
    kink ``leaky_relu'(+0.0) = leaky_relu'(-0.0) = 1`` (the jax.nn convention;
    PyTorch and TensorFlow give :math:`a`). Derivative in ``a``: :math:`\min(x, 0)`.

    Reverse mode saves one bit per element (the sign of ``x``, packed), exact for
    any slope: negative, zero, above 1, traced, or one that rounds to 0 in the
    dtype of ``x`` (then the derivative for negative ``x`` is that 0). When the
    slope itself is differentiated it saves ``min(x, 0)`` instead.

    Args:
        x: floating-point input array.
        negative_slope: the slope :math:`a` for negative inputs; a real scalar or
            array that broadcasts to ``x.shape``; may be traced (``jax.vmap``
            over slopes compiles once).

    Returns:
        ``leaky_relu(x)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array, or ``negative_slope``
            is complex, bool or not a number.
        ValueError: if a concrete ``negative_slope`` is not finite, overflows
            the dtype of ``x``, or does not broadcast to ``x.shape``.

    dtype: the output has the dtype of ``x``; the slope is cast to ``x.dtype``
    (bfloat16 in, bfloat16 out, also with a float32 slope array).

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax
        >>> leakyjax.leaky_relu(jnp.array([-2.0, 0.0, 3.0]), 0.1)
        Array([-0.2,  0. ,  3. ], dtype=float32)
        >>> jax.grad(leakyjax.leaky_relu)(0.0)  # derivative at the kink
        Array(1., dtype=float32, weak_type=True)
    """
    x = _float_input(x, "leaky_relu")
    a, _ = _param(negative_slope, x, "negative_slope", "leaky_relu")
    return _leaky_call(x, a)


_NO_ARG = object()


def prelu(
    x: ArrayLike, negative_slope: ArrayLike = _NO_ARG, *, alpha: ArrayLike = _NO_ARG
) -> Array:
    r"""Parametric rectified linear unit (He et al., 2015).

    .. math::
        \mathrm{prelu}(x) = \begin{cases} x, & x \ge 0 \\
        a\,x, & x < 0 \end{cases} \qquad a = \text{negative\_slope}

    ``negative_slope`` is usually a learnable parameter: a scalar shared by all
    units, or one value per channel (an array that broadcasts to ``x``, e.g.
    shape ``(C,)`` for channels last). The function is differentiable in ``x``
    and in the slope; :math:`\partial/\partial a = \min(x, 0)`, summed over the
    broadcast axes.

    Derivative in ``x`` at the kink: 1 at ``+0.0`` and ``-0.0`` (as
    :func:`leaky_relu`). Reverse mode saves one bit per element when the slope
    is not differentiated, and ``min(x, 0)`` alone (in the dtype of ``x``) when
    it is: the one array its gradient needs, no more than ``flax.linen.PReLU``.

    Args:
        x: floating-point input array.
        negative_slope: the slopes; a real array that broadcasts to ``x.shape``.
            (Named like :func:`leaky_relu`'s; :func:`elu`'s ``alpha`` is a
            saturation scale, not a slope.)
        alpha: the old name of ``negative_slope``, still accepted as a keyword
            (deprecated: it emits a DeprecationWarning).

    Returns:
        ``prelu(x, negative_slope)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array, the slope is complex,
            bool or not a number, or it is given twice or not at all.
        ValueError: if the slope does not broadcast to ``x.shape``, or a concrete
            slope is not finite or overflows the dtype of ``x``.

    dtype: the output has the dtype of ``x``; the slope is cast to ``x.dtype`` in
    the computation and its gradient has the dtype of the slope (a float32 slope
    stays float32 under optax updates with bfloat16 activations).

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax
        >>> x = jnp.array([[-1.0, -2.0], [3.0, -4.0]])
        >>> leakyjax.prelu(x, jnp.array([0.25, 0.5]))
        Array([[-0.25, -1.  ],
               [ 3.  , -2.  ]], dtype=float32)
        >>> jax.grad(lambda a: leakyjax.prelu(x, a).sum())(jnp.array([0.25, 0.5]))
        Array([-1., -6.], dtype=float32)

    References:
        He, Zhang, Ren, Sun. Delving Deep into Rectifiers. ICCV 2015.
    """
    if alpha is not _NO_ARG:
        if negative_slope is not _NO_ARG:
            raise TypeError(
                "prelu: got both negative_slope and alpha (its old name); pass "
                "negative_slope only."
            )
        import warnings

        warnings.warn(
            "prelu(x, alpha=...) is deprecated: the slope is now called "
            "negative_slope (as in leaky_relu); pass prelu(x, negative_slope=...) "
            "or positionally.",
            DeprecationWarning,
            stacklevel=2,
        )
        negative_slope = alpha
    if negative_slope is _NO_ARG:
        raise TypeError(
            "prelu: missing the slope, e.g. prelu(x, negative_slope=0.25) or "
            "prelu(x, slopes) with one value per channel."
        )
    x = _float_input(x, "prelu")
    a, _ = _param(negative_slope, x, "negative_slope", "prelu")
    return _leaky_call(x, a)


_RRELU_DEFAULTS = {"pytorch": (1.0 / 8.0, 1.0 / 3.0), "xu": (3.0, 8.0)}


def _rrelu_eval_slope(lo: float, hi: float, convention: str) -> float:
    """The evaluation slope for bounds ``lo, hi`` (also the table's gain)."""
    return (lo + hi) / 2 if convention == "pytorch" else 2 / (lo + hi)


_THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry2x32(k1, k2, x1, x2):
    """The Threefry-2x32 hash (20 rounds), written out as elementwise ops.

    jax lowers its own hash on CPU to a rolled loop, which holds its two
    ``uint32`` counters per element in memory; written out, XLA fuses the hash
    into the op that uses the numbers.
    """
    ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
    x = [x1 + ks[0], x2 + ks[1]]
    for i in range(5):
        for r in _THREEFRY_ROTATIONS[i % 2]:
            x[0] = x[0] + x[1]
            rot = lax.shift_left(x[1], np.uint32(r)) | lax.shift_right_logical(
                x[1], np.uint32(32 - r)
            )
            x[1] = x[0] ^ rot
        x[0] = x[0] + ks[(i + 1) % 3]
        x[1] = x[1] + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x


def _fused_uniform_ok(key, shape) -> bool:
    """Whether :func:`_uniform` can write out ``jax.random.uniform``'s bits: a
    threefry key, jax's partitionable threefry bits, under 2**32 elements."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        impl = str(jax.random.key_impl(key))
    else:
        impl = str(getattr(jax.config, "jax_default_prng_impl", ""))
    return (
        impl == "threefry2x32"
        and bool(getattr(jax.config, "jax_threefry_partitionable", False))
        and math.prod(shape) < 2**32
    )


def _uniform(key, shape, lo, hi, after=None):
    """``jax.random.uniform(key, shape, float32, lo, hi)`` as fusible
    elementwise ops where :func:`_fused_uniform_ok`: the same random bits and
    mapping, ``lo + (u * (hi - lo))`` with ``u`` in [0, 1), each step rounded
    (``jax.random.uniform`` on CPU fuses the two into one FMA, so about one
    slope in five is one ulp apart from its number).

    With ``after`` (an array of ``shape``) the draw waits for it (see
    :func:`_after`): element ``i``'s bits depend on ``after[i]``'s.
    """
    if not _fused_uniform_ok(key, shape):
        key = key if after is None else _after(key, after)
        return jax.random.uniform(key, shape, jnp.float32, lo, hi)
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    data = jax.random.key_data(key) if typed else key  # a legacy uint32 key
    # Element i's counter is (0, i). The 0 is taken from the key (_zero_from), so
    # that the counters are computed where the key is: under a scan XLA would
    # otherwise hoist them out of the loop, in memory. With ``after`` it is
    # taken from each element of ``after`` instead: an elementwise use, which
    # XLA fuses into the op that reads ``after`` anyway (a slice of it, as in
    # _after, is a second reader, so XLA writes out an ``after`` that it
    # computes from a wider array, e.g. a bfloat16 cotangent from a float32 dot).
    zero = _zero_from(data) if after is None else _zeros_from(after)
    count = jnp.broadcast_to(zero, shape)
    for d in range(len(shape)):
        index = lax.iota(jnp.uint32, shape[d])
        if after is None:  # an iota that is not loop-invariant either
            index = index + zero
        index = index * np.uint32(math.prod(shape[d + 1 :]))
        count = count + lax.broadcast_in_dim(index, shape, (d,))
    b1, b2 = _threefry2x32(data[0], data[1], jnp.broadcast_to(zero, shape), count)
    mantissa = lax.shift_right_logical(b1 ^ b2, np.uint32(9))
    unit = lax.bitcast_convert_type(mantissa | np.uint32(0x3F800000), jnp.float32)
    lo, hi = np.float32(lo), np.float32(hi)
    # u * (hi - lo) rounded on its own: the max (a no-op, u * s >= 0) keeps XLA
    # from fusing the product and the sum into an FMA, which it does or not
    # depending on the program (then a slope could differ in its last bit).
    scaled = lax.max((unit - np.float32(1)) * (hi - lo), np.float32(0))
    return lax.max(lo, scaled + lo)


def _rrelu_slopes(key, shape, dtype, lo, hi, xu, after=None):
    draw = _uniform(key, shape, lo, hi, after)
    return (1.0 / draw if xu else draw).astype(dtype)


@jax.custom_batching.custom_vmap
def _zero_from(v: Array) -> Array:
    """One ``uint32`` 0 that XLA cannot fold: :func:`_zeros_from` of ``v``'s
    first element. Under ``vmap`` it stays one unbatched 0, taken from the
    first element of the whole batch (the rule below)."""
    return _zeros_from(lax.reshape(lax.slice(v, (0,) * v.ndim, (1,) * v.ndim), ()))


@_zero_from.def_vmap
def _zero_from_vmap(axis_size, in_batched, v):
    del axis_size, in_batched
    return _zero_from(v[0]), False


def _zeros_from(v: Array) -> Array:
    """``uint32`` zeros of ``v``'s shape that XLA cannot fold: ``popcount(bits
    of v[i]) >> 7`` (a popcount is at most 64)."""
    v = lax.stop_gradient(v)
    word = lax.bitcast_convert_type(v, jnp.dtype(f"uint{8 * v.dtype.itemsize}"))
    ones = lax.population_count(word)
    return lax.shift_right_logical(ones, np.array(7, ones.dtype)).astype(jnp.uint32)


def _after(key: Array, v: Array) -> Array:
    """``key``, made to depend on the data of ``v`` (same value, same draws).

    XLA schedules a random draw as soon as its key is ready, and on CPU it
    drops optimization barriers before scheduling, so a draw from a key that is
    ready early (an argument, a constant) is hoisted to the start of the step and
    its bits stay live until their use. Xoring the key data with a 0 computed
    from ``v`` (:func:`_zero_from`) makes the draw wait for ``v``.
    """
    zero = _zero_from(lax.stop_gradient(v))
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        data = jax.random.key_data(key)
        return jax.random.wrap_key_data(data ^ zero, impl=jax.random.key_impl(key))
    return key ^ zero  # a legacy uint32 key


def _rrelu_scale(bits, key, t, lo, hi, xu):
    """``t * rrelu'(x)``: ``t`` where ``x >= 0``, else the slope redrawn from
    ``key`` times ``t``. In reverse mode ``t`` is the cotangent: the draw waits
    for it, so the slopes of a layer are drawn during that layer's backward."""
    slopes = _rrelu_slopes(key, t.shape, t.dtype, lo, hi, xu, after=t)
    return jnp.where(_unpack(bits, t.shape), t, slopes * t)


def _rrelu_tangent(bits, key, t, lo, hi, xu):
    # t -> D t, D = diag(1 or the slope), is linear and symmetric, and its
    # transpose must draw from the cotangent's data (above): a nonlinear use of
    # a linear input, which jax's transpose rules reject. lax.custom_linear_solve
    # is jax's linear function with a hand-written transpose: ``solve`` (also the
    # transpose, D being symmetric) applies D; ``matvec`` is D's inverse, only
    # traced (bits and key have no tangents, so jax never evaluates it). Reverse
    # mode saves just (bits, key).
    # No tangents for the constants, ever (e.g. from the barrier in the forward):
    # jax's linear_solve jvp needs a tangent for t whenever its constants have one.
    bits, key = lax.stop_gradient(bits), lax.stop_gradient(key)
    scale = functools.partial(_rrelu_scale, bits, key, lo=lo, hi=hi, xu=xu)

    def inverse(v):
        slopes = _rrelu_slopes(key, v.shape, v.dtype, lo, hi, xu)
        return jnp.where(_unpack(bits, v.shape), v, v / slopes)

    return lax.custom_linear_solve(inverse, t, lambda _, v: scale(v), symmetric=True)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def _rrelu(x, key, lo, hi, xu):
    return _leaky_value(x, _rrelu_slopes(key, x.shape, x.dtype, lo, hi, xu))


@_rrelu.defjvp
def _rrelu_jvp(lo, hi, xu, primals, tangents):
    (x, key), (tx, _) = primals, tangents
    x = jnp.asarray(x)
    # Save the bits and the key; the backward redraws the slopes from the key.
    bits, x = _bits_first(_pack(x >= 0), x)
    # The forward waits for x through the key (_after), not elementwise as the
    # backward does: x is written out anyway (the bits read it too), and the
    # elementwise zeros made XLA keep more in the unrolled bfloat16 MLP and the
    # float32 scanned one of the zoo.
    y = _leaky_value(x, _rrelu_slopes(_after(key, x), x.shape, x.dtype, lo, hi, xu))
    return y, _rrelu_tangent(bits, key, tx, lo, hi, xu)


_rrelu_jit = jax.jit(_rrelu, static_argnums=(2, 3, 4))


def _rrelu_one(x, key, lo, hi, xu):
    """rrelu with one slope for every element of ``x`` (what a scalar call
    draws): the leaky rectifier at that slope, which carries no tangent."""
    return _leaky(x, _rrelu_slopes(key, (), x.dtype, lo, hi, xu))


_rrelu_one_jit = jax.jit(_rrelu_one, static_argnums=(2, 3, 4))


def _check_key(key: Any) -> None:
    dtype = getattr(key, "dtype", None)
    if isinstance(key, (jax.Array, np.ndarray)) and dtype is not None:
        if jnp.issubdtype(dtype, jax.dtypes.prng_key) and key.ndim == 0:
            return
        if np.dtype(dtype) == np.uint32 and key.ndim == 1:
            return  # a legacy jax.random.PRNGKey
    what = (
        f"an array of dtype {dtype} and shape {np.shape(key)}"
        if dtype is not None
        else type(key).__name__
    )
    raise TypeError(
        f"rrelu: key must be a PRNG key, e.g. jax.random.key(0) (or a legacy "
        f"jax.random.PRNGKey(0)), or None for the evaluation slope; got {what}."
    )


def rrelu(
    x: ArrayLike,
    key: Array | None = None,
    *,
    lower: float | None = None,
    upper: float | None = None,
    convention: RReLUConvention = "pytorch",
) -> Array:
    r"""Randomized leaky rectified linear unit (Xu et al., 2015).

    .. math::
        \mathrm{rrelu}(x) = \begin{cases} x, & x \ge 0 \\
        a\,x, & x < 0 \end{cases}

    With a ``key`` (training), the slope :math:`a` is drawn independently for every
    element; with ``key=None`` (evaluation) it is the deterministic value below.

    =============== ================================= ===========================
    ``convention``   training slope                   evaluation slope
    =============== ================================= ===========================
    ``"pytorch"``    :math:`a \sim U(l, u)`,          :math:`(l + u) / 2`
    (default)        :math:`l=1/8,\ u=1/3`
    ``"xu"``         :math:`a = 1/d,\ d \sim U(l, u)`, :math:`2 / (l + u)` (1/5.5)
                     :math:`l=3,\ u=8`
    =============== ================================= ===========================

    The default is PyTorch's ``torch.nn.RReLU``; ``convention="xu"`` is the
    divisor form of Xu et al. (2015), whose test-time slope is 1/5.5.

    Derivative in ``x``: 1 for :math:`x \ge 0`, the (drawn) slope for
    :math:`x < 0`; 1 at ``+0.0`` and ``-0.0``. The drawn slopes are not
    differentiated. Reverse mode saves the sign bits and the key, not the
    slopes: the backward redraws them from the key.

    Args:
        x: floating-point input array.
        key: a :func:`jax.random.key` (or legacy uint32 key) to draw slopes with,
            or None for the deterministic evaluation slope.
        lower: lower bound of the uniform draw (default from ``convention``).
        upper: upper bound of the uniform draw (default from ``convention``).
        convention: ``"pytorch"`` (draw the slope) or ``"xu"`` (draw the
            divisor).

    Returns:
        ``rrelu(x)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array, or ``key`` is neither
            None nor a PRNG key.
        ValueError: for an unknown ``convention``, or bounds that are not finite,
            not positive (``"xu"``), negative (``"pytorch"``) or not
            ``lower <= upper``.

    dtype: the output has the dtype of ``x``; slopes are drawn in float32 and
    cast to ``x.dtype``.

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax
        >>> x = jnp.array([-1.0, 2.0])
        >>> leakyjax.rrelu(x)  # evaluation: slope (1/8 + 1/3) / 2
        Array([-0.22916667,  2.        ], dtype=float32)
        >>> y = leakyjax.rrelu(x, jax.random.key(0))
        >>> bool(-1 / 3 <= y[0] <= -1 / 8)
        True

    References:
        Xu, Wang, Chen, Li. Empirical Evaluation of Rectified Activations in
        Convolutional Network. arXiv:1505.00853, 2015.
    """
    x = _float_input(x, "rrelu")
    if convention not in _RRELU_DEFAULTS:
        raise ValueError(
            f"rrelu: convention must be 'pytorch' or 'xu', got {convention!r}."
        )
    lo, hi = _RRELU_DEFAULTS[convention]
    lo = lo if lower is None else lower
    hi = hi if upper is None else upper
    for name, v in (("lower", lo), ("upper", hi)):
        if isinstance(v, (bool, complex)) or not isinstance(v, (int, float)):
            raise TypeError(f"rrelu: {name} must be a real number, got {v!r}.")
        if not math.isfinite(v):
            raise ValueError(f"rrelu: {name} must be finite, got {v!r}.")
    if convention == "xu" and lo <= 0:
        raise ValueError(f"rrelu: lower (a divisor) must be > 0, got {lo!r}.")
    if convention == "pytorch" and lo < 0:
        raise ValueError(f"rrelu: lower must be >= 0, got {lo!r}.")
    if lo > hi:
        raise ValueError(f"rrelu: need lower <= upper, got {lo!r} > {hi!r}.")
    if key is None:
        slope = _rrelu_eval_slope(lo, hi, convention)
        return leaky_relu(x, float(slope))
    _check_key(key)
    xu = convention == "xu"
    lo, hi = float(lo), float(hi)
    if x.ndim == 0:  # one draw (a batch of scalars under vmap shares it)
        if _eager(x, key):
            return _rrelu_one_jit(x, key, lo, hi, xu)
        return _traced(lambda v, k: _rrelu_one(v, k, lo, hi, xu), x, key)
    if _eager(x, key):
        return _rrelu_jit(x, key, lo, hi, xu)
    return _rrelu(x, key, lo, hi, xu)


def _clip(x, lo, hi):
    """``min(max(x, lo), hi)`` in ``x``'s dtype (``nan`` propagates), as one
    :func:`jax.lax.clamp` with scalar bounds: XLA on CPU hands a reduction of
    ``min(max(x, lo), hi)`` (a ResNet's global average pool of its last
    activation) to its YNNPACK fusion with each bound materialized as a
    full-size float32 array; the bfloat16 ResNet of the zoo measured two such
    arrays more for relu6 and hard_tanh and four for hard_sigmoid."""
    return lax.clamp(jnp.full((), lo, x.dtype), x, jnp.full((), hi, x.dtype))


_relu6 = _pwl(
    lambda x: _clip(x, 0, 6),
    lambda x: (x > 0) & (x < 6),
    lambda m, t: jnp.where(m, t, jnp.zeros_like(t)),
)
_relu6_jit = jax.jit(_relu6)


def relu6(x: ArrayLike) -> Array:
    r"""Rectified linear unit capped at 6 (Krizhevsky, 2010; MobileNet).

    .. math::
        \mathrm{relu6}(x) = \min(\max(x, 0), 6)

    Derivative: 1 for :math:`0 < x < 6`, else 0; at both kinks it is 0:
    ``relu6'(±0.0) = relu6'(6) = 0``, as :func:`jax.nn.relu6` and
    ``torch.nn.ReLU6``. ``nan`` propagates in the value, with derivative 0.
    Reverse mode saves one bit per element (``0 < x < 6``, packed).

    Args:
        x: floating-point input array.

    Returns:
        ``relu6(x)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.

    dtype: the output has the dtype of ``x``.

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax
        >>> leakyjax.relu6(jnp.array([-2.0, 3.0, 8.0]))
        Array([0., 3., 6.], dtype=float32)
        >>> jax.grad(leakyjax.relu6)(6.0)  # derivative at the upper kink
        Array(0., dtype=float32, weak_type=True)
    """
    x = _float_input(x, "relu6")
    return _relu6_jit(x) if _eager(x) else _traced(_relu6, x)


_hard_tanh = _pwl(
    lambda x: _clip(x, -1, 1),
    lambda x: ~((x > 1) | (x < -1)),
    lambda m, t: jnp.where(m, t, jnp.zeros_like(t)),
)
_hard_tanh_jit = jax.jit(_hard_tanh)


def hard_tanh(x: ArrayLike) -> Array:
    r"""Hard hyperbolic tangent: the identity clipped to :math:`[-1, 1]`.

    .. math::
        \mathrm{hard\_tanh}(x) = \max(-1, \min(x, 1))

    Derivative: 1 for :math:`-1 \le x \le 1`, else 0. At the kinks
    ``hard_tanh'(±1) = 1``: the convention of :func:`jax.nn.hard_tanh` (and of
    nan: derivative 1, as jax.nn). PyTorch's ``torch.nn.Hardtanh`` gives 0 at
    ±1 (it tests ``-1 < x < 1``). Reverse mode saves one bit per element.

    Args:
        x: floating-point input array.

    Returns:
        ``hard_tanh(x)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.

    dtype: the output has the dtype of ``x``.

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax
        >>> leakyjax.hard_tanh(jnp.array([-2.0, 0.5, 3.0]))
        Array([-1. ,  0.5,  1. ], dtype=float32)
        >>> jax.grad(leakyjax.hard_tanh)(1.0)  # jax.nn's kink convention
        Array(1., dtype=float32, weak_type=True)
    """
    x = _float_input(x, "hard_tanh")
    return _hard_tanh_jit(x) if _eager(x) else _traced(_hard_tanh, x)


def _hard_sigmoid_value(x):
    u = x + jnp.full((), 3, x.dtype)
    return _clip(u, 0, 6) / jnp.full((), 6, x.dtype)


def _hard_sigmoid_piece(x):
    u = x + jnp.full((), 3, x.dtype)
    return (u > 0) & (u < 6)


def _hard_sigmoid_tangent(m, t):
    # Masked, then divided: the same values as where(m, t / 6, 0), which in
    # the zoo's float32 transformer measured 0.9 MiB above the one-bit bound
    # (XLA on CPU repeated the backward fusion for the bias and the weight
    # gradients); this form is within it.
    return jnp.where(m, t, jnp.zeros_like(t)) / jnp.full((), 6, t.dtype)


_hard_sigmoid = _pwl(
    _hard_sigmoid_value,
    _hard_sigmoid_piece,
    _hard_sigmoid_tangent,
)
_hard_sigmoid_jit = jax.jit(_hard_sigmoid)


def hard_sigmoid(x: ArrayLike) -> Array:
    r"""Hard sigmoid, as :func:`jax.nn.hard_sigmoid`: ``relu6(x + 3) / 6``.

    .. math::
        \mathrm{hard\_sigmoid}(x) = \frac{\min(\max(x + 3, 0), 6)}{6}

    Derivative: :math:`1/6` for :math:`-3 < x < 3` (tested as
    :math:`0 < x + 3 < 6` in the dtype of ``x``, as jax.nn), else 0; at the kinks
    ``hard_sigmoid'(±3) = 0``, as :func:`jax.nn.hard_sigmoid` and
    ``torch.nn.Hardsigmoid``. Reverse mode saves one bit per element.

    Args:
        x: floating-point input array.

    Returns:
        ``hard_sigmoid(x)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.

    dtype: the output has the dtype of ``x``.

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax
        >>> leakyjax.hard_sigmoid(jnp.array([-4.0, 0.0, 1.5, 4.0]))
        Array([0.  , 0.5 , 0.75, 1.  ], dtype=float32)
        >>> jax.grad(leakyjax.hard_sigmoid)(0.0)
        Array(0.16666667, dtype=float32, weak_type=True)
    """
    x = _float_input(x, "hard_sigmoid")
    return _hard_sigmoid_jit(x) if _eager(x) else _traced(_hard_sigmoid, x)


# --------------------------------------------------------------------------- #
# Factories of the exponential family (read y or x)
# --------------------------------------------------------------------------- #
def _unary(primal: Callable, tangent_from_y: Callable) -> Callable:
    """A parameter-free activation whose derivative is read from its output."""

    @jax.custom_jvp
    def f(x):
        return primal(x)

    @f.defjvp
    def _jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        y = f(x)
        return y, jax.checkpoint(tangent_from_y)(y, t)

    return f


def _parametric(
    primal: Callable,
    tangent_from_x: Callable,
    tangent_from_y: Callable,
    param_tangent: Callable,
) -> tuple[Callable, Callable]:
    """Two custom_jvp versions of ``primal(x, a)``.

    Returns ``(from_y, from_x)``. Both differentiate in ``x`` and ``a``. ``from_y``
    reads the output ``y`` for the ``x`` derivative and is valid only for
    parameters where ``tangent_from_y`` is exact; ``from_x`` is always valid.
    Every tangent map is wrapped in :func:`jax.checkpoint`, so reverse mode saves
    only its array inputs (``y``, or ``x``), never derived masks or factors.
    """

    def build(use_y: bool) -> Callable:
        @jax.custom_jvp
        def f(x, a):
            return primal(x, a)

        def _jvp(primals, tangents):
            (x, a), (tx, ta) = primals, tangents
            y = f(x, a)
            out = None
            if not _is_zero(tx):
                # A constant parameter is closed over: no residual for it.
                tangent, v = (tangent_from_y, y) if use_y else (tangent_from_x, x)
                if isinstance(a, _Tracer):
                    out = jax.checkpoint(tangent)(v, tx, a)
                else:
                    out = jax.checkpoint(lambda v, t: tangent(v, t, a))(v, tx)
            if not _is_zero(ta):
                dt = jax.checkpoint(param_tangent)(x, ta, a)
                out = dt if out is None else out + dt
            return y, jnp.zeros_like(y) if out is None else out

        f.defjvp(_jvp, symbolic_zeros=True)
        return f

    return build(True), build(False)


# --------------------------------------------------------------------------- #
# The exponential family
# --------------------------------------------------------------------------- #
def _neg_part(x):
    """``x`` where ``x <= 0`` and 0 elsewhere, so expm1 never overflows."""
    return jnp.where(x > 0, jnp.zeros_like(x), x)


def _elu_primal(x, a):
    return jnp.where(x > 0, x, a * jnp.expm1(_neg_part(x)))


# The output-based tangents select t itself where y > 0 (XLA on CPU then keeps
# one full array fewer in a ResNet, f32, than with t * where(...)); the other
# branch reads _neg_part(y) so that it stays finite where it is not taken
# (y = +inf): reverse mode multiplies that branch by a zero cotangent there.
_elu_from_y, _elu_from_x = _parametric(
    _elu_primal,
    tangent_from_x=lambda x, t, a: t * jnp.where(x > 0, 1, a * jnp.exp(_neg_part(x))),
    tangent_from_y=lambda y, t, a: jnp.where(y > 0, t, t * (_neg_part(y) + a)),
    param_tangent=lambda x, ta, a: (
        jnp.where(x > 0, jnp.zeros_like(x), jnp.expm1(_neg_part(x))) * ta
    ),
)


_elu_from_y_jit, _elu_from_x_jit = jax.jit(_elu_from_y), jax.jit(_elu_from_x)


def elu(x: ArrayLike, alpha: ArrayLike = 1.0) -> Array:
    r"""Exponential linear unit (Clevert et al., 2016).

    .. math::
        \mathrm{elu}(x) = \begin{cases} x, & x > 0 \\
        \alpha\,(e^{x} - 1), & x \le 0 \end{cases}

    Derivative: 1 for :math:`x > 0`, :math:`\alpha e^{x} = y + \alpha` for
    :math:`x \le 0`; at ``+0.0`` and ``-0.0`` it is :math:`\alpha` (as
    :func:`jax.nn.elu`; continuous when :math:`\alpha = 1`).

    For a concrete :math:`\alpha \ge 0` the derivative is computed as
    :math:`y + \alpha` from the output, so reverse mode saves only ``y``. Far in
    the saturated region this is exact to one unit in the last place of
    :math:`\alpha` (absolute), not relative. A traced or negative ``alpha`` uses
    :math:`\alpha e^{x}`.

    Args:
        x: floating-point input array.
        alpha: the scale of the negative saturation; scalar or array that
            broadcasts to ``x.shape``; may be traced.

    Returns:
        ``elu(x, alpha)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.
        ValueError: if a concrete ``alpha`` is not finite or does not broadcast.

    dtype: the output has the dtype of ``x``; ``alpha`` is cast to ``x.dtype``.

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax
        >>> leakyjax.elu(jnp.array([-1.0, 0.0, 2.0]))
        Array([-0.63212055,  0.        ,  2.        ], dtype=float32)
        >>> jax.grad(leakyjax.elu)(0.0)
        Array(1., dtype=float32, weak_type=True)

    References:
        Clevert, Unterthiner, Hochreiter. Fast and Accurate Deep Network Learning
        by Exponential Linear Units (ELUs). ICLR 2016.
    """
    x = _float_input(x, "elu")
    a, cast = _param(alpha, x, "alpha", "elu")
    use_y = cast is not None and bool(np.all(cast >= 0))
    if _eager(x, a):
        return (_elu_from_y_jit if use_y else _elu_from_x_jit)(x, _on_device(a))
    return (_elu_from_y if use_y else _elu_from_x)(x, a)


def _celu_primal(x, a):
    return jnp.where(x > 0, x, a * jnp.expm1(_neg_part(x) / a))


_celu_from_y, _celu_from_x = _parametric(
    _celu_primal,
    tangent_from_x=lambda x, t, a: t * jnp.where(x > 0, 1, jnp.exp(_neg_part(x) / a)),
    tangent_from_y=lambda y, t, a: jnp.where(y > 0, t, t * (_neg_part(y) / a + 1)),
    param_tangent=lambda x, ta, a: (
        jnp.where(
            x > 0,
            jnp.zeros_like(x),
            jnp.expm1(_neg_part(x) / a) - _neg_part(x) / a * jnp.exp(_neg_part(x) / a),
        )
        * ta
    ),
)


_celu_from_y_jit, _celu_from_x_jit = jax.jit(_celu_from_y), jax.jit(_celu_from_x)


def celu(x: ArrayLike, alpha: ArrayLike = 1.0) -> Array:
    r"""Continuously differentiable exponential linear unit (Barron, 2017).

    .. math::
        \mathrm{celu}(x) = \begin{cases} x, & x > 0 \\
        \alpha\,(e^{x/\alpha} - 1), & x \le 0 \end{cases} \qquad \alpha > 0

    Derivative: 1 for :math:`x > 0`, :math:`e^{x/\alpha} = y/\alpha + 1` for
    :math:`x \le 0`; it is continuous, and 1 at ``+0.0`` and ``-0.0``. For a
    concrete ``alpha`` the derivative is read from the output (reverse mode saves
    only ``y``).

    Second derivative: 0 for :math:`x > 0`, :math:`e^{x/\alpha}/\alpha` for
    :math:`x \le 0`, so ``celu''(+0.0) = celu''(-0.0) = 1/alpha`` (the left
    limit: the kink belongs to the ``x <= 0`` piece, as for the first
    derivative). ``jax.grad(jax.grad(jax.nn.celu))`` gives ``alpha`` there.

    Args:
        x: floating-point input array.
        alpha: positive scale; scalar or array that broadcasts to ``x.shape``;
            may be traced (then it is not checked).

    Returns:
        ``celu(x, alpha)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.
        ValueError: if a concrete ``alpha`` is not finite and positive.

    dtype: the output has the dtype of ``x``; ``alpha`` is cast to ``x.dtype``.

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.celu(jnp.array([-1.0, 0.0, 2.0]), 0.5)
        Array([-0.43233237,  0.        ,  2.        ], dtype=float32)

    References:
        Barron. Continuously Differentiable Exponential Linear Units.
        arXiv:1704.07483, 2017.
    """
    x = _float_input(x, "celu")
    a, cast = _param(alpha, x, "alpha", "celu", positive=True)
    if cast is None:
        f, f_jit = _celu_from_x, _celu_from_x_jit
    elif np.all(cast == 1):
        # celu(x, 1) is elu(x, 1), value and derivatives, and elu's derivative
        # does not divide by alpha: XLA (CPU) computes that 1/alpha at run time,
        # one scalar buffer more than jax.nn.celu in a rematerialised MLP.
        f, f_jit = _elu_from_y, _elu_from_y_jit
    else:
        f, f_jit = _celu_from_y, _celu_from_y_jit
    return f_jit(x, _on_device(a)) if _eager(x, a) else f(x, a)


def _selu_primal(x):
    # One constant per branch, so that y -> -scale*alpha exactly as x -> -inf and
    # the output-based derivative y + scale*alpha is exactly 0 there.
    scale = jnp.asarray(SELU_SCALE, x.dtype)
    scale_alpha = jnp.asarray(SELU_SCALE * SELU_ALPHA, x.dtype)
    return jnp.where(x > 0, scale * x, scale_alpha * jnp.expm1(_neg_part(x)))


def _selu_tangent(y, t):
    scale = jnp.asarray(SELU_SCALE, y.dtype)
    scale_alpha = jnp.asarray(SELU_SCALE * SELU_ALPHA, y.dtype)
    return jnp.where(y > 0, t * scale, t * (_neg_part(y) + scale_alpha))


_selu = _unary(_selu_primal, _selu_tangent)
_selu_jit = jax.jit(_selu)


def selu(x: ArrayLike) -> Array:
    r"""Scaled exponential linear unit (Klambauer et al., 2017).

    .. math::
        \mathrm{selu}(x) = \lambda \begin{cases} x, & x > 0 \\
        \alpha\,(e^{x} - 1), & x \le 0 \end{cases}

    with :math:`\lambda \approx 1.0507` (:data:`SELU_SCALE`) and
    :math:`\alpha \approx 1.6733` (:data:`SELU_ALPHA`).

    Derivative: :math:`\lambda` for :math:`x > 0`, :math:`\lambda\alpha e^{x} =
    y + \lambda\alpha` for :math:`x \le 0`; at ``+0.0`` and ``-0.0`` it is
    :math:`\lambda\alpha` (as :func:`jax.nn.selu`). It is read from the output,
    so reverse mode saves only ``y``.

    Args:
        x: floating-point input array.

    Returns:
        ``selu(x)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.

    dtype: the output has the dtype of ``x``.

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.selu(jnp.array([-1.0, 0.0, 2.0]))
        Array([-1.1113307,  0.       ,  2.101402 ], dtype=float32)

    References:
        Klambauer, Unterthiner, Mayr, Hochreiter. Self-Normalizing Neural
        Networks. NeurIPS 2017.
    """
    x = _float_input(x, "selu")
    return (_selu_jit if _eager(x) else _selu)(x)


# --------------------------------------------------------------------------- #
# Comparators: thin wrappers of jax.nn (same numbers, same derivatives)
# --------------------------------------------------------------------------- #
def sigmoid(x: ArrayLike) -> Array:
    r"""Comparator: :func:`jax.nn.sigmoid` (same values, same derivative).

    .. math::
        \sigma(x) = 1 / (1 + e^{-x})

    Provided so that comparisons and the registry name every activation from
    one place. Values and derivatives are exactly those of :func:`jax.nn.sigmoid`;
    leakyjax only adds the floating-point input check.

    Args:
        x: floating-point input array.

    Returns:
        An array with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.

    dtype: the output has the dtype of ``x``. The derivative at 0 is smooth
    (no kink).

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.sigmoid(jnp.array([-1.0, 0.0, 1.0]))
        Array([0.26894143, 0.5       , 0.7310586 ], dtype=float32)
    """
    return jax.nn.sigmoid(_float_input(x, "sigmoid"))


def tanh(x: ArrayLike) -> Array:
    r"""Comparator: :func:`jax.numpy.tanh` (same values, same derivative).

    .. math::
        \tanh(x) = (e^{x} - e^{-x}) / (e^{x} + e^{-x})

    Provided so that comparisons and the registry name every activation from
    one place. Values and derivatives are exactly those of :func:`jax.numpy.tanh`;
    leakyjax only adds the floating-point input check.

    Args:
        x: floating-point input array.

    Returns:
        An array with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.

    dtype: the output has the dtype of ``x``. The derivative at 0 is smooth
    (no kink).

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.tanh(jnp.array([-1.0, 0.0, 1.0]))
        Array([-0.7615942,  0.       ,  0.7615942], dtype=float32)
    """
    return jnp.tanh(_float_input(x, "tanh"))


def gelu(x: ArrayLike, approximate: bool = True) -> Array:
    r"""Comparator: :func:`jax.nn.gelu` (same values, same derivative).

    .. math::
        \mathrm{gelu}(x) = x\,\Phi(x) \text{ (tanh approximation by default)}

    Provided so that comparisons and the registry name every activation from
    one place. Values and derivatives are exactly those of :func:`jax.nn.gelu`;
    leakyjax only adds the floating-point input check.

    Args:
        x: floating-point input array.
        approximate: the tanh approximation (True, jax.nn's default) or the exact
            erf form (False).

    Returns:
        An array with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.

    dtype: the output has the dtype of ``x``. The derivative at 0 is smooth
    (no kink).

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.gelu(jnp.array([-1.0, 0.0, 1.0]))
        Array([-0.15880796,  0.        ,  0.841192  ], dtype=float32)
    """
    return jax.nn.gelu(_float_input(x, "gelu"), approximate=approximate)


def silu(x: ArrayLike) -> Array:
    r"""Comparator: :func:`jax.nn.silu` (same values, same derivative).

    .. math::
        \mathrm{silu}(x) = x\,\sigma(x)

    Provided so that comparisons and the registry name every activation from
    one place. Values and derivatives are exactly those of :func:`jax.nn.silu`;
    leakyjax only adds the floating-point input check.

    Args:
        x: floating-point input array.

    Returns:
        An array with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.

    dtype: the output has the dtype of ``x``. The derivative at 0 is smooth
    (no kink).

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.silu(jnp.array([-1.0, 0.0, 1.0]))
        Array([-0.26894143,  0.        ,  0.7310586 ], dtype=float32)
    """
    return jax.nn.silu(_float_input(x, "silu"))


def softplus(x: ArrayLike) -> Array:
    r"""Comparator: :func:`jax.nn.softplus` (same values, same derivative).

    .. math::
        \mathrm{softplus}(x) = \log(1 + e^{x})

    Provided so that comparisons and the registry name every activation from
    one place. Values and derivatives are exactly those of :func:`jax.nn.softplus`;
    leakyjax only adds the floating-point input check.

    Args:
        x: floating-point input array.

    Returns:
        An array with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.

    dtype: the output has the dtype of ``x``. The derivative at 0 is smooth
    (no kink).

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.softplus(jnp.array([-1.0, 0.0, 1.0]))
        Array([0.3132617, 0.6931472, 1.3132617], dtype=float32)
    """
    return jax.nn.softplus(_float_input(x, "softplus"))
