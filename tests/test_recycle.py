"""Recycling dormant units (leakyjax.recycle): planted units, exact changes."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import leakyjax
from leakyjax import recycle


def _mlp_params(key, sizes=(4, 6, 5, 2)):
    keys = jax.random.split(key, len(sizes))
    return {
        f"Dense_{i}": {
            "kernel": jax.random.normal(keys[i], (a, b)) / np.sqrt(a),
            # positive biases: every unit is active unless planted otherwise
            "bias": 1.0 + 0.1 * jax.random.normal(jax.random.fold_in(keys[i], 1), (b,)),
        }
        for i, (a, b) in enumerate(itertools.pairwise(sizes))
    }


def _forward(params, x):
    """Output and hidden relu outputs of the plain MLP."""
    hs = {}
    n = len(params)
    for i in range(n):
        layer = params[f"Dense_{i}"]
        x = x @ layer["kernel"] + layer["bias"]
        if i < n - 1:
            x = jax.nn.relu(x)
            hs[f"relu_{i}"] = x
    return x, hs


def _planted():
    p = _mlp_params(jax.random.key(0))
    # layer 0, unit 2: dead (never positive); layer 1, unit 4: dormant, tiny
    p["Dense_0"]["bias"] = p["Dense_0"]["bias"].at[2].set(-100.0)
    p["Dense_1"]["kernel"] = p["Dense_1"]["kernel"].at[:, 4].multiply(1e-4)
    p["Dense_1"]["bias"] = p["Dense_1"]["bias"].at[4].set(1e-4)
    return p


X = jax.random.normal(jax.random.key(1), (128, 4))


def _diff(a, b):
    """Boolean pytree: where the two differ."""
    return jax.tree_util.tree_map(lambda u, v: np.asarray(u != v), a, b)


@pytest.mark.parametrize("jit", [False, True])
def test_planted_units_exact_changes(jit):
    params = _planted()
    tx = optax.adam(1e-3)
    opt = tx.init(params)
    # make the moments non-zero so resets are visible
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    _, opt = tx.update(grads, opt, params)
    out0, hs = _forward(params, X)

    def go(params, hs, opt, key):
        return recycle.recycle_dormant(params, hs, key=key, opt_state=opt, tau=0.05)

    fn = jax.jit(go) if jit else go
    res = fn(params, hs, opt, jax.random.key(5))
    assert int(res.recycled["relu_0"]) == 1 and int(res.recycled["relu_1"]) == 1
    assert int(res.dead["relu_0"]) == 1 and int(res.dead["relu_1"]) == 0
    assert res.mask["relu_0"].tolist() == [False, False, True, False, False, False]
    assert res.mask["relu_1"].tolist() == [False, False, False, False, True]

    d = _diff(res.params, params)
    # exactly the incoming column, bias entry and outgoing row change
    want = {
        "Dense_0": {"kernel": np.zeros((4, 6), bool), "bias": np.zeros(6, bool)},
        "Dense_1": {"kernel": np.zeros((6, 5), bool), "bias": np.zeros(5, bool)},
        "Dense_2": {"kernel": np.zeros((5, 2), bool), "bias": np.zeros(2, bool)},
    }
    want["Dense_0"]["kernel"][:, 2] = True
    want["Dense_0"]["bias"][2] = True
    want["Dense_1"]["kernel"][2, :] = True  # outgoing of relu_0 unit 2
    want["Dense_1"]["kernel"][:, 4] = True  # incoming of relu_1 unit 4
    want["Dense_1"]["bias"][4] = True
    want["Dense_2"]["kernel"][4, :] = True
    for layer, leaves in want.items():
        for leaf, m in leaves.items():
            np.testing.assert_array_equal(d[layer][leaf], m, err_msg=f"{layer}/{leaf}")
    # outgoing rows are exactly 0, the crossing entry (2, 4) too
    assert np.all(np.asarray(res.params["Dense_1"]["kernel"][2]) == 0)
    assert np.all(np.asarray(res.params["Dense_2"]["kernel"][4]) == 0)
    # the recycled dead unit is alive again; the output is that of the network
    # with the recycled units removed (their outgoing rows 0) ...
    out1, hs1 = _forward(res.params, X)
    removed = jax.tree_util.tree_map(lambda a: a, params)
    removed["Dense_1"]["kernel"] = removed["Dense_1"]["kernel"].at[2].set(0.0)
    removed["Dense_2"]["kernel"] = removed["Dense_2"]["kernel"].at[4].set(0.0)
    np.testing.assert_array_equal(np.asarray(out1), np.asarray(_forward(removed, X)[0]))
    # ... which for the dead unit alone is the original output, bit for bit
    np.testing.assert_allclose(np.asarray(out1), np.asarray(out0), atol=1e-3)
    assert float(jnp.max(hs1["relu_0"][:, 2])) > 0
    # Adam: mu and nu zeroed exactly at the touched weights, count kept
    adam = res.opt_state[0]
    assert int(adam.count) == int(opt[0].count)
    for moment in ("mu", "nu"):
        new, old = getattr(adam, moment), getattr(opt[0], moment)
        for layer, leaves in want.items():
            for leaf, m in leaves.items():
                a, b = np.asarray(new[layer][leaf]), np.asarray(old[layer][leaf])
                np.testing.assert_array_equal(a[m], 0)
                np.testing.assert_array_equal(a[~m], b[~m])


def test_jit_matches_eager_and_traced_tau():
    params = _planted()
    _, hs = _forward(params, X)
    key = jax.random.key(3)
    eager = recycle.recycle_dormant(params, hs, key=key, tau=0.05)
    jitted = jax.jit(lambda p, h, k, t: recycle.recycle_dormant(p, h, key=k, tau=t))(
        params, hs, key, 0.05
    )
    for a, b in zip(
        jax.tree_util.tree_leaves(eager.params),
        jax.tree_util.tree_leaves(jitted.params),
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


def test_count_only_changes_nothing():
    params = _planted()
    _, hs = _forward(params, X)
    res = recycle.recycle_dormant(params, hs, tau=0.05, count_only=True)
    assert res.params is params
    assert {k: int(v) for k, v in res.recycled.items()} == {"relu_0": 0, "relu_1": 0}
    assert {k: int(v) for k, v in res.dormant.items()} == {"relu_0": 1, "relu_1": 1}
    assert res.units == {"relu_0": 6, "relu_1": 5}


def test_criteria_dead_vs_dormant():
    params = _planted()
    _, hs = _forward(params, X)
    dead = recycle.recycle_dormant(
        params, hs, tau=0.05, criterion="dead", count_only=True
    )
    assert [int(dead.mask[k].sum()) for k in ("relu_0", "relu_1")] == [1, 0]
    none = recycle.recycle_dormant(params, hs, tau=0.0, count_only=True)
    assert [int(none.mask[k].sum()) for k in ("relu_0", "relu_1")] == [1, 0]
    both = recycle.recycle_dormant(
        params, hs, tau=0.05, criterion="either", count_only=True
    )
    assert [int(both.mask[k].sum()) for k in ("relu_0", "relu_1")] == [1, 1]


def test_leaky_dead_unit_is_not_dormant_but_dead():
    """A never-positive leaky unit has |h| > 0: 'dead' finds it."""
    params = _planted()
    pre = {}
    x = X
    for i in range(2):
        layer = params[f"Dense_{i}"]
        z = x @ layer["kernel"] + layer["bias"]
        pre[f"act_{i}"] = z
        x = leakyjax.leaky_relu(z, 0.2)
    dormant = recycle.recycle_dormant(
        params, pre, activation="leaky_relu:0.2", tau=0.05, count_only=True
    )
    assert not bool(dormant.mask["act_0"][2])  # |h| = 0.2 * 100: very active
    dead = recycle.recycle_dormant(
        params, pre, activation="leaky_relu:0.2", criterion="dead", count_only=True
    )
    assert bool(dead.mask["act_0"][2]) and int(dead.dead["act_0"]) == 1


def test_kernel_and_bias_init_used():
    params = _planted()
    _, hs = _forward(params, X)
    res = recycle.recycle_dormant(
        params,
        hs,
        key=jax.random.key(0),
        tau=0.05,
        kernel_init={"Dense_0": jax.nn.initializers.constant(7.0)},
        bias_init=jax.nn.initializers.constant(0.5),
    )
    np.testing.assert_array_equal(np.asarray(res.params["Dense_0"]["kernel"][:, 2]), 7)
    assert float(res.params["Dense_0"]["bias"][2]) == 0.5
    assert float(res.params["Dense_1"]["bias"][4]) == 0.5
    # layer 1 uses the default lecun_normal: not constant
    assert len(set(np.asarray(res.params["Dense_1"]["kernel"][:, 4]).tolist())) > 1


def test_linen_variables_inferred_pairs():
    flax = pytest.importorskip("flax")
    nn = flax.linen
    import leakyjax.linen as ljnn
    from leakyjax import diagnostics as dg

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = ljnn.ReLU()(nn.Dense(6)(x))
            x = ljnn.ReLU()(nn.Dense(5)(x))
            return nn.Dense(2)(x)

    model = MLP()
    variables = model.init(jax.random.key(0), X)
    p = variables["params"]
    p["Dense_0"]["bias"] = p["Dense_0"]["bias"].at[1].set(-50.0)
    variables = {"params": p}
    out0, pre = dg.capture_linen(model, variables, X)
    assert recycle.layer_pairs(variables, pre) == {
        "ReLU_0": ("Dense_0", "Dense_1"),
        "ReLU_1": ("Dense_1", "Dense_2"),
    }

    @jax.jit
    def step(variables, key):
        _, pre = dg.capture_linen(model, variables, X)
        return recycle.recycle_dormant(
            variables, pre, key=key, activation="relu", criterion="dead"
        )

    res = step(variables, jax.random.key(1))
    assert set(res.params) == {"params"}
    assert int(res.recycled["ReLU_0"]) >= 1 and bool(res.mask["ReLU_0"][1])
    out1 = model.apply(res.params, X)
    np.testing.assert_array_equal(np.asarray(out1), np.asarray(out0))


def test_nnx_model_and_optimizer_in_place():
    nnx = pytest.importorskip("flax.nnx")
    import leakyjax.nnx as ljnnx
    from leakyjax import diagnostics as dg

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.l0 = nnx.Linear(4, 6, rngs=rngs)
            self.a0 = ljnnx.ReLU()
            self.l1 = nnx.Linear(6, 2, rngs=rngs)

        def __call__(self, x):
            return self.l1(self.a0(self.l0(x)))

    model = Net(nnx.Rngs(0))
    model.l0.bias[3] = -50.0
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

    def loss(m):
        return jnp.mean(m(X) ** 2) + jnp.mean(m.l1.kernel[...])

    opt.update(model, nnx.grad(loss)(model))
    out0 = model(X)
    old_mu = np.asarray(opt.opt_state[0].mu["l1"]["kernel"][...])
    assert np.all(old_mu != 0)
    _, pre = dg.capture_nnx(model, X)
    res = recycle.recycle_dormant(
        model,
        pre,
        key=jax.random.key(0),
        opt_state=opt,
        activation="relu",
        criterion="dead",
    )
    assert bool(res.mask["a0"][3])
    np.testing.assert_array_equal(np.asarray(model.l1.kernel[...][3]), 0)
    np.testing.assert_array_equal(np.asarray(model(X)), np.asarray(out0))
    new_mu = np.asarray(opt.opt_state[0].mu["l1"]["kernel"][...])
    m = np.asarray(res.mask["a0"])
    np.testing.assert_array_equal(new_mu[m], 0)
    np.testing.assert_array_equal(new_mu[~m], old_mu[~m])


def test_conv_flatten_dense():
    """Conv channel c owns rows c, c + C, ... of the Dense kernel after flatten."""
    k = jax.random.split(jax.random.key(0), 2)
    params = {
        "Conv_0": {
            "kernel": jax.random.normal(k[0], (3, 1, 4)),
            "bias": jnp.array([0.0, -100.0, 0.0, 0.0]),
        },
        "Dense_0": {
            "kernel": jax.random.normal(k[1], (8 * 4, 3)),
            "bias": jnp.zeros(3),
        },
    }
    x = jax.random.normal(jax.random.key(2), (16, 8, 1))

    def fwd(p):
        h = jax.nn.relu(
            jax.lax.conv_general_dilated(
                x,
                p["Conv_0"]["kernel"],
                (1,),
                "SAME",
                dimension_numbers=("NWC", "WIO", "NWC"),
            )
            + p["Conv_0"]["bias"]
        )
        return h, h.reshape(16, -1) @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]

    h, out0 = fwd(params)
    res = recycle.recycle_dormant(params, {"act": h}, key=jax.random.key(3), tau=0.0)
    assert res.mask["act"].tolist() == [False, True, False, False]
    rows = np.asarray(res.params["Dense_0"]["kernel"])
    changed = np.any(rows != np.asarray(params["Dense_0"]["kernel"]), axis=1)
    np.testing.assert_array_equal(changed, np.arange(32) % 4 == 1)
    np.testing.assert_array_equal(np.asarray(fwd(res.params)[1]), np.asarray(out0))


def test_explicit_layers_and_errors():
    params = _planted()
    _, hs = _forward(params, X)
    with pytest.raises(ValueError, match="layers="):
        recycle.recycle_dormant(params, {"relu_0": hs["relu_0"]}, key=jax.random.key(0))
    res = recycle.recycle_dormant(
        params,
        {"relu_0": hs["relu_0"]},
        key=jax.random.key(0),
        layers={"relu_0": ("Dense_0", "Dense_1")},
        tau=0.05,
    )
    assert int(res.recycled["relu_0"]) == 1
    with pytest.raises(ValueError, match="criterion"):
        recycle.recycle_dormant(params, hs, key=jax.random.key(0), criterion="x")
    with pytest.raises(TypeError, match="key"):
        recycle.recycle_dormant(params, hs)
    with pytest.raises(ValueError, match="tau"):
        recycle.recycle_dormant(params, hs, key=jax.random.key(0), tau=-1)
    with pytest.raises(ValueError, match="units"):
        recycle.recycle_dormant(
            params,
            {"relu_0": hs["relu_1"]},
            key=jax.random.key(0),
            layers={"relu_0": ("Dense_0", "Dense_1")},
        )
    with pytest.raises(ValueError, match="no kernel"):
        recycle.recycle_dormant(
            params,
            {"relu_0": hs["relu_0"]},
            key=jax.random.key(0),
            layers={"relu_0": ("Dense_0", "Nope")},
        )


def test_dormancy_score_reference():
    h = np.abs(np.random.default_rng(0).normal(size=(7, 3, 5)))
    s = np.abs(h).reshape(-1, 5).mean(0)
    np.testing.assert_allclose(
        np.asarray(recycle.dormancy_score(jnp.asarray(h))),
        s / (s.mean() + 1e-9),
        rtol=1e-6,
    )


def test_study_redo_quick(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("mnist1d")
    import json

    from leakyjax._src.study import redo
    from leakyjax.study import run_study

    r = run_study("redo", out=tmp_path, quick=True, progress=False)
    res = json.loads(r.results.read_text())
    rows = {(t["task"], t["variant"]): t for t in res["summary"]["table"]}
    assert set(rows) == {(t, v) for t in redo.TASKS for v in redo.VARIANTS}
    assert rows[("high_lr", "relu+redo")]["recycled_total"] > 0
    assert rows[("permuted", "relu")]["recycled_total"] == 0
    assert "| task |" in redo.render_markdown(res)


def test_readme_periodic_recycling_snippet():
    """The README's lax.cond pattern: recycle every F steps inside jit."""
    nn = pytest.importorskip("flax.linen")
    import leakyjax.linen as ljnn
    from leakyjax import diagnostics as dg

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = ljnn.ReLU()(nn.Dense(8)(x))
            return nn.Dense(2)(x)

    model = MLP()
    variables = model.init(jax.random.key(0), X)
    variables["params"]["Dense_0"]["bias"] = (
        variables["params"]["Dense_0"]["bias"].at[0].set(-50.0)
    )
    tx = optax.adam(1e-3)
    opt_state = tx.init(variables["params"])

    @jax.jit
    def maybe_recycle(step, variables, opt_state, x, key):
        _, pre = dg.capture_linen(model, variables, x)

        def go(_):
            r = leakyjax.recycle_dormant(
                variables,
                pre,
                key=key,
                opt_state=opt_state,
                activation="relu",
                tau=0.1,
                kernel_init=leakyjax.initializers.he_normal(),
            )
            return r.params, r.opt_state, r.recycled

        def skip(_):
            return variables, opt_state, {k: jnp.int32(0) for k in pre}

        return jax.lax.cond(step % 1000 == 0, go, skip, None)

    _, _, n1 = maybe_recycle(1, variables, opt_state, X, jax.random.key(1))
    assert int(n1["ReLU_0"]) == 0
    v0, _, n0 = maybe_recycle(0, variables, opt_state, X, jax.random.key(1))
    assert int(n0["ReLU_0"]) >= 1
    assert float(v0["params"]["Dense_0"]["bias"][0]) == 0.0


