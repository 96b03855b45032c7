"""The ``compare`` report: ranked table (terminal and markdown) and PNG plots."""

from __future__ import annotations

import math
import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

_METRIC = {"accuracy": "test acc", "r2": "test R²"}


def _pm(mean: float, std: float, pct: bool) -> str:
    if not math.isfinite(mean):
        return "—"
    if pct:
        return f"{100 * mean:.2f} ± {100 * std:.2f}"
    return f"{mean:.4f} ± {std:.4f}"


def _dead(d) -> str:
    if not d:
        return "—"
    return " / ".join(f"{100 * x:.1f}%" for x in d)


def table_rows(summaries: Sequence[Any], metric: str) -> tuple[list[str], list[list]]:
    """Header and rows of the ranked table."""
    pct = metric == "accuracy"
    unit = " (%)" if pct else ""
    name = _METRIC.get(metric, metric)
    header = [
        "rank",
        "activation",
        f"final {name}{unit}",
        f"best-val {name}{unit}",
        "final test loss",
        "diverged",
        "dead units / layer",
        "s / seed",
    ]
    rows = []
    for i, s in enumerate(summaries, 1):
        rows.append(
            [
                str(i),
                s.activation,
                _pm(s.final_acc_mean, s.final_acc_std, pct),
                _pm(s.best_acc_mean, s.best_acc_std, pct),
                _pm(s.final_loss_mean, s.final_loss_std, False),
                f"{s.diverged}/{s.seeds}",
                _dead(s.dead_fraction),
                f"{s.seconds_per_seed:.1f}",
            ]
        )
    return header, rows


