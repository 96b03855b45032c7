"""Flax modules: linen <-> nnx parity, jit, dtypes, PReLU training, decay masks, RReLU."""

from __future__ import annotations

import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

flax = pytest.importorskip("flax")
optax = pytest.importorskip("optax")
import flax.linen as nn  # noqa: E402
from flax import nnx  # noqa: E402

import leakyjax as lj  # noqa: E402
from leakyjax import linen as L  # noqa: E402
from leakyjax import nnx as N  # noqa: E402

X = jax.random.normal(jax.random.key(1), (5, 4), jnp.float32) * 2.0
# Random slopes, shared and per channel (4 channels on the last axis).
SLOPE_C = jnp.array([0.1, 0.3, 0.05, 0.7], jnp.float32)

# name -> (linen module, nnx module, linen params or {}, per-call linen kwargs)
CASES = {
    "ReLU": lambda: (L.ReLU(), N.ReLU(), {}),
    "LeakyReLU": lambda: (L.LeakyReLU(0.2), N.LeakyReLU(0.2), {}),
    "LeakyReLU_default": lambda: (L.LeakyReLU(), N.LeakyReLU(), {}),
    "ELU": lambda: (L.ELU(0.5), N.ELU(0.5), {}),
    "CELU": lambda: (L.CELU(0.7), N.CELU(0.7), {}),
    "SELU": lambda: (L.SELU(), N.SELU(), {}),
    "PReLU_shared": lambda: (L.PReLU(), N.PReLU(), {"negative_slope": 0.4}),
    "PReLU_channels": lambda: (L.PReLU(4), N.PReLU(4), {"negative_slope": SLOPE_C}),
    "RReLU_eval": lambda: (
        L.RReLU(deterministic=True),
        N.RReLU(deterministic=True),
        {},
    ),
    "RReLU_eval_xu": lambda: (
        L.RReLU(convention="xu", deterministic=True),
        N.RReLU(convention="xu", deterministic=True),
        {},
    ),
    "Activation_gelu": lambda: (
        L.Activation(lj.get("gelu")),
        N.Activation(lj.get("gelu")),
        {},
    ),
}


def _linen_fn(module, params):
    variables = {"params": params} if params else {}
    return lambda p, x: module.apply({"params": p} if p else variables, x)


def _nnx_model(module, params):
    for name, value in params.items():
        getattr(module, name).value = jnp.asarray(value, jnp.float32)  # flax >= 0.11
    return module


def _nnx_fn(module):
    graphdef, state = nnx.split(module)
    return lambda s, x: nnx.merge(graphdef, s)(x), state


@pytest.mark.parametrize("case", sorted(CASES))
def test_linen_nnx_parity_values_and_grads(case):
    lin, nx, params = CASES[case]()
    params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    f_lin = _linen_fn(lin, params)
    f_nnx, state = _nnx_fn(_nnx_model(nx, params))
    w = jax.random.normal(jax.random.key(2), X.shape)

    y_lin, y_nnx = f_lin(params, X), f_nnx(state, X)
    np.testing.assert_array_equal(y_lin, y_nnx)
    # and both equal the leakyjax function
    ref = {
        "ReLU": lambda x: lj.relu(x),
        "LeakyReLU": lambda x: lj.leaky_relu(x, 0.2),
        "LeakyReLU_default": lambda x: lj.leaky_relu(x),
        "ELU": lambda x: lj.elu(x, 0.5),
        "CELU": lambda x: lj.celu(x, 0.7),
        "SELU": lj.selu,
        "PReLU_shared": lambda x: lj.prelu(x, jnp.float32(0.4)),
        "PReLU_channels": lambda x: lj.prelu(x, SLOPE_C),
        "RReLU_eval": lambda x: lj.rrelu(x),
        "RReLU_eval_xu": lambda x: lj.rrelu(x, convention="xu"),
        "Activation_gelu": lj.gelu,
    }[case](X)
    np.testing.assert_array_equal(y_lin, ref)

    g_lin = jax.grad(lambda p, x: jnp.sum(f_lin(p, x) * w), argnums=(0, 1))(params, X)
    g_nnx = jax.grad(lambda s, x: jnp.sum(f_nnx(s, x) * w), argnums=(0, 1))(state, X)
    np.testing.assert_allclose(g_lin[1], g_nnx[1], rtol=1e-6)
    lin_leaves = jax.tree.leaves(g_lin[0])
    nnx_leaves = jax.tree.leaves(g_nnx[0])
    assert len(lin_leaves) == len(nnx_leaves) == len(params)
    for a, b in zip(lin_leaves, nnx_leaves):
        np.testing.assert_allclose(a, b, rtol=1e-6)
        assert a.dtype == jnp.float32


