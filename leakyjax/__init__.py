"""leakyjax: the leaky rectifier family for JAX, with exact, memory-lean derivatives.

`import leakyjax` needs only jax. The Flax modules live in [`leakyjax.linen`][]
and [`leakyjax.nnx`][] (`pip install leakyjax[flax]`).
"""

import importlib as _importlib
from importlib import metadata as _metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what the names are; loaded on first use (below)
    from leakyjax import diagnostics as diagnostics
    from leakyjax import initializers as initializers
    from leakyjax import recycle as recycle
    from leakyjax._src.activations import SELU_ALPHA as SELU_ALPHA
    from leakyjax._src.activations import SELU_SCALE as SELU_SCALE
    from leakyjax._src.activations import celu as celu
    from leakyjax._src.activations import elu as elu
    from leakyjax._src.activations import gelu as gelu
    from leakyjax._src.activations import hard_sigmoid as hard_sigmoid
    from leakyjax._src.activations import hard_tanh as hard_tanh
    from leakyjax._src.activations import leaky_relu as leaky_relu
    from leakyjax._src.activations import prelu as prelu
    from leakyjax._src.activations import relu as relu
    from leakyjax._src.activations import relu6 as relu6
    from leakyjax._src.activations import rrelu as rrelu
    from leakyjax._src.activations import selu as selu
    from leakyjax._src.activations import sigmoid as sigmoid
    from leakyjax._src.activations import silu as silu
    from leakyjax._src.activations import softplus as softplus
    from leakyjax._src.activations import tanh as tanh
    from leakyjax._src.optim import decay_mask as decay_mask
    from leakyjax._src.recycle import RecycleResult as RecycleResult
    from leakyjax._src.recycle import continual_backprop as continual_backprop
    from leakyjax._src.recycle import recycle_dormant as recycle_dormant
    from leakyjax._src.registry import available as available
    from leakyjax._src.registry import gain as gain
    from leakyjax._src.registry import get as get

# name -> (module, attribute or None for the module itself). Loaded on first access
# (PEP 562), so `leakyjax --version` and `--help` answer without importing jax.
_LAZY = {
    "diagnostics": ("leakyjax.diagnostics", None),
    "initializers": ("leakyjax.initializers", None),
    "recycle": ("leakyjax.recycle", None),
    "SELU_ALPHA": ("leakyjax._src.activations", "SELU_ALPHA"),
    "SELU_SCALE": ("leakyjax._src.activations", "SELU_SCALE"),
    "celu": ("leakyjax._src.activations", "celu"),
    "elu": ("leakyjax._src.activations", "elu"),
    "gelu": ("leakyjax._src.activations", "gelu"),
    "hard_sigmoid": ("leakyjax._src.activations", "hard_sigmoid"),
    "hard_tanh": ("leakyjax._src.activations", "hard_tanh"),
    "leaky_relu": ("leakyjax._src.activations", "leaky_relu"),
    "prelu": ("leakyjax._src.activations", "prelu"),
    "relu": ("leakyjax._src.activations", "relu"),
    "relu6": ("leakyjax._src.activations", "relu6"),
    "rrelu": ("leakyjax._src.activations", "rrelu"),
    "selu": ("leakyjax._src.activations", "selu"),
    "sigmoid": ("leakyjax._src.activations", "sigmoid"),
    "silu": ("leakyjax._src.activations", "silu"),
    "softplus": ("leakyjax._src.activations", "softplus"),
    "tanh": ("leakyjax._src.activations", "tanh"),
    "decay_mask": ("leakyjax._src.optim", "decay_mask"),
    "RecycleResult": ("leakyjax._src.recycle", "RecycleResult"),
    "continual_backprop": ("leakyjax._src.recycle", "continual_backprop"),
    "recycle_dormant": ("leakyjax._src.recycle", "recycle_dormant"),
    "available": ("leakyjax._src.registry", "available"),
    "gain": ("leakyjax._src.registry", "gain"),
    "get": ("leakyjax._src.registry", "get"),
}


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'leakyjax' has no attribute {name!r}") from None
    value = _importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


try:
    __version__ = _metadata.version("leakyjax")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "RecycleResult",
    "SELU_ALPHA",
    "SELU_SCALE",
    "available",
    "celu",
    "continual_backprop",
    "decay_mask",
    "diagnostics",
    "elu",
    "gain",
    "gelu",
    "hard_sigmoid",
    "hard_tanh",
    "initializers",
    "get",
    "leaky_relu",
    "prelu",
    "recycle",
    "recycle_dormant",
    "relu",
    "relu6",
    "rrelu",
    "selu",
    "sigmoid",
    "silu",
    "softplus",
    "tanh",
]
