"""Figures of dying-unit reports (matplotlib, imported when a function is called)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from leakyjax._src import io as _io
from leakyjax._src.diagnostics.accumulator import LayerStats

__all__ = ["plot_report", "plot_history"]


def _check_report(report: Any, where: str) -> dict:
    if isinstance(report, LayerStats):
        return {"layer": report}
    if (
        isinstance(report, Mapping)
        and report
        and all(isinstance(v, LayerStats) for v in report.values())
    ):
        return dict(report)
    raise TypeError(
        f"{where}: expected a mapping {{layer name: LayerStats}} (from "
        f"diagnostics.result or diagnostics.dead_units), got {type(report).__name__}."
    )


def _save(fig: Any, out: Any) -> None:
    """Writes the figure to `out` atomically, if given (the figure stays open)."""
    if out is not None:
        buf = io.BytesIO()
        fmt = Path(out).suffix.lstrip(".") or "png"
        fig.savefig(buf, format=fmt, dpi=130, bbox_inches="tight")
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        _io.write_bytes(out, buf.getvalue())


def plot_report(
    report: Any,
    *,
    ax: Any = None,
    title: str | None = None,
    out: Any = None,
) -> Any:
    """Bar chart of the dead and rarely-active percentage per layer.

    Args:
        report: `{layer name: LayerStats}`, or `{run name: {layer name:
            LayerStats}}` to compare runs (grouped bars of dead %).
        ax: a matplotlib Axes to draw into; a new figure when None.
        title: the axes title.
        out: a path to save the figure to (PNG by extension).

    Returns:
        The matplotlib Figure.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> s = dg.update(dg.init({"h1": 2, "h2": 2}),
        ...               {"h1": jnp.array([[1.0, -1.0]]), "h2": jnp.ones((1, 2))})
        >>> fig = dg.plot_report(dg.result(s), title="dead units")
        >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
        ['h1', 'h2']
    """
    plt = _io.pyplot()
    import numpy as np

    if (
        isinstance(report, Mapping)
        and report
        and all(isinstance(v, Mapping) for v in report.values())
    ):
        runs = {k: _check_report(v, "plot_report") for k, v in report.items()}
    else:
        runs = {None: _check_report(report, "plot_report")}
    layers: list = []
    for rep in runs.values():
        layers += [name for name in rep if name not in layers]
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(layers) + 2), 3.5))
    fig = ax.figure
    x = np.arange(len(layers))
    width = 0.8 / len(runs)
    for i, (run, rep) in enumerate(runs.items()):
        dead = [
            100 * float(rep[n].dead_fraction) if n in rep else np.nan for n in layers
        ]
        pos = x - 0.4 + width * (i + 0.5)
        label = "dead (never positive)" if run is None else f"{run}: dead"
        ax.bar(pos, dead, width, label=label)
        if run is None:
            rare = [100 * float(rep[n].rarely_active_fraction) for n in layers]
            ax.plot(pos, rare, "k_", markersize=14, mew=2, label="rarely active")
    ax.set_xticks(x, [str(n) for n in layers], rotation=30, ha="right")
    ax.set_ylabel("% of units")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    _save(fig, out)
    return fig


def _as_history(history: Any, where: str) -> list:
    if isinstance(history, Mapping):
        items = list(history.items())
    elif isinstance(history, Sequence):
        items = list(history)
    else:
        items = None
    if not items or not all(
        isinstance(it, (tuple, list)) and len(it) == 2 for it in items
    ):
        raise TypeError(
            f"{where}: a history is a non-empty sequence of (step, report) pairs or "
            "a mapping {step: report}, where report is {layer name: LayerStats}."
        )
    return [(float(step), _check_report(rep, where)) for step, rep in items]


def plot_history(
    history: Any,
    *,
    title: str | None = None,
    out: Any = None,
    metric: str = "dead_fraction",
) -> Any:
    """Dead percentage per layer over training steps; one panel per run.

    Args:
        history: a sequence of `(step, {layer name: LayerStats})` pairs (or a
            mapping `{step: report}`), or `{run name: history}` to compare
            runs side by side with a shared y axis.
        title: the figure title.
        out: a path to save the figure to.
        metric: the [LayerStats][leakyjax.diagnostics.LayerStats] field to plot (`"dead_fraction"`,
            `"rarely_active_fraction"` or `"mean_active_rate"`), in %.

    Returns:
        The matplotlib Figure.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> s = dg.init({"h1": 2})
        >>> hist = [(0, dg.result(dg.update(s, {"h1": jnp.ones((1, 2))}))),
        ...         (10, dg.result(dg.update(s, {"h1": -jnp.ones((1, 2))})))]
        >>> fig = dg.plot_history({"relu": hist})
        >>> fig.axes[0].lines[0].get_ydata().tolist()
        [0.0, 100.0]
    """
    plt = _io.pyplot()
    if metric not in ("dead_fraction", "rarely_active_fraction", "mean_active_rate"):
        raise ValueError(
            f"plot_history: metric must be 'dead_fraction', "
            f"'rarely_active_fraction' or 'mean_active_rate', got {metric!r}."
        )
    is_runs = isinstance(history, Mapping) and all(isinstance(k, str) for k in history)
    runs = (
        {k: _as_history(v, "plot_history") for k, v in history.items()}
        if is_runs
        else {None: _as_history(history, "plot_history")}
    )
    fig, axes = plt.subplots(
        1, len(runs), figsize=(4.6 * len(runs) + 0.6, 3.6), sharey=True, squeeze=False
    )
    label = {
        "dead_fraction": "dead units (never positive), %",
        "rarely_active_fraction": "rarely active units, %",
        "mean_active_rate": "mean active rate, %",
    }[metric]
    top = 0.0
    for ax, (run, hist) in zip(axes[0], runs.items()):
        layers: list = []
        for _, rep in hist:
            layers += [n for n in rep if n not in layers]
        cmap = plt.get_cmap("viridis")
        for j, name in enumerate(layers):
            steps = [s for s, rep in hist if name in rep]
            vals = [
                100 * float(getattr(rep[name], metric))
                for _, rep in hist
                if name in rep
            ]
            top = max([top, *(v for v in vals if v == v)])  # skip NaN
            color = cmap(j / max(len(layers) - 1, 1))
            ax.plot(steps, vals, marker=".", color=color, label=str(name))
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        if run is not None:
            ax.set_title(str(run))
    axes[0][0].set_ylim(-1, min(102.0, 1.15 * top + 5))  # shared y axis
    axes[0][0].set_ylabel(label)
    axes[0][-1].legend(fontsize="x-small", loc="best", title="layer")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, out)
    return fig
