"""Models for the training stack: an MLP and a 1-D / 2-D CNN (flax.linen).

Every hidden layer is ``Dense``/``Conv`` -> [BatchNorm] -> activation ->
[Dropout]; the activation is a fresh leakyjax module built from a registry spec
(``"leaky_relu:0.2"``), and the kernels use a fan-in normal initialiser scaled
by that activation's gain (He et al. 2015 for the leaky family).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn

from leakyjax._src import initializers as _init
from leakyjax._src import linen as _linen
from leakyjax._src import registry as _registry
from leakyjax._src.train import recycling as _cure

MODELS = ("mlp", "cnn")


def validate_activation(spec: str) -> str:
    """Returns ``spec`` stripped, or raises ValueError naming it and the valid names."""
    if not isinstance(spec, str):
        raise ValueError(f"activation must be a registry spec string, got {spec!r}.")
    _registry.parse(spec.strip())
    return spec.strip()


def _activation(spec: str, x, train: bool):
    module = _linen.get(spec)()
    if _registry.parse(spec).name == "rrelu":  # random slopes in training
        return module(x, deterministic=not train)
    return module(x)


def _head_init():
    """LeCun normal (gain 1, fan-in) for the linear output layer.

    Like flax's default ``lecun_normal`` but not truncated: a truncated normal
    costs seconds of XLA compilation on CPU, for no benefit here.
    """
    return _init.for_activation("linear")


class MLP(nn.Module):
    """``depth`` hidden Dense layers of ``width`` units, then a linear head.

    Attributes:
        activation: registry spec of the hidden activation.
        num_outputs: width of the output layer (classes or targets).
        depth: number of hidden layers.
        width: units per hidden layer (int, or a sequence of ``depth`` ints).
        dropout: dropout rate after each activation (0 disables).
        batch_norm: BatchNorm before each activation.
        init_scheme: ``"he"`` or ``"rai"`` for the hidden layers (see
            :func:`make_model`).
    """

    activation: str
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
                self.init_scheme, self.activation, x.shape[-1]
            )
            x = nn.Dense(
                w, kernel_init=kinit, bias_init=binit, use_bias=not self.batch_norm
            )(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train)(x)
            x = _activation(self.activation, x, train)
            if self.dropout:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_outputs, kernel_init=_head_init())(x)


class CNN(nn.Module):
    """``depth`` conv layers of ``width`` channels, then a linear head.

    1-D inputs ``(batch, length)`` get 1-D convolutions (kernel 5, stride 2,
    as the mnist1d paper's CNN); 2-D inputs ``(batch, h, w)`` get 3x3
    convolutions with stride 1 (digits are only 8x8).

    Attributes:
        activation: registry spec of the hidden activation.
        num_outputs: width of the output layer.
        depth: number of conv layers.
        width: channels per conv layer.
        dropout: dropout rate after each activation (0 disables).
        batch_norm: BatchNorm before each activation.
        init_scheme: ``"he"`` or ``"rai"`` for the hidden layers (see
            :func:`make_model`).
    """

    activation: str
    num_outputs: int
    depth: int = 3
    width: int = 32
    dropout: float = 0.0
    batch_norm: bool = False
    init_scheme: str = "he"

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        x = x[..., None]  # channels last
        one_d = x.ndim == 3
        kernel, strides = ((5,), (2,)) if one_d else ((3, 3), (1, 1))
        for _ in range(self.depth):
            fan_in = x.shape[-1] * (5 if one_d else 9)
            kinit, binit = _cure.initializers(self.init_scheme, self.activation, fan_in)
            x = nn.Conv(
                self.width,
                kernel,
                strides=strides,
                kernel_init=kinit,
                bias_init=binit,
                use_bias=not self.batch_norm,
            )(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train)(x)
            x = _activation(self.activation, x, train)
            if self.dropout:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(self.num_outputs, kernel_init=_head_init())(x)


def make_model(
    name: str,
    activation: str,
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
        name: ``"mlp"`` or ``"cnn"``.
        activation: registry spec, e.g. ``"leaky_relu:0.2"``.
        num_outputs: output width.
        depth: hidden layers (default 2 for mlp, 3 for cnn).
        width: units / channels (default 100 for mlp, 32 for cnn).
        dropout: dropout rate after each activation.
        batch_norm: BatchNorm before each activation.
        init: ``"he"`` (He-normal with the activation's gain, zero biases) or
            ``"rai"`` (randomized asymmetric initialisation of the hidden
            layers, :func:`leakyjax.initializers.rai`).

    Returns:
        A flax.linen module called as ``model.apply(variables, x, train=...)``.

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
    activation = validate_activation(activation)
    defaults = {"mlp": (2, 100), "cnn": (3, 32)}[name]
    depth = defaults[0] if depth is None else depth
    width = defaults[1] if width is None else width
    for arg, v in (("depth", depth), ("width", width)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"make_model: {arg} must be an int >= 1, got {v!r}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"make_model: dropout must be in [0, 1), got {dropout!r}.")
    cls = MLP if name == "mlp" else CNN
    return cls(
        activation=activation,
        num_outputs=num_outputs,
        depth=depth,
        width=width,
        dropout=dropout,
        batch_norm=batch_norm,
        init_scheme=init,
    )


__all__ = ["CNN", "MLP", "MODELS", "make_model"]
