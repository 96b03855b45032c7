r"""Dying-unit diagnostics: dead and rarely-active units per layer, inside jit.

Definitions
-----------
A *unit* is one channel on the feature axis of a layer's pre-activations: one
neuron of a Dense layer (shape `(B, F)`), one channel of a convolution (shapes
`(B, H, W, C)` or `(B, L, C)`). Every other axis is reduced, so for a
convolution every spatial position of every example counts as one *example* of
its channel (a channel is dead only if it is non-positive at every position of
every image).

A unit is **dead** on a data set if its pre-activation is $\le 0$ for every
example seen: a ReLU unit then outputs 0 everywhere and receives no gradient,
and it stays dead unless something else moves its inputs. For leaky units
(leaky_relu, PReLU, RReLU, ELU, ...) the same "never positive" statistic is
reported: such a unit still passes a gradient (the slope) and can recover, which
is the point of the leaky family. A unit is **rarely active** if it is positive
on fewer than `rare_threshold` (default 1%) of the examples; dead units are
rarely active too, so `rarely_active_fraction >= dead_fraction`.

The statistics are streaming: [init][leakyjax.diagnostics.init] a [UnitState][leakyjax.diagnostics.UnitState], [update][leakyjax.diagnostics.update]
it batch by batch (inside `jax.jit` or `jax.lax.scan` if you like),
[merge][leakyjax.diagnostics.merge] states from different batches or devices, and read the result
with [result][leakyjax.diagnostics.result]. Counts are exact integers (int32: at most
$2^{31}-1$ examples per unit), so dead and rarely-active fractions are
identical however the data is split into batches, jitted or not. Means and
standard deviations use Chan et al.'s parallel update (numerically stable) in
float32 (or the dtype given to [init][leakyjax.diagnostics.init]); they agree across batchings to
float rounding.

All functions also take a mapping `{layer name: ...}` in place of a single
state or array, for many layers at once.

Layout
------
* `leakyjax._src.diagnostics.accumulator`: [UnitState][leakyjax.diagnostics.UnitState],
  [LayerStats][leakyjax.diagnostics.LayerStats] and [init][leakyjax.diagnostics.init] / [update][leakyjax.diagnostics.update] / [merge][leakyjax.diagnostics.merge] /
  [merge_across][leakyjax.diagnostics.merge_across] / [result][leakyjax.diagnostics.result];
* `leakyjax._src.diagnostics.capture`: the pre-activations of leakyjax
  activation modules in Flax models (the sow names are in
  `leakyjax._src.names`);
* `leakyjax._src.diagnostics.runner`: [dead_units][leakyjax.diagnostics.dead_units] over batches;
* `leakyjax._src.diagnostics.gradients`: [gradient_stats][leakyjax.diagnostics.gradient_stats];
* `leakyjax._src.diagnostics.scores`: the three unit scores (never
  positive, τ-dormant, gradient) and the probes of a train step;
* `leakyjax._src.diagnostics.report` and
  `leakyjax._src.diagnostics.plot`: text tables and figures.
"""

from leakyjax._src.diagnostics.accumulator import LayerStats as LayerStats
from leakyjax._src.diagnostics.accumulator import UnitState as UnitState
from leakyjax._src.diagnostics.accumulator import init as init
from leakyjax._src.diagnostics.accumulator import merge as merge
from leakyjax._src.diagnostics.accumulator import merge_across as merge_across
from leakyjax._src.diagnostics.accumulator import result as result
from leakyjax._src.diagnostics.accumulator import update as update
from leakyjax._src.diagnostics.capture import activation_modules as activation_modules
from leakyjax._src.diagnostics.capture import capture_linen as capture_linen
from leakyjax._src.diagnostics.capture import capture_nnx as capture_nnx
from leakyjax._src.diagnostics.capture import (
    record_pre_activations as record_pre_activations,
)
from leakyjax._src.diagnostics.gradients import GradientStats as GradientStats
from leakyjax._src.diagnostics.gradients import LeafGradientStats as LeafGradientStats
from leakyjax._src.diagnostics.gradients import gradient_stats as gradient_stats
from leakyjax._src.diagnostics.plot import plot_history as plot_history
from leakyjax._src.diagnostics.plot import plot_report as plot_report
from leakyjax._src.diagnostics.report import (
    format_gradient_stats as format_gradient_stats,
)
from leakyjax._src.diagnostics.report import format_report as format_report
from leakyjax._src.diagnostics.runner import dead_units as dead_units
from leakyjax._src.diagnostics.scores import Probe as Probe
from leakyjax._src.diagnostics.scores import ScoreState as ScoreState
from leakyjax._src.diagnostics.scores import UnitScores as UnitScores
from leakyjax._src.diagnostics.scores import init_scores as init_scores
from leakyjax._src.diagnostics.scores import pooled_fractions as pooled_fractions
from leakyjax._src.diagnostics.scores import tap as tap
from leakyjax._src.diagnostics.scores import unit_scores as unit_scores
from leakyjax._src.diagnostics.scores import update_scores as update_scores
from leakyjax._src.diagnostics.scores import (
    value_grad_and_probes as value_grad_and_probes,
)
