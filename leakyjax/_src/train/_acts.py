"""Activation specs for the training stack: validation, modules, gains, masks.

Uses :mod:`leakyjax.linen` / the registry / :mod:`leakyjax.initializers` (the
public leakyjax APIs) when they are importable; this module only adapts them to
what the models and the optimiser need.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax

import leakyjax

# Comparators the compare CLI accepts besides the leaky family.
_FALLBACK_NAMES = (
    "relu",
    "leaky_relu",
    "prelu",
    "rrelu",
    "elu",
    "celu",
    "selu",
    "tanh",
    "sigmoid",
    "gelu",
    "silu",
    "softplus",
)


def _registry():
    try:
        from leakyjax._src import registry
    except ImportError:
        return None
    return registry


def _linen():
    try:
        from leakyjax._src import linen
    except ImportError:
        return None
    return linen


def _parse(spec: str) -> tuple[str, tuple[float, ...], dict[str, float]]:
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"activation spec must be a non-empty string, got {spec!r}.")
    name, _, rest = spec.strip().partition(":")
    if name not in _FALLBACK_NAMES:
        raise ValueError(
            f"unknown activation {name!r}; valid: {', '.join(_FALLBACK_NAMES)}."
        )
    args: list[float] = []
    kwargs: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        k, eq, v = part.partition("=")
        try:
            val = float(v if eq else k)
        except ValueError:
            raise ValueError(
                f"activation {spec!r}: cannot read {part!r} as a number "
                "(write e.g. 'leaky_relu:0.2' or 'elu:alpha=0.5')."
            ) from None
        if eq:
            kwargs[k.strip()] = val
        else:
            args.append(val)
    return name, tuple(args), kwargs


def available() -> tuple[str, ...]:
    """Activation names the training stack accepts."""
    reg = _registry()
    if reg is not None and hasattr(reg, "available"):
        return tuple(reg.available())
    return _FALLBACK_NAMES


def validate(spec: str) -> str:
    """Return ``spec`` stripped, or raise ValueError naming it and the valid names."""
    reg = _registry()
    if reg is not None:
        reg.get(spec)  # raises ValueError with the closest valid name
        return spec.strip()
    _parse(spec)
    return spec.strip()


def _slope(spec: str) -> float | None:
    """Negative-side slope at initialisation for the leaky family, else None."""
    name, args, kwargs = _parse(spec)
    if name == "relu":
        return 0.0
    if name == "leaky_relu":
        return float(args[0] if args else kwargs.get("negative_slope", 0.01))
    if name == "prelu":
        return float(args[0] if args else kwargs.get("negative_slope_init", 0.25))
    if name == "rrelu":
        lo = kwargs.get("lower", args[0] if args else 1 / 8)
        hi = kwargs.get("upper", args[1] if len(args) > 1 else 1 / 3)
        return (lo + hi) / 2
    return None


def gain(spec: str) -> float:
    """The He/Kaiming gain of an activation (std multiplier of a fan-in init)."""
    if hasattr(leakyjax, "gain"):
        return float(leakyjax.gain(spec))
    name = _parse(spec)[0]
    a = _slope(spec)
    if a is not None:
        return math.sqrt(2.0 / (1.0 + a * a))
    return {"tanh": 5.0 / 3.0, "sigmoid": 1.0, "selu": 1.0}.get(name, math.sqrt(2.0))


def kernel_init(spec: str) -> Callable:
    """A fan-in normal kernel initialiser matched to ``spec``'s gain."""
    g = gain(spec)
    return jax.nn.initializers.variance_scaling(g * g, "fan_in", "truncated_normal")


def module_factory(spec: str) -> Callable[[], Any]:
    """A zero-argument factory returning a fresh linen module for ``spec``."""
    lin = _linen()
    if lin is not None and hasattr(lin, "get"):
        return lin.get(spec)
    import flax.linen as nn

    name, args, kwargs = _parse(spec)
    if name == "prelu":
        init = _slope(spec)

        class PReLU(nn.Module):
            @nn.compact
            def __call__(self, x):
                a = self.param("negative_slope", nn.initializers.constant(init), ())
                return leakyjax.prelu(x, a)

        return PReLU
    if name == "rrelu":

        class RReLU(nn.Module):
            deterministic: bool | None = None

            @nn.compact
            def __call__(self, x, deterministic: bool | None = None):
                det = nn.merge_param("deterministic", self.deterministic, deterministic)
                key = None if det else self.make_rng("rrelu")
                return leakyjax.rrelu(x, key, *args, **kwargs)

        return RReLU
    fn = getattr(leakyjax, name)

    class Act(nn.Module):
        @nn.compact
        def __call__(self, x):
            return fn(x, *args, **kwargs)

    Act.__name__ = name
    return Act


def needs_rng(spec: str) -> bool:
    return spec.strip().split(":")[0] == "rrelu"


def weight_decay_mask(params: Any) -> Any:
    """True for parameters that get weight decay: all but PReLU slopes."""
    lin = _linen()
    for mod in (lin, _optim()):
        if mod is not None and hasattr(mod, "weight_decay_mask"):
            return mod.weight_decay_mask(params)

    def keep(path, leaf):
        names = [str(getattr(p, "key", p)) for p in path]
        return not any("prelu" in n.lower() or n == "negative_slope" for n in names)

    return jax.tree_util.tree_map_with_path(keep, params)


def _optim():
    try:
        from leakyjax._src import optim
    except ImportError:
        return None
    return optim


__all__ = ["available", "gain", "kernel_init", "module_factory", "validate"]
