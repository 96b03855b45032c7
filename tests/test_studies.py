"""``leakyjax study``: quick modes reproduce the qualitative claims; resume; CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("optax")
pytest.importorskip("matplotlib")

from leakyjax._src.study import born_dead, init_depth
from leakyjax._src.study import studies as S


def _cells(data):
    return {
        (c["activation"], c["bias"], c["width"], c["depth"]): c for c in data["cells"]
    }


# --------------------------------------------------------------------------- #
# born-dead, through the CLI entry point
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def born_dead_out(tmp_path_factory):
    """The jax-only study, through the CLI, with flax and optax made unimportable."""
    import subprocess
    import sys

    from tests.test_cli import NO_FLAX

    out = tmp_path_factory.mktemp("born_dead")
    proc = subprocess.run(
        [sys.executable, "-c", NO_FLAX, "study", "born-dead", "--quick", "--out",
         str(out), "--no-progress", "--no-compile-cache"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_born_dead_relu_collapses_with_depth(born_dead_out):
    data = json.loads((born_dead_out / "born_dead.json").read_text())
    cells = _cells(data)
    cfg = data["config"]
    assert (born_dead_out / "born_dead.png").stat().st_size > 10_000
    for w in cfg["widths"]:
        ps = [cells[("relu", "zero", w, d)]["p_constant"] for d in cfg["depths"]]
        assert ps == sorted(ps) and ps[-1] > ps[0] + 0.3, (w, ps)
    assert cells[("relu", "zero", 2, 50)]["p_constant"] > 0.95
    # a network constant on the domain is dead at x0 too: below the bound
    for (act, _, w, d), c in cells.items():
        if act == "relu":
            assert c["p_constant"] <= c["p_dead_at_x0"]
            # the single-input probability matches its formula (Monte Carlo)
            se = max(np.sqrt(c["bound"] * (1 - c["bound"]) / c["trials"]), 1e-3)
            assert abs(c["p_dead_at_x0"] - c["bound"]) < 5 * se, (w, d, c)


def test_born_dead_leaky_never_constant(born_dead_out):
    cells = _cells(json.loads((born_dead_out / "born_dead.json").read_text()))
    leaky = [c for k, c in cells.items() if k[0] == "leaky_relu"]
    assert leaky and all(c["p_constant"] == 0.0 for c in leaky)
    # the same networks do have layers whose units are all negative
    assert max(c["p_dead_layer"] for c in leaky) > 0.5


def test_born_dead_resumes(born_dead_out):
    first = json.loads((born_dead_out / "born_dead.json").read_text())
    r = S.run_study("born-dead", out=born_dead_out, quick=True, progress=False)
    data = json.loads(r.results.read_text())
    assert data["parts_computed"] == 0 and data["parts_reused"] == 4
    assert r.summary["max_p_constant_leaky"] == 0.0
    # the compute time of the parts is kept across calls; the numbers are the same
    assert data["seconds_all_parts"] == pytest.approx(first["seconds_all_parts"])
    assert data["cells"] == first["cells"]


def test_born_dead_markdown(born_dead_out):
    data = json.loads((born_dead_out / "born_dead.json").read_text())
    text = S.markdown(data)
    cfg = data["config"]
    assert text.count("| N |") == len(cfg["biases"])
    cell = _cells(data)[("relu", "zero", 2, 5)]
    assert f"| 2 | {cell['p_constant']:.3f} / {cell['bound']:.3f} /" in text
    assert "Wall time: computed in" in text and '"trials": 400' not in text
    assert "trials = 400" in text


def test_born_dead_bad_input():
    import jax

    with pytest.raises(ValueError, match="width"):
        born_dead.estimate_width(jax.random.key(0), width=0)
    with pytest.raises(ValueError, match="bias"):
        born_dead.estimate_width(jax.random.key(0), width=2, bias="uniform")
    with pytest.raises(ValueError, match="activation"):
        born_dead.estimate_width(jax.random.key(0), width=2, activation="elu")
    assert born_dead.single_input_bound(3, 11) == pytest.approx(1 - (7 / 8) ** 10)


# --------------------------------------------------------------------------- #
# init-depth
# --------------------------------------------------------------------------- #
def test_init_depth_quick(tmp_path):
    r = S.run_study("init-depth", out=tmp_path, quick=True, progress=False)
    ratio = r.summary["ratio_last_first"]
    # Xavier halves the variance per ReLU layer: 2^-29 ~ 2e-9 after 30 layers
    assert ratio["xavier_0.0"] < 1e-6
    assert ratio["xavier_0.2"] < 1e-6
    assert 1e-2 < ratio["he_0.0"] < 1e2 and 1e-2 < ratio["he_0.2"] < 1e2
    # He with the ReLU gain on a leaky 0.2 net grows by (1 + a^2) per layer
    assert ratio["he_relu_gain_0.2"] > ratio["he_0.2"]
    loss = r.summary["final_train_loss"]
    assert max(loss["he_0.0"]) < 2.1  # He trains
    assert min(loss["xavier_0.0"]) > 2.25  # Xavier stalls at ln(10) = 2.303
    assert all(f.exists() for f in r.figures)
    text = S.markdown(json.loads(r.results.read_text()))
    assert f"| {init_depth._g(ratio['xavier_0.0'])} (" in text


def test_init_depth_theory():
    assert init_depth.per_layer_factor("xavier", 0.2) == pytest.approx(0.52)
    assert init_depth.per_layer_factor("he_relu_gain", 0.2) == pytest.approx(1.04)
    with pytest.raises(ValueError, match="init"):
        init_depth._initializer("lecun", 0.0)


# --------------------------------------------------------------------------- #
# training studies
# --------------------------------------------------------------------------- #
def test_slope_sweep_quick(tmp_path):
    r = S.run_study("slope-sweep", out=tmp_path, quick=True, progress=False)
    table = r.summary["table"]
    assert [row["activation"] for row in table] == ["ReLU", "leaky 1/5.5", "RReLU (Xu)"]
    for row in table:
        # every activation learns (chance is 0.9) and train error <= test error
        assert row["test_error_mean"] < 0.8
        assert 0.0 <= row["train_error_mean"] <= row["test_error_mean"] + 0.05
    assert sorted(r.summary["test_order"]["mlp"]) == sorted(
        row["activation"] for row in table
    )
    text = S.markdown(json.loads(r.results.read_text()))
    assert text.count("\n| ") == len(table)  # one row per activation


def test_dead_vs_lr_quick(tmp_path):
    r = S.run_study("dead-vs-lr", out=tmp_path, quick=True, progress=False)
    rows = {(t["activation"], t["learning_rate"]): t for t in r.summary["table"]}
    hi, lo = 0.3, 0.01
    # a too-high learning rate kills a large share of a ReLU layer ...
    assert rows[("ReLU", hi)]["dead_fraction_max_layer"] > 0.3
    # ... more than of the same leaky network, and more than at a small rate
    assert (
        rows[("ReLU", hi)]["dead_fraction_max_layer"]
        > rows[("leaky 0.01", hi)]["dead_fraction_max_layer"]
    )
    assert rows[("ReLU", lo)]["dead_fraction_max_layer"] < 0.2
    text = S.markdown(json.loads(r.results.read_text()))
    assert "| 0.3 |" in text and "ReLU test acc" in text


def test_prelu_profile_quick(tmp_path):
    r = S.run_study("prelu-profile", out=tmp_path, quick=True, progress=False)
    data = json.loads(r.results.read_text())
    cw = data["runs"]["channel-wise"]
    assert len(cw["slopes"]["conv1"][0]) == data["config"]["width"]
    assert len(data["runs"]["channel-shared"]["slopes"]["conv1"][0]) == 1
    for mode in ("channel-shared", "channel-wise"):
        prof = r.summary["profile"][mode]
        assert all(np.isfinite(v) for v in prof.values())
        # the slopes were trained (no weight decay pins them): they moved
        assert max(abs(v - 0.25) for v in prof.values()) > 0.01
    text = S.markdown(data)
    assert "| channel-wise |" in text and "| channel-shared |" in text


# --------------------------------------------------------------------------- #
# plumbing
# --------------------------------------------------------------------------- #
def test_unknown_study_names_closest():
    with pytest.raises(ValueError, match="born-dead"):
        S.run_study("born_dead", out="unused")
    with pytest.raises(ValueError, match="seed"):
        S.run_study("born-dead", out="unused", seed=-1)


def test_part_store_reads_back_only_same_config(tmp_path):
    calls = []

    def fn():
        calls.append(1)
        return {"x": np.float32(1.5), "a": np.arange(2)}

    s1 = S.PartStore(tmp_path, "t", config={"n": 1})
    assert s1.get("k/1", fn) == {"x": 1.5, "a": [0, 1]}
    assert S.PartStore(tmp_path, "t", config={"n": 1}).get("k/1", fn)["x"] == 1.5
    assert len(calls) == 1
    S.PartStore(tmp_path, "t", config={"n": 2}).get("k/1", fn)  # config changed
    S.PartStore(tmp_path, "t", config={"n": 2}, force=True).get("k/1", fn)
    assert len(calls) == 3


def _toy_study(calls: list) -> S.Study:
    def parts(cfg, seed):
        def part(i):
            calls.append(i)
            return {"x": np.float32(i * cfg["scale"] + seed)}

        return {f"p{i}": (lambda i=i: part(i)) for i in range(cfg["n"])}

    def summarise(cfg, values):
        total = sum(v["x"] for v in values.values())
        return {"total": total, "lines": [f"total {total}"]}, {"values": values}

    def plot(path, cfg, values):
        path.write_bytes(b"png")
        return path

    return S.Study(
        "toy-study",
        lambda quick, seed: {"n": 2 if quick else 3, "scale": 10},
        parts,
        summarise,
        plot,
        lambda res: f"total {res['summary']['total']:g}",
    )


def test_runner_resumes_records_and_renders(tmp_path, monkeypatch):
    calls: list = []
    study = _toy_study(calls)
    r = S.execute(study, tmp_path, quick=True, seed=1, progress=False)
    assert r == S.StudyResult(
        "toy-study", tmp_path, tmp_path / "toy_study.json",
        (tmp_path / "toy_study.png",), {"total": 12.0, "lines": ["total 12.0"]},
    )  # fmt: skip
    data = json.loads(r.results.read_text())
    assert list(data) == [
        "study", "config", "values", "summary", "seconds_this_call",
        "seconds_all_parts", "parts_reused", "parts_computed",
    ]  # fmt: skip
    assert (data["parts_reused"], data["parts_computed"]) == (0, 2)
    assert sorted(p.name for p in (tmp_path / "parts" / "toy-study").iterdir()) == [
        "p0.json",
        "p1.json",
    ]
    # a second call reuses both parts; the full config recomputes (other config)
    again = S.execute(study, tmp_path, quick=True, seed=1, progress=False)
    assert json.loads(again.results.read_text())["parts_reused"] == 2
    assert calls == [0, 1]
    S.execute(study, tmp_path, quick=False, seed=1, progress=False)
    assert calls == [0, 1, 0, 1, 2]
    S.execute(study, tmp_path, quick=False, seed=1, force=True, progress=False)
    assert len(calls) == 8
    # markdown: the study's text, the compute time and the configuration
    monkeypatch.setattr(S, "load", lambda name: study)
    text = S.markdown(data)
    assert text.startswith("total 12\n\nWall time: computed in ")
    assert text.endswith(
        "(the sum over its 2 parts). Configuration: `n = 2, scale = 10`."
    )


def test_every_study_has_a_results_block_in_the_docs():
    """Each study declares STUDY, a results source and a marked block in STUDY.md."""
    from pathlib import Path

    from tools import results as R

    R.load_tables()
    docs = Path(__file__).parents[1] / "docs"
    # the plasticity study is rendered on the diagnostics page
    doc = (docs / "STUDY.md").read_text() + (docs / "DIAGNOSTICS.md").read_text()
    for name in S.STUDIES:
        stem = name.replace("-", "_")
        study = S.load(name)
        assert study.name == name and callable(study.render_markdown)
        src = R.SOURCES[f"study_{stem}"]
        assert src.results == f"docs/results/study_{stem}.json"
        assert f"leakyjax/_src/study/{stem}.py" in src.code
        assert R.TABLES[f"study_{stem}"].source is src
        assert f"<!-- results:study_{stem} -->" in doc, name


def test_add_study_parser():
    parser = argparse.ArgumentParser(prog="leakyjax")
    S.add_study_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["study", "dead-vs-lr", "--quick", "--out", "d"])
    assert (args.name, args.quick, str(args.out), args.seed) == (
        "dead-vs-lr",
        True,
        "d",
        0,
    )
    assert callable(args.func)
    with pytest.raises(SystemExit):
        parser.parse_args(["study", "nope", "--out", "d"])
