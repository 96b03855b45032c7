"""Activation specs for the training stack, on top of the public leakyjax APIs.

The registry (:func:`leakyjax.get` specs such as ``"leaky_relu:0.2"``) names the
activation; :mod:`leakyjax.linen` builds its module, :mod:`leakyjax.initializers`
the matching He initialiser, :func:`leakyjax.decay_mask` the weight-decay mask
and :mod:`leakyjax.diagnostics` measures dead units.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jax

from leakyjax._src import capture as _capture
from leakyjax._src import diagnostics as _dg
from leakyjax._src import initializers as _init
from leakyjax._src import linen as _linen
from leakyjax._src import optim as _optim
from leakyjax._src import registry as _registry


def available() -> tuple[str, ...]:
    """Activation names the training stack accepts (the registry's)."""
    return tuple(_registry.available())


def validate(spec: str) -> str:
    """Return ``spec`` stripped, or raise ValueError naming it and the valid names."""
    if not isinstance(spec, str):
        raise ValueError(f"activation must be a registry spec string, got {spec!r}.")
    _registry.parse(spec.strip())
    return spec.strip()


def gain(spec: str) -> float:
    """The He/Kaiming gain of an activation (:func:`leakyjax.gain`)."""
    return float(_registry.gain(spec))


def kernel_init(spec: str) -> Callable:
    """He normal kernel initialiser with ``spec``'s gain (fan-in)."""
    return _init.for_activation(spec)


def head_init() -> Callable:
    """LeCun normal (gain 1, fan-in) for the linear output layer.

    Like flax's default ``lecun_normal`` but not truncated: a truncated normal
    costs seconds of XLA compilation on CPU, for no benefit here.
    """
    return _init.for_activation("linear")


def module_factory(spec: str) -> Callable[[], Any]:
    """A zero-argument factory returning a fresh leakyjax linen module."""
    return _linen.get(spec)


def needs_rng(spec: str) -> bool:
    """True for activations that take ``deterministic`` and an rng (RReLU)."""
    return _registry.parse(spec).name == "rrelu"


def weight_decay_mask(params: Any) -> Any:
    """True for parameters that get weight decay: all but PReLU slopes."""
    return _optim.decay_mask(params)


def _layer_order(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def dead_fraction_fn(model: Any) -> Callable[[Any, Any], Any]:
    """``f(variables, x) -> (layers,)`` dead-unit fractions, for jit and vmap.

    A unit is dead when its pre-activation is <= 0 on every example of ``x``
    (:func:`leakyjax.diagnostics.result`); layers are the leakyjax activation
    modules in call order.
    """

    def f(variables, x):
        _, acts = _capture.capture_linen(model, variables, x, train=False)
        names = sorted(acts, key=_layer_order)
        acts = {n: acts[n] for n in names}
        stats = _dg.result(_dg.update(_dg.init(acts), acts))
        return jax.numpy.stack([stats[n].dead_fraction for n in names])

    return f


__all__ = [
    "available",
    "dead_fraction_fn",
    "gain",
    "kernel_init",
    "module_factory",
    "needs_rng",
    "validate",
    "weight_decay_mask",
]
