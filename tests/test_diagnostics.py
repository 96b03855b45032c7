"""Dying-unit diagnostics: exact fractions, batching invariance, capture, reports."""

from __future__ import annotations

import itertools
import json
import sys

import chex
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leakyjax import diagnostics as dg
from tests.helpers import x64

COUNT_FIELDS = ("count", "positive_count", "nan_count")
MOMENT_FIELDS = ("mean", "m2", "maximum")


def assert_same_state(a, b, rtol=2e-5, atol=1e-5):
    """Counts and maxima exactly equal; moments equal to float rounding."""
    for field in (*COUNT_FIELDS, "maximum"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), field)
    np.testing.assert_allclose(a.mean, b.mean, rtol=rtol, atol=atol)
    np.testing.assert_allclose(a.m2, b.m2, rtol=rtol, atol=atol)


def dense_with_dead(key, n, din=5, dout=8, dead=(1, 4, 6)):
    """Pre-activations of a Dense layer whose ``dead`` units have bias -100."""
    kx, kw = jax.random.split(key)
    x = jax.random.uniform(kx, (n, din), minval=-1.0, maxval=1.0)
    w = jax.random.normal(kw, (din, dout)) / np.sqrt(din)
    b = jnp.zeros(dout).at[jnp.array(dead)].set(-100.0)
    return x @ w + b


# --------------------------------------------------------------------------- #
# Exact fractions on layers with known dead units
# --------------------------------------------------------------------------- #
def test_dense_known_dead_units_exact():
    pre = dense_with_dead(jax.random.key(0), 64)
    stats = dg.result(dg.update(dg.init(8), pre))
    assert stats.units == 8
    assert int(stats.count) == 64
    np.testing.assert_array_equal(stats.dead, np.isin(np.arange(8), [1, 4, 6]))
    assert float(stats.dead_fraction) == 3 / 8
    # the live units are positive on a fair share of uniform inputs
    assert float(jnp.min(stats.unit_active_rate[~stats.dead])) > 0.1