def test_rrelu_random_parity_same_key():
    key = jax.random.key(7)
    y_lin = L.RReLU().apply({}, X, deterministic=False, key=key)
    y_lin2 = L.RReLU().apply({}, X, deterministic=False, rngs={"rrelu": key})
    y_nnx = N.RReLU()(X, rngs=key)
    np.testing.assert_array_equal(y_lin, y_nnx)
    # make_rng folds the module path into the key: random, but not `key` itself
    assert not np.array_equal(y_lin2, lj.rrelu(X))
    np.testing.assert_array_equal(y_lin, lj.rrelu(X, key))
    neg = X < 0
    slopes = np.asarray(y_lin)[neg] / np.asarray(X)[neg]
    assert np.all((slopes >= 1 / 8 - 1e-6) & (slopes <= 1 / 3 + 1e-6))
    assert np.unique(slopes).size == slopes.size  # one slope per element


def test_rrelu_linen_needs_deterministic_and_rng():
    with pytest.raises(ValueError, match="deterministic"):
        L.RReLU().apply({}, X)
    with pytest.raises(Exception, match="rrelu"):
        L.RReLU(deterministic=False).apply({}, X)
    # the dropout stream can be shared
    y = L.RReLU(deterministic=False, rng_collection="dropout").apply(
        {}, X, rngs={"dropout": jax.random.key(0)}
    )
    assert not np.array_equal(y, lj.rrelu(X))


def test_rrelu_nnx_train_eval_view_and_rng_state():
    act = N.RReLU(rngs=nnx.Rngs(0))
    assert act.deterministic is False  # training by default, as nnx.Dropout
    y1, y2 = act(X), act(X)
    assert not np.array_equal(y1, y2)  # the stream advances
    model = nnx.Sequential(nnx.Linear(4, 4, rngs=nnx.Rngs(1)), act)
    model.eval()
    np.testing.assert_array_equal(act(X), lj.rrelu(X))
    model.train()
    assert act.deterministic is False
    view = nnx.view(model, deterministic=True)
    assert view.layers[1].deterministic is True
    np.testing.assert_array_equal(act(X, deterministic=True), lj.rrelu(X))
    with pytest.raises(ValueError, match="no rngs"):
        N.RReLU()(X)
    with pytest.raises(ValueError, match="lower"):
        N.RReLU(0.5, 0.1)
    with pytest.raises(TypeError, match="rngs"):
        N.RReLU(rngs=0)


def test_nnx_jit_and_rrelu_under_nnx_jit():
    @nnx.jit
    def fwd(m, x):
        return m(x)

    prelu = N.PReLU(4)
    np.testing.assert_array_equal(fwd(prelu, X), lj.prelu(X, jnp.float32(0.25)))
    act = N.RReLU(rngs=nnx.Rngs(3))
    a, b = fwd(act, X), fwd(act, X)
    assert not np.array_equal(a, b)  # rng state is carried out of nnx.jit
    act.eval()
    np.testing.assert_array_equal(fwd(act, X), lj.rrelu(X))


@pytest.mark.parametrize("case", ["ELU", "PReLU_channels", "LeakyReLU", "SELU"])
def test_linen_under_jit(case):
    lin, _, params = CASES[case]()
    params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    f = _linen_fn(lin, params)
    np.testing.assert_array_equal(jax.jit(f)(params, X), f(params, X))


