"""The `compare` report: ranked table, paired comparisons, a recommendation, plots.

`report.md` answers "which activation for my model?": the ranked table, then
for every pair of activations the mean difference of their final test score
over the seeds both finished (paired, so the seed-to-seed spread that both
share cancels) with a two-sided 95% t interval, the set that cannot be told
apart from the best, and one sentence: a recommendation, or how many seeds
would separate the leaders (a paired t test's power at the observed
difference and sd).
"""

from __future__ import annotations

import math
import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from leakyjax._src import io as _io

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


def _ms(t: float) -> str:
    return f"{1e3 * t:.2f}" if _finite(t) else "—"


def _mib(b: float | None) -> str:
    return f"{b / 2**20:.2f}" if b is not None and _finite(b) else "—"


def table_rows(
    summaries: Sequence[Any], metric: str, *, costs: bool = False
) -> tuple[list[str], list[list]]:
    """Header and rows of the ranked table (`costs`: with the *ms / step* and
    *step MiB* columns before the last, *s / seed*)."""
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
        *(("ms / step", "step MiB") if costs else ()),
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
                *(
                    (
                        _ms(getattr(s, "step_time", math.nan)),
                        _mib(getattr(s, "step_memory", None)),
                    )
                    if costs
                    else ()
                ),
                f"{s.seconds_per_seed:.1f}",
            ]
        )
    return header, rows


def format_table(
    summaries: Sequence[Any], *, metric: str = "accuracy", costs: bool = False
) -> str:
    """The ranked table as aligned plain text (for the terminal)."""
    header, rows = table_rows(summaries, metric, costs=costs)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def markdown_table(
    summaries: Sequence[Any], *, metric: str = "accuracy", costs: bool = False
) -> str:
    """The ranked table in markdown."""
    header, rows = table_rows(summaries, metric, costs=costs)
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


# ---------------------------------------------------------------- paired statistics


class Pair(NamedTuple):
    """Paired comparison of two activations over the seeds both finished.

    Attributes:
        a: the higher-ranked activation.
        b: the other one.
        n: seeds both finished without diverging (the pairs).
        mean: mean of `score(a) - score(b)` over those seeds.
        sd: standard deviation of the differences (ddof=1; nan for n < 2).
        low: lower end of the two-sided 95% t interval of the mean (nan for n < 2).
        high: upper end.
        separated: the interval excludes 0.
    """

    a: str
    b: str
    n: int
    mean: float
    sd: float
    low: float
    high: float
    separated: bool


class Verdict(NamedTuple):
    """What the paired comparisons say.

    Attributes:
        best: the activation ranked first (highest mean), or None if none finished.
        tied: activations that cannot be told apart from `best` (`best`
            first): the 95% paired interval of their difference includes 0.
        pairs: every pair, higher-ranked first.
        seeds_needed: seeds per activation that would separate `best` from
            the runner-up in `tied` (paired t test, two-sided 5%, 80% power,
            at the observed mean and sd of the differences); None when
            `best` is separated from all, or it cannot be estimated.
        sentence: the recommendation in one plain sentence.
    """

    best: str | None
    tied: tuple[str, ...]
    pairs: tuple[Pair, ...]
    seeds_needed: int | None
    sentence: str


_POWER, _ALPHA, _MAX_SEEDS = 0.8, 0.05, 1000


def _scores(records: Sequence[dict], act: str) -> dict[int, float]:
    return {
        r["seed"]: float(r["final_test_acc"])
        for r in records
        if r["activation"] == act
        and not r["diverged"]
        and r["final_test_acc"] is not None
        and math.isfinite(r["final_test_acc"])
    }


