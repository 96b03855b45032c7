"""report.md on synthetic records: paired comparisons, the recommendation, config."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("scipy")

from leakyjax._src.train import TrainConfig
from leakyjax._src.train import report as rp
from leakyjax._src.train.compare import summarize


def _records(scores: dict[str, list], *, dead=None, diverged=()):
    out = []
    for act, vals in scores.items():
        for seed, v in enumerate(vals):
            out.append(
                dict(
                    key=act,
                    activation=act,
                    seed=seed,
                    metric="accuracy",
                    diverged=(act, seed) in diverged,
                    final_test_acc=None if (act, seed) in diverged else v,
                    best_test_acc=v,
                    final_test_loss=1 - v,
                    dead_fraction=(dead or {}).get(act, [0.0, 0.0]),
                    wall_time=2.0,
                    compile_time=0.5,
                    wall_time_per_seed=1.0,
                    num_devices=1,
                    history=dict(
                        step=[0, 1],
                        train_loss=[None, 1.0],
                        test_loss=[1.0, 0.5],
                        test_acc=[0.1, v],
                    ),
                )
            )
    return out


def _verdict(scores, **kw):
    recs = _records(scores, **kw)
    sums = summarize(recs, list(scores))
    return rp.verdict(recs, sums), recs, sums


def test_clear_winner_is_named():
    rng = np.random.default_rng(0)
    base = rng.normal(0.8, 0.02, 5)  # seed effects shared by both: paired
    v, _, _ = _verdict(
        {
            "relu": list(base),
            "elu": list(base + 0.03 + rng.normal(0, 0.002, 5)),
            "tanh": list(base - 0.05),
        }
    )
    assert v.best == "elu" and v.tied == ("elu",)
    assert v.sentence.startswith("Recommendation: **elu**")
    assert "relu" in v.sentence  # the closest competitor
    p = next(p for p in v.pairs if {p.a, p.b} == {"elu", "relu"})
    assert p.n == 5 and p.separated and 0 < p.low < 0.03 < p.high
    assert v.seeds_needed is None


def test_a_tie_is_called_a_tie_with_seeds_needed():
    v, _, _ = _verdict(
        {
            "relu": [0.80, 0.82, 0.81, 0.79, 0.80],
            "elu": [0.81, 0.80, 0.82, 0.80, 0.79],
        }
    )
    assert set(v.tied) == {"relu", "elu"}
    assert "cannot be separated on this budget (5 seeds)" in v.sentence
    assert "run more seeds" in v.sentence or "would likely not" in v.sentence
    assert not v.pairs[0].separated and v.pairs[0].low < 0 < v.pairs[0].high


def test_seeds_needed_matches_the_paired_t_power():
    # d / sd = 1: 10 pairs (two-sided 5%, 80%); d / sd = 0.5: 34 pairs
    assert rp.seeds_needed(1.0, 1.0) == 10
    assert rp.seeds_needed(0.5, 1.0) == 34
    assert rp.seeds_needed(-0.5, 1.0) == 34
    assert rp.seeds_needed(0.0, 1.0) is None
    assert rp.seeds_needed(1e-4, 1.0) is None  # more than 1000: not worth it
    v, _, _ = _verdict({"a": [0.80, 0.83, 0.79, 0.84], "b": [0.79, 0.80, 0.80, 0.80]})
    if len(v.tied) > 1:
        p = v.pairs[0]
        assert v.seeds_needed == rp.seeds_needed(p.mean, p.sd)
        assert f"about {v.seeds_needed} seeds" in v.sentence


def test_interval_is_the_t_interval():
    from scipy import stats

    a, b = [0.9, 0.8, 0.85], [0.88, 0.79, 0.81]
    p = rp.paired(_records({"a": a, "b": b}), "a", "b")
    d = np.subtract(a, b)
    res = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert p.n == 3 and np.isclose(p.mean, d.mean())
    assert np.isclose(p.low, res.low) and np.isclose(p.high, res.high)


def test_diverged_seeds_leave_the_pairs_and_one_seed_is_no_interval():
    v, _, _ = _verdict({"a": [0.9, 0.91], "b": [0.5, 0.6]}, diverged={("b", 1)})
    assert v.pairs[0].n == 1 and not v.pairs[0].separated
    assert "at least 2 seeds" in v.sentence
    v, _, _ = _verdict({"a": [0.9], "b": [0.1]}, diverged={("b", 0)})
    assert v.best == "a" and v.sentence == "Only **a** finished."


def test_report_has_the_answer_resolved_config_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(1)
    base = rng.normal(0.8, 0.02, 4)
    _, recs, sums = _verdict(
        {"relu": list(base), "elu": list(base + 0.04)},
        dead={"relu": [0.25, 0.0], "elu": [0.0, 0.0]},
    )
    plots = rp.write_plots(tmp_path, recs, sums)
    assert [p.name for p in plots] == [
        "curves.png",
        "final_accuracy.png",
        "dead_fraction.png",
    ]
    text = rp.write_report(
        tmp_path,
        recs,
        sums,
        base=TrainConfig(model="mlp", dataset="mnist1d"),
        seeds=range(4),
        command="x",
        plots=plots,
    ).read_text()
    assert "## Which activation?" in text and "Recommendation: **elu**" in text
    assert "| elu | relu | +4.00 points |" in text and "elu better" in text
    for row in ("| depth | 2 |", "| width | 100 |", "| num_train | 4000 |"):
        assert row in text, row
    assert "| num_test | 1000 |" in text and "| data_seed | 42 |" in text
    assert "None" not in text.split("## Configuration")[1].split("## Versions")[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["report.md", *(p.name for p in plots)]
    )  # atomic writes leave no temporary files


def test_dead_fraction_plot_only_when_a_unit_died(tmp_path):
    pytest.importorskip("matplotlib")
    _, recs, sums = _verdict({"relu": [0.8, 0.81], "elu": [0.82, 0.8]})
    plots = rp.write_plots(tmp_path, recs, sums)
    assert "dead_fraction.png" not in [p.name for p in plots]
    text = rp.write_report(
        tmp_path, recs, sums, base=TrainConfig(), seeds=(0, 1), command=None
    ).read_text()
    assert "no dead-fraction plot" in text


def test_every_panel_has_a_legend(tmp_path, monkeypatch):
    plt = pytest.importorskip("matplotlib.pyplot")
    seen = []
    real = rp._io.save_figure

    def spy(fig, path, **kw):
        seen.append((path.name, [ax.get_legend() is not None for ax in fig.axes]))
        return real(fig, path, **kw)

    monkeypatch.setattr(rp._io, "save_figure", spy)
    _, recs, sums = _verdict(
        {"relu": [0.8, 0.81], "elu": [0.82, 0.8]},
        dead={"relu": [0.1, 0.0], "elu": [0.0, 0.0]},
    )
    rp.write_plots(tmp_path, recs, sums)
    assert [n for n, _ in seen] == [
        "curves.png",
        "final_accuracy.png",
        "dead_fraction.png",
    ]
    for name, legends in seen:
        assert legends and all(legends), name
    plt.close("all")


# ---------------------------------------------------------------- the decision


def _tost90(a, b):
    """The 90% paired t interval of mean(a - b), from the formula."""
    from scipy import stats

    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    n = len(d)
    half = stats.t.ppf(0.95, n - 1) * d.std(ddof=1) / np.sqrt(n)
    return d.mean() - half, d.mean() + half


def _decide(scores, margin, costs=None):
    recs = _records(scores)
    return rp.decide(recs, summarize(recs, list(scores)), margin=margin, costs=costs)


def test_decision_one_better_by_more_than_the_margin():
    d = _decide(
        {"elu": [0.91, 0.93, 0.92, 0.90, 0.92], "relu": [0.81, 0.84, 0.82, 0.80, 0.83]},
        margin=0.01,
    )
    assert (d.outcome, d.best, d.pick, d.worse) == ("better", "elu", "elu", ("relu",))
    assert d.sentence.startswith("**Use elu**") and "±1.00 points" in d.sentence
    # differences 10, 9, 10, 10, 9 points: 95% interval [8.92, 10.28], 90%
    # [9.08, 10.12]; at a 10-point margin neither better nor equivalent
    scores = {
        "elu": [0.91, 0.93, 0.92, 0.90, 0.92],
        "relu": [0.81, 0.84, 0.82, 0.80, 0.83],
    }
    assert _decide(scores, margin=0.1).outcome == "undecided"
    assert _decide(scores, margin=0.089).outcome == "better"
    assert _decide(scores, margin=0.103).outcome == "equivalent"


def test_decision_equivalent_within_the_margin_picks_on_cost():
    rng = np.random.default_rng(0)
    a = 0.8 + rng.normal(0, 0.01, 6)
    b = a + rng.normal(0, 0.002, 6)
    c = a - 0.1  # worse by far more than the margin
    lo, hi = _tost90(a, b)
    edge = max(abs(lo), abs(hi))  # the TOST boundary, from the formula
    costs = {
        "a": rp.Cost(0.003, 3 * 2**20),
        "b": rp.Cost(0.001, 2 * 2**20),
        "c": rp.Cost(0.0005, 2**20),
    }
    scores = {"a": list(a), "b": list(b), "c": list(c)}
    d = _decide(scores, margin=edge * 1.01, costs=costs)
    assert d.outcome == "equivalent" and set(d.equivalent) == {"a", "b"}
    assert d.worse == ("c",) and d.pick == "b"  # c is cheaper but worse
    assert "are equivalent within" in d.sentence
    assert "Pick on cost: **b** (1.00 ms per step, 2.00 MiB" in d.sentence
    d = _decide(scores, margin=edge * 0.99, costs=costs)  # just inside: undecided
    assert d.outcome == "undecided" and d.undecided == tuple({"a", "b"} - {d.best})
    # fastest and leanest differ: both are named
    costs["a"] = rp.Cost(0.003, 2**19)
    d = _decide(scores, margin=edge * 1.01, costs=costs)
    assert (
        "**b** is the fastest" in d.sentence and "**a** needs the least" in d.sentence
    )


def test_decision_undecided_says_what_would_decide():
    d = _decide({"a": [0.80, 0.86, 0.79, 0.85], "b": [0.79, 0.80, 0.80, 0.80]}, 0.01)
    assert d.outcome == "undecided" and d.undecided == ("b",)
    assert d.sentence.startswith("Undecided at ±1.00 points with 4 seeds")
    assert "--margin" in d.sentence
    d = _decide({"a": [0.9], "b": [0.5]}, 0.01)  # one seed: no interval
    assert d.outcome == "undecided" and "at least 2 seeds" in d.sentence
    with pytest.raises(ValueError, match="decide: margin"):
        _decide({"a": [0.9, 0.8], "b": [0.5, 0.4]}, 0.0)


def test_report_leads_with_the_decision_sizes_overfit_and_na(tmp_path):
    recs = _records({"relu": [0.80, 0.82, 0.81], "elu": [0.70, 0.71, 0.72]})
    for r in recs:  # test loss bottoms out at step 10, ends 3x higher
        r["history"] = dict(
            step=[0, 10, 20],
            train_loss=[None, 0.5, 0.1],
            test_loss=[1.0, 0.2, 0.6],
            test_acc=[0.1, 0.8, r["final_test_acc"]],
        )
        r.update(step_time=0.002, step_memory=2**20, compiles=3)
    sums = summarize(recs, ["relu", "elu"])
    base = TrainConfig(model="mymodels:mlp", dataset="data.npz")
    text = rp.write_report(
        tmp_path, recs, sums, base=base, seeds=range(3), command="x",
        margin=0.01, sizes=(117, 13, 48),
    ).read_text()  # fmt: skip
    assert text.split("\n")[2].startswith("**Use relu**")
    assert "48 test examples; one test example is 2.08 points" in text
    assert "**Overfits**" in text and "relu (lowest at step 10, ends ×3.0)" in text
    for field in ("depth", "width", "init", "num_train", "num_test", "data_seed"):
        assert f"| {field} | n/a |" in text, field
    assert "| steps |" in text and "n/a" not in text.split("| steps |")[1][:6]
    assert "6 program(s) compiled" in text  # 3 per activation
    assert "| 2.00 | 1.00 | 1.0 |" in text  # ms / step, step MiB, s / seed
    plain = rp.markdown_table(sums)  # what the README renders: no cost columns
    assert "ms / step" not in plain and plain.split("\n")[0].endswith("s / seed |")
