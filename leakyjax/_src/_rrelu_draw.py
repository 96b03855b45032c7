"""rrelu's random slopes: `jax.random.uniform`'s draw, written out to fuse.

With a key, `rrelu` saves the bits and the key and redraws its slopes (the
same draw) in the backward. Left alone, XLA would hoist every redraw to the
start of the step (its key is ready there) or merge it with the forward draw,
keeping full-size random bits of every layer alive; on CPU it drops
optimization barriers before scheduling, so they cannot order it. Instead each
draw takes a data dependency on the array it scales, through zeros that XLA
cannot fold. In the forward the key data is xored with `popcount >> 6` of one
element of `x` (under `vmap` one unbatched 0 via
`jax.custom_batching.custom_vmap`). In the backward each element's threefry
counter gets `popcount >> 7` of that element of the cotangent: an elementwise
read, fused into the op that scales the cotangent.

The draw is `jax.random.uniform`'s: its threefry bits and their mapping to
`[lower, upper)`, with the hash written out as elementwise ops (jax lowers its
own on CPU to a rolled loop whose two `uint32` counters per element live in
memory; written out, XLA fuses it into the product that uses the slopes) and
the final `u * (upper - lower)` and `+ lower` rounded one at a time, the same
in every program. A key that is not threefry's uses `jax.random.uniform`
itself.

An operand sharded in its type (explicit mesh axes) gets a draw sharded as it
is: the counters are built in its sharding, and the one-element dependency
keeps the split axes whole (a one-word all-reduce), so every device draws its
block of the same numbers. Inside `shard_map` the draw is that of the block's
shape, as `jax.random.uniform` there.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from leakyjax._src._bits import _shards
from leakyjax._src._inputs import Array

_RRELU_DEFAULTS = {"pytorch": (1.0 / 8.0, 1.0 / 3.0), "xu": (3.0, 8.0)}


def _rrelu_eval_slope(lo: float, hi: float, convention: str) -> float:
    """The evaluation slope for bounds `lo, hi` (also the table's gain)."""
    return (lo + hi) / 2 if convention == "pytorch" else 2 / (lo + hi)


_THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry2x32(k1, k2, x1, x2):
    """The Threefry-2x32 hash (20 rounds), written out as elementwise ops.

    jax lowers its own hash on CPU to a rolled loop, which holds its two
    `uint32` counters per element in memory; written out, XLA fuses the hash
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
    """Whether `_uniform` can write out `jax.random.uniform`'s bits: a
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


def _sharded(x: Array | None) -> Any:
    """The sharding in `x`'s type where it splits an axis (explicit mesh
    axes), else None: the sharding a draw of `x`'s shape is made in."""
    if x is None or not any(k > 1 for k in _shards(x)):
        return None
    return jax.typeof(x).sharding


def _uniform(key, shape, lo, hi, after=None, like=None):
    """`jax.random.uniform(key, shape, float32, lo, hi)` as fusible
    elementwise ops where `_fused_uniform_ok`: the same random bits and
    mapping, `lo + (u * (hi - lo))` with `u` in [0, 1), each step rounded
    (`jax.random.uniform` on CPU fuses the two into one FMA, so about one
    slope in five is one ulp apart from its number).

    With `after` (an array of `shape`) the draw waits for it (see
    `_after`): element `i`'s bits depend on `after[i]`'s.

    The draw is sharded as `after` (else `like`, an array of `shape`) is
    in its type (explicit mesh axes): the same numbers, each device computing
    its own block.
    """
    out = _sharded(after if after is not None else like) if shape else None
    if not _fused_uniform_ok(key, shape):
        key = key if after is None else _after(key, after)
        return jax.random.uniform(key, shape, jnp.float32, lo, hi, out_sharding=out)
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    data = jax.random.key_data(key) if typed else key  # a legacy uint32 key
    # Element i's counter is (0, i). The 0 is taken from the key (_zero_from), so
    # that the counters are computed where the key is: under a scan XLA would
    # otherwise hoist them out of the loop, in memory. With `after` it is
    # taken from each element of `after` instead: an elementwise use, which
    # XLA fuses into the op that reads `after` anyway (a slice of it, as in
    # _after, is a second reader, so XLA writes out an `after` that it
    # computes from a wider array, e.g. a bfloat16 cotangent from a float32 dot).
    zero = _zero_from(data) if after is None else _zeros_from(after)
    zeros = jnp.broadcast_to(zero, shape, out_sharding=out)
    count = zeros
    for d in range(len(shape)):
        index = lax.iota(jnp.uint32, shape[d])
        if after is None:  # an iota that is not loop-invariant either
            index = index + zero
        index = index * np.uint32(math.prod(shape[d + 1 :]))
        count = count + lax.broadcast_in_dim(index, shape, (d,), out_sharding=out)
    b1, b2 = _threefry2x32(data[0], data[1], zeros, count)
    mantissa = lax.shift_right_logical(b1 ^ b2, np.uint32(9))
    unit = lax.bitcast_convert_type(mantissa | np.uint32(0x3F800000), jnp.float32)
    lo, hi = np.float32(lo), np.float32(hi)
    # u * (hi - lo) rounded on its own: the max (a no-op, u * s >= 0) keeps XLA
    # from fusing the product and the sum into an FMA, which it does or not
    # depending on the program (then a slope could differ in its last bit).
    scaled = lax.max((unit - np.float32(1)) * (hi - lo), np.float32(0))
    return lax.max(lo, scaled + lo)


def _rrelu_slopes(key, shape, dtype, lo, hi, xu, after=None, like=None, plain=False):
    """rrelu's slopes of `shape`: `U(lo, hi)`, or its inverse for the
    `"xu"` convention (`xu`); `after`, `like`: see `_uniform`. `plain`:
    drawn by `jax.random.uniform` itself (the same bits; XLA may fuse its
    last two steps into one FMA, so a slope may differ in its last bit)."""
    if plain:
        out = _sharded(like) if shape else None
        draw = jax.random.uniform(key, shape, jnp.float32, lo, hi, out_sharding=out)
    else:
        draw = _uniform(key, shape, lo, hi, after, like)
    return (1.0 / draw if xu else draw).astype(dtype)


@jax.custom_batching.custom_vmap
def _zero_from(v: Array) -> Array:
    """One `uint32` 0 that XLA cannot fold: `_zeros_from` of `v`'s
    first element. Under `vmap` it stays one unbatched 0, taken from the
    first element of the whole batch (the rule below).

    An axis split by `v`'s sharding (explicit mesh axes) cannot be sliced to
    one element: it is kept whole, and the 0 is the max of its zeros (one
    element per row of that axis, and a one-word all-reduce).
    """
    shards = _shards(v)
    if any(k > 1 for k in shards):
        limit = tuple(n if k > 1 else 1 for n, k in zip(v.shape, shards, strict=True))
        return jnp.max(_zeros_from(lax.slice(v, (0,) * v.ndim, limit)))
    return _zeros_from(lax.reshape(lax.slice(v, (0,) * v.ndim, (1,) * v.ndim), ()))


@_zero_from.def_vmap
def _zero_from_vmap(axis_size, in_batched, v):
    del axis_size, in_batched
    return _zero_from(v[0]), False


def _zeros_from(v: Array) -> Array:
    """`uint32` zeros of `v`'s shape that XLA cannot fold: `popcount(bits
    of v[i]) >> 7` (a popcount is at most 64)."""
    v = lax.stop_gradient(v)
    word = lax.bitcast_convert_type(v, jnp.dtype(f"uint{8 * v.dtype.itemsize}"))
    ones = lax.population_count(word)
    return lax.shift_right_logical(ones, np.array(7, ones.dtype)).astype(jnp.uint32)


def _after(key: Array, v: Array) -> Array:
    """`key`, made to depend on the data of `v` (same value, same draws).

    XLA schedules a random draw as soon as its key is ready, and on CPU it
    drops optimization barriers before scheduling, so a draw from a key that is
    ready early (an argument, a constant) is hoisted to the start of the step and
    its bits stay live until their use. Xoring the key data with a 0 computed
    from `v` (`_zero_from`) makes the draw wait for `v`.
    """
    zero = _zero_from(lax.stop_gradient(v))
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        data = jax.random.key_data(key)
        return jax.random.wrap_key_data(data ^ zero, impl=jax.random.key_impl(key))
    return key ^ zero  # a legacy uint32 key