def paired(records: Sequence[dict], a: str, b: str) -> Pair:
    """The paired comparison of `a` and `b` (final test score, same seeds)."""
    from scipy import stats

    sa, sb = _scores(records, a), _scores(records, b)
    common = sorted(set(sa) & set(sb))
    d = np.array([sa[s] - sb[s] for s in common], np.float64)
    n = len(d)
    if n == 0:
        return Pair(a, b, 0, math.nan, math.nan, math.nan, math.nan, False)
    mean = float(d.mean())
    if n < 2:
        return Pair(a, b, n, mean, math.nan, math.nan, math.nan, False)
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(1 - _ALPHA / 2, n - 1)) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    return Pair(a, b, n, mean, sd, low, high, bool(low > 0 or high < 0))


def seeds_needed(mean: float, sd: float) -> int | None:
    """Seeds for a two-sided 5% paired t test to detect `mean` with 80% power.

    The smallest n with `P(reject) >= 0.8` under the noncentral t
    distribution (effect `mean / sd`); None when `mean` is 0 or not finite,
    or more than 1000 seeds would be needed.

    Example:
        >>> seeds_needed(1.0, 1.0)  # one sd: the textbook 10 pairs
        10
    """
    from scipy import stats

    if not (math.isfinite(mean) and math.isfinite(sd)) or mean == 0:
        return None
    if sd == 0:
        return 2
    effect = abs(mean) / sd
    for n in range(2, _MAX_SEEDS + 1):
        crit = stats.t.ppf(1 - _ALPHA / 2, n - 1)
        power = stats.nct.sf(crit, n - 1, effect * math.sqrt(n))
        if power >= _POWER:
            return n
    return None


class Decision(NamedTuple):
    """The report's answer to "which activation?", decided at a stated margin.

    Each activation is compared with the top-ranked one, `best`, on the
    paired differences `d = score(best) - score(other)` over the seeds both
    finished: *worse by more than the margin* when the 95% t interval of the
    mean of `d` lies above `margin`; *equivalent* when the 90% t interval
    lies inside `(-margin, margin)` (two one-sided t tests at 5%, TOST);
    *undecided* otherwise.

    Attributes:
        outcome: `"better"` (`best` beats every other activation by more
            than the margin), `"equivalent"` (every other activation is
            equivalent to `best` or worse by more than the margin, at least
            one equivalent), `"undecided"` (some comparison is neither) or
            `"none"` (fewer than two activations finished).
        best: the activation ranked first, or None.
        equivalent: `best` and the activations equivalent to it.
        worse: activations worse than `best` by more than the margin.
        undecided: activations neither equivalent nor worse by the margin.
        margin: the margin, in units of the score (0.01 is 1 point of accuracy).
        pick: for `"equivalent"`, the cheapest of `equivalent` (fastest
            step, then least train-step memory); else `best`.
        sentence: the decision in one or two plain sentences (markdown bold).
    """

    outcome: str
    best: str | None
    equivalent: tuple[str, ...]
    worse: tuple[str, ...]
    undecided: tuple[str, ...]
    margin: float
    pick: str | None
    sentence: str


class Cost(NamedTuple):
    """What one activation cost in a run: seconds per training step (all
    seeds of its program) and the compiled training program's temporary bytes
    (None where unmeasured)."""

    step_time: float
    step_memory: float | None


def costs_of(records: Sequence[dict]) -> dict[str, Cost]:
    """Per activation, the mean step time and train-step memory of its records
    (records without them, e.g. from an older leakyjax, give nan / None)."""
    out = {}
    for act in dict.fromkeys(r["activation"] for r in records):
        recs = [r for r in records if r["activation"] == act]
        t = [r["step_time"] for r in recs if _finite(r.get("step_time"))]
        m = [r["step_memory"] for r in recs if _finite(r.get("step_memory"))]
        out[act] = Cost(
            float(np.mean(t)) if t else math.nan, float(np.max(m)) if m else None
        )
    return out


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _margin_text(margin: float, pct: bool) -> str:
    return f"±{100 * margin:.2f} points" if pct else f"±{margin:.4f}"


def _cost_text(c: Cost) -> str:
    parts = []
    if math.isfinite(c.step_time):
        parts.append(f"{1e3 * c.step_time:.2f} ms per step")
    if c.step_memory is not None:
        parts.append(f"{c.step_memory / 2**20:.2f} MiB train-step memory")
    return ", ".join(parts) or "cost not measured"


