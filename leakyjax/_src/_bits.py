"""The one-bit residual: packing a bool mask eight to a byte, and its layouts.

The piecewise-linear family's derivative takes two values, so reverse mode
needs only which piece `x` was on. `_pack` stores that bit per element packed
eight to a `uint8` along one of the last two axes, chosen at trace time from the
shape (`_pack_axis`): the second-to-last (the batch of an `(N, C)` layer, the
width of an NHWC image; `ceil(N / 8) * C` bytes) unless the last needs fewer
bytes. Along the second-to-last a byte holds one element of eight rows and the
backward reads whole rows of bytes: on CPU its unpacking loop vectorizes (a
`(1024, 1024)` bfloat16 backward measured about 20% faster than along the last
axis). A long 1-D array is differentiated as rows `(n // w, w)` (`_rows`) so
that it packs the same way. An array whose last two axes have at most one
element each keeps a `bool` mask: packing cannot make it smaller there.

An array sharded in its type (explicit mesh axes, `jax.make_mesh`'s default)
is packed along a split axis only where its bytes split evenly over the
shards (a multiple of `8 k` elements for `k` shards): else along an unsharded
axis, else a `bool` mask, so a byte never holds bits of two devices and every
device packs its own block. Unsharded arrays, automatic axes and the blocks
inside `shard_map` pack as above. `_unpack` reads the packed axis from the
bits' shape.

A function of a scalar under `vmap` (`equinox.nn.MLP` applies its activation
to scalars, vmapped over the units and the batch) would be that case once per
element; `_traced` applies it to the whole batched array instead (a
`jax.custom_batching.custom_vmap`), so the bits are packed along the units.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from leakyjax._src._inputs import Array, _Tracer

try:  # private in jax; without it a scalar under vmap keeps a bool mask
    from jax._src.interpreters.batching import BatchTracer as _BatchTracer
except ImportError:  # pragma: no cover - a jax that moved it
    _BatchTracer = ()


def _shards(x: Array) -> tuple[int, ...]:
    """How many pieces each axis of `x` is split into by the sharding in its
    type (explicit mesh axes); 1 for every axis of an unsharded array, one with
    automatic axes (the compiler places it) and one inside `shard_map` (the
    body sees its own block)."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    spec, mesh = getattr(sharding, "spec", None), getattr(sharding, "mesh", None)
    if spec is None or mesh is None:
        return (1,) * x.ndim
    sizes = dict(mesh.shape)
    out = []
    for d in range(x.ndim):
        names = spec[d] if d < len(spec) else None
        names = () if names is None else names
        names = (names,) if isinstance(names, str) else tuple(names)
        out.append(math.prod(sizes[n] for n in names))
    return tuple(out)


def _pack_axis(
    shape: tuple[int, ...], shards: tuple[int, ...] | None = None
) -> int | None:
    """The axis `_pack` packs along (from the end), or None for a bool mask.

    The one of the last two axes that needs fewer bytes (ties: the
    second-to-last, see the module docstring); None when packing would not
    make the residual smaller than a byte per element: an empty array, or one
    whose last two axes have at most one element each (a scalar, a vector of
    one element, `(5, 1, 1)`).

    `shards` (`_shards`): an axis split into `k` pieces by its
    sharding is packed only if its bytes split evenly too (its size a multiple
    of `8 k`): a byte never holds the bits of two devices. Else the other of
    the last two axes, else the axis before them that needs the fewest bytes,
    else a bool mask (still one byte per element, and exact).
    """
    n = math.prod(shape)
    shards = shards or (1,) * len(shape)

    def best_of(axes: tuple[int, ...]) -> int | None:
        best, axis = n, None
        for ax in axes:
            c, k = shape[ax], shards[ax]
            if k > 1 and c % (8 * k):
                continue  # the packed bytes would not split over the shards
            size = n // c * -(-c // 8) if c else 0
            if size < best:
                best, axis = size, ax
        return axis

    axis = best_of(tuple(ax for ax in (-2, -1) if len(shape) >= -ax))
    if axis is None and any(k > 1 for k in shards):
        axis = best_of(tuple(range(-len(shape), -2)))
    return axis


def _pack(mask: Array) -> Array:
    """The residual of a bool mask, chosen at trace time from its shape.

    Bits packed eight to a `uint8` along one axis (`_pack_axis`; bit
    `j` of byte `k` is element `8k + j` of that axis), or the bool mask
    itself where packing saves nothing.
    """
    axis = _pack_axis(mask.shape, _shards(mask))
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
    """Inverse of `_pack`: the bool mask of `shape`.

    The packed axis is read from `bits` (the one axis whose size differs
    from `shape`'s), so the backward unpacks what the forward packed,
    whatever the sharding of the cotangent.
    """
    if bits.dtype == jnp.bool_:
        return bits
    ax = next(d for d in range(len(shape)) if bits.shape[d] != shape[d])
    full = (*bits.shape[: ax + 1], 8, *bits.shape[ax + 1 :])
    shifts = lax.broadcasted_iota(jnp.uint8, full, ax + 1)
    dims = [d for d in range(len(full)) if d != ax + 1]
    m = lax.shift_right_logical(lax.broadcast_in_dim(bits, full, dims), shifts)
    m = (m & np.uint8(1)).reshape(
        (*bits.shape[:ax], bits.shape[ax] * 8, *bits.shape[ax + 1 :])
    )
    return lax.slice_in_dim(m, 0, shape[ax], axis=ax) != 0


def _traced(f: Callable, x: Array, *params: Any) -> Array:
    """`f(x, *params)` for a traced `x`; a scalar `x` under `vmap` is
    given the whole batch.

    An elementwise `f` under `vmap` equals `f` of the batched array, but
    jax batches its derivative rule per example: for a scalar (e.g.
    `equinox.nn.MLP`'s activation, vmapped over the units and the batch) the
    residual would be one `bool` per element. A
    `jax.custom_batching.custom_vmap` whose rule applies `f` to the
    batched array lets `_pack` see the last batched axis. It is taken
    only when `vmap` is the innermost transformation and the parameters are
    constants, so its (forward-mode only) derivative rule is never used: an
    outer `grad` differentiates `f` itself.
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


_ROWS_MIN = 1 << 16  # below this the 1-D layout's slower loop costs little


def _rows(shape: tuple[int, ...], spec: Any = None) -> tuple[int, int] | None:
    """The 2-D view `(n // w, w)` a long 1-D array is differentiated in, or None.

    A 1-D array packs along its only axis, a byte holding eight neighbours; its
    backward then reads byte `i // 8` for element `i`, a loop that does not
    vectorize on CPU (the 1-D rows of `benchmarks/results/
    activations_speed_cpu.json` against the 2-D ones). Viewed as rows of `w`
    (a power of two, 128 to 1024, that divides `n / 8`) it packs along the
    rows like any `(N, C)` array. `spec`: the partition spec of an array
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
    """The partition spec in `x`'s type (explicit sharding), else None."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    return getattr(sharding, "spec", None)


def _as_rows(a: Any, rows: tuple[int, int]) -> Any:
    """A parameter of a 1-D input (a scalar, shape (1,) or (n,)) in its 2-D view."""
    if np.ndim(a) == 0:
        return a
    return a.reshape((1, 1) if np.size(a) == 1 else rows)
