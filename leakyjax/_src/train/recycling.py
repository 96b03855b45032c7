"""Cures for dying units in the training stack: RAI initialisation, ReDo recycling.

Two knobs of [`leakyjax.train.TrainConfig`][leakyjax.train.TrainConfig] (`leakyjax compare --init`,
`--recycle`) come here, so that the loop and the models only call into this
module:

* `init="rai"`: hidden layers get [`leakyjax.initializers.rai`][leakyjax.initializers.rai] kernels and
  [`leakyjax.initializers.rai_bias`][leakyjax.initializers.rai_bias] biases instead of He's
  (`initializers`);
* `recycle_every=F`: every `F` optimiser steps the units of the hidden
  layers that are τ-dormant on the current batch (`recycle_tau`) are recycled
  with [`leakyjax.recycle_dormant`][leakyjax.recycle_dormant] (`make_recycler`), and the
  per-layer counts are accumulated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from leakyjax._src import initializers as _init
from leakyjax._src import recycle as _rc
from leakyjax._src import registry as _registry


def layer_order(name: str) -> tuple:
    """Sort key of activation-layer names: digits compare as numbers, so
    `layer_10` comes after `layer_9` (the order of the loop's dead fractions
    and recycled counts)."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


INITS = ("he", "rai")


def check(init: str, recycle_every: Any, recycle_tau: Any) -> None:
    """Raises ValueError naming the bad field."""
    if init not in INITS:
        raise ValueError(
            f"TrainConfig.init must be one of {', '.join(INITS)}, got {init!r}."
        )
    if recycle_every is not None and (
        isinstance(recycle_every, bool)
        or not isinstance(recycle_every, int)
        or recycle_every < 1
    ):
        raise ValueError(
            f"TrainConfig.recycle_every must be an int >= 1 or None, got "
            f"{recycle_every!r}."
        )
    if not (isinstance(recycle_tau, (int, float)) and 0 <= recycle_tau < float("inf")):
        raise ValueError(
            f"TrainConfig.recycle_tau must be a number >= 0, got {recycle_tau!r}."
        )


def initializers(init: str, activation: Any, fan_in: int) -> tuple[Any, Any]:
    """(kernel_init, bias_init) of a hidden layer with `fan_in` inputs
    (`activation`: a spec, or the registry's parsed `Spec`)."""
    if init == "rai":
        return _init.rai(), _init.rai_bias(fan_in)
    return _init.for_activation(activation), jax.nn.initializers.zeros


def make_recycler(
    net: Any, activation: str, init: str, every: int, tau: float
) -> Callable:
    """`f(step, params, extra, opt_state, x, key) -> (params, opt_state, counts)`.

    ReDo every `every` steps, after the update of steps `every - 1,
    2 every - 1, ...` (`step` counts from 0), scored on the batch `x`;
    `counts` is a `(layers,)` int32 array of the units recycled at this step,
    layers in the loop's order. New incoming weights come from the model's own
    initialiser (`init`). jit/vmap-safe; `net` is the loop's linen
    `Net`.
    """
    fn = _registry.get(activation)  # prelu: its initial slope; rrelu: mean slope
    kernel_init = _init.rai() if init == "rai" else _init.for_activation(activation)

    def f(step, params, extra, opt_state, x, key):
        _, pre = net.capture(params, extra, x)
        names = sorted(pre, key=layer_order)
        pre = {n: pre[n] for n in names}
        pairs = _rc.layer_pairs(params, pre)
        bias_init = None  # zeros, as the He models
        if init == "rai":
            bias_init = {}
            for inc, _ in pairs.values():
                k = _rc._get(params, (*_rc._split(inc), "kernel"))
                bias_init[inc] = _init.rai_bias(k.size // k.shape[-1])

        def go(_):
            r = _rc.recycle_dormant(
                params,
                pre,
                key=key,
                opt_state=opt_state,
                tau=tau,
                activation=fn,
                layers=pairs,
                kernel_init=kernel_init,
                bias_init=bias_init,
            )
            counts = jnp.stack([r.recycled[n] for n in names]).astype(jnp.int32)
            return r.params, r.opt_state, counts

        def skip(_):
            return params, opt_state, jnp.zeros((len(names),), jnp.int32)

        return jax.lax.cond((step + 1) % every == 0, go, skip, None)

    return f
