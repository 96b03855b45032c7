"""Text tables of the per-layer report and of the gradient statistics."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp

from leakyjax._src.diagnostics.accumulator import LayerStats
from leakyjax._src.diagnostics.gradients import GradientStats, LeafGradientStats


# --------------------------------------------------------------------------- #
# Text reports
# --------------------------------------------------------------------------- #
def _pct(v: Any) -> str:
    v = float(v)
    return "nan" if math.isnan(v) else f"{100 * v:.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], title: Any) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(
        c.ljust(w) if i == 0 else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths))
    )
    lines = [title] if title else []
    lines += [fmt(header), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    return "\n".join(lines)


def format_report(report: Any, *, title: str | None = None) -> str:
    """A text table of a per-layer report.

    Columns: layer, units, dead % (never positive), rarely-active % (positive on
    fewer than the threshold of examples, dead included), mean active rate, and
    the pre-activation mean and std; a "NaN %" column is added when a unit saw a
    NaN pre-activation.

    Args:
        report: `{layer name: LayerStats}` (from [result][leakyjax.diagnostics.result] or
            [dead_units][leakyjax.diagnostics.dead_units]) or a single [LayerStats][leakyjax.diagnostics.LayerStats].
        title: an optional first line.

    Returns:
        The table as a string (layers in the order of the mapping).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> s = dg.update(dg.init({"h1": 2}), {"h1": jnp.array([[1.0, -1.0]])})
        >>> print(dg.format_report(dg.result(s)))
        layer  units  dead %  rarely active %  mean rate  mean   std
        -----  -----  ------  ---------------  ---------  -----  -----
        h1         2    50.0             50.0      0.500  0.000  1.000
    """
    if isinstance(report, LayerStats):
        report = {"layer": report}
    if not isinstance(report, Mapping) or not all(
        isinstance(v, LayerStats) for v in report.values()
    ):
        raise TypeError(
            "format_report: report must be a LayerStats or a mapping of layer "
            "names to LayerStats (from result() or dead_units())."
        )
    if not report:
        raise ValueError(
            "format_report: report is empty (no layers); pass the mapping that "
            "result() or dead_units() returned for at least one layer."
        )
    header = [
        "layer",
        "units",
        "dead %",
        "rarely active %",
        "mean rate",
        "mean",
        "std",
    ]
    rows = [
        [
            str(name),
            str(int(s.units)),
            _pct(s.dead_fraction),
            _pct(s.rarely_active_fraction),
            f"{float(s.mean_active_rate):.3f}",
            f"{float(s.mean):.3f}",
            f"{float(s.std):.3f}",
        ]
        for name, s in report.items()
    ]
    if any(float(s.nan_fraction) > 0 for s in report.values()):
        header.append("NaN %")  # a diverged model: say so instead of "dead"
        for row, s in zip(rows, report.values()):
            row.append(_pct(s.nan_fraction))
    return _table(header, rows, title)


def format_gradient_stats(stats: GradientStats, *, title: str | None = None) -> str:
    """A text table of [GradientStats][leakyjax.diagnostics.GradientStats] per layer, with the global norm.

    Args:
        stats: from [gradient_stats][leakyjax.diagnostics.gradient_stats].
        title: an optional first line.

    Returns:
        The table as a string.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> g = {"dense": {"kernel": jnp.array([[3.0, 0.0]]), "bias": jnp.zeros(2)}}
        >>> print(dg.format_gradient_stats(dg.gradient_stats(g)))
        layer  size  grad norm  zero %  max |g|
        -----  ----  ---------  ------  -------
        dense     4      3.000    75.0    3.000
        (all)     4      3.000    75.0    3.000
    """
    if not isinstance(stats, GradientStats):
        raise TypeError("format_gradient_stats: stats must come from gradient_stats.")
    header = ["layer", "size", "grad norm", "zero %", "max |g|"]
    row = lambda name, s: [
        name,
        str(int(s.size)),
        f"{float(s.norm):.4g}" if float(s.norm) >= 1e4 else f"{float(s.norm):.3f}",
        _pct(s.zero_fraction),
        f"{float(s.max_abs):.3f}",
    ]
    rows = [row(name, s) for name, s in stats.layers.items()]
    total_max = max((float(s.max_abs) for s in stats.layers.values()), default=0.0)
    total_size = sum(int(s.size) for s in stats.layers.values())
    rows.append(
        row(
            "(all)",
            LeafGradientStats(
                stats.global_norm,
                stats.zero_fraction,
                jnp.asarray(total_max),
                total_size,
            ),
        )
    )
    return _table(header, rows, title)