class TestVariants(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_update_result_jit_and_eager_identical(self):
        pre = dense_with_dead(jax.random.key(1), 50)
        upd = self.variant(dg.update)
        res = self.variant(dg.result)
        state = upd(upd(dg.init(8), pre[:20]), pre[20:])
        ref = dg.update(dg.update(dg.init(8), pre[:20]), pre[20:])
        assert_same_state(state, ref)
        stats = res(state)
        assert float(stats.dead_fraction) == 3 / 8
        np.testing.assert_allclose(stats.unit_mean, np.mean(pre, 0), rtol=1e-5)


@pytest.mark.parametrize(
    "shape,feature_axis,dead",
    [
        ((4, 6, 6, 5), -1, (0, 3)),  # Conv2D NHWC
        ((4, 5, 6, 6), 1, (2,)),  # Conv2D NCHW
        ((3, 7, 5), -1, (1, 2, 4)),  # Conv1D (B, L, C)
        ((3, 5, 7), -2, (0,)),  # (B, C, L) with a negative axis
    ],
)
def test_conv_layouts_exact(shape, feature_axis, dead):
    ax = feature_axis % len(shape)
    c = shape[ax]
    x = jax.random.normal(jax.random.key(2), shape)
    bshape = [1] * len(shape)
    bshape[ax] = c
    bias = jnp.zeros(c).at[jnp.array(dead)].set(-100.0).reshape(bshape)
    state = dg.update(dg.init(shape, feature_axis=feature_axis), x + bias)
    stats = dg.result(state)
    assert stats.units == c
    assert int(stats.count) == int(np.prod(shape)) // c  # every position counts
    np.testing.assert_array_equal(stats.dead, np.isin(np.arange(c), dead))
    assert float(stats.dead_fraction) == np.float32(len(dead) / c)
    # per-unit moments against numpy over every non-feature axis
    ref = np.moveaxis(np.asarray(x + bias, np.float64), ax, -1).reshape(-1, c)
    np.testing.assert_allclose(stats.unit_mean, ref.mean(0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(stats.unit_std, ref.std(0), rtol=1e-5)
    np.testing.assert_allclose(stats.unit_max, ref.max(0), rtol=1e-6)
    np.testing.assert_allclose(stats.mean, ref.mean(), rtol=1e-5)
    np.testing.assert_allclose(stats.std, ref.std(), rtol=1e-5)


def test_rarely_active_and_rates_exact():
    # 200 examples; unit u is positive on exactly k[u] of them
    k = np.array([0, 1, 2, 3, 50, 200])
    n = 200
    pre = np.where(np.arange(n)[:, None] < k[None, :], 1.0, -1.0).astype(np.float32)
    stats = dg.result(dg.update(dg.init(6), pre))
    np.testing.assert_array_equal(stats.unit_active_rate, np.float32(k) / np.float32(n))
    np.testing.assert_array_equal(stats.dead, k == 0)
    # < 1% of 200 = fewer than 2 examples: units 0 and 1
    assert float(stats.rarely_active_fraction) == np.float32(2 / 6)
    assert float(dg.result(dg.update(dg.init(6), pre), rare_threshold=0.02)
                 .rarely_active_fraction) == np.float32(4 / 6)  # fmt: skip
    np.testing.assert_allclose(stats.mean_active_rate, np.mean(k / n), rtol=1e-6)


def test_nan_is_reported_not_dead():
    x = jnp.array([[-1.0, jnp.nan, -1.0], [-2.0, -1.0, jnp.inf]])
    stats = dg.result(dg.update(dg.init(3), x))
    np.testing.assert_array_equal(stats.dead, [True, False, False])
    assert float(stats.nan_fraction) == np.float32(1 / 3)
    assert "NaN %" in dg.format_report({"h": stats}).splitlines()[0]
    assert "NaN" not in dg.format_report(
        dg.result(dg.update(dg.init(3), jnp.zeros((2, 3))))
    )


def test_zero_is_not_positive():
    stats = dg.result(dg.update(dg.init(3), jnp.array([[0.0, -0.0, 1e-30]] * 4)))
    np.testing.assert_array_equal(stats.dead, [True, True, False])


# --------------------------------------------------------------------------- #
# Batching, scan, merge: the same statistics however the data arrives
# --------------------------------------------------------------------------- #
def test_batch_by_batch_equals_all_at_once_and_scan():
    pre = dense_with_dead(jax.random.key(3), 96) + 3.0
    batches = pre.reshape(6, 16, 8)
    whole = dg.update(dg.init(8), pre)

    loop = dg.init(8)
    upd = jax.jit(dg.update)
    for b in batches:
        loop = upd(loop, b)

    def body(state, b):
        return dg.update(state, b), None

    scanned, _ = jax.lax.scan(body, dg.init(8), batches)
    scanned_jit = jax.jit(lambda s, bs: jax.lax.scan(body, s, bs)[0])(
        dg.init(8), batches
    )
    for other in (loop, scanned, scanned_jit):
        assert_same_state(other, whole)
        r, w = dg.result(other), dg.result(whole)
        for f in ("dead_fraction", "rarely_active_fraction", "mean_active_rate"):
            assert float(getattr(r, f)) == float(getattr(w, f)), f
    # a python loop of the jitted update and a scan run the same program
    assert_same_state(scanned_jit, loop, rtol=1e-7, atol=0)


def test_merge_equals_sequential_and_merge_across():
    pre = dense_with_dead(jax.random.key(4), 60)
    s0 = dg.init(8)
    a, b, c = (
        dg.update(s0, pre[:10]),
        dg.update(s0, pre[10:35]),
        dg.update(s0, pre[35:]),
    )
    seq = dg.update(s0, pre)
    assert_same_state(dg.merge(dg.merge(a, b), c), seq)
    assert_same_state(dg.merge(a, dg.merge(b, c)), seq)
    assert_same_state(dg.merge(s0, a), a, rtol=0, atol=0)  # empty is neutral
    assert_same_state(dg.merge(a, s0), a, rtol=0, atol=0)
    # across a named axis (vmap stands in for devices): 4 shards of 15
    shards = pre.reshape(4, 15, 8)
    per = jax.vmap(
        lambda x: dg.merge_across(dg.update(dg.init(8), x), "d"), axis_name="d"
    )(shards)
    for i in range(4):
        assert_same_state(jax.tree.map(lambda v, i=i: v[i], per), seq)


@settings(max_examples=6, deadline=None)
@given(
    x=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 12), st.just(3)),
        elements=st.floats(-4, 4, width=32),
    ),
    data=st.data(),
)
def test_property_any_split_same_counts(x, data):
    n = x.shape[0]
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=3)))
    parts = np.split(x, cuts)
    state = dg.init(x.shape)
    for p in parts:
        if p.shape[0]:
            state = dg.update(state, p)
    whole = dg.update(dg.init(x.shape), x)
    np.testing.assert_array_equal(state.positive_count, whole.positive_count)
    assert int(state.count) == n
    np.testing.assert_array_equal(state.maximum, whole.maximum)
    np.testing.assert_allclose(state.mean, x.astype(np.float64).mean(0), atol=1e-5)
    np.testing.assert_allclose(
        state.m2, ((x - x.astype(np.float64).mean(0)) ** 2).sum(0), rtol=1e-4, atol=1e-4
    )


def test_streaming_moments_are_numerically_stable():
    # mean 1e4, std 1e-1: the naive E[x^2] - E[x]^2 loses every digit in float32
    rng = np.random.default_rng(0)
    x = (1e4 + 0.1 * rng.standard_normal((4000, 2))).astype(np.float32)
    state = dg.init(2)
    for b in np.split(x, 40):
        state = dg.update(state, b)
    stats = dg.result(state)
    ref = x.astype(np.float64)
    np.testing.assert_allclose(stats.unit_std, ref.std(0), rtol=2e-2)


