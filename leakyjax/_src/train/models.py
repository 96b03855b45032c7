"""Models for the training stack: an MLP and a 1-D / 2-D CNN (flax.linen).

An activation spec (`"leaky_relu:0.2"`) is parsed once, into an
`ActivationFactory`; models receive the factory and call it once per
layer for a fresh module. Every hidden layer is `Dense`/`Conv` ->
[BatchNorm] -> activation -> [Dropout], and the kernels use a fan-in normal
initialiser scaled by that activation's gain (He et al. 2015 for the leaky
family). User models receive the same factory (see
[`leakyjax.train.train`][leakyjax.train.train]'s `model` argument).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import flax.linen as nn

from leakyjax._src import initializers as _init
from leakyjax._src import registry as _registry
from leakyjax._src.train import recycling as _cure

MODELS = ("mlp", "cnn")


class ActivationFactory(NamedTuple):
    """A parsed, validated activation spec that makes fresh modules.

    `act(train=...)` returns a new module (linen, or nnx for
    `api="nnx"`) on each call, so every layer gets its own parameters
    (PReLU). `train` matters only for random activations (RReLU draws random
    slopes in training, the fixed mean slope otherwise); keyword overrides go to
    the module (`act(num_parameters=64)`), and nnx modules take `rngs=`.

    Attributes:
        spec: the spec as given, stripped (the label of results).
        name: the activation's registry name (`"leaky_relu"`).
        api: `"linen"` or `"nnx"`.
        kwargs: every parameter of the activation, defaults filled in, as
            `(name, value)` pairs (hashable, so the factory can key caches).

    Example:
        >>> from leakyjax.train import activation_factory
        >>> act = activation_factory("leaky_relu:0.2")
        >>> act.spec, act.canonical, type(act()).__name__
        ('leaky_relu:0.2', 'leaky_relu:negative_slope=0.2', 'LeakyReLU')
    """

    spec: str
    name: str
    api: str = "linen"
    kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def parsed(self) -> _registry.Spec:
        """The registry's `Spec` (name and full keyword arguments)."""
        return _registry.Spec(self.name, dict(self.kwargs))

    @property
    def canonical(self) -> str:
        """The registry's canonical spelling (`"ELU"` -> `"elu:alpha=1.0"`):
        two specs with the same canonical form are the same activation."""
        return str(self.parsed)

    def __call__(self, *, train: bool = False, **overrides: Any) -> Any:
        make = _module_factory(self.api, self.name, self.kwargs)
        if self.name == "rrelu" and self.api == "linen":
            overrides.setdefault("deterministic", not train)
        module: Any = make(**overrides)
        if self.name == "rrelu" and self.api == "nnx":
            module.deterministic = not train
        return module

    def with_api(self, api: str) -> ActivationFactory:
        """The same activation for the other Flax API (`"linen"`, `"nnx"`)."""
        return self._replace(api=api)


@functools.lru_cache(maxsize=256)
def _module_factory(api: str, name: str, kwargs: tuple) -> Any:
    """`leakyjax.linen.get` / `leakyjax.nnx.get` of a parsed spec, made once.

    Both take the registry's parsed `Spec` where a spec string goes (their
    `modules.factory_args` reads either), so nothing is parsed again."""
    parsed = _registry.Spec(name, dict(kwargs))
    if api == "nnx":
        from leakyjax._src import nnx as _nnx

        return _nnx.get(parsed)  # pyright: ignore[reportArgumentType]
    from leakyjax._src import linen as _linen

    return _linen.get(parsed)  # pyright: ignore[reportArgumentType]


@functools.lru_cache(maxsize=256)
def _parse(spec: str) -> ActivationFactory:
    parsed = _registry.parse(spec)
    return ActivationFactory(spec, parsed.name, "linen", tuple(parsed.kwargs.items()))


def activation_factory(spec: str | ActivationFactory) -> ActivationFactory:
    """Parse and validate `spec` once; the result makes modules per layer.

    The one place a spec string becomes a value: a spec is parsed (and its
    parameters checked) once per process, and the factory carries the parsed
    parameters down to every module it makes.

    Args:
        spec: a registry spec such as `"elu:alpha=0.5"` (or a factory, returned
            as is).

    Returns:
        An `ActivationFactory`.

    Raises:
        ValueError: for an invalid spec, naming the closest valid name.
    """
    if isinstance(spec, ActivationFactory):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"activation must be a registry spec string, got {spec!r}.")
    return _parse(spec.strip())


def validate_activation(spec: str) -> str:
    """Returns `spec` stripped, or raises ValueError naming it and the valid names."""
    return activation_factory(spec).spec


@functools.lru_cache(maxsize=1)
def _head_init():
    """LeCun normal (gain 1, fan-in) for the linear output layer.

    Like flax's default `lecun_normal` but not truncated: a truncated normal
    costs seconds of XLA compilation on CPU, for no benefit here.
    """
    return _init.for_activation("linear")


