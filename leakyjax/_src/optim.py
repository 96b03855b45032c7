"""Weight-decay masks for optax: no decay on PReLU slopes (He et al. 2015).

He et al. train PReLU slopes without weight decay: decay pulls the slopes
towards 0, i.e. towards relu, which is not a prior anybody wants. optax's
`adamw`/`add_decayed_weights` take a `mask` pytree (True = decay); this
module builds it from parameter names, for linen `params` dicts and nnx
`State` objects alike. jax only: optax is not imported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax

__all__ = ["decay_mask"]

#: The parameter name of PReLU slopes in leakyjax.linen/nnx (and flax.linen.PReLU).
PRELU_PARAM = "negative_slope"
_BIAS_AND_NORM = ("bias", "scale")
# Attribute keys inside an nnx Variable pytree node; not parameter names.
_VARIABLE_KEYS = ("value", "raw_value")


def _leaf_name(path: tuple) -> str | None:
    """The name of the parameter a pytree path leads to (its last named key)."""
    for entry in reversed(path):
        if isinstance(entry, jax.tree_util.DictKey):
            name = entry.key
        elif isinstance(entry, jax.tree_util.GetAttrKey):
            name = entry.name
        else:
            continue
        if name in _VARIABLE_KEYS:
            continue
        return str(name)
    return None


def decay_mask(
    params: Any,
    *,
    exclude_bias_and_norm: bool = False,
    exclude: Iterable[str] = (),
) -> Any:
    """A pytree of bools for optax's `mask=`: True where weight decay applies.

    Parameters named `negative_slope` -- the PReLU slopes of
    [`leakyjax.linen.PReLU`][], [`leakyjax.nnx.PReLU`][] and
    `flax.linen.PReLU` -- are always False (no decay), as in He et al.
    (2015). With `exclude_bias_and_norm=True`, parameters named `bias` and
    `scale` (the biases of Dense/Conv/Linear and the scales of
    LayerNorm/BatchNorm/RMSNorm) are excluded too, as optax users often do.

    Works on whatever pytree optax sees: a linen `params` dict, or an nnx
    `State` (`nnx.state(model, nnx.Param)`; the mask then has the same
    structure, as optax requires). It can also be passed as a callable:
    `optax.adamw(lr, weight_decay=wd, mask=decay_mask)`.

    Args:
        params: the parameter pytree.
        exclude_bias_and_norm: also exclude `bias` and `scale` parameters.
        exclude: further parameter names to exclude.

    Returns:
        A pytree of Python bools with the structure of `params`.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import decay_mask
        >>> params = {"dense": {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)},
        ...           "prelu": {"negative_slope": jnp.array(0.25)}}
        >>> decay_mask(params)
        {'dense': {'bias': True, 'kernel': True}, 'prelu': {'negative_slope': False}}
        >>> decay_mask(params, exclude_bias_and_norm=True)["dense"]
        {'bias': False, 'kernel': True}
    """
    if isinstance(exclude, str):
        raise TypeError(
            "decay_mask: exclude must be an iterable of names, e.g. ('embedding',),"
            f" not the string {exclude!r}."
        )
    names = {PRELU_PARAM, *exclude}
    if exclude_bias_and_norm:
        names.update(_BIAS_AND_NORM)
    return jax.tree_util.tree_map_with_path(
        lambda path, _: _leaf_name(path) not in names, params
    )