def decide(
    records: Sequence[dict],
    summaries: Sequence[Any],
    *,
    margin: float = 0.01,
    costs: dict[str, Cost] | None = None,
) -> Decision:
    """Decides "which activation?" at a margin that matters; see [Decision][].

    Args:
        records: result records (`activation`, `seed`, `diverged`,
            `final_test_acc`; `step_time` / `step_memory` for the costs).
        summaries: per-activation summaries, ranked best first.
        margin: the smallest difference of the final test score that matters,
            in units of the score (0.01: one point of accuracy); > 0.
        costs: per-activation [Cost][] for the tie-break (default: from
            `records`).

    Returns:
        A [Decision][].

    Raises:
        ValueError: if `margin` is not a finite number > 0.

    Example:
        >>> recs = [dict(activation=a, seed=s, diverged=False, final_test_acc=v)
        ...         for a, vals in {"elu": [.91, .93, .92], "relu": [.81, .84, .82]}.items()
        ...         for s, v in enumerate(vals)]
        >>> S = NamedTuple("S", [("activation", str), ("final_acc_mean", float)])
        >>> d = decide(recs, [S("elu", .92), S("relu", .823)], margin=0.01)
        >>> d.outcome, d.best
        ('better', 'elu')
    """
    from scipy import stats

    if not (_finite(margin) and margin > 0):
        raise ValueError(
            f"decide: margin must be a finite number > 0 (0.01 = one point of "
            f"accuracy), got {margin!r}."
        )
    costs = costs_of(records) if costs is None else costs
    metric = records[0].get("metric", "accuracy") if records else "accuracy"
    pct = metric == "accuracy"
    name = _METRIC.get(metric, metric)
    mtext = _margin_text(margin, pct)
    ranked = [
        s.activation
        for s in summaries
        if math.isfinite(s.final_acc_mean) and _scores(records, s.activation)
    ]
    if len(ranked) < 2:
        best = ranked[0] if ranked else None
        say = f"Only **{best}** finished." if best else "No run finished."
        return Decision("none", best, (), (), (), margin, best, say)
    best = ranked[0]
    equivalent, worse, undecided = [best], [], []
    pairs = {}
    for b in ranked[1:]:
        p = paired(records, best, b)
        pairs[b] = p
        if p.n < 2:
            undecided.append(b)
            continue
        se = p.sd / math.sqrt(p.n)
        t90 = float(stats.t.ppf(0.95, p.n - 1))
        if p.low > margin:
            worse.append(b)
        elif p.mean - t90 * se > -margin and p.mean + t90 * se < margin:
            equivalent.append(b)
        else:
            undecided.append(b)
    n_seeds = max(p.n for p in pairs.values())
    seeds = f"{n_seeds} seed{'s' * (n_seeds != 1)}"
    if not undecided and len(equivalent) == 1:
        closest = min(pairs.values(), key=lambda p: p.low)
        return Decision(
            "better",
            best,
            tuple(equivalent),
            tuple(worse),
            (),
            margin,
            best,
            f"**Use {best}**: its final {name} beats every other activation's by "
            f"more than the {mtext} margin on this model; the closest, "
            f"{closest.b}, is {_diff(closest, pct)} behind (95% interval "
            f"{_ci(closest, pct)}, {seeds}).",
        )
    if not undecided:
        cost = {a: costs.get(a, Cost(math.nan, None)) for a in equivalent}
        timed = [a for a in equivalent if math.isfinite(cost[a].step_time)]
        sized = [a for a in equivalent if cost[a].step_memory is not None]
        fastest = min(timed, key=lambda a: cost[a].step_time) if timed else None
        leanest = (
            min(sized, key=lambda a: (cost[a].step_memory, cost[a].step_time))
            if sized
            else None
        )
        pick = fastest or leanest or best
        names = _join([f"**{a}**" for a in equivalent])
        say = (
            f"{names} are equivalent within {mtext} on this model (each 90% "
            f"paired interval against {best} lies inside the margin, {seeds})"
        )
        if worse:
            say += (
                f"; {_join(worse)} {'is' if len(worse) == 1 else 'are'} worse by more"
            )
            say += " than the margin"
        if fastest is None and leanest is None:
            say += ". Pick on cost (not measured in this run)."
        elif fastest == leanest or leanest is None or fastest is None:
            say += f". Pick on cost: **{pick}** ({_cost_text(cost[pick])})."
        else:
            say += (
                f". Pick on cost: **{fastest}** is the fastest "
                f"({_cost_text(cost[fastest])}); **{leanest}** needs the least "
                f"memory ({_cost_text(cost[leanest])})."
            )
        return Decision(
            "equivalent",
            best,
            tuple(equivalent),
            tuple(worse),
            (),
            margin,
            pick,
            say,
        )
    first = pairs[undecided[0]]
    if first.n < 2:
        why = "run at least 2 seeds (3 or more to get an interval)"
    else:
        why = (
            f"{best} leads {first.b} by {_diff(first, pct)} (95% interval "
            f"{_ci(first, pct)}), neither more than the margin nor shown to be "
            "within it; more seeds (the interval narrows as 1/√seeds) or a wider "
            "margin (--margin) would decide"
        )
    say = f"Undecided at {mtext} with {seeds}: {why}."
    if len(undecided) > 1:
        say += f" Also undecided against {best}: {_join(undecided[1:])}."
    if len(equivalent) > 1:
        say += f" Equivalent to {best}: {_join(equivalent[1:])}."
    if worse:
        say += f" Worse by more than the margin: {_join(worse)}."
    return Decision(
        "undecided",
        best,
        tuple(equivalent),
        tuple(worse),
        tuple(undecided),
        margin,
        best,
        say,
    )


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def verdict(records: Sequence[dict], summaries: Sequence[Any]) -> Verdict:
    """Paired comparisons of every pair, the set tied with the best, a sentence.

    Example:
        >>> recs = [dict(activation=a, seed=s, diverged=False, final_test_acc=v)
        ...         for a, vals in {"elu": [.91, .93, .92], "relu": [.81, .84, .82]}.items()
        ...         for s, v in enumerate(vals)]
        >>> S = NamedTuple("S", [("activation", str), ("final_acc_mean", float)])
        >>> v = verdict(recs, [S("elu", .92), S("relu", .823)])
        >>> v.best, v.tied
        ('elu', ('elu',))
    """
    ranked = [
        s.activation
        for s in summaries
        if math.isfinite(s.final_acc_mean) and _scores(records, s.activation)
    ]
    metric = records[0].get("metric", "accuracy") if records else "accuracy"
    pct = metric == "accuracy"
    pairs = tuple(
        paired(records, a, b) for i, a in enumerate(ranked) for b in ranked[i + 1 :]
    )
    if not ranked:
        return Verdict(None, (), (), None, "No run finished without diverging.")
    best = ranked[0]
    vs_best = {p.b: p for p in pairs if p.a == best}
    tied = (best, *(b for b in ranked[1:] if not vs_best[b].separated))
    name = _METRIC.get(metric, metric)
    n_seeds = max((p.n for p in pairs), default=len(_scores(records, best)))
    if len(ranked) == 1:
        return Verdict(best, tied, pairs, None, f"Only **{best}** finished.")
    if len(tied) == 1:
        closest = min(vs_best.values(), key=lambda p: p.mean)
        return Verdict(
            best,
            tied,
            pairs,
            None,
            f"Recommendation: **{best}**. Its final {name} is higher than every "
            f"other activation's on the same seeds; the closest, {closest.b}, is "
            f"{_diff(closest, pct)} behind (95% interval {_ci(closest, pct)}).",
        )
    runner = vs_best[tied[1]]
    need = seeds_needed(runner.mean, runner.sd)
    names = ", ".join(f"**{a}**" for a in tied)
    if runner.n < 2:
        more = "run at least 2 seeds (3 or more to get an interval)"
    elif need is None:
        more = (
            f"the difference between {best} and {tied[1]} "
            f"({_diff(runner, pct)}) is small next to its seed-to-seed spread, so "
            f"even {_MAX_SEEDS} seeds would likely not separate them: pick on "
            "other grounds (speed, memory)"
        )
    else:
        more = (
            f"run more seeds: about {need} seeds would separate {best} from "
            f"{tied[1]} (80% power at the observed difference "
            f"{_diff(runner, pct)}, paired sd {_num(runner.sd, pct)})"
        )
    return Verdict(
        best,
        tied,
        pairs,
        need,
        f"{names} cannot be separated on this budget ({n_seeds} seeds); {more}.",
    )


