"""He (Kaiming) initialisers with the leaky gain, and PyTorch's ``calculate_gain``.

jax only. Each initialiser returns a :class:`jax.nn.initializers.Initializer`,
usable as ``kernel_init`` in flax linen and nnx.
"""

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

__all__ = [
    "calculate_gain",
    "for_activation",
    "he_normal",
    "he_truncated_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_truncated_normal",
    "kaiming_uniform",
]