@pytest.mark.parametrize("case", sorted(CASES))
def test_bf16_input_f32_params_bf16_output(case):
    lin, nx, params = CASES[case]()
    params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    xb = X.astype(jnp.bfloat16)
    y_lin = _linen_fn(lin, params)(params, xb)
    y_nnx = _nnx_model(nx, params)(xb)
    assert y_lin.dtype == y_nnx.dtype == jnp.bfloat16
    np.testing.assert_array_equal(y_lin, y_nnx)


def test_prelu_init_shapes_dtypes_and_errors():
    v = L.PReLU().init(jax.random.key(0), X)
    assert v["params"]["negative_slope"].shape == ()
    assert float(v["params"]["negative_slope"]) == 0.25  # He et al., not flax's 0.01
    v = L.PReLU(4, param_dtype=jnp.bfloat16).init(jax.random.key(0), X)
    assert v["params"]["negative_slope"].shape == (4,)
    assert v["params"]["negative_slope"].dtype == jnp.bfloat16
    assert N.PReLU(4, negative_slope_init=0.1).negative_slope.shape == (4,)
    assert N.PReLU().negative_slope[...].shape == ()

    with pytest.raises(ValueError, match=r"num_parameters=3 but the input has 4"):
        L.PReLU(3).init(jax.random.key(0), X)
    with pytest.raises(ValueError, match=r"num_parameters=3 but the input has 4"):
        N.PReLU(3)(X)
    with pytest.raises(ValueError, match="num_parameters must be >= 1"):
        N.PReLU(0)
    with pytest.raises(TypeError, match="num_parameters must be an int"):
        L.PReLU(2.0).init(jax.random.key(0), X)
    with pytest.raises(ValueError, match="axis=3 is out of range"):
        N.PReLU(4, axis=3)(X)
    # a stored parameter of the wrong shape is caught
    bad = N.PReLU(4)
    bad.negative_slope = nnx.Param(jnp.full((3,), 0.25))
    with pytest.raises(ValueError, match=r"has shape \(3,\), expected \(4,\)"):
        bad(X)
    with pytest.raises(Exception, match="negative_slope"):
        L.PReLU(4).apply({"params": {"negative_slope": jnp.ones(3)}}, X)


def test_prelu_channel_axis_nchw():
    x = jax.random.normal(jax.random.key(4), (2, 3, 5, 5))  # NCHW
    slopes = jnp.array([0.1, 0.2, 0.3])
    y = L.PReLU(3, axis=1).apply({"params": {"negative_slope": slopes}}, x)
    np.testing.assert_array_equal(y, lj.prelu(x, slopes[:, None, None]))
    m = N.PReLU(3, axis=1)
    m.negative_slope.value = slopes
    np.testing.assert_array_equal(m(x), y)


def _prelu_mlp_linen():
    return nn.Sequential([nn.Dense(8), L.PReLU(8), nn.Dense(1)])


def test_prelu_slopes_get_gradients_and_change_under_optax_linen():
    model = _prelu_mlp_linen()
    params = model.init(jax.random.key(0), X)["params"]
    y = jnp.sum(X, axis=1, keepdims=True)

    def loss(p):
        return jnp.mean((model.apply({"params": p}, X) - y) ** 2)

    g = jax.jit(jax.grad(loss))(params)
    assert np.all(np.asarray(g["layers_1"]["negative_slope"]) != 0)
    tx = optax.adam(1e-2)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    state = tx.init(params)
    for _ in range(3):
        params, state = step(params, state)
    slope = params["layers_1"]["negative_slope"]
    assert slope.dtype == jnp.float32
    assert np.all(np.asarray(slope) != 0.25)


def test_prelu_slopes_change_under_optax_nnx_bf16():
    model = nnx.Sequential(
        nnx.Linear(4, 8, rngs=nnx.Rngs(0)),
        N.PReLU(8),
        nnx.Linear(8, 1, rngs=nnx.Rngs(1)),
    )
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    xb = X.astype(jnp.bfloat16)
    y = jnp.sum(X, axis=1, keepdims=True)

    @nnx.jit
    def step(model, opt):
        def loss(m):
            h = m.layers[1](m.layers[0](xb.astype(jnp.float32)).astype(jnp.bfloat16))
            assert h.dtype == jnp.bfloat16
            return jnp.mean((m.layers[2](h.astype(jnp.float32)) - y) ** 2)

        grads = nnx.grad(loss)(model)
        opt.update(model, grads)
        return grads

    grads = step(model, opt)
    assert np.all(np.asarray(grads.layers[1].negative_slope[...]) != 0)
    step(model, opt)
    slope = model.layers[1].negative_slope[...]
    assert slope.dtype == jnp.float32  # stays f32 with bf16 activations
    assert np.all(np.asarray(slope) != 0.25)


