"""The plasticity study: the quick run end to end, and a verdict from numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from leakyjax._src.study import plasticity as P


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    pytest.importorskip("matplotlib")
    pytest.importorskip("optax")
    pytest.importorskip("sklearn")
    from leakyjax.study import run_study

    out = tmp_path_factory.mktemp("plasticity")
    r = run_study("plasticity", out=out, quick=True, progress=False)
    return r, json.loads(r.results.read_text())


def test_quick_runs_every_variant(quick):
    r, res = quick
    cfg = res["config"]
    rows = {(t["activation"], t["method"]): t for t in res["summary"]["table"]}
    assert set(rows) == {(a, m) for a in P.ACTIVATIONS for m in P.METHODS}
    for run in res["runs"]:
        for key in ("online_acc", "test_acc", *P.SCORES):
            arr = np.asarray(run[key])
            assert arr.shape == (len(cfg["seeds"]), cfg["tasks"])
            assert np.all((arr >= 0) & (arr <= 1))
    # plain training replaces nothing; continual backprop does
    assert all(rows[(a, "plain")]["replaced_per_task"] == 0 for a in P.ACTIVATIONS)
    assert sum(rows[(a, "cbp")]["replaced_per_task"] for a in P.ACTIVATIONS) > 0
    assert r.figures[0].exists() and r.figures[0].stat().st_size > 0
    text = P.render_markdown(res)
    assert "| activation | method |" in text and "Verdict" in text
    assert res["summary"]["sentences"][-1].startswith("Direction of the published")


def _fake_values(plain_drop: float, cbp_drop: float, seeds=4, tasks=20):
    rng = np.random.default_rng(0)
    values = {}
    for a in P.ACTIVATIONS:
        for m in P.METHODS:
            drop = {"plain": plain_drop, "cbp": cbp_drop, "redo": plain_drop}[m]
            base = 0.9 - drop * np.linspace(0, 1, tasks)
            acc = base + 0.002 * rng.standard_normal((seeds, tasks))
            run = dict(activation=a, method=m, online_acc=acc.tolist())
            run["test_acc"] = acc.tolist()
            run["replaced"] = np.zeros((seeds, tasks)).tolist()
            for s in P.SCORES:
                run[s] = np.full((seeds, tasks), 0.1).tolist()
            values[f"{a}_{m}"] = run
    cfg = dict(tasks=tasks, seeds=list(range(seeds)), tau=0.1, steps_per_task=10)
    return cfg, values


def test_verdict_follows_the_numbers():
    cfg, values = _fake_values(plain_drop=0.4, cbp_drop=0.0)
    summary, _ = P._summarise(cfg, values)
    last = summary["sentences"][-1]
    assert "reproduced" in last and "not reproduced" not in last
    assert "falls" in summary["sentences"][0]
    cfg, values = _fake_values(plain_drop=0.0, cbp_drop=0.0)
    summary, _ = P._summarise(cfg, values)
    assert "not reproduced" in summary["sentences"][-1]
    assert "none of the activations" in summary["sentences"][1]