class MLP(nn.Module):
    """`depth` hidden Dense layers of `width` units, then a linear head.

    Attributes:
        act: the activation (an `ActivationFactory`).
        num_outputs: width of the output layer (classes or targets).
        depth: number of hidden layers.
        width: units per hidden layer (int, or a sequence of `depth` ints).
        dropout: dropout rate after each activation (0 disables).
        batch_norm: BatchNorm before each activation.
        init_scheme: `"he"` or `"rai"` for the hidden layers (see
            `make_model`).
    """

    act: ActivationFactory
    num_outputs: int
    depth: int = 2
    width: int | Sequence[int] = 100
    dropout: float = 0.0
    batch_norm: bool = False
    init_scheme: str = "he"

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        x = x.reshape(x.shape[0], -1)
        widths = (
            [self.width] * self.depth if isinstance(self.width, int) else self.width
        )
        for w in widths:
            kinit, binit = _cure.initializers(
                self.init_scheme, self.act.parsed, x.shape[-1]
            )
            x = nn.Dense(
                w, kernel_init=kinit, bias_init=binit, use_bias=not self.batch_norm
            )(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train)(x)
            x = self.act(train=train)(x)
            if self.dropout:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_outputs, kernel_init=_head_init())(x)


class CNN(nn.Module):
    """`depth` conv layers of `width` channels, then a linear head.

    1-D inputs `(batch, length)` get the mnist1d notebook's `ConvBase`
    (Greydanus 2020): a kernel-5 convolution then kernel-3 ones, all stride 2
    with one sample of zero padding each side, 25 channels by default (a
    40-sample signal becomes 19, 10, 5 positions: a 125-feature linear head).
    2-D inputs `(batch, h, w)` get 3x3 convolutions with stride 1 and SAME
    padding (digits are only 8x8).

    Attributes:
        act: the activation (an `ActivationFactory`).
        num_outputs: width of the output layer.
        depth: number of conv layers.
        width: channels per conv layer.
        dropout: dropout rate after each activation (0 disables).
        batch_norm: BatchNorm before each activation.
        init_scheme: `"he"` or `"rai"` for the hidden layers (see
            `make_model`).
    """

    act: ActivationFactory
    num_outputs: int
    depth: int = 3
    width: int = 25
    dropout: float = 0.0
    batch_norm: bool = False
    init_scheme: str = "he"

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        x = x[..., None]  # channels last
        one_d = x.ndim == 3
        for i in range(self.depth):
            if one_d:
                kernel, strides, padding = ((5,) if i == 0 else (3,)), (2,), 1
            else:
                kernel, strides, padding = (3, 3), (1, 1), "SAME"
            fan_in = x.shape[-1] * math.prod(kernel)
            kinit, binit = _cure.initializers(self.init_scheme, self.act.parsed, fan_in)
            x = nn.Conv(
                self.width,
                kernel,
                strides=strides,
                padding=padding,
                kernel_init=kinit,
                bias_init=binit,
                use_bias=not self.batch_norm,
            )(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train)(x)
            x = self.act(train=train)(x)
            if self.dropout:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(self.num_outputs, kernel_init=_head_init())(x)


_DEFAULTS = {"mlp": (2, 100), "cnn": (3, 25)}


def make_model(
    name: str,
    activation: str | ActivationFactory,
    num_outputs: int,
    *,
    depth: int | None = None,
    width: int | None = None,
    dropout: float = 0.0,
    batch_norm: bool = False,
    init: str = "he",
) -> nn.Module:
    """Build a model by name.

    Args:
        name: `"mlp"` or `"cnn"`.
        activation: registry spec, e.g. `"leaky_relu:0.2"`, or an
            `ActivationFactory`.
        num_outputs: output width.
        depth: hidden layers (default 2 for mlp, 3 for cnn).
        width: units / channels (default 100 for mlp, 25 for cnn).
        dropout: dropout rate after each activation.
        batch_norm: BatchNorm before each activation.
        init: `"he"` (He-normal with the activation's gain, zero biases) or
            `"rai"` (randomized asymmetric initialisation of the hidden
            layers, [`leakyjax.initializers.rai`][leakyjax.initializers.rai] and `rai_bias`).

    Returns:
        A flax.linen module called as `model.apply(variables, x, train=...)`.

    Raises:
        ValueError: for an unknown model or activation, or bad sizes.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from leakyjax.train import make_model
        >>> m = make_model("mlp", "leaky_relu:0.2", 10, depth=2, width=16)
        >>> v = m.init(jax.random.key(0), jnp.zeros((1, 40)))
        >>> m.apply(v, jnp.zeros((3, 40))).shape
        (3, 10)
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}.")
    act = activation_factory(activation)
    depth = _DEFAULTS[name][0] if depth is None else depth
    width = _DEFAULTS[name][1] if width is None else width
    for arg, v in (("depth", depth), ("width", width)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"make_model: {arg} must be an int >= 1, got {v!r}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"make_model: dropout must be in [0, 1), got {dropout!r}.")
    cls = MLP if name == "mlp" else CNN
    return cls(
        act=act,
        num_outputs=num_outputs,
        depth=depth,
        width=width,
        dropout=dropout,
        batch_norm=batch_norm,
        init_scheme=init,
    )


__all__ = [
    "CNN",
    "MLP",
    "MODELS",
    "ActivationFactory",
    "activation_factory",
    "make_model",
]