def test_mask_ignores_padding():
    pre = dense_with_dead(jax.random.key(5), 13)
    padded = jnp.concatenate([pre, jnp.full((3, 8), 50.0)])  # padding would revive
    mask = jnp.arange(16) < 13
    masked = jax.jit(dg.update)(dg.init(8), padded, mask=mask)
    assert_same_state(masked, dg.update(dg.init(8), pre))
    # a (B,) mask over (B, L, C) conv outputs ignores whole examples
    x = jax.random.normal(jax.random.key(6), (4, 3, 2))
    m = jnp.array([True, False, True, False])
    assert_same_state(dg.update(dg.init(2), x, mask=m), dg.update(dg.init(2), x[m]))


def test_bf16_input_keeps_float32_state_in_scan():
    x = jax.random.normal(jax.random.key(7), (4, 8, 3), jnp.bfloat16)
    state = dg.init(x[0])
    assert state.mean.dtype == jnp.float32
    out, _ = jax.lax.scan(lambda s, b: (dg.update(s, b), None), state, x)
    assert out.mean.dtype == jnp.float32 and int(out.count) == 32


def test_float64_state_with_x64():
    with x64():
        x = jnp.asarray(np.random.default_rng(1).standard_normal((10, 3)))
        state = dg.update(dg.init(x), x)
        assert state.mean.dtype == jnp.float64
        np.testing.assert_allclose(dg.result(state).unit_std, np.std(x, 0), rtol=1e-12)


def test_empty_state_reports_nan():
    stats = dg.result(dg.init(4))
    assert int(stats.count) == 0
    assert np.isnan(float(stats.dead_fraction))
    assert not bool(jnp.any(stats.dead))


def test_layer_dicts():
    acts = {
        "dense": dense_with_dead(jax.random.key(8), 10),
        "conv": -jnp.ones((2, 4, 4, 3)),
    }
    states = dg.init(jax.eval_shape(lambda: acts))
    states = jax.jit(dg.update)(states, acts)
    report = dg.result(states)
    assert float(report["dense"].dead_fraction) == 3 / 8
    assert float(report["conv"].dead_fraction) == 1.0
    merged = dg.merge(states, states)
    assert int(merged["conv"].count) == 64
    per_layer_axis = dg.init({"a": (2, 3), "b": (2, 3)}, feature_axis={"a": 0, "b": 1})
    assert per_layer_axis["a"].positive_count.shape == (2, 1)
    assert per_layer_axis["b"].positive_count.shape == (3,)


# --------------------------------------------------------------------------- #
# Clear errors
# --------------------------------------------------------------------------- #
def test_errors_name_the_argument():
    s = dg.init(4)
    with pytest.raises(ValueError, match="expected 4 units on feature axis -1"):
        dg.update(s, jnp.ones((2, 5)))
    with pytest.raises(TypeError, match="floating-point"):
        dg.update(s, jnp.ones((2, 4), jnp.int32))
    with pytest.raises(ValueError, match="feature_axis must be negative"):
        dg.init(4, feature_axis=1)
    with pytest.raises(ValueError, match="out of range"):
        dg.init((2, 3), feature_axis=2)
    with pytest.raises(TypeError, match="feature_axis must be an int"):
        dg.init((2, 3), feature_axis="channels")
    with pytest.raises(TypeError, match="number of units"):
        dg.init("relu")
    with pytest.raises(ValueError, match="> 0"):
        dg.init(0)
    with pytest.raises(ValueError, match="rare_threshold"):
        dg.result(s, rare_threshold=5)
    with pytest.raises(ValueError, match="mask"):
        dg.update(s, jnp.ones((2, 4)), mask=jnp.ones(3, bool))
    with pytest.raises(ValueError, match="missing in pre_activations: \\['b'\\]"):
        dg.update(dg.init({"a": 4, "b": 4}), {"a": jnp.ones((1, 4))})
    with pytest.raises(ValueError, match="different layers"):
        dg.merge(dg.init(4), dg.init(5))
    with pytest.raises(TypeError, match="UnitState"):
        dg.update((1, 2), jnp.ones((1, 4)))


