"""``compare``: files, resume after an interruption, diverged runs, report."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("optax")
pytest.importorskip("matplotlib")

from leakyjax._src.train import TrainConfig
from leakyjax._src.train import compare as cmp

BASE = TrainConfig(
    dataset="digits",
    num_train=200,
    num_test=100,
    width=16,
    steps=12,
    eval_every=6,
    batch_size=20,
)
ACTS = ("relu", "leaky_relu:0.2", "prelu")
PNG = b"\x89PNG\r\n\x1a\n"


class _Interrupt(Exception):
    pass


def test_compare_files_resume_after_interruption(tmp_path, monkeypatch):
    real_train = cmp.train
    calls = []

    def flaky(config, seeds, **kw):  # dies while training the second activation
        calls.append((config.activation, tuple(seeds)))
        if len(calls) == 2:
            raise _Interrupt
        return real_train(config, seeds, **kw)

    monkeypatch.setattr(cmp, "train", flaky)
    with pytest.raises(_Interrupt):
        cmp.compare(ACTS, seeds=2, out=tmp_path, base=BASE, progress=False)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2  # the finished activation, both seeds: kept
    first = [json.loads(x) for x in lines]
    assert {r["activation"] for r in first} == {"relu"}
    # a run killed while writing leaves a torn line: it is skipped
    with (tmp_path / "results.jsonl").open("a") as f:
        f.write('{"key": "torn')

    calls.clear()

    def counting(config, seeds, **kw):
        calls.append((config.activation, tuple(seeds)))
        return real_train(config, seeds, **kw)

    monkeypatch.setattr(cmp, "train", counting)
    res = cmp.compare(
        ACTS, seeds=2, out=tmp_path, base=BASE, progress=False, command="cmd x"
    )
    # relu was read back, not retrained
    assert calls == [("leaky_relu:0.2", (0, 1)), ("prelu", (0, 1))]
    assert res.trained == ("leaky_relu:0.2", "prelu")
    relu = [r for r in res.records if r["activation"] == "relu"]
    assert relu == first

    # results.jsonl: one line per activation x seed with what the issue lists
    recs = cmp.read_results(tmp_path / "results.jsonl")
    assert len(recs) == 6
    for r in recs:
        for k in (
            "config",
            "final_test_acc",
            "best_test_acc",
            "final_test_loss",
            "best_test_loss",
            "steps",
            "wall_time",
            "dead_fraction",
        ):
            assert k in r, k
        assert r["steps"] == 12 and len(r["dead_fraction"]) == 2
        assert 0.0 <= r["final_test_acc"] <= 1.0
    # report and plots
    report = res.report.read_text()
    assert "cmd x" in report and "| rank | activation |" in report
    for s in res.summaries:
        assert f"| {s.activation} |" in report
        assert s.seeds == 2 and s.diverged == 0
    accs = [s.final_acc_mean for s in res.summaries]
    assert accs == sorted(accs, reverse=True)  # ranked
    assert "jax" in report and "flax" in report  # versions
    assert {p.name for p in res.plots} == {
        "curves.png",
        "final_accuracy.png",
        "dead_fraction.png",
    }
    for p in res.plots:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 5000

    # a third run with more seeds trains only the new seed
    calls.clear()
    res = cmp.compare(ACTS[:1], seeds=3, out=tmp_path, base=BASE, progress=False)
    assert calls == [("relu", (2,))]
    assert [r["seed"] for r in res.records] == [0, 1, 2]


def test_diverged_runs_are_recorded_and_reported(tmp_path):
    base = BASE._replace(
        optimizer="sgd", learning_rate=1e6, clip_norm=None, schedule="constant"
    )
    res = cmp.compare(("relu", "elu"), seeds=2, out=tmp_path, base=base, progress=False)
    recs = cmp.read_results(tmp_path / "results.jsonl")
    assert len(recs) == 4 and all(r["diverged"] for r in recs)
    assert all(r["final_test_acc"] is None for r in recs)  # nan -> null
    assert all(s.diverged == 2 and np.isnan(s.final_acc_mean) for s in res.summaries)
    report = res.report.read_text()
    assert "**Diverged**" in report and "relu 2/2" in report
    assert all(p.exists() for p in res.plots)


def test_compare_rejects_bad_input_before_training(tmp_path):
    with pytest.raises(ValueError, match="relux"):
        cmp.compare(("relu", "relux"), out=tmp_path, base=BASE, progress=False)
    with pytest.raises(ValueError, match="seeds"):
        cmp.compare(("relu",), seeds=0, out=tmp_path, base=BASE, progress=False)
    assert not (tmp_path / "results.jsonl").exists()


# --------------------------------------------------------------------------- #
# your model, your data
# --------------------------------------------------------------------------- #
def tiny_linen(act):
    """A user's linen model factory: Dense -> act -> Dense(3)."""
    import flax.linen as nn

    class Tiny(nn.Module):
        @nn.compact
        def __call__(self, x, *, train: bool = False):
            x = act(train=train)(nn.Dense(8)(x.reshape(x.shape[0], -1)))
            return nn.Dense(3)(x)

    return Tiny()


