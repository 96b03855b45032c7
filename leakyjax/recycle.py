"""Recycling dormant units (ReDo, Sokar et al. 2023) found by the diagnostics.

jax only (flax is imported when an nnx model is passed). See
[`recycle_dormant`][leakyjax.recycle.recycle_dormant].
"""

from leakyjax._src.recycle import RecycleResult as RecycleResult
from leakyjax._src.recycle import dormancy_score as dormancy_score
from leakyjax._src.recycle import layer_pairs as layer_pairs
from leakyjax._src.recycle import recycle_dormant as recycle_dormant

__all__ = ["RecycleResult", "dormancy_score", "layer_pairs", "recycle_dormant"]