def test_decay_mask_leaves_prelu_slopes_untouched_linen():
    model = _prelu_mlp_linen()
    x = jnp.abs(X) + 1.0  # positive inputs...
    params = model.init(jax.random.key(0), x)["params"]
    params["layers_0"]["kernel"] = jnp.abs(params["layers_0"]["kernel"])
    params["layers_0"]["bias"] = jnp.ones_like(params["layers_0"]["bias"])
    # ... and positive weights: the PReLU input is > 0, so the slope's gradient
    # is exactly 0 and only weight decay could move it.

    def loss(p):
        return jnp.mean(model.apply({"params": p}, x) ** 2)

    assert np.all(np.asarray(jax.grad(loss)(params)["layers_1"]["negative_slope"]) == 0)
    mask = lj.decay_mask(params)
    assert mask["layers_1"]["negative_slope"] is False
    assert mask["layers_0"]["kernel"] is True and mask["layers_0"]["bias"] is True
    masked = lj.decay_mask(params, exclude_bias_and_norm=True)
    assert masked["layers_0"]["bias"] is False and masked["layers_0"]["kernel"] is True

    def run(tx):
        @jax.jit
        def step(p, state):
            updates, state = tx.update(jax.grad(loss)(p), state, p)
            return optax.apply_updates(p, updates), state

        p, state = params, tx.init(params)
        for _ in range(3):
            p, state = step(p, state)
        return p

    with_mask = run(optax.adamw(1e-2, weight_decay=0.5, mask=lj.decay_mask))
    without = run(optax.adamw(1e-2, weight_decay=0.5))
    np.testing.assert_array_equal(with_mask["layers_1"]["negative_slope"], 0.25)
    assert np.all(np.asarray(without["layers_1"]["negative_slope"]) < 0.25)
    # the kernels still decay
    assert not np.array_equal(
        with_mask["layers_2"]["kernel"], params["layers_2"]["kernel"]
    )


def test_decay_mask_nnx_state_with_optimizer():
    model = nnx.Sequential(
        nnx.Linear(4, 8, rngs=nnx.Rngs(0)),
        N.PReLU(8),
        nnx.LayerNorm(8, rngs=nnx.Rngs(0)),
        nnx.Linear(8, 1, rngs=nnx.Rngs(1)),
    )
    mask = L.decay_mask(nnx.state(model, nnx.Param), exclude_bias_and_norm=True)
    assert mask["layers"][1]["negative_slope"].get_value() is False
    assert mask["layers"][2]["scale"].get_value() is False
    assert mask["layers"][0]["bias"].get_value() is False
    assert mask["layers"][0]["kernel"].get_value() is True
    opt = nnx.Optimizer(
        model, optax.adamw(1e-2, weight_decay=0.5, mask=N.decay_mask), wrt=nnx.Param
    )
    zero = jax.tree.map(jnp.zeros_like, nnx.state(model, nnx.Param))
    before = model.layers[0].kernel[...]
    opt.update(model, zero)  # zero gradients: only weight decay acts
    np.testing.assert_array_equal(model.layers[1].negative_slope[...], 0.25)
    assert not np.array_equal(model.layers[0].kernel[...], before)
    with pytest.raises(TypeError, match="iterable of names"):
        lj.decay_mask({}, exclude="bias")


