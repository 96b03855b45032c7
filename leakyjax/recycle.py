"""Recycling units: ReDo (Sokar et al. 2023) and continual backprop (Dohare et al. 2024).

jax only (flax is imported when an nnx model is passed). Both choose units by a
score and act through one reset, [`reset_units`][leakyjax.recycle.reset_units];
see [`recycle_dormant`][leakyjax.recycle.recycle_dormant] and
[`continual_backprop`][leakyjax.recycle.continual_backprop].
"""

from leakyjax._src.recycle import ContinualBackpropResult as ContinualBackpropResult
from leakyjax._src.recycle import ContinualBackpropState as ContinualBackpropState
from leakyjax._src.recycle import RecycleResult as RecycleResult
from leakyjax._src.recycle import continual_backprop as continual_backprop
from leakyjax._src.recycle import continual_backprop_init as continual_backprop_init
from leakyjax._src.recycle import dormancy_score as dormancy_score
from leakyjax._src.recycle import layer_pairs as layer_pairs
from leakyjax._src.recycle import recycle_dormant as recycle_dormant
from leakyjax._src.recycle import reset_units as reset_units

__all__ = [
    "ContinualBackpropResult",
    "ContinualBackpropState",
    "RecycleResult",
    "continual_backprop",
    "continual_backprop_init",
    "dormancy_score",
    "layer_pairs",
    "recycle_dormant",
    "reset_units",
]
