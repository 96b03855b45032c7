"""leakyjax: the leaky rectifier family for JAX, with exact, memory-lean derivatives.

`import leakyjax` needs only jax. The Flax modules live in [`leakyjax.linen`][]
and [`leakyjax.nnx`][] (`pip install leakyjax[flax]`).
"""

from importlib import metadata as _metadata

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