# --------------------------------------------------------------------------- #
# dead_units over batches: plain functions
# --------------------------------------------------------------------------- #
def test_dead_units_plain_function():
    w = jax.random.normal(jax.random.key(9), (3, 6))
    b = jnp.zeros(6).at[jnp.array([0, 5])].set(-100.0)

    def fn(x):
        h1 = x @ w + b
        return {"h1": h1, "h2": jnp.maximum(h1, 0) @ jnp.eye(6) - 1e-3}

    batches = [jax.random.normal(jax.random.key(i), (8, 3)) for i in range(4)]
    report = dg.dead_units(fn, batches)
    eager = dg.dead_units(fn, iter(batches), jit=False)
    for name in ("h1", "h2"):
        assert float(report[name].dead_fraction) == float(eager[name].dead_fraction)
        assert int(report[name].count) == 32
    assert report["h1"].dead.tolist() == [True, False, False, False, False, True]
    # relu(h1) - 1e-3 is never positive where h1 is dead
    assert bool(jnp.all(report["h2"].dead[jnp.array([0, 5])]))
    seq = dg.dead_units(lambda x: [x, -x], batches[:1], return_state=True)
    assert set(seq) == {"0", "1"} and isinstance(seq["0"], dg.UnitState)
    with pytest.raises(ValueError, match="empty"):
        dg.dead_units(fn, [])
    with pytest.raises(TypeError, match="mapping"):
        dg.dead_units(lambda x: "nope", batches[:1], jit=False)


def test_dead_units_compiles_once_per_function():
    traces = []

    def fn(x):
        traces.append(None)
        return {"h": x - 1.0}

    batches = [jnp.ones((4, 3)), jnp.zeros((4, 3))]
    first = dg.dead_units(fn, batches)
    n_first = len(traces)  # eval_shape for the layer shapes + one jit trace
    second = dg.dead_units(fn, batches)
    assert len(traces) == n_first + 1  # eval_shape only: the step is cached
    assert float(first["h"].dead_fraction) == float(second["h"].dead_fraction) == 1


# --------------------------------------------------------------------------- #
# Gradient statistics
# --------------------------------------------------------------------------- #
def test_gradient_stats_values_and_dead_unit_zeros():
    key = jax.random.key(10)
    params = {
        "l1": {"kernel": jax.random.normal(key, (4, 6)), "bias": jnp.zeros(6)},
        "l2": {"kernel": jax.random.normal(key, (6, 2)), "bias": jnp.zeros(2)},
    }
    params["l1"]["bias"] = params["l1"]["bias"].at[jnp.array([1, 3])].set(-100.0)
    x = jax.random.normal(jax.random.key(11), (16, 4))

    def loss(p):
        h = jax.nn.relu(x @ p["l1"]["kernel"] + p["l1"]["bias"])
        return jnp.sum((h @ p["l2"]["kernel"] + p["l2"]["bias"]) ** 2)

    grads = jax.grad(loss)(params)
    s = jax.jit(dg.gradient_stats)(grads)
    leaves = jax.tree.leaves(grads)
    ref = np.sqrt(sum(np.sum(np.square(np.asarray(g, np.float64))) for g in leaves))
    np.testing.assert_allclose(s.global_norm, ref, rtol=1e-5)
    np.testing.assert_allclose(
        s.leaves["l1/kernel"].norm, np.linalg.norm(grads["l1"]["kernel"]), rtol=1e-5
    )
    # dead units 1 and 3: their kernel columns, bias entries and l2 rows get 0
    assert float(s.leaves["l1/kernel"].zero_fraction) == pytest.approx(2 / 6)
    assert float(s.leaves["l1/bias"].zero_fraction) == pytest.approx(2 / 6)
    assert float(s.layers["l1"].zero_fraction) == pytest.approx((8 + 2) / 30)
    assert int(s.layers["l2"].size) == 14
    np.testing.assert_allclose(
        s.layers["l1"].norm,
        np.hypot(s.leaves["l1/kernel"].norm, s.leaves["l1/bias"].norm),
        rtol=1e-6,
    )
    text = dg.format_gradient_stats(s)
    assert "l1" in text and "(all)" in text
    with pytest.raises(TypeError, match="int32"):
        dg.gradient_stats({"step": jnp.zeros((), jnp.int32)})


# --------------------------------------------------------------------------- #
# Reports: text and figures
# --------------------------------------------------------------------------- #
def test_format_report_and_plots(tmp_path):
    states = dg.init({"h1": 8, "h2": 4})
    states = dg.update(
        states,
        {"h1": dense_with_dead(jax.random.key(12), 20), "h2": -jnp.ones((20, 4))},
    )
    report = dg.result(states)
    text = dg.format_report(report, title="after training")
    lines = text.splitlines()
    assert lines[0] == "after training"
    assert lines[1].split()[:3] == ["layer", "units", "dead"]
    assert lines[3].split()[:3] == ["h1", "8", "37.5"]
    assert lines[4].split()[:4] == ["h2", "4", "100.0", "100.0"]
    fig = dg.plot_report(report, out=tmp_path / "bars.png")
    assert (tmp_path / "bars.png").stat().st_size > 1000
    heights = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_allclose(heights, [37.5, 100.0])
    fig2 = dg.plot_history(
        {"relu": [(0, report), (5, report)], "leaky": {0: report}},
        out=tmp_path / "hist.png",
    )
    assert len(fig2.axes) == 2 and (tmp_path / "hist.png").exists()
    with pytest.raises(TypeError, match="LayerStats"):
        dg.format_report({"h1": 1.0})
    with pytest.raises(ValueError, match="metric"):
        dg.plot_history([(0, report)], metric="dead")