def tiny_nnx(act, *, rngs):
    """A user's nnx model factory (regression, one target)."""
    from flax import nnx

    class Tiny(nnx.Module):
        def __init__(self):
            self.l1 = nnx.Linear(6, 8, rngs=rngs)
            self.act = act(rngs=rngs)
            self.l2 = nnx.Linear(8, 1, rngs=rngs)

        def __call__(self, x):
            return self.l2(self.act(self.l1(x)))

    return Tiny()


def wrong_width(act):
    import flax.linen as nn

    return nn.Dense(5)


def user_data(task="classification", n=120, m=40):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n + m, 6)).astype(np.float32)
    if task == "classification":
        y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    else:
        y = (x[:, :1] * 2 - x[:, 1:2]).astype(np.float32)
    return {"x_train": x[:n], "y_train": y[:n], "x_test": x[n:], "y_test": y[n:]}


USER_BASE = TrainConfig(steps=8, eval_every=4, batch_size=20, val_fraction=0.0)


def test_user_linen_model_and_arrays_resume(tmp_path):
    kw = dict(out=tmp_path, base=USER_BASE, model=tiny_linen, progress=False)
    res = cmp.compare(["relu", "prelu"], seeds=2, data=user_data(), plots=True, **kw)
    recs = res.records
    assert {r["config"]["model"] for r in recs} == {"tests.test_compare:tiny_linen"}
    assert {r["config"]["dataset"] for r in recs} == {"user"}
    assert all(r["data_fingerprint"] and r["metric"] == "accuracy" for r in recs)
    # dead units are measured in the user's model too (its leakyjax modules)
    assert all(len(r["dead_fraction"]) == 1 for r in recs)
    assert res.trained == ("relu", "prelu") and all(p.exists() for p in res.plots)
    assert "s compiling" in res.report.read_text()
    again = cmp.compare(["relu", "prelu"], seeds=2, data=user_data(), plots=False, **kw)
    assert again.trained == ()  # read back
    changed = user_data()
    changed["y_train"] = changed["y_train"][::-1].copy()
    third = cmp.compare(["relu"], seeds=2, data=changed, plots=False, **kw)
    assert third.trained == ("relu",)  # other data: not the stored runs


def test_user_nnx_model_regression_task_inferred(tmp_path):
    res = cmp.compare(
        ["leaky_relu:0.2", "rrelu"],
        seeds=2,
        out=tmp_path,
        base=USER_BASE,
        model=tiny_nnx,
        data=user_data("regression"),
        progress=False,
        plots=False,
    )
    assert all(r["metric"] == "r2" for r in res.records)
    assert all(np.isfinite(s.final_acc_mean) for s in res.summaries)
    assert all(r["dead_fraction"] is not None for r in res.records)


@pytest.mark.parametrize(
    "model, data, words",
    [
        (wrong_width, user_data(), "output has shape (1, 5)"),
        (tiny_linen, {"x_train": np.zeros((4, 6))}, "missing y_train, x_test, y_test"),
        (
            tiny_linen,
            {**user_data(), "y_test": np.array(["a"] * 40)},
            "y_test must be numeric",
        ),
        (
            tiny_linen,
            {**user_data(), "x_test": np.zeros((40, 7), np.float32)},
            "x_test examples (7,)",
        ),
        ("tests.test_compare:nope", user_data(), "has no attribute 'nope'"),
        (tiny_linen, (1, 2, 3), "got 3 items"),
    ],
)
def test_user_model_or_data_that_do_not_fit(tmp_path, model, data, words):
    with pytest.raises(ValueError) as e:
        cmp.compare(
            ["relu"], out=tmp_path, base=USER_BASE, model=model, data=data,
            progress=False, plots=False,
        )  # fmt: skip
    assert words in str(e.value)
    assert not (tmp_path / "results.jsonl").exists()


def test_classification_labels_must_be_integers(tmp_path):
    with pytest.raises(ValueError, match="integer labels"):
        from leakyjax.train import as_dataset

        as_dataset(user_data("regression"), task="classification")


def test_each_spec_is_parsed_once_on_its_way_down(tmp_path, monkeypatch):
    """compare -> check_config -> train -> the model's modules: one parse per
    spec, carried down as an `ActivationFactory` (a spelling of the same
    activation, ELU beside elu, is dropped before training)."""
    from leakyjax._src import registry
    from leakyjax._src.train import models

    parsed = []
    real = registry.parse

    def counting(spec):
        parsed.append(spec)
        return real(spec)

    monkeypatch.setattr(registry, "parse", counting)
    models._parse.cache_clear()
    models._module_factory.cache_clear()
    registry._get_string.cache_clear()
    base = BASE._replace(steps=4, eval_every=4, depth=2)
    res = cmp.compare(
        ["relu", "leaky_relu:0.3", "ELU", "elu"], seeds=1, out=tmp_path, base=base,
        progress=False, plots=False,
    )  # fmt: skip
    assert res.trained == ("relu", "leaky_relu:0.3", "ELU")
    counts = {s: parsed.count(s) for s in parsed}
    assert counts.pop("linear", 1) == 1  # the head's initialiser (cached)
    assert counts == {"relu": 1, "leaky_relu:0.3": 1, "ELU": 1, "elu": 1}