def test_sow_pre_activation_linen_and_nnx():
    model = nn.Sequential([nn.Dense(4), L.LeakyReLU(0.1), nn.Dense(4), L.PReLU()])
    variables = model.init(jax.random.key(0), X)
    assert "intermediates" not in variables  # free unless mutable
    _, state = model.apply(variables, X, mutable=["intermediates"])
    inter = state["intermediates"]
    assert set(inter) == {"layers_1", "layers_3"}
    h = nn.Dense(4).apply({"params": variables["params"]["layers_0"]}, X)
    np.testing.assert_array_equal(inter["layers_1"]["pre_activation"][0], h)

    nmodel = nnx.Sequential(nnx.Linear(4, 4, rngs=nnx.Rngs(0)), N.LeakyReLU(0.1))
    assert nmodel.layers[1].record_pre_activation is False
    nmodel.set_attributes(record_pre_activation=True, raise_if_not_found=False)

    @nnx.capture(nnx.Intermediate)
    def forward(m, x):
        return m(x)

    _, captured = forward(nmodel, X)
    got = jax.tree.leaves(captured)
    assert len(got) == 1
    np.testing.assert_array_equal(got[0], nmodel.layers[0](X))
    # outside capture: stored on the module (flax warns that this is deprecated)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        act = N.ELU(record_pre_activation=True)
        act(X)
    np.testing.assert_array_equal(act.pre_activation.get_value()[0], X)


def test_leakyjax_nnx_does_not_import_flax_linen():
    """flax.nnx itself imports flax.linen (flax 0.12); leakyjax.nnx adds no linen
    import of its own: not leakyjax's linen module, and not flax.linen when
    flax.nnx does not need it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from flax import nnx\n"
        "before = 'flax.linen' in sys.modules\n"
        "import leakyjax.nnx\n"
        "assert 'leakyjax._src.linen' not in sys.modules\n"
        "assert 'leakyjax.linen' not in sys.modules\n"
        "assert before or 'flax.linen' not in sys.modules\n"
        "print('ok')\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    src = (Path(__file__).resolve().parents[1] / "leakyjax/_src/nnx.py").read_text()
    assert "linen" not in "".join(
        line
        for line in src.splitlines()
        if line.lstrip().startswith(("import", "from"))
    )


# ---------------------------------------------------------------- PReLU bad input


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.uint8, jnp.bool_, "int8"])
def test_prelu_integer_param_dtype_is_a_clear_error(dtype):
    x = jnp.array([[-1.0, 2.0]])
    with pytest.raises(TypeError, match=r"^PReLU: param_dtype=\w+ is not a floating"):
        L.PReLU(param_dtype=dtype).init(jax.random.key(0), x)
    with pytest.raises(TypeError, match=r"^PReLU: param_dtype=\w+ is not a floating"):
        N.PReLU(param_dtype=dtype)
    with pytest.raises(TypeError, match="param_dtype must be a floating dtype"):
        N.PReLU(param_dtype="not a dtype")


@pytest.mark.parametrize(
    "init, error, words",
    [
        (float("nan"), ValueError, "negative_slope_init must be finite, got nan"),
        (float("-inf"), ValueError, "negative_slope_init must be finite, got -inf"),
        ("a", TypeError, "negative_slope_init must be a real number"),
        (None, TypeError, "negative_slope_init must be a real number"),
        (True, TypeError, "negative_slope_init must be a real number"),
        (1j, TypeError, "negative_slope_init must be a real number"),
    ],
)
def test_prelu_bad_negative_slope_init_names_the_field(init, error, words):
    x = jnp.array([[-1.0, 2.0]])
    with pytest.raises(error, match=f"^PReLU: {words}"):
        L.PReLU(negative_slope_init=init).init(jax.random.key(0), x)
    with pytest.raises(error, match=f"^PReLU: {words}"):
        N.PReLU(negative_slope_init=init)


def test_prelu_valid_inits_and_dtypes_still_work():
    x = jnp.array([[-1.0, 2.0]], jnp.bfloat16)
    for init in (0, 1, np.float32(0.1), np.array([0.1, 0.2]), jnp.array(0.3)):
        n = 2 if np.ndim(init) else 1
        v = L.PReLU(n, negative_slope_init=init, param_dtype=jnp.bfloat16).init(
            jax.random.key(0), x
        )
        assert v["params"]["negative_slope"].dtype == jnp.bfloat16
        m = N.PReLU(n, negative_slope_init=init, param_dtype=jnp.float16)
        assert m.negative_slope[...].dtype == jnp.float16
