"""Dying-unit diagnostics: dead and rarely-active units per layer, inside jit.

A unit (one channel on the feature axis) is *dead* on a data set if its
pre-activation is `<= 0` for every example; for leaky units the same "never
positive" statistic is reported (such a unit still gets a gradient). Counts
accumulate batch by batch ([`init`][leakyjax.diagnostics.init],
[`update`][leakyjax.diagnostics.update], [`result`][leakyjax.diagnostics.result]) or
over a whole model and data set at once
([`dead_units`][leakyjax.diagnostics.dead_units]). Needs only jax; the Flax capture
functions import flax and the plots import matplotlib when called.
"""

from leakyjax._src.diagnostics import GradientStats as GradientStats
from leakyjax._src.diagnostics import LayerStats as LayerStats
from leakyjax._src.diagnostics import LeafGradientStats as LeafGradientStats
from leakyjax._src.diagnostics import Probe as Probe
from leakyjax._src.diagnostics import ScoreState as ScoreState
from leakyjax._src.diagnostics import UnitScores as UnitScores
from leakyjax._src.diagnostics import UnitState as UnitState
from leakyjax._src.diagnostics import activation_modules as activation_modules
from leakyjax._src.diagnostics import capture_linen as capture_linen
from leakyjax._src.diagnostics import capture_nnx as capture_nnx
from leakyjax._src.diagnostics import dead_units as dead_units
from leakyjax._src.diagnostics import format_gradient_stats as format_gradient_stats
from leakyjax._src.diagnostics import format_report as format_report
from leakyjax._src.diagnostics import gradient_stats as gradient_stats
from leakyjax._src.diagnostics import init as init
from leakyjax._src.diagnostics import init_scores as init_scores
from leakyjax._src.diagnostics import merge as merge
from leakyjax._src.diagnostics import merge_across as merge_across
from leakyjax._src.diagnostics import plot_history as plot_history
from leakyjax._src.diagnostics import plot_report as plot_report
from leakyjax._src.diagnostics import pooled_fractions as pooled_fractions
from leakyjax._src.diagnostics import record_pre_activations as record_pre_activations
from leakyjax._src.diagnostics import result as result
from leakyjax._src.diagnostics import tap as tap
from leakyjax._src.diagnostics import unit_scores as unit_scores
from leakyjax._src.diagnostics import update as update
from leakyjax._src.diagnostics import update_scores as update_scores
from leakyjax._src.diagnostics import value_grad_and_probes as value_grad_and_probes

__all__ = [
    "GradientStats",
    "LayerStats",
    "LeafGradientStats",
    "Probe",
    "ScoreState",
    "UnitScores",
    "UnitState",
    "activation_modules",
    "capture_linen",
    "capture_nnx",
    "dead_units",
    "format_gradient_stats",
    "format_report",
    "gradient_stats",
    "init",
    "init_scores",
    "merge",
    "merge_across",
    "plot_history",
    "plot_report",
    "pooled_fractions",
    "record_pre_activations",
    "result",
    "tap",
    "unit_scores",
    "update",
    "update_scores",
    "value_grad_and_probes",
]
