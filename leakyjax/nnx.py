"""Flax nnx modules of the leaky rectifier family (`pip install "leakyjax[flax]"`).

`LeakyReLU`, `PReLU`, `RReLU`, `ELU`, `CELU`, `SELU`, `ReLU`,
`ReLU6`, `HardTanh`, `HardSigmoid` and
`Activation` (any function), the registry factory [`get`][leakyjax.nnx.get], and
[`decay_mask`][leakyjax.nnx.decay_mask] (optax weight-decay mask without the PReLU slopes). Same
names, arguments and numbers as [`leakyjax.linen`][].
"""

from leakyjax._src.nnx import CELU as CELU
from leakyjax._src.nnx import ELU as ELU
from leakyjax._src.nnx import SELU as SELU
from leakyjax._src.nnx import Activation as Activation
from leakyjax._src.nnx import HardSigmoid as HardSigmoid
from leakyjax._src.nnx import HardTanh as HardTanh
from leakyjax._src.nnx import LeakyReLU as LeakyReLU
from leakyjax._src.nnx import PReLU as PReLU
from leakyjax._src.nnx import ReLU as ReLU
from leakyjax._src.nnx import ReLU6 as ReLU6
from leakyjax._src.nnx import RReLU as RReLU
from leakyjax._src.nnx import get as get
from leakyjax._src.optim import decay_mask as decay_mask

__all__ = [
    "CELU",
    "ELU",
    "SELU",
    "Activation",
    "HardSigmoid",
    "HardTanh",
    "LeakyReLU",
    "PReLU",
    "RReLU",
    "ReLU",
    "ReLU6",
    "decay_mask",
    "get",
]