# --------------------------------------------------------------------------- #
# Flax capture: every leakyjax activation layer is found, by module path
# --------------------------------------------------------------------------- #
# one spec per leakyjax module kind (the registry's wrapper included: gelu)
SPECS = ["relu", "leaky_relu:0.1", "prelu", "rrelu", "elu", "celu:0.5", "selu", "gelu"]
WIDTH = 6
DEAD = (0, 4)  # units of every hidden layer with bias -100


def _dead_bias_init(key, shape, dtype=jnp.float32):
    # live units +1, dead units -100; with the tiny kernel below every layer's
    # pre-activations are bias + O(1e-2), so the dead set is known exactly.
    return jnp.ones(shape, dtype).at[jnp.array(DEAD)].set(-100.0)


_small_kernel = jax.nn.initializers.normal(1e-3)


def test_capture_linen_finds_every_layer():
    nn = pytest.importorskip("flax.linen")
    ljnn = pytest.importorskip("leakyjax.linen")

    class Block(nn.Module):
        spec: str

        @nn.compact
        def __call__(self, x):
            x = nn.Dense(WIDTH, kernel_init=_small_kernel, bias_init=_dead_bias_init)(x)
            return ljnn.get(self.spec)(name="act")(x, **_linen_kwargs(self.spec))

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            for spec in SPECS:
                x = Block(spec)(x)
            shared = ljnn.ReLU(name="shared")  # one module called twice
            x = shared(nn.Dense(WIDTH)(x))
            return shared(nn.Dense(WIDTH)(x))

    model = Net()
    x = jax.random.normal(jax.random.key(20), (16, 5))
    variables = model.init(jax.random.key(21), x)
    capture = jax.jit(lambda v, x: dg.capture_linen(model, v, x))
    batches = [x[:8], x[8:]]
    out, acts = capture(variables, batches[0])
    names = [f"Block_{i}/act" for i in range(len(SPECS))]
    assert sorted(acts) == sorted([*names, "shared[0]", "shared[1]"])
    assert out.shape == (8, WIDTH)
    report = dg.dead_units(model, batches, variables=variables)
    for name in names:  # bias -100 on units 0 and 4 of every block: exactly dead
        np.testing.assert_array_equal(report[name].dead, np.isin(np.arange(6), DEAD))
        assert int(report[name].count) == 16
    # the same numbers as applying by hand and accumulating
    by_hand = dg.init(jax.eval_shape(lambda: acts))
    for b in batches:
        by_hand = dg.update(by_hand, capture(variables, b)[1])
    for name in acts:
        np.testing.assert_array_equal(
            dg.result(by_hand)[name].dead, report[name].dead, name
        )
    with pytest.raises(TypeError, match="variables"):
        dg.dead_units(model, batches)


def _linen_kwargs(spec):
    return {"deterministic": True} if spec == "rrelu" else {}


def test_capture_nnx_finds_every_layer_and_restores_flags():
    nnx = pytest.importorskip("flax.nnx")
    ljnnx = pytest.importorskip("leakyjax.nnx")

    class Net(nnx.Module):
        def __init__(self, rngs):
            dims = [5] + [WIDTH] * len(SPECS)
            self.dense = nnx.List(
                [
                    nnx.Linear(
                        i,
                        o,
                        kernel_init=_small_kernel,
                        bias_init=_dead_bias_init,
                        rngs=rngs,
                    )
                    for i, o in itertools.pairwise(dims)
                ]
            )
            self.acts = nnx.List([ljnnx.get(s)(rngs=rngs) for s in SPECS])
            self.shared = ljnnx.LeakyReLU()

        def __call__(self, x):
            for d, a in zip(self.dense, self.acts):
                x = a(d(x))
            return self.shared(self.shared(x))

    model = Net(nnx.Rngs(0))
    model.eval()  # RReLU: the deterministic slope
    names = [f"acts/{i}" for i in range(len(SPECS))]
    assert list(dg.activation_modules(model)) == [*names, "shared"]
    x = jax.random.normal(jax.random.key(22), (16, 5))
    graphdef, _ = nnx.split(model)
    out, acts = dg.capture_nnx(model, x)
    assert sorted(acts) == sorted([*names, "shared[0]", "shared[1]"])
    np.testing.assert_allclose(out, model(x), rtol=1e-6)
    report = dg.dead_units(model, [x[:8], x[8:]])
    for name in names:
        np.testing.assert_array_equal(report[name].dead, np.isin(np.arange(6), DEAD))
        assert int(report[name].count) == 16
    # flags restored, nothing left on the modules, the graph unchanged
    assert all(
        not m.record_pre_activation for m in dg.activation_modules(model).values()
    )
    assert not hasattr(model.shared, "pre_activation")
    assert nnx.split(model)[0] == graphdef
    # restored after an exception too
    with pytest.raises(ValueError, match="boom"):
        with dg.record_pre_activations(model):
            raise ValueError("boom")
    assert not model.acts[0].record_pre_activation
    with pytest.raises(ValueError, match="no leakyjax activation module"):
        dg.capture_nnx(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), x[:, :2])
    with pytest.raises(TypeError, match="capture_linen"):
        dg.capture_nnx(lambda x: x, x)


