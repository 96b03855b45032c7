"""leakyjax.equinox: PReLU, RReLU, Activation in eqx idioms; parity; dtypes; masks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

eqx = pytest.importorskip("equinox")
optax = pytest.importorskip("optax")

import leakyjax as lj  # noqa: E402
from leakyjax import diagnostics as dg  # noqa: E402
from leakyjax import equinox as E  # noqa: E402

X = jax.random.normal(jax.random.key(1), (5, 4), jnp.float32) * 2.0
SLOPE_C = jnp.array([0.1, 0.3, 0.05, 0.7], jnp.float32)


def _mlp(act, key=0, width=8, dtype=None):
    k = jax.random.split(jax.random.key(key), 2)
    return eqx.nn.Sequential(
        [
            eqx.nn.Linear(4, width, key=k[0], dtype=dtype),
            act,
            eqx.nn.Linear(width, 1, key=k[1], dtype=dtype),
        ]
    )


def test_prelu_shared_and_per_channel_values_grads_and_axis():
    m = E.PReLU()
    assert m.negative_slope.shape == () and float(m.negative_slope) == 0.25
    np.testing.assert_array_equal(m(X), lj.prelu(X, jnp.float32(0.25)))
    m = eqx.tree_at(lambda p: p.negative_slope, E.PReLU(4), SLOPE_C)
    np.testing.assert_array_equal(m(X), lj.prelu(X, SLOPE_C))
    g = eqx.filter_grad(lambda m: jnp.sum(m(X)))(m)
    np.testing.assert_allclose(g.negative_slope, jnp.sum(jnp.minimum(X, 0), 0))
    # channels first
    x = jax.random.normal(jax.random.key(4), (2, 3, 5, 5))
    m = eqx.tree_at(
        lambda p: p.negative_slope, E.PReLU(3, axis=1), jnp.array([0.1, 0.2, 0.3])
    )
    np.testing.assert_array_equal(
        m(x), lj.prelu(x, jnp.array([0.1, 0.2, 0.3])[:, None, None])
    )
    with pytest.raises(ValueError, match="num_parameters=3 but the input has 4"):
        E.PReLU(3)(X)
    with pytest.raises(ValueError, match="num_parameters must be >= 1"):
        E.PReLU(0)
    with pytest.raises(TypeError, match="num_parameters must be an int"):
        E.PReLU(2.0)
    assert E.PReLU(
        negative_slope_init=0.1, dtype=jnp.bfloat16
    ).negative_slope.dtype == (jnp.bfloat16)


@pytest.mark.parametrize("param_dtype", [jnp.bfloat16, jnp.float32])
def test_prelu_keeps_dtypes_through_optax_updates(param_dtype):
    # A bf16 model (bf16 weights, bf16 input): the slope stays param_dtype and
    # the output stays bf16 after optax updates.
    model = _mlp(E.PReLU(8, dtype=param_dtype), dtype=jnp.bfloat16)
    xb = X.astype(jnp.bfloat16)
    y = jnp.sum(X, 1, keepdims=True).astype(jnp.bfloat16)
    tx = optax.adam(1e-2)
    state = tx.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(model, state):
        def loss(m):
            out = jax.vmap(m)(xb)
            return jnp.mean((out.astype(jnp.float32) - y) ** 2)

        g = eqx.filter_grad(loss)(model)
        u, state = tx.update(g, state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, u), state

    for _ in range(2):
        model, state = step(model, state)
    slope = model.layers[1].negative_slope
    assert slope.dtype == jnp.dtype(param_dtype)
    assert np.all(np.asarray(slope, np.float32) != 0.25)
    h = jax.vmap(model.layers[0])(xb)
    assert model.layers[1](h).dtype == jnp.bfloat16


def test_rrelu_key_inference_and_inference_mode():
    act = E.RReLU()
    assert act.inference is False
    key = jax.random.key(7)
    np.testing.assert_array_equal(act(X, key=key), lj.rrelu(X, key))
    assert not np.array_equal(act(X, key=key), act(X, key=jax.random.key(8)))
    with pytest.raises(ValueError, match="no key"):
        act(X)
    np.testing.assert_array_equal(act(X, inference=True), lj.rrelu(X))
    model = eqx.nn.inference_mode(_mlp(E.RReLU(convention="xu")))
    assert model.layers[1].inference is True
    np.testing.assert_array_equal(model.layers[1](X), lj.rrelu(X, convention="xu"))
    with pytest.raises(ValueError, match="lower"):
        E.RReLU(0.5, 0.1)
    with pytest.raises(ValueError, match="convention"):
        E.RReLU(convention="xy")
    # in Sequential, a key is split per layer
    model = _mlp(E.RReLU())
    out = model(X[0], key=jax.random.key(0))
    assert out.shape == (1,)


def test_activation_spec_or_callable_static_and_errors():
    a = E.Activation("elu:alpha=0.5")
    np.testing.assert_array_equal(a(X), lj.elu(X, 0.5))
    np.testing.assert_array_equal(E.Activation(jnp.tanh)(X), jnp.tanh(X))
    assert jax.tree_util.tree_leaves(a) == []  # static: no leaves
    assert jax.tree_util.tree_leaves(E.LeakyReLU(0.2)) == []
    with pytest.raises(ValueError, match="Did you mean 'elu'"):
        E.Activation("ellu")
    with pytest.raises(TypeError, match="registry spec"):
        E.Activation(3)


def test_get_factories_and_overrides():
    assert isinstance(E.get("leaky_relu:0.2")(), E.LeakyReLU)
    assert E.get("leaky_relu:0.2")().negative_slope == 0.2
    assert float(E.get("prelu:0.1")().negative_slope) == pytest.approx(0.1)
    assert E.get("prelu")(num_parameters=3).negative_slope.shape == (3,)
    assert isinstance(E.get("gelu")(), E.Activation)
    assert isinstance(E.get(jnp.tanh)(), E.Activation)
    assert E.get(E.SELU) is E.SELU
    with pytest.raises(ValueError, match="Did you mean 'prelu'"):
        E.get("prelu_")


def test_filter_jit_filter_grad_and_jax_jit_keep_a_concrete_slope():
    model = _mlp(E.LeakyReLU(0.2))
    f = eqx.filter_jit(lambda m, x: jax.vmap(m)(x))
    # jit and eager may round the matmuls differently (XLA fuses differently)
    np.testing.assert_allclose(f(model, X), jax.vmap(model)(X), rtol=1e-6)
    g = eqx.filter_grad(lambda m: jnp.sum(jax.vmap(m)(X)))(model)
    assert g.layers[0].weight.shape == model.layers[0].weight.shape
    # the slope is static: under plain jax.jit it is still a Python float
    seen = []

    def probe(m, x):
        seen.append(type(m.layers[1].negative_slope))
        return jax.vmap(m)(x)

    jax.jit(probe)(model, X)
    assert seen == [float]


def test_decay_mask_on_equinox_params():
    model = _mlp(E.PReLU(8))
    params = eqx.filter(model, eqx.is_inexact_array)
    mask = lj.decay_mask(params)
    assert mask.layers[1].negative_slope is False
    assert mask.layers[0].weight is True and mask.layers[0].bias is True
    assert E.decay_mask(params, exclude_bias_and_norm=True).layers[0].bias is False
    tx = optax.adamw(1e-2, weight_decay=0.5, mask=lj.decay_mask)
    state = tx.init(params)
    zero = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero, state, params)  # zero gradients: only decay acts
    new = eqx.apply_updates(model, updates)
    np.testing.assert_array_equal(new.layers[1].negative_slope, 0.25)
    assert not np.array_equal(new.layers[0].weight, model.layers[0].weight)


def test_capture_and_dead_units():
    model = eqx.nn.Sequential(
        [
            eqx.nn.Linear(4, 6, key=jax.random.key(0)),
            E.LeakyReLU(0.1),
            eqx.nn.Linear(6, 3, key=jax.random.key(1)),
            E.Activation("relu"),
        ]
    )
    out, acts = E.capture(model, X[0])
    np.testing.assert_array_equal(out, model(X[0]))
    assert set(acts) == {"layers/1", "layers/3"}
    np.testing.assert_array_equal(acts["layers/1"], model.layers[0](X[0]))
    # a module called twice, and the root module itself
    twice = eqx.nn.Sequential([E.ReLU(), eqx.nn.Lambda(lambda x: x - 1)])

    class Twice(eqx.Module):
        inner: eqx.nn.Sequential

        def __call__(self, x):
            return self.inner(self.inner(x))

    _, acts2 = E.capture(Twice(twice), X)
    assert set(acts2) == {"inner/layers/0[0]", "inner/layers/0[1]"}
    assert set(E.capture(E.ELU(), X)[1]) == {"(root)"}
    with pytest.raises(ValueError, match="no leakyjax activation"):
        E.capture(eqx.nn.Linear(4, 4, key=jax.random.key(0)), X[0])
    # under filter_jit too
    out_j, acts_j = eqx.filter_jit(E.capture)(model, X[0])
    np.testing.assert_allclose(out_j, out, rtol=1e-6)
    np.testing.assert_allclose(acts_j["layers/3"], acts["layers/3"], rtol=1e-6)

    # dead_units maps the model over the batch; a bias of -100 kills unit 0
    dead = eqx.tree_at(
        lambda m: m.layers[2].bias, model, model.layers[2].bias.at[0].set(-100.0)
    )
    report = dg.dead_units(dead, [X, X * 0.5])
    assert set(report) == {"layers/1", "layers/3"}
    assert int(report["layers/3"].count) == 2 * X.shape[0]
    assert bool(report["layers/3"].dead[0])
    # the same numbers as the plain-function path
    plain = dg.dead_units(
        lambda b: jax.vmap(lambda x: E.capture(dead, x)[1])(b), [X, X * 0.5]
    )
    for name in report:
        np.testing.assert_array_equal(report[name].dead, plain[name].dead)


def test_example_quick(capsys):
    pytest.importorskip("sklearn")
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "equinox_mlp.py"
    spec = importlib.util.spec_from_file_location("_leakyjax_example_eqx", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick"])
    out = capsys.readouterr().out
    assert result["steps"] == 30
    assert result["accuracy"] > 0.5, out  # chance is 10%; ~0.93 at seed 0
    assert "learned PReLU slopes" in out and "dead units on the test set" in out
    assert set(result["report"]) == {"layers/1", "layers/3"}
    with pytest.raises(ValueError, match="Did you mean 'leaky_relu'"):
        module.main(["--quick", "--activation", "leaky_rellu"])


def test_parity_with_linen_for_stateful_modules():
    pytest.importorskip("flax")
    from leakyjax import linen as L

    key = jax.random.key(3)
    np.testing.assert_array_equal(
        E.RReLU()(X, key=key),
        L.RReLU().apply({}, X, deterministic=False, key=key),
    )
    m = eqx.tree_at(lambda p: p.negative_slope, E.PReLU(4), SLOPE_C)
    lin = L.PReLU(4).apply({"params": {"negative_slope": SLOPE_C}}, X)
    np.testing.assert_array_equal(m(X), lin)
    xb = X.astype(jnp.bfloat16)
    np.testing.assert_array_equal(
        m(xb), L.PReLU(4).apply({"params": {"negative_slope": SLOPE_C}}, xb)
    )


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "hard_tanh"])
def test_eqx_nn_mlp_scalar_activation_matches_jax_nn(act):
    """eqx.nn.MLP calls its activation on scalars under vmap: the values and
    gradients (and the scan=True variant) equal jax.nn's, with one bit saved."""
    xb = jax.random.normal(jax.random.key(2), (16, 4), jnp.float32) * 2.0

    def model(fn, scan):
        kw = {"scan": True} if scan else {}
        return eqx.nn.MLP(4, 3, 24, 3, activation=fn, key=jax.random.key(0), **kw)

    def loss(m):
        return jnp.sum(jax.vmap(m)(xb) ** 2)

    scans = (
        [False, True] if "scan" in eqx.nn.MLP.__init__.__code__.co_varnames else [False]
    )
    for scan in scans:
        ours, ref = model(getattr(lj, act), scan), model(getattr(jax.nn, act), scan)
        apply = eqx.filter_jit(lambda m: jax.vmap(m)(xb))
        np.testing.assert_array_equal(apply(ours), apply(ref))
        g, g_ref = (eqx.filter_jit(eqx.filter_grad(loss))(m) for m in (ours, ref))
        for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.uint8, jnp.bool_])
def test_prelu_integer_dtype_is_a_clear_error(dtype):
    with pytest.raises(TypeError, match=r"^PReLU: dtype=\w+ is not a floating dtype"):
        E.PReLU(dtype=dtype)


@pytest.mark.parametrize(
    "init, error, words",
    [
        (float("nan"), ValueError, "negative_slope_init must be finite, got nan"),
        ("a", TypeError, "negative_slope_init must be a real number"),
    ],
)
def test_prelu_bad_negative_slope_init_names_the_field(init, error, words):
    with pytest.raises(error, match=f"^PReLU: {words}"):
        E.PReLU(negative_slope_init=init)