def format_table(summaries: Sequence[Any], *, metric: str = "accuracy") -> str:
    """The ranked table as aligned plain text (for the terminal)."""
    header, rows = table_rows(summaries, metric)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def markdown_table(summaries: Sequence[Any], *, metric: str = "accuracy") -> str:
    """The ranked table in markdown."""
    header, rows = table_rows(summaries, metric)
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def versions() -> dict[str, str]:
    """Versions of the packages that produced a result."""
    import jax

    import leakyjax

    out = {"python": sys.version.split()[0], "leakyjax": leakyjax.__version__}
    from importlib import metadata

    for dist in (
        "jax",
        "jaxlib",
        "flax",
        "optax",
        "numpy",
        "mnist1d",
        "scikit-learn",
        "matplotlib",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    out["platform"] = platform.platform()
    devs = jax.devices()
    out["devices"] = f"{len(devs)} x {devs[0].device_kind}"
    return out


def _curves(records, act, key):
    recs = [r for r in records if r["activation"] == act and not r["diverged"]]
    if not recs:
        return None, None
    n = min(len(r["history"]["step"]) for r in recs)
    step = np.asarray(recs[0]["history"]["step"][:n], np.float64)
    vals = np.array(
        [[np.nan if v is None else v for v in r["history"][key][:n]] for r in recs],
        np.float64,
    )
    return step, vals


def write_plots(out: Path, records: Sequence[dict], summaries: Sequence[Any]) -> tuple:
    """Write ``curves.png``, ``final_accuracy.png`` and ``dead_fraction.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    metric = records[0]["metric"] if records else "accuracy"
    name = _METRIC.get(metric, metric)
    acts = [s.activation for s in summaries]
    colors = {a: plt.cm.tab10(i % 10) for i, a in enumerate(acts)}
    paths = []

    # 1. learning curves with seed bands (mean ± std over seeds)
    panels = [("train_loss", "train loss"), ("test_loss", "test loss")]
    panels.append(("test_acc", name))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, (key, label) in zip(axes, panels):
        for act in acts:
            step, vals = _curves(records, act, key)
            if step is None or vals is None:
                continue
            with np.errstate(invalid="ignore"), _quiet():
                mean, std = np.nanmean(vals, 0), np.nanstd(vals, 0)
            ax.plot(step, mean, color=colors[act], label=act, lw=1.6)
            ax.fill_between(step, mean - std, mean + std, color=colors[act], alpha=0.2)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if "loss" in key:
            ax.set_yscale("log")
    if axes[-1].get_legend_handles_labels()[0]:
        axes[-1].legend(fontsize=8, loc="lower right")
    fig.suptitle("learning curves: mean over seeds, band = ±1 std")
    fig.tight_layout()
    paths.append(out / "curves.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    # 2. final accuracy per activation: every seed + mean ± std
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(acts) + 2), 4))
    scale = 100 if metric == "accuracy" else 1
    for i, act in enumerate(acts):
        recs = [r for r in records if r["activation"] == act]
        vals = [r["final_test_acc"] for r in recs if not r["diverged"]]
        vals = [v * scale for v in vals if v is not None]
        if vals:
            jitter = np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else [0.0]
            ax.scatter(i + np.asarray(jitter), vals, color=colors[act], s=18, zorder=3)
            ax.errorbar(
                i,
                np.mean(vals),
                yerr=np.std(vals),
                fmt="_",
                color="k",
                ms=20,
                capsize=6,
                zorder=4,
            )
        n_div = sum(r["diverged"] for r in recs)
        if n_div:
            ax.annotate(
                f"{n_div} diverged",
                (i, 0),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="bottom",
                color="red",
                fontsize=8,
            )
    ax.set_xticks(range(len(acts)), acts, rotation=30, ha="right")
    ax.set_ylabel(f"final {name}" + (" (%)" if metric == "accuracy" else ""))
    ax.set_title("final test score per activation (dots: seeds; bar: mean ± std)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    paths.append(out / "final_accuracy.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    # 3. dead-unit fraction per layer
    measured = [s for s in summaries if s.dead_fraction]
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(acts) + 2), 4))
    if measured:
        n_layers = max(len(s.dead_fraction) for s in measured)
        w = 0.8 / n_layers
        for j in range(n_layers):
            xs = [i for i, s in enumerate(summaries) if s.dead_fraction]
            ys = [
                100 * s.dead_fraction[j] if j < len(s.dead_fraction) else np.nan
                for s in summaries
                if s.dead_fraction
            ]
            ax.bar(
                np.asarray(xs) + (j - (n_layers - 1) / 2) * w,
                ys,
                w,
                label=f"layer {j + 1}",
            )
        ax.legend(fontsize=8)
    else:
        ax.text(
            0.5, 0.5, "no dead-unit measurements", ha="center", transform=ax.transAxes
        )
    ax.set_xticks(range(len(acts)), acts, rotation=30, ha="right")
    ax.set_ylabel("dead units (%)")
    ax.set_title("units never positive on the training set, after training")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    paths.append(out / "dead_fraction.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return tuple(paths)


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def write_report(
    out: Path,
    records: Sequence[dict],
    summaries: Sequence[Any],
    *,
    base: Any,
    seeds: Sequence[int],
    command: str | None,
    plots: Sequence[Path] = (),
) -> Path:
    """Write ``report.md`` and return its path."""
    out = Path(out)
    metric = records[0]["metric"] if records else "accuracy"
    cfg = base._asdict()
    cfg.pop("activation", None)
    lines = [
        "# leakyjax compare",
        "",
        f"Command: `{command or 'leakyjax.compare(...)'}`",
        "",
        f"Seeds {', '.join(map(str, seeds))}; ranked by mean final "
        f"{_METRIC.get(metric, metric)} (diverged seeds excluded from the means, "
        "counted in *diverged*). *best-val* is the test score at the evaluation "
        "with the best validation score (early-stopping selection). Dead units: "
        "fraction of hidden units whose pre-activation is never positive on the "
        "training set after training (`leakyjax.diagnostics`), per layer.",
        "",
        markdown_table(summaries, metric=metric),
        "",
    ]
    div = [s for s in summaries if s.diverged]
    if div:
        lines += [
            "**Diverged** (non-finite loss or gradient; training of that seed "
            "stopped, the others continued): "
            + ", ".join(f"{s.activation} {s.diverged}/{s.seeds}" for s in div),
            "",
        ]
    for p in plots:
        lines += [f"![{Path(p).stem}]({Path(p).name})", ""]
    lines += ["## Configuration", "", "| field | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in cfg.items()]
    rec = records[0] if records else {}
    lines += [
        f"| devices used | {rec.get('num_devices', '?')} |",
        "",
        "## Versions",
        "",
        "| package | version |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in versions().items()]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines += ["", f"Written {stamp}; raw results: `results.jsonl`.", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