# --------------------------------------------------------------------------- #
# The example, in quick mode
# --------------------------------------------------------------------------- #
def test_dying_relu_example_quick(tmp_path, capsys):
    pytest.importorskip("optax")
    pytest.importorskip("sklearn")
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "dying_relu.py"
    spec = importlib.util.spec_from_file_location("dying_relu_example", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # flax dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    histories = module.main(["--quick", "--no-progress", "--out", str(tmp_path)])
    assert (tmp_path / "dying_relu.png").stat().st_size > 1000
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert [r["activation"] for r in runs] == ["relu", "leaky_relu:0.2"]
    assert set(histories) == {"relu", "leaky_relu:0.2"}
    for history in histories.values():
        steps = [s for s, _ in history]
        assert steps == [0, 10, 20]
        assert list(history[-1][1]) == ["act0", "act1"]
        for _, report in history:
            for stats in report.values():
                assert 0.0 <= float(stats.dead_fraction) <= 1.0
    text = capsys.readouterr().out
    assert "relu: after 20 steps" in text and "never positive" in text


# --------------------------------------------------------------------------- #
# Three scores in one pass: never positive, τ-dormant, gradient
# --------------------------------------------------------------------------- #
def reference_scores(a, h, g, axis=-1):
    """numpy: the three per-unit scores over every axis but ``axis``."""
    a, h, g = (np.moveaxis(np.asarray(v, np.float64), axis, -1) for v in (a, h, g))
    c = a.shape[-1]
    a, h, g = (v.reshape(-1, c) for v in (a, h, g))
    rate = (a > 0).mean(0)
    s = np.abs(h).mean(0)
    gs = np.abs(g).mean(0)
    return rate, s / (s.mean() + 1e-9), gs / (gs.mean() + 1e-9)


def planted(key, shape):
    """Pre-activations with unit 0 never positive, unit 1 tiny, the rest normal."""
    a = jax.random.normal(key, shape)
    a = a.at[..., 0].set(-jnp.abs(a[..., 0]) - 0.5)
    a = a.at[..., 1].set(1e-3 * jnp.abs(a[..., 1]))
    return a


@pytest.mark.parametrize("shape", [(16, 5), (4, 3, 3, 6), (2, 7, 4)])
@pytest.mark.parametrize("spec", ["relu", "leaky_relu:0.2"])
def test_scores_planted_units_exact(shape, spec):
    import leakyjax

    a = planted(jax.random.key(0), shape)
    g = jax.random.normal(jax.random.key(1), shape)
    fn = leakyjax.get(spec)
    h = fn(a)
    # the gradient reaching a unit: f'(a) * upstream
    ga = g * jax.vmap(jax.grad(lambda z: fn(z)))(a.reshape(-1)).reshape(shape)
    s = dg.update_scores(dg.init_scores(shape), a, h, ga)
    r = dg.unit_scores(s, tau=0.1, grad_tau=0.1)
    rate, ds, gs = reference_scores(a, h, ga)
    n = int(np.prod(shape[:-1]))
    np.testing.assert_array_equal(  # exact counts; the rate is count / n
        np.asarray(s.positive_count).reshape(-1), np.rint(rate * n).astype(np.int32)
    )
    np.testing.assert_allclose(np.asarray(r.active_rate), rate, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(r.dormancy), ds, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(r.grad_score), gs, rtol=2e-6, atol=1e-7)
    assert bool(r.never_positive[0]) and not bool(r.never_positive[1:].any())
    assert bool(r.dormant[1])  # the tiny unit is τ-dormant under both
    if spec == "relu":  # a never-positive ReLU unit: no output, no gradient
        assert float(r.dormancy[0]) == 0.0 and float(r.grad_score[0]) == 0.0
        assert bool(r.grad_dormant[0])
    else:  # a leaky unit: never positive, yet it has output and gradient
        assert float(r.dormancy[0]) > 0 and float(r.grad_score[0]) > 0.1
        assert not bool(r.grad_dormant[0])
    units = shape[-1]
    assert float(r.never_positive_fraction) == pytest.approx(1 / units)
    assert int(r.count) == int(np.prod(shape[:-1]))


def test_scores_batching_merge_scan_and_jit_agree():
    a = planted(jax.random.key(2), (24, 5))
    h = jax.nn.relu(a)
    g = jax.random.normal(jax.random.key(3), (24, 5))
    one = dg.update_scores(dg.init_scores(5), a, h, g)
    s = dg.init_scores(5)
    for i in range(0, 24, 8):
        s = jax.jit(dg.update_scores)(s, a[i : i + 8], h[i : i + 8], g[i : i + 8])
    half = dg.update_scores(dg.init_scores(5), a[:12], h[:12], g[:12])
    rest = dg.update_scores(dg.init_scores(5), a[12:], h[12:], g[12:])
    merged = dg.merge(half, rest)

    def body(s, x):
        return dg.update_scores(s, *x), None

    scanned, _ = jax.lax.scan(
        body,
        dg.init_scores(5),
        (a.reshape(3, 8, 5), h.reshape(3, 8, 5), g.reshape(3, 8, 5)),
    )
    for other in (s, merged, scanned):
        for f in ("count", "positive_count", "grad_count"):
            np.testing.assert_array_equal(getattr(one, f), getattr(other, f))
        np.testing.assert_allclose(one.abs_sum, other.abs_sum, rtol=1e-6)
        np.testing.assert_allclose(one.grad_abs_sum, other.grad_abs_sum, rtol=1e-6)
    per_shard = lambda x: dg.merge_across(dg.update_scores(dg.init_scores(5), *x), "i")
    across = jax.vmap(per_shard, axis_name="i")(
        (a.reshape(3, 8, 5), h.reshape(3, 8, 5), g.reshape(3, 8, 5))
    )
    np.testing.assert_array_equal(across.positive_count[0], one.positive_count)
    r = dg.unit_scores(one)
    assert set(dg.pooled_fractions({"x": r})) == {
        "never_positive",
        "dormant",
        "grad_dormant",
    }


def test_scores_without_grads_and_feature_axis():
    a = planted(jax.random.key(4), (3, 6, 4, 4)).transpose(0, 3, 1, 2)  # NCHW
    s = dg.update_scores(dg.init_scores(a.shape, feature_axis=1), a, activation="relu")
    r = dg.unit_scores(s)
    _, ds, _ = reference_scores(a, jax.nn.relu(a), a, axis=1)
    np.testing.assert_allclose(np.asarray(r.dormancy), ds, rtol=2e-6, atol=1e-7)
    assert np.isnan(np.asarray(r.grad_score)).all()
    assert np.isnan(float(r.grad_dormant_fraction))


def test_scores_errors_name_function_and_argument():
    with pytest.raises(TypeError, match="update_scores: the τ-dormant score needs"):
        dg.update_scores(dg.init_scores(2), jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="update_scores: pre_activations of shape"):
        dg.update_scores(dg.init_scores(2), jnp.ones((3, 4)), jnp.ones((3, 4)))
    with pytest.raises(ValueError, match="init_scores: the feature axis"):
        dg.init_scores((4, 0))
    with pytest.raises(ValueError, match="unit_scores: tau must be"):
        dg.unit_scores(dg.init_scores(2), tau=-1.0)
    with pytest.raises(TypeError, match="unit_scores: state must be"):
        dg.unit_scores(jnp.ones(2))
    with pytest.raises(ValueError, match="value_grad_and_probes: fn runs no"):
        dg.value_grad_and_probes(lambda w: jnp.sum(w))(jnp.ones(2))
    with pytest.raises(TypeError, match="tap: activation"):
        dg.tap("h", jnp.ones(2), None)


def test_probes_plain_function_grads_are_pre_activation_grads():
    w0 = jax.random.normal(jax.random.key(0), (3, 4))
    w1 = jax.random.normal(jax.random.key(1), (4, 2))
    x = jax.random.normal(jax.random.key(2), (5, 3))

    def loss(params, x):
        w0, w1 = params
        h = dg.tap("hidden", x @ w0, "leaky_relu:0.2")
        return jnp.sum(jnp.sin(h @ w1))

    value, grads, probes = jax.jit(dg.value_grad_and_probes(loss))((w0, w1), x)
    np.testing.assert_allclose(value, loss((w0, w1), x), rtol=1e-6)
    ref = jax.grad(loss)((w0, w1), x)
    for a, b in zip(grads, ref):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # reference: differentiate with respect to the pre-activation directly
    z = x @ w0
    gz = jax.grad(lambda z: jnp.sum(jnp.sin(jax.nn.leaky_relu(z, 0.2) @ w1)))(z)
    p = probes["hidden"]
    np.testing.assert_allclose(p.grad, gz, rtol=1e-6)
    np.testing.assert_allclose(p.pre_activation, z, rtol=1e-6)
    np.testing.assert_allclose(p.output, jax.nn.leaky_relu(z, 0.2), rtol=1e-6)

    # a layer applied twice gets [0] and [1]
    def twice(w, x):
        h = dg.tap("h", x @ w, "relu")
        return jnp.sum(dg.tap("h", h @ w.T @ w, "relu"))

    _, _, pr = dg.value_grad_and_probes(twice)(w0, x)
    assert list(pr) == ["h[0]", "h[1]"]


def test_probes_linen_and_nnx_name_layers_as_capture():
    nn = pytest.importorskip("flax.linen")
    nnx = pytest.importorskip("flax.nnx")
    import leakyjax.linen as ljnn
    import leakyjax.nnx as ljnnx

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = ljnn.LeakyReLU(0.2)(nn.Dense(4)(x))
            x = ljnn.PReLU()(nn.Dense(3)(x))
            return nn.Dense(1)(x)

    m = MLP()
    x = jax.random.normal(jax.random.key(1), (6, 2))
    v = m.init(jax.random.key(0), x)
    loss = lambda p, x: jnp.sum(m.apply({"params": p}, x) ** 2)
    _, g, probes = jax.jit(dg.value_grad_and_probes(loss))(v["params"], x)
    _, acts = dg.capture_linen(m, v, x)
    assert list(probes) == list(acts)
    for name in acts:
        np.testing.assert_allclose(probes[name].pre_activation, acts[name], rtol=1e-6)
    # the gradient at a Dense layer's output, summed over the batch, is its bias's
    np.testing.assert_allclose(
        probes["LeakyReLU_0"].grad.sum(0), g["Dense_0"]["bias"], rtol=1e-5, atol=1e-7
    )

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(2, 4, rngs=rngs)
            self.act = ljnnx.ReLU()
            self.l2 = nnx.Linear(4, 1, rngs=rngs)

        def __call__(self, x):
            return self.l2(self.act(self.l1(x)))

    graphdef, state = nnx.split(Net(nnx.Rngs(0)))
    nloss = lambda st, x: jnp.sum(nnx.merge(graphdef, st)(x))
    _, g, probes = jax.jit(dg.value_grad_and_probes(nloss))(state, x)
    assert list(probes) == ["ReLU_0"]
    np.testing.assert_allclose(
        probes["ReLU_0"].grad.sum(0), g["l1"]["bias"][...], rtol=1e-5, atol=1e-7
    )
    scores = dg.unit_scores(dg.update_scores(dg.init_scores(probes), probes))
    assert scores["ReLU_0"].units == 4


# the reliability items: clear errors naming the function and the argument
def test_reliability_errors():
    from leakyjax import recycle

    with pytest.raises(ValueError, match="dormancy_score: activations of shape"):
        recycle.dormancy_score(jnp.zeros((4, 0)))
    with pytest.raises(ValueError, match="dormancy_score: activations must have a"):
        recycle.dormancy_score(jnp.asarray(1.0))
    with pytest.raises(ValueError, match="dormancy_score: feature_axis=5"):
        recycle.dormancy_score(jnp.ones((4, 3)), feature_axis=5)
    with pytest.raises(TypeError, match="dead_units: fn must be"):
        dg.dead_units(3, [jnp.ones((2, 2))])
    with pytest.raises(TypeError, match="dead_units: batches must be"):
        dg.dead_units(lambda x: x, 3)
    with pytest.raises(ValueError, match="format_report: report is empty"):
        dg.format_report({})
    with pytest.raises(TypeError, match=r"gradient_stats: leaf .* is a str"):
        dg.gradient_stats("abc")
    with pytest.raises(TypeError, match="recycle_dormant: key must be a PRNG key"):
        recycle.recycle_dormant(
            {"a": {"kernel": jnp.ones((2, 3))}, "b": {"kernel": jnp.ones((3, 1))}},
            {"h": jnp.ones((4, 3))},
            key=0,
        )


def test_scores_equinox_from_capture():
    eqx = pytest.importorskip("equinox")
    from leakyjax import equinox as ljeqx

    k1, k2 = jax.random.split(jax.random.key(0))
    model = eqx.nn.Sequential(
        [eqx.nn.Linear(3, 4, key=k1), ljeqx.LeakyReLU(0.2), eqx.nn.Linear(4, 2, key=k2)]
    )
    x = jax.random.normal(jax.random.key(1), (16, 3))
    acts = jax.vmap(lambda x: ljeqx.capture(model, x)[1])(x)
    s = dg.update_scores(dg.init_scores(acts), acts, activation="leaky_relu:0.2")
    r = dg.unit_scores(s)["layers/1"]
    a = np.asarray(acts["layers/1"])
    _, ds, _ = reference_scores(a, np.where(a >= 0, a, 0.2 * a), a)
    np.testing.assert_allclose(np.asarray(r.dormancy), ds, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(r.active_rate), (a > 0).mean(0), rtol=1e-6)
