"""Training stack: data, models, optimiser, seeds in one program, divergence."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("optax")

from leakyjax._src.train import (
    TrainConfig,
    load_dataset,
    make_model,
    make_optimizer,
    train,
)
from leakyjax._src.train.loop import _Order

SMALL = dict(
    dataset="digits",
    num_train=300,
    num_test=100,
    width=24,
    steps=24,
    eval_every=8,
    batch_size=20,
)


def _assert_runs_close(a, b, rtol=2e-4, atol=2e-5):
    assert a.seed == b.seed and a.steps == b.steps and a.diverged == b.diverged
    for field in ("train_loss", "val_loss", "val_acc", "test_loss", "test_acc"):
        np.testing.assert_allclose(
            getattr(a.history, field), getattr(b.history, field), rtol=rtol, atol=atol
        )


# --------------------------------------------------------------------------- #
# data
# --------------------------------------------------------------------------- #
def test_unknown_dataset_lists_valid_ones():
    with pytest.raises(ValueError, match=r"'mnist'.*mnist1d, digits, regression"):
        load_dataset("mnist")


def test_mnist1d_is_generated_locally_with_the_requested_split(monkeypatch):
    import mnist1d.data

    def no_download(*a, **k):
        raise AssertionError("get_dataset downloads; it must not be called")

    monkeypatch.setattr(mnist1d.data, "get_dataset", no_download)
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    ds = load_dataset("mnist1d", num_train=400, num_test=100)
    assert ds.x_train.shape == (400, 40) and ds.x_test.shape == (100, 40)
    assert ds.x_train.dtype == np.float32 and set(np.unique(ds.y_train)) == set(
        range(10)
    )
    # the global numpy generator is left as it was
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    with pytest.raises(ValueError, match="multiple of 10"):
        load_dataset("mnist1d", num_train=401, num_test=100)


def test_digits_and_regression_shapes():
    d = load_dataset("digits")
    assert d.x_train.shape == (1437, 8, 8) and d.x_test.shape == (360, 8, 8)
    assert d.metric == "accuracy"
    with pytest.raises(ValueError, match="1797"):
        load_dataset("digits", num_train=1800, num_test=10)
    r = load_dataset("regression", num_train=50, num_test=20)
    assert r.y_train.shape == (50, 1) and r.task == "regression" and r.metric == "r2"
    assert abs(float(r.y_train.mean())) < 1e-5


# --------------------------------------------------------------------------- #
# models and optimiser
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("model, shape", [("mlp", (2, 40)), ("cnn", (2, 8, 8))])
def test_models_shapes_and_prelu_parameters(model, shape):
    m = make_model(model, "prelu", 10, depth=2, width=8, batch_norm=True, dropout=0.1)
    x = jnp.ones(shape)

    @jax.jit
    def init_apply(key):
        v = m.init({"params": key, "dropout": key}, x)
        out, _ = m.apply(
            v, x, train=True, rngs={"dropout": key}, mutable=["batch_stats"]
        )
        return v, out

    v, out = init_apply(jax.random.key(0))
    assert out.shape == (2, 10)
    slopes = [
        leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(v["params"])
        if "negative_slope" in jax.tree_util.keystr(path)
    ]
    assert len(slopes) == 2 and all(float(s) == 0.25 for s in slopes)


def test_kernel_init_uses_the_activation_gain():
    w = {}
    for act in ("relu", "tanh"):
        m = make_model("mlp", act, 10, depth=1, width=2000)
        v = m.init(jax.random.key(0), jnp.ones((1, 500)))
        w[act] = float(jnp.std(v["params"]["Dense_0"]["kernel"])) * np.sqrt(500)
    assert w["relu"] == pytest.approx(np.sqrt(2), rel=0.02)
    assert w["tanh"] == pytest.approx(5 / 3, rel=0.02)


def test_unknown_model_and_activation():
    with pytest.raises(ValueError, match=r"'rnn'.*mlp, cnn"):
        make_model("rnn", "relu", 10)
    with pytest.raises(ValueError, match="relux"):
        make_model("mlp", "relux", 10)
    with pytest.raises(ValueError, match="optimizer"):
        train(TrainConfig(optimizer="lamb"))
    with pytest.raises(ValueError, match="patience"):
        train(TrainConfig(patience=2, val_fraction=0.0))


def test_adamw_decays_weights_but_not_prelu_slopes():
    cfg = TrainConfig(
        learning_rate=0.1, weight_decay=0.5, schedule="constant", clip_norm=None
    )
    tx = make_optimizer(cfg)
    params = {
        "Dense_0": {"kernel": jnp.ones((2, 2))},
        "PReLU_0": {"negative_slope": jnp.array(0.25)},
    }
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    assert float(updates["PReLU_0"]["negative_slope"]) == 0.0
    np.testing.assert_allclose(updates["Dense_0"]["kernel"], -0.05)


# --------------------------------------------------------------------------- #
# seeds in one program
# --------------------------------------------------------------------------- #
def test_seeds_in_one_program_equal_seeds_one_by_one():
    # rrelu + dropout: the per-seed noise streams must not depend on the batch
    cfg = TrainConfig(activation="rrelu", dropout=0.1, **SMALL)
    together = train(cfg, seeds=(0, 1, 2))
    assert [r.seed for r in together.runs] == [0, 1, 2]
    for i, seed in enumerate((0, 1, 2)):
        alone = train(cfg, seeds=(seed,))
        _assert_runs_close(together.runs[i], alone.runs[0])
        for a, b in zip(
            jax.tree_util.tree_leaves(together.variables),
            jax.tree_util.tree_leaves(alone.variables),
        ):
            np.testing.assert_allclose(a[i], b[0], rtol=2e-4, atol=2e-5)
    # different seeds really differ
    assert together.runs[0].final_test_loss != together.runs[1].final_test_loss
    assert together.runs[0].history.step.tolist() == [0, 8, 16, 24]
    assert all(np.isfinite(r.final_test_acc) for r in together.runs)
    assert all(len(r.dead_fraction) == 2 for r in together.runs)


def test_a_diverging_seed_is_frozen_and_the_others_continue():
    base = load_dataset("digits", num_train=300, num_test=100)
    x = base.x_train.copy()
    x[7] = np.nan  # every batch holding example 7 has a nan loss
    ds = base._replace(x_train=x)
    cfg = TrainConfig(
        activation="leaky_relu:0.2", **{**SMALL, "steps": 6, "eval_every": 3}
    )
    cfg = cfg._replace(val_fraction=0.0)
    seeds = (0, 1, 2, 3, 4, 5)
    # which seeds meet example 7 within 6 steps of 20: the same data order
    hits = {s: 7 in _Order(s, 300).take(6, 20) for s in seeds}
    assert any(hits.values()) and not all(hits.values())
    res = train(cfg, seeds=seeds, dataset=ds)
    for r in res.runs:
        assert r.diverged == hits[r.seed]
        if r.diverged:
            assert r.steps < 6 and np.isnan(r.final_test_acc)
            assert r.dead_fraction is None
        else:
            assert r.steps == 6 and np.isfinite(r.final_test_acc)
    for leaf in jax.tree_util.tree_leaves(res.variables["params"]):
        assert np.isfinite(np.asarray(leaf)).all()  # frozen before the nan update
    clean = next(s for s in seeds if not hits[s])
    alone = train(cfg, seeds=(clean,), dataset=ds)
    _assert_runs_close(res.runs[seeds.index(clean)], alone.runs[0])


def test_early_stopping_cnn_batch_norm_and_regression():
    cfg = TrainConfig(  # 1-D CNN on mnist1d
        activation="elu",
        model="cnn",
        batch_norm=True,
        patience=1,
        learning_rate=3e-2,
        schedule="constant",
        **{**SMALL, "steps": 400, "eval_every": 4, "dataset": "mnist1d", "width": 8},
    )
    res = train(cfg, seeds=(0, 1))
    for r in res.runs:
        assert r.stopped_early and r.steps < 400 and not r.diverged
        assert np.isfinite(r.best_test_acc) and r.best_step <= r.steps
    reg = train(
        TrainConfig(
            activation="leaky_relu:0.1",
            dataset="regression",
            num_train=400,
            num_test=100,
            steps=100,
            eval_every=50,
            batch_size=50,
            learning_rate=1e-2,
            schedule="constant",
        ),
        seeds=(0,),
    )
    assert reg.metric == "r2" and 0.5 < reg.runs[0].final_test_acc <= 1.0


def test_cnn_chunking_loop_matches_scan():
    """On CPU a conv model runs as a host loop over one jitted step; same numbers."""
    import jax

    cfg = TrainConfig(
        model="cnn", dataset="mnist1d", num_train=200, num_test=100, width=4,
        steps=6, eval_every=3, batch_size=20, activation="rrelu", dropout=0.1,
    )  # fmt: skip
    auto = train(cfg, seeds=(0, 1))
    scan = train(cfg, seeds=(0, 1), chunking="scan")
    if jax.default_backend() == "cpu":
        assert auto.chunking == "loop"
    assert scan.chunking == "scan"
    for a, b in zip(auto.runs, scan.runs):
        np.testing.assert_allclose(
            a.history.train_loss, b.history.train_loss, rtol=1e-4
        )
        np.testing.assert_allclose(a.history.test_loss, b.history.test_loss, rtol=1e-4)
    assert auto.runs[0].history.dead_fraction.shape == (3, 3)


def test_mlp_runs_as_scan_and_train_set_metrics():
    cfg = TrainConfig(
        dataset="digits", num_train=200, num_test=100, width=8, steps=4,
        eval_every=2, batch_size=20,
    )  # fmt: skip
    res = train(cfg, seeds=(0,))
    assert res.chunking == "scan"
    h = res.runs[0].history
    assert h.train_acc.shape == (3,) and np.all((h.train_acc >= 0) & (h.train_acc <= 1))
    assert np.all(np.isfinite(h.train_eval_loss))
