"""He (Kaiming) initialisers with the leaky gain, PyTorch's `calculate_gain`, and
the randomized asymmetric initialisation (RAI) of Lu et al. 2020 ([`rai`][leakyjax.initializers.rai]).

jax only. Each initialiser returns a `jax.nn.initializers.Initializer`,
usable as `kernel_init` in flax linen and nnx.
"""

from leakyjax._src.initializers import RAI_BETA as RAI_BETA
from leakyjax._src.initializers import RAI_SCALE as RAI_SCALE
from leakyjax._src.initializers import calculate_gain as calculate_gain
from leakyjax._src.initializers import for_activation as for_activation
from leakyjax._src.initializers import he_normal as he_normal
from leakyjax._src.initializers import he_truncated_normal as he_truncated_normal
from leakyjax._src.initializers import he_uniform as he_uniform
from leakyjax._src.initializers import kaiming_normal as kaiming_normal
from leakyjax._src.initializers import (
    kaiming_truncated_normal as kaiming_truncated_normal,
)
from leakyjax._src.initializers import kaiming_uniform as kaiming_uniform
from leakyjax._src.initializers import rai as rai
from leakyjax._src.initializers import rai_bias as rai_bias

__all__ = [
    "calculate_gain",
    "for_activation",
    "he_normal",
    "he_truncated_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_truncated_normal",
    "kaiming_uniform",
    "RAI_BETA",
    "RAI_SCALE",
    "rai",
    "rai_bias",
]
