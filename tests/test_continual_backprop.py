"""Continual backprop: the replaced units get exactly what the method says."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

optax = pytest.importorskip("optax")

from leakyjax import initializers, recycle  # noqa: E402

X = jax.random.normal(jax.random.key(1), (32, 4))


def make_params():
    k = jax.random.split(jax.random.key(0), 3)
    return {
        "Dense_0": {"kernel": jax.random.normal(k[0], (4, 6)), "bias": jnp.zeros(6)},
        "Dense_1": {"kernel": jax.random.normal(k[1], (6, 5)), "bias": jnp.zeros(5)},
        "Dense_2": {"kernel": jax.random.normal(k[2], (5, 2)), "bias": jnp.zeros(2)},
    }


def forward(p, x, act=jax.nn.relu):
    h0 = act(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
    h1 = act(h0 @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"])
    return h1 @ p["Dense_2"]["kernel"] + p["Dense_2"]["bias"], {"h0": h0, "h1": h1}


def trained(steps=3):
    """Params and an Adam state with non-zero moments everywhere."""
    tx = optax.adam(1e-2)
    p = make_params()
    o = tx.init(p)
    for i in range(steps):
        g = jax.grad(
            lambda p, i_=i: (
                jnp.sum(forward(p, X * (i_ + 1))[0] ** 2)
                + 0.1 * sum(jnp.sum(v) for v in jax.tree.leaves(p))
            )
        )(p)
        u, o = tx.update(g, o, p)
        p = optax.apply_updates(p, u)
    return p, o


def reference_choice(p, hs, rate, decay=0.99):
    """First call (utilities 0, ages 0 -> 1, maturity 0): lowest contribution."""
    out = {}
    for name, nxt in (("h0", "Dense_1"), ("h1", "Dense_2")):
        h = np.asarray(hs[name], np.float64)
        c = np.abs(h).mean(0) * np.abs(np.asarray(p[nxt]["kernel"], np.float64)).sum(1)
        k = int(np.floor(rate * len(c)))
        mask = np.zeros(len(c), bool)
        mask[np.argsort(c, kind="stable")[:k]] = True
        out[name] = (mask, (1 - decay) * c)
    return out


@pytest.mark.parametrize("jit", [False, True])
def test_replaced_units_exactly_and_nothing_else(jit):
    p, o = trained()
    _, hs = forward(p, X)
    state = recycle.continual_backprop_init(hs)
    rate = 0.34  # floor(0.34 * 6) = 2 and floor(0.34 * 5) = 1 units
    kinit = lambda key, shape, dtype: jnp.full(shape, 7.0, dtype)
    binit = lambda key, shape, dtype: jnp.full(shape, 3.0, dtype)

    def step(p, o, state):
        return recycle.continual_backprop(
            p,
            hs,
            state,
            key=jax.random.key(5),
            opt_state=o,
            replacement_rate=rate,
            maturity=0,
            kernel_init=kinit,
            bias_init=binit,
        )

    res = (jax.jit(step) if jit else step)(p, o, state)
    ref = reference_choice(p, hs, rate)
    touched_in = {"h0": "Dense_0", "h1": "Dense_1"}
    touched_out = {"h0": "Dense_1", "h1": "Dense_2"}
    expect = jax.tree.map(np.asarray, p)
    for name, (mask, util) in ref.items():
        np.testing.assert_array_equal(np.asarray(res.mask[name]), mask)
        assert int(res.replaced[name]) == mask.sum()
        inc, out = touched_in[name], touched_out[name]
        expect[inc]["kernel"] = np.where(mask, 7.0, expect[inc]["kernel"])
        expect[inc]["bias"] = np.where(mask, 3.0, expect[inc]["bias"])
        # state: replaced units restart, the others age by one step
        np.testing.assert_array_equal(
            np.asarray(res.state.age[name]), np.where(mask, 0, 1)
        )
        np.testing.assert_allclose(
            np.asarray(res.state.utility[name]), np.where(mask, 0, util), rtol=1e-5
        )
        assert int(res.state.replaced[name]) == mask.sum()
    for name, (mask, _) in ref.items():  # outgoing zeros win over fresh columns
        out = touched_out[name]
        expect[out]["kernel"] = np.where(mask[:, None], 0.0, expect[out]["kernel"])
    jax.tree.map(
        lambda a, b: np.testing.assert_array_equal(np.asarray(a), b), res.params, expect
    )
    # Adam: mu and nu zero exactly at the changed entries, untouched elsewhere
    adam = o[0]
    new = res.opt_state[0]
    assert int(new.count) == int(adam.count)
    for moment in ("mu", "nu"):
        old_m = jax.tree.map(np.asarray, getattr(adam, moment))
        new_m = getattr(new, moment)
        for layer in old_m:
            for leaf in old_m[layer]:
                sel = np.zeros(np.shape(old_m[layer][leaf]), bool)
                for name, (mask, _) in ref.items():
                    if touched_in[name] == layer:
                        sel |= np.broadcast_to(mask, sel.shape)
                    if touched_out[name] == layer and leaf == "kernel":
                        sel |= np.broadcast_to(mask[:, None], sel.shape)
                got = np.asarray(new_m[layer][leaf])
                np.testing.assert_array_equal(got[sel], 0)
                np.testing.assert_array_equal(got[~sel], old_m[layer][leaf][~sel])
                assert np.all(old_m[layer][leaf] != 0)


def test_output_unchanged_and_default_init_is_leaky_he():
    p, _ = trained()
    _, pre = forward(p, X, act=lambda z: z)  # pre-activations
    spec = "leaky_relu:0.2"
    act = lambda z: jax.nn.leaky_relu(z, 0.2)
    out0, _ = forward(p, X, act)
    state = recycle.continual_backprop_init(pre)
    key = jax.random.key(3)
    res = recycle.continual_backprop(
        p, pre, state, key=key, activation=spec, replacement_rate=0.5, maturity=0
    )
    assert int(res.replaced["h0"]) == 3
    # the new units add nothing: the output is that of the old network with the
    # replaced units' outgoing weights removed
    removed = jax.tree.map(lambda a: a, p)
    for name, nxt in (("h0", "Dense_1"), ("h1", "Dense_2")):
        m = res.mask[name][:, None]
        removed[nxt]["kernel"] = jnp.where(m, 0.0, p[nxt]["kernel"])
    out1, _ = forward(res.params, X, act)
    out_removed, _ = forward(removed, X, act)
    np.testing.assert_allclose(
        np.asarray(out1), np.asarray(out_removed), rtol=1e-5, atol=1e-5
    )
    assert not np.allclose(np.asarray(out1), np.asarray(out0))
    # layer 0's fresh columns: the leaky He initialiser with reset_units' key for it
    k_w = jax.random.split(jax.random.fold_in(key, 0))[0]
    fresh = initializers.for_activation(spec)(k_w, (4, 6), jnp.float32)
    m = np.asarray(res.mask["h0"])
    np.testing.assert_array_equal(
        np.asarray(res.params["Dense_0"]["kernel"])[:, m], np.asarray(fresh)[:, m]
    )


def test_maturity_rate_and_pending():
    p, _ = make_params(), None
    _, hs = forward(p, X)
    s = recycle.continual_backprop_init(hs)
    key = jax.random.key(0)
    total = 0
    for _ in range(5):  # maturity 3: no unit is eligible before the 4th step
        r = recycle.continual_backprop(
            p, hs, s, key=key, replacement_rate=0.25, maturity=3
        )
        total += int(r.replaced["h0"])
        s = r.state
        if int(s.age["h0"].max()) <= 3:
            assert total == 0
    # 4th step: 6 eligible * 0.25 = 1.5 -> 1 replaced, 0.5 pending
    assert total >= 1
    assert 0 <= float(s.pending["h0"]) < 1


def test_nnx_in_place():
    nnx = pytest.importorskip("flax.nnx")
    import leakyjax.nnx as ljnnx
    from leakyjax import diagnostics as dg

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.l0 = nnx.Linear(4, 6, rngs=rngs)
            self.a0 = ljnnx.LeakyReLU(0.2)
            self.l1 = nnx.Linear(6, 2, rngs=rngs)

        def __call__(self, x):
            return self.l1(self.a0(self.l0(x)))

    model = Net(nnx.Rngs(0))
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    opt.update(
        model,
        nnx.grad(lambda m: jnp.mean(m(X) ** 2) + jnp.mean(m.l1.kernel[...]))(model),
    )
    _, pre = dg.capture_nnx(model, X)
    s = recycle.continual_backprop_init(pre)
    res = recycle.continual_backprop(
        model,
        pre,
        s,
        key=jax.random.key(0),
        opt_state=opt,
        activation="leaky_relu:0.2",
        replacement_rate=0.5,
        maturity=0,
    )
    m = np.asarray(res.mask["a0"])
    assert m.sum() == 3
    np.testing.assert_array_equal(np.asarray(model.l1.kernel[...])[m], 0)
    np.testing.assert_array_equal(
        np.asarray(opt.opt_state[0].mu["l1"]["kernel"][...])[m], 0
    )


def test_errors_name_function_and_argument():
    p = make_params()
    _, hs = forward(p, X)
    s = recycle.continual_backprop_init(hs)
    with pytest.raises(TypeError, match="continual_backprop: key must be a PRNG key"):
        recycle.continual_backprop(p, hs, s, key=0)
    with pytest.raises(ValueError, match="continual_backprop: replacement_rate"):
        recycle.continual_backprop(
            p, hs, s, key=jax.random.key(0), replacement_rate=2.0
        )
    with pytest.raises(ValueError, match="continual_backprop: decay"):
        recycle.continual_backprop(p, hs, s, key=jax.random.key(0), decay=-1.0)
    with pytest.raises(ValueError, match="continual_backprop: maturity"):
        recycle.continual_backprop(p, hs, s, key=jax.random.key(0), maturity=-1)
    with pytest.raises(TypeError, match="continual_backprop: state"):
        recycle.continual_backprop(p, hs, {}, key=jax.random.key(0))
    with pytest.raises(ValueError, match="differ from the state"):
        recycle.continual_backprop(p, {"h0": hs["h0"]}, s, key=jax.random.key(0))
    with pytest.raises(
        ValueError, match="continual_backprop_init: activations is empty"
    ):
        recycle.continual_backprop_init({})
    with pytest.raises(TypeError, match="reset_units: key must be a PRNG key"):
        recycle.reset_units(
            p, {"h0": ("Dense_0", "Dense_1")}, {"h0": jnp.ones(6, bool)}, key=1
        )


def test_equinox_model_and_optax_state():
    eqx = pytest.importorskip("equinox")
    from leakyjax import equinox as ljeqx

    k1, k2 = jax.random.split(jax.random.key(0))
    model = eqx.nn.Sequential(
        [eqx.nn.Linear(4, 6, key=k1), ljeqx.LeakyReLU(0.2), eqx.nn.Linear(6, 2, key=k2)]
    )
    tx = optax.adam(1e-2)
    params = eqx.filter(model, eqx.is_array)
    opt = tx.init(params)
    g = eqx.filter_grad(lambda m: jnp.sum(jax.vmap(m)(X) ** 2))(model)
    updates, opt = tx.update(g, opt, params)
    model = eqx.apply_updates(model, updates)
    pre = jax.vmap(lambda x: ljeqx.capture(model, x)[1])(X)
    assert list(pre) == ["layers/1"]
    s = recycle.continual_backprop_init(pre)
    kinit = lambda key, shape, dtype: jnp.full(shape, 7.0, dtype)
    res = recycle.continual_backprop(
        model,
        pre,
        s,
        key=jax.random.key(0),
        opt_state=opt,
        activation="leaky_relu:0.2",
        replacement_rate=0.5,
        maturity=0,
        kernel_init=kinit,
    )
    m = np.asarray(res.mask["layers/1"])
    assert m.sum() == 3
    new = res.params
    w0, w0_old = np.asarray(new.layers[0].weight), np.asarray(model.layers[0].weight)
    np.testing.assert_array_equal(w0[m], 7.0)  # incoming: rows of (out, in)
    np.testing.assert_array_equal(w0[~m], w0_old[~m])
    np.testing.assert_array_equal(np.asarray(new.layers[0].bias)[m], 0.0)
    w2, w2_old = np.asarray(new.layers[2].weight), np.asarray(model.layers[2].weight)
    np.testing.assert_array_equal(w2[:, m], 0.0)  # outgoing: columns
    np.testing.assert_array_equal(w2[:, ~m], w2_old[:, ~m])
    for moment in ("mu", "nu"):
        old_m = getattr(opt[0], moment)
        new_m = getattr(res.opt_state[0], moment)
        a, b = np.asarray(new_m.layers[0].weight), np.asarray(old_m.layers[0].weight)
        np.testing.assert_array_equal(a[m], 0)
        np.testing.assert_array_equal(a[~m], b[~m])
        a, b = np.asarray(new_m.layers[2].weight), np.asarray(old_m.layers[2].weight)
        np.testing.assert_array_equal(a[:, m], 0)
        np.testing.assert_array_equal(a[:, ~m], b[:, ~m])
        np.testing.assert_array_equal(
            np.asarray(new_m.layers[2].bias), np.asarray(old_m.layers[2].bias)
        )
