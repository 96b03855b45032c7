"""Gradient statistics: norms and exactly-zero fractions per leaf and layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


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
    r"""Gradient-norm statistics of a gradient pytree, from [gradient_stats][leakyjax.diagnostics.gradient_stats].

    Attributes:
        global_norm: $\sqrt{\sum_\text{leaves} \lVert g \rVert^2}$, as
            `optax.global_norm`.
        zero_fraction: fraction of all gradient entries exactly equal to 0.
        leaves: `{"Dense_0/kernel": LeafGradientStats, ...}`, one per array.
        layers: `{"Dense_0": LeafGradientStats, ...}`, the arrays grouped by
            their parent path (a layer's kernel and bias together).
    """

    global_norm: Array
    zero_fraction: Array
    leaves: dict
    layers: dict


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
    # nnx.Variable leaves are reached through their `value` attribute.
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
        grads: a pytree of float arrays (from `jax.grad`, `nnx.grad`,
            ...). Leaves are named by their path (`"Dense_0/kernel"`).

    Returns:
        A [GradientStats][leakyjax.diagnostics.GradientStats]: the global norm, the global zero fraction and
        [LeafGradientStats][leakyjax.diagnostics.LeafGradientStats] per leaf and per layer (leaves grouped by
        parent path). Works under `jax.jit`.

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
        dtype = g.dtype if hasattr(g, "dtype") else np.asarray(g).dtype
        if not (jnp.issubdtype(dtype, np.number) or jnp.issubdtype(dtype, np.bool_)):
            raise TypeError(
                f"gradient_stats: leaf {_path_name(path)!r} is a "
                f"{type(g).__name__}, not an array of numbers; grads must be a "
                "pytree of float arrays (from jax.grad)."
            )
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
