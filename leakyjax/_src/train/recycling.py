"""Cures for dying units in the training stack: RAI initialisation, ReDo recycling.

Two knobs of :class:`leakyjax.train.TrainConfig` (``leakyjax compare --init``,
``--recycle``) come here, so that the loop and the models only call into this
module:

* ``init="rai"``: hidden layers get :func:`leakyjax.initializers.rai` kernels and
  :func:`leakyjax.initializers.rai_bias` biases instead of He's
  (:func:`initializers`);
* ``recycle_every=F``: every ``F`` optimiser steps the units of the hidden
  layers that are τ-dormant on the current batch (``recycle_tau``) are recycled
  with :func:`leakyjax.recycle_dormant` (:func:`make_recycler`), and the
  per-layer counts are accumulated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from leakyjax._src import capture as _capture
from leakyjax._src import initializers as _init
from leakyjax._src import recycle as _rc
from leakyjax._src import registry as _registry

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


def initializers(init: str, activation: str, fan_in: int) -> tuple[Any, Any]:
    """(kernel_init, bias_init) of a hidden layer with ``fan_in`` inputs."""
    if init == "rai":
        return _init.rai(), _init.rai_bias(fan_in)
    return _init.for_activation(activation), jax.nn.initializers.zeros


def make_recycler(
    model: Any, activation: str, init: str, every: int, tau: float
) -> Callable:
    """``f(step, params, batch_stats, opt_state, x, key) -> (params, opt_state,
    counts)``: ReDo every ``every`` steps (``step`` counts from 0; recycling
    follows the update of steps ``every - 1, 2 every - 1, ...``); ``counts`` is
    a ``(layers,)`` int32 array of units recycled at this step. jit/vmap-safe.
    """
    fn = _registry.get(activation)  # prelu: its initial slope; rrelu: mean slope
    kernel_init = _init.rai() if init == "rai" else _init.for_activation(activation)
    bias_init = None  # rai_bias needs the fan-in: zeros for He; see below

    from leakyjax._src.train.loop import _layer_order  # the loop's layer order

    def f(step, params, batch_stats, opt_state, x, key):
        variables = {"params": params}
        if batch_stats:
            variables["batch_stats"] = batch_stats
        _, pre = _capture.capture_linen(model, variables, x, train=False)
        names = sorted(pre, key=_layer_order)
        pre = {n: pre[n] for n in names}
        pairs = _rc.layer_pairs(params, pre)
        binit = bias_init
        if init == "rai":
            binit = {
                inc: _init.rai_bias(
                    int(
                        jnp.size(params[inc]["kernel"])
                        // params[inc]["kernel"].shape[-1]
                    )
                )
                for inc, _ in pairs.values()
            }

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
                bias_init=binit,
            )
            counts = jnp.stack([r.recycled[n] for n in names]).astype(jnp.int32)
            return r.params, r.opt_state, counts

        def skip(_):
            return params, opt_state, jnp.zeros((len(names),), jnp.int32)

        return jax.lax.cond((step + 1) % every == 0, go, skip, None)

    return f