def _num(v: float, pct: bool) -> str:
    if not math.isfinite(v):
        return "—"
    return f"{100 * v:.2f} points" if pct else f"{v:.4f}"


def _diff(p: Pair, pct: bool) -> str:
    return f"{100 * p.mean:+.2f} points" if pct else f"{p.mean:+.4f}"


def _ci(p: Pair, pct: bool) -> str:
    if not math.isfinite(p.low):
        return "— (fewer than 2 common seeds)"
    k = 100 if pct else 1
    f = ".2f" if pct else ".4f"
    return f"[{k * p.low:+{f}}, {k * p.high:+{f}}]"


def pairs_markdown(v: Verdict, *, metric: str = "accuracy") -> str:
    """The paired comparisons as a markdown table."""
    pct = metric == "accuracy"
    unit = " (points)" if pct else ""
    out = [
        f"| A | B | mean A − B{unit} | 95% interval | seeds | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for p in v.pairs:
        if p.separated:
            say = f"{p.a} better" if p.mean > 0 else f"{p.b} better"
        else:
            say = "cannot be separated"
        mean = _diff(p, pct) if math.isfinite(p.mean) else "—"
        out.append(f"| {p.a} | {p.b} | {mean} | {_ci(p, pct)} | {p.n} | {say} |")
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
    """Write `curves.png`, `final_accuracy.png` and `dead_fraction.png`."""
    from leakyjax._src.io import pyplot

    plt = pyplot()

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
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="lower right" if "acc" in key else "upper right")
    fig.suptitle("learning curves: mean over seeds, band = ±1 std")
    fig.tight_layout()
    paths.append(_io.save_figure(fig, out / "curves.png", dpi=110))

    # 2. final accuracy per activation: every seed + mean ± std
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(acts) + 2), 4))
    scale = 100 if metric == "accuracy" else 1
    for i, act in enumerate(acts):
        recs = [r for r in records if r["activation"] == act]
        vals = [r["final_test_acc"] for r in recs if not r["diverged"]]
        vals = [v * scale for v in vals if v is not None]
        if vals:
            jitter = np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else [0.0]
            ax.scatter(
                i + np.asarray(jitter),
                vals,
                color=colors[act],
                s=18,
                zorder=3,
                label="one seed" if i == 0 else None,
            )
            ax.errorbar(
                i,
                np.mean(vals),
                yerr=np.std(vals),
                fmt="_",
                color="k",
                ms=20,
                capsize=6,
                zorder=4,
                label="mean ± std" if i == 0 else None,
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
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(_io.save_figure(fig, out / "final_accuracy.png", dpi=110))

    # 3. dead-unit fraction per layer, only when some unit died
    if not dead_informative(summaries):
        return tuple(paths)
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
    paths.append(_io.save_figure(fig, out / "dead_fraction.png", dpi=110))
    return tuple(paths)


def dead_informative(summaries: Sequence[Any]) -> bool:
    """True when some activation has a dead unit in some layer (else the dead
    fraction plot would be an empty chart and is not drawn)."""
    return any(s.dead_fraction and max(s.dead_fraction) > 0 for s in summaries)


def resolved_config(base: Any) -> dict[str, Any]:
    """`base` as a dict with the defaults that `None` stands for filled in
    (depth and width of the model, sizes and data seed of the data set)."""
    from leakyjax._src.train import data as _data
    from leakyjax._src.train.models import MODELS as _MODELS
    from leakyjax._src.train.models import make_model

    cfg = base._asdict()
    cfg.pop("activation", None)
    try:
        model = make_model(base.model, "relu", 1, depth=base.depth, width=base.width)
        cfg["depth"], cfg["width"] = model.depth, model.width
    except ValueError:
        pass
    sizes = _data._DEFAULT_SIZES.get(base.dataset)
    if sizes is not None:
        if cfg["num_train"] is None:
            cfg["num_train"] = sizes[0]
        if cfg["num_test"] is None:
            cfg["num_test"] = sizes[1]
    if cfg.get("data_seed") is None and base.dataset in _data._DEFAULT_SEED:
        cfg["data_seed"] = _data._DEFAULT_SEED[base.dataset]
    # fields a user's model or data make meaningless: the model sets its own
    # layers and initialisation, the data its own sizes
    own_model = base.model not in _MODELS
    own_data = base.dataset not in _data.DATASETS
    na = set()
    if own_model:
        na |= {"depth", "width", "dropout", "batch_norm", "init"}
    if own_data:
        na |= {"num_train", "num_test", "data_seed"}
    # what is left as None is an optional feature switched off (clip_norm,
    # patience, recycle_every, ...)
    return {k: "n/a" if k in na else "off" if v is None else v for k, v in cfg.items()}


def data_line(sizes: tuple[int, int, int], metric: str) -> str:
    """One sentence: the split sizes and, for accuracy, its granularity.

    Example:
        >>> data_line((117, 13, 48), "accuracy")  # doctest: +ELLIPSIS
        'Data: 117 training examples, 13 held out for validation, 48 test ... 2.08 points.'
    """
    n_tr, n_val, n_te = sizes
    val = f", {n_val} held out for validation" if n_val else ", no validation split"
    text = f"Data: {n_tr} training examples{val}, {n_te} test examples"
    if metric == "accuracy" and n_te > 0:
        text += (
            f"; one test example is {100 / n_te:.2f} points of accuracy, so "
            f"accuracies move in steps of {100 / n_te:.2f} points."
        )
    else:
        text += "."
    return text


#: the final test loss above this multiple of its minimum over the run: overfit
OVERFIT_RATIO = 1.2


def overfit_line(records: Sequence[dict], summaries: Sequence[Any]) -> str | None:
    """A sentence when the mean test loss of an activation ends more than
    [OVERFIT_RATIO][]× above its minimum during the run; else None."""
    hits = []
    for s in summaries:
        recs = [
            r
            for r in records
            if r["activation"] == s.activation
            and not r["diverged"]
            and "test_loss" in r.get("history", {})
        ]
        if not recs:
            continue
        n = min(len(r["history"]["test_loss"]) for r in recs)
        if n < 3:
            continue
        vals = np.array(
            [
                [np.nan if v is None else v for v in r["history"]["test_loss"][:n]]
                for r in recs
            ],
            np.float64,
        )
        with np.errstate(invalid="ignore"), _quiet():
            mean = np.nanmean(vals, 0)
        if not np.isfinite(mean).any() or not math.isfinite(mean[-1]):
            continue
        i = int(np.nanargmin(mean))
        if i < n - 1 and mean[i] > 0 and mean[-1] > OVERFIT_RATIO * mean[i]:
            step = recs[0]["history"]["step"][i]
            last = recs[0]["history"]["step"][n - 1]
            hits.append((s.activation, step, last, mean[-1] / mean[i]))
    if not hits:
        return None
    last = hits[0][2]
    items = ", ".join(
        f"{a} (lowest at step {st}, ends ×{r:.1f})" for a, st, _, r in hits
    )
    return (
        f"**Overfits**: the mean test loss ends more than {OVERFIT_RATIO}× above its "
        f"lowest value for {items}, of {last} steps. The *best-val* column is the "
        "score at the best validation evaluation (what early stopping would keep); "
        "`--patience` stops there, or give fewer `--steps`."
    )


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
    margin: float = 0.01,
    sizes: tuple[int, int, int] | None = None,
) -> Path:
    """Write `report.md` and return its path.

    It leads with the [decide][] sentence at `margin`; `sizes` are the
    `(train, validation, test)` example counts, stated with the accuracy
    granularity they imply.
    """
    out = Path(out)
    metric = records[0]["metric"] if records else "accuracy"
    cfg = resolved_config(base)
    v = verdict(records, summaries)
    d = decide(records, summaries, margin=margin)
    lines = [
        "# leakyjax compare",
        "",
        d.sentence,
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
        markdown_table(summaries, metric=metric, costs=True),
        "",
    ]
    programs = {}  # one train() call per (activation, seeds trained together)
    for r in records:
        programs.setdefault((r["key"], r.get("wall_time")), r)
    compile_s = sum(r.get("compile_time") or 0.0 for r in programs.values())
    wall_s = sum(r.get("wall_time") or 0.0 for r in programs.values())
    chunking = sorted({r.get("chunking") or "scan" for r in programs.values()})
    counted = [r["compiles"] for r in programs.values() if _finite(r.get("compiles"))]
    compiles = f"{sum(counted)} program(s) compiled, " if counted else ""
    lines += [
        f"Time: {compile_s:.1f} s compiling, {wall_s - compile_s:.1f} s training "
        f"and evaluating ({len(programs)} train call(s), {compiles}chunks run as "
        f"{'/'.join(chunking)}; runs read back keep the times of the call that "
        "trained them). *ms / step*: one training step of all seeds of an "
        "activation, compilation and evaluation excluded; *step MiB*: temporary "
        "memory of its compiled training program.",
        "",
    ]
    if sizes is not None:
        lines += [data_line(sizes, metric), ""]
    over = overfit_line(records, summaries)
    if over:
        lines += [over, ""]
    div = [s for s in summaries if s.diverged]
    if div:
        lines += [
            "**Diverged** (non-finite loss or gradient; training of that seed "
            "stopped, the others continued): "
            + ", ".join(f"{s.activation} {s.diverged}/{s.seeds}" for s in div),
            "",
        ]
    lines += [
        "## Which activation?",
        "",
        d.sentence,
        "",
        f"Margin {_margin_text(margin, metric == 'accuracy')} (`--margin`): "
        "*worse* when the 95% paired interval of the difference to the best lies "
        "beyond the margin, *equivalent* when the 90% interval lies inside it "
        "(two one-sided tests at 5%); each pair on its own. Without a margin: "
        + v.sentence,
        "",
    ]
    if len(v.tied) > 1:
        lines += [
            "Cannot be told apart from the best: "
            + ", ".join(v.tied)
            + " (their 95% paired interval against "
            + f"{v.best} includes 0).",
            "",
        ]
    if v.pairs:
        lines += [
            "### Paired comparisons",
            "",
            f"Difference of the final {_METRIC.get(metric, metric)} over the seeds "
            "both activations finished (diverged seeds left out), with a two-sided "
            "95% t interval; *separated* when the interval excludes 0 (each pair "
            "on its own, not corrected for multiple comparisons).",
            "",
            pairs_markdown(v, metric=metric),
            "",
        ]
    if not dead_informative(summaries):
        lines += [
            "No activation has a dead unit in any layer after training, so there "
            "is no dead-fraction plot.",
            "",
        ]
    for p in plots:
        lines += [f"![{Path(p).stem}]({Path(p).name})", ""]
    lines += ["## Configuration", "", "| field | value |", "|---|---|"]
    lines += [f"| {k} | {val} |" for k, val in cfg.items()]
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
    return _io.write_text(out / "report.md", "\n".join(lines))