def test_train_stack_init_rai_and_recycle(tmp_path):
    pytest.importorskip("flax")
    import json

    from leakyjax._src.cli import main
    from leakyjax._src.train import TrainConfig, check_config

    with pytest.raises(ValueError, match="init"):
        check_config(TrainConfig(init="xavier"))
    with pytest.raises(ValueError, match="recycle_every"):
        check_config(TrainConfig(recycle_every=0))
    argv = [
        "compare", "--acts", "relu", "--dataset", "digits", "--steps", "20",
        "--eval-every", "10", "--seeds", "2", "--num-train", "200", "--num-test",
        "100", "--init", "rai", "--recycle", "5", "--recycle-tau", "0.2",
        "--lr", "0.3", "--optimizer", "sgd", "--schedule", "constant",
        "--out", str(tmp_path), "--no-plots", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    recs = [json.loads(line) for line in (tmp_path / "results.jsonl").open()]
    assert len(recs) == 2
    for r in recs:
        assert r["config"]["init"] == "rai" and r["config"]["recycle_every"] == 5
        assert len(r["recycled_units"]) == 2 and all(
            n >= 0 for n in r["recycled_units"]
        )
    assert sum(sum(r["recycled_units"]) for r in recs) > 0
    with pytest.raises(SystemExit) as err:  # argparse: one line, status 2
        main([*argv[:-5], "--recycle", "-1", "--out", str(tmp_path)])
    assert err.value.code == 2
