"""Flax linen modules of the leaky rectifier family (`pip install "leakyjax[flax]"`).

`LeakyReLU`, `PReLU`, `RReLU`, `ELU`, `CELU`, `SELU`, `ReLU`,
`ReLU6`, `HardTanh`, `HardSigmoid` and
`Activation` (any function), the registry factory [`get`][leakyjax.linen.get], and
[`decay_mask`][leakyjax.linen.decay_mask] (optax weight-decay mask without the PReLU slopes). Same
names, arguments and numbers as [`leakyjax.nnx`][].
"""

from leakyjax._src.linen import CELU as CELU
from leakyjax._src.linen import ELU as ELU
from leakyjax._src.linen import SELU as SELU
from leakyjax._src.linen import Activation as Activation
from leakyjax._src.linen import HardSigmoid as HardSigmoid
from leakyjax._src.linen import HardTanh as HardTanh
from leakyjax._src.linen import LeakyReLU as LeakyReLU
from leakyjax._src.linen import PReLU as PReLU
from leakyjax._src.linen import ReLU as ReLU
from leakyjax._src.linen import ReLU6 as ReLU6
from leakyjax._src.linen import RReLU as RReLU
from leakyjax._src.linen import get as get
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
