"""equinox modules of the leaky rectifier family (`pip install "leakyjax[equinox]"`).

`LeakyReLU`, `PReLU`, `RReLU`, `ELU`, `CELU`, `SELU`, `ReLU`,
`ReLU6`, `HardTanh`, `HardSigmoid` and
`Activation` (any registry spec or function), the registry factory
[`get`][leakyjax.equinox.get], [`capture`][leakyjax.equinox.capture] (every activation's input, for diagnostics) and
[`decay_mask`][leakyjax.equinox.decay_mask] (optax weight-decay mask without the PReLU slopes). Same
names, arguments and numbers as [`leakyjax.linen`][] and [`leakyjax.nnx`][].
"""

from leakyjax._src.equinox import CELU as CELU
from leakyjax._src.equinox import ELU as ELU
from leakyjax._src.equinox import SELU as SELU
from leakyjax._src.equinox import Activation as Activation
from leakyjax._src.equinox import HardSigmoid as HardSigmoid
from leakyjax._src.equinox import HardTanh as HardTanh
from leakyjax._src.equinox import LeakyReLU as LeakyReLU
from leakyjax._src.equinox import PReLU as PReLU
from leakyjax._src.equinox import ReLU as ReLU
from leakyjax._src.equinox import ReLU6 as ReLU6
from leakyjax._src.equinox import RReLU as RReLU
from leakyjax._src.equinox import capture as capture
from leakyjax._src.equinox import get as get
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
    "capture",
    "decay_mask",
    "get",
]
