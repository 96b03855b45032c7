"""Values, derivatives, dtypes, special values and transformations of the functions."""

from __future__ import annotations

import chex
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import leakyjax as lj
from leakyjax._src import _rrelu_draw, _rules
from leakyjax._src import activations as A
from tests.helpers import (
    FLOAT_DTYPES,
    SELU_ALPHA,
    SELU_SCALE,
    ref_hard_tanh,
    ref_rrelu_slopes,
    run_on_host_devices,
    special_values,
    tol,
    x64,
)

# Values, derivatives (also with traced parameters) and the exact derivative at every
# kink of every table entry, for many parameter values and every dtype, are checked
# against float64 references in tests/test_table.py; this file has the rest.


def _check_close(actual, expected, dtype, *, derivative=False):
    actual = np.asarray(jnp.asarray(actual).astype(jnp.float32), np.float64)
    t = dict(tol(dtype))
    if derivative:
        # The exponential family reads its derivative from the output (y + alpha),
        # which is exact to a few ulps of the constant, absolute (documented).
        t["atol"] = 4 * float(jnp.finfo(dtype).eps) * 2.0
    np.testing.assert_allclose(actual, expected, equal_nan=True, **t)


def _grad_elementwise(f):
    return jax.vmap(jax.grad(f))


# --------------------------------------------------------------------------- #
# The kink: jax.nn's conventions, signed zeros
# --------------------------------------------------------------------------- #
def test_kink_conventions_match_jax_nn():
    for zero in (0.0, -0.0):
        x = jnp.float32(zero)
        assert jax.grad(lj.relu)(x) == jax.grad(jax.nn.relu)(x)
        assert jax.grad(lj.leaky_relu)(x) == jax.grad(jax.nn.leaky_relu)(x)
        assert jax.grad(lambda v: lj.elu(v, 0.5))(x) == jax.grad(
            lambda v: jax.nn.elu(v, 0.5)
        )(x)
        assert jax.grad(lj.selu)(x) == pytest.approx(
            float(jax.grad(jax.nn.selu)(x)), rel=1e-6
        )
        assert jax.grad(lambda v: lj.celu(v, 0.5))(x) == jax.grad(
            lambda v: jax.nn.celu(v, 0.5)
        )(x)


def test_signed_zero_values():
    # jax.nn convention: x >= 0 keeps x, so -0.0 maps to -0.0
    assert np.signbit(lj.leaky_relu(jnp.float32(-0.0)))
    assert np.signbit(jax.nn.leaky_relu(jnp.float32(-0.0)))
    assert np.signbit(lj.elu(jnp.float32(-0.0)))
    assert not np.signbit(lj.relu(jnp.float32(-0.0)))


# --------------------------------------------------------------------------- #
# Special values: infinities and nan, in value and derivative
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_infinities_and_nan(dtype):
    x = jnp.asarray([np.inf, -np.inf, np.nan], dtype)
    d = _grad_elementwise
    np.testing.assert_array_equal(
        np.float32(lj.leaky_relu(x, 0.25)), [np.inf, -np.inf, np.nan]
    )
    np.testing.assert_array_equal(
        np.float32(d(lambda v: lj.leaky_relu(v, 0.25))(x)), [1, 0.25, 0.25]
    )
    np.testing.assert_array_equal(np.float32(lj.relu(x)), [np.inf, 0, np.nan])
    np.testing.assert_array_equal(np.float32(d(lj.relu)(x)), [1, 0, 0])
    np.testing.assert_array_equal(np.float32(lj.elu(x, 0.5)), [np.inf, -0.5, np.nan])
    np.testing.assert_array_equal(
        np.float32(d(lambda v: lj.elu(v, 0.5))(x))[:2], [1, 0]
    )
    np.testing.assert_array_equal(np.float32(lj.celu(x, 2.0)), [np.inf, -2.0, np.nan])
    np.testing.assert_array_equal(
        np.float32(d(lambda v: lj.celu(v, 2.0))(x))[:2], [1, 0]
    )
    sel = np.float32(lj.selu(x))
    assert sel[0] == np.inf and np.isnan(sel[2])
    np.testing.assert_allclose(
        sel[1], -SELU_SCALE * SELU_ALPHA, rtol=tol(dtype)["rtol"]
    )
    np.testing.assert_array_equal(np.float32(d(lj.selu)(x))[1], 0)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_denormals_follow_jax_nn(dtype):
    """XLA may treat subnormals as zero; leakyjax makes the same call as jax.nn,
    in the value and (the sign bit is taken from x) in the derivative."""
    fi = jnp.finfo(dtype)
    sub = float(fi.smallest_subnormal)
    x = jnp.asarray([sub, -sub, float(fi.tiny), -float(fi.tiny)], dtype)
    for ours, theirs in [
        (lambda v: lj.leaky_relu(v, 0.25), lambda v: jax.nn.leaky_relu(v, 0.25)),
        (lj.relu, jax.nn.relu),
        (lj.elu, jax.nn.elu),
        (lj.relu6, jax.nn.relu6),
        (lj.hard_tanh, jax.nn.hard_tanh),
        (lj.hard_sigmoid, jax.nn.hard_sigmoid),
    ]:
        np.testing.assert_array_equal(np.float32(ours(x)), np.float32(theirs(x)))
        g_ours = np.float32(_grad_elementwise(ours)(x))
        g_theirs = np.float32(_grad_elementwise(theirs)(x))
        if ours is lj.elu:  # y-based: exact to an ulp of alpha (documented)
            np.testing.assert_allclose(g_ours, g_theirs, rtol=float(fi.eps))
        else:
            np.testing.assert_array_equal(g_ours, g_theirs)


# --------------------------------------------------------------------------- #
# Parity with jax.nn where conventions agree
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "ours,theirs",
    [
        (lj.relu, jax.nn.relu),
        (lj.leaky_relu, jax.nn.leaky_relu),
        (lambda x: lj.leaky_relu(x, 0.3), lambda x: jax.nn.leaky_relu(x, 0.3)),
        (lj.elu, jax.nn.elu),
        (lambda x: lj.elu(x, 2.0), lambda x: jax.nn.elu(x, 2.0)),
        (lambda x: lj.celu(x, 0.7), lambda x: jax.nn.celu(x, 0.7)),
        (lj.selu, jax.nn.selu),
        (lj.sigmoid, jax.nn.sigmoid),
        (lj.tanh, jnp.tanh),
        (lj.gelu, jax.nn.gelu),
        (
            lambda x: lj.gelu(x, approximate=False),
            lambda x: jax.nn.gelu(x, approximate=False),
        ),
        (lj.silu, jax.nn.silu),
        (lj.softplus, jax.nn.softplus),
        (lj.relu6, jax.nn.relu6),
        (lj.hard_tanh, jax.nn.hard_tanh),
        (lj.hard_sigmoid, jax.nn.hard_sigmoid),
    ],
)
def test_parity_with_jax_nn(ours, theirs):
    x = jnp.asarray(np.random.default_rng(3).normal(0, 3, 1000), jnp.float32)
    np.testing.assert_allclose(ours(x), theirs(x), rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(
        _grad_elementwise(ours)(x), _grad_elementwise(theirs)(x), rtol=2e-6, atol=1e-7
    )


# --------------------------------------------------------------------------- #
# Finite differences (float64), higher order, jvp == vjp, hessian, jacfwd
# --------------------------------------------------------------------------- #
SMOOTH = {
    "leaky_relu": lambda x: lj.leaky_relu(x, 0.1),
    "leaky_relu_traced": lambda x: lj.leaky_relu(x, jnp.asarray(0.1)),
    "leaky_relu_neg": lambda x: lj.leaky_relu(x, -0.3),
    "relu": lj.relu,
    "prelu": lambda x: lj.prelu(x, jnp.asarray(0.25)),
    "elu": lj.elu,
    "elu_traced": lambda x: lj.elu(x, jnp.asarray(0.5)),
    "celu": lambda x: lj.celu(x, 0.5),
    "celu_traced": lambda x: lj.celu(x, jnp.asarray(0.5)),
    "selu": lj.selu,
    "relu6": lj.relu6,
    "hard_tanh": lj.hard_tanh,
    "hard_sigmoid": lj.hard_sigmoid,
    "rrelu_key": lambda x: lj.rrelu(x, jax.random.key(2)),
}


def _off_kink(n=64, seed=0):
    x = np.random.default_rng(seed).uniform(0.2, 3.0, n) * np.sign(
        np.arange(n) % 2 - 0.5
    )
    return x


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_check_grads_order2_float64(name):
    f = SMOOTH[name]
    with x64():
        x = jnp.asarray(_off_kink(), jnp.float64)
        check_grads(f, (x,), order=2, modes=["fwd", "rev"], atol=1e-6, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    "f,a",
    [
        (lj.leaky_relu, 0.1),
        (lj.prelu, 0.25),
        (lj.elu, 0.7),
        (lj.celu, 0.6),
    ],
)
def test_check_grads_in_parameter_float64(f, a):
    with x64():
        x = jnp.asarray(_off_kink(), jnp.float64)
        check_grads(lambda s: f(x, s), (jnp.float64(a),), order=2, modes=["fwd", "rev"])
        check_grads(lambda v, s: f(v, s), (x, jnp.float64(a)), order=1, modes=["rev"])


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_jvp_equals_vjp(name):
    f = SMOOTH[name]
    x = jnp.asarray(_off_kink(seed=1), jnp.float32)
    t = jnp.asarray(np.random.default_rng(5).normal(size=x.shape), jnp.float32)
    _, jvp_out = jax.jvp(f, (x,), (t,))
    _, vjp_fn = jax.vjp(f, x)
    (vjp_out,) = vjp_fn(t)
    np.testing.assert_allclose(jvp_out, vjp_out, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_hessian_and_jacfwd(name):
    f = SMOOTH[name]
    x = jnp.asarray(_off_kink(8, seed=2), jnp.float32)
    h = jax.hessian(lambda v: f(v).sum())(x)
    jf = jax.jacfwd(f)(x)
    jr = jax.jacrev(f)(x)
    np.testing.assert_allclose(jf, jr, rtol=1e-6)
    # elementwise: jacobian and hessian are diagonal
    np.testing.assert_allclose(h - jnp.diag(jnp.diag(h)), 0.0)
    d2 = jax.vmap(jax.grad(jax.grad(f)))(x)
    np.testing.assert_allclose(jnp.diag(h), d2, rtol=1e-5)


def test_second_derivatives_values():
    x = jnp.asarray([-1.5, -0.3, 0.4, 2.0])
    np.testing.assert_allclose(
        jax.vmap(jax.grad(jax.grad(lj.elu)))(x),
        np.where(x > 0, 0, np.exp(x)),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        jax.vmap(jax.grad(jax.grad(lambda v: lj.celu(v, 0.5))))(x),
        np.where(x > 0, 0, np.exp(x / 0.5) / 0.5),
        rtol=1e-6,
    )
    np.testing.assert_allclose(jax.vmap(jax.grad(jax.grad(lj.leaky_relu)))(x), 0.0)
    np.testing.assert_allclose(
        jax.vmap(jax.grad(jax.grad(lj.selu)))(x),
        np.where(x > 0, 0, SELU_SCALE * SELU_ALPHA * np.exp(x)),
        rtol=1e-6,
    )


# --------------------------------------------------------------------------- #
# vmap, retracing, dtypes of parameters
# --------------------------------------------------------------------------- #
def test_vmap_over_inputs_and_slopes():
    x = jnp.linspace(-2, 2, 9)
    slopes = jnp.asarray([0.0, 0.01, 0.2, 0.5])
    out = jax.vmap(lambda a: lj.leaky_relu(x, a))(slopes)
    expected = np.stack([np.where(x >= 0, x, a * x) for a in np.asarray(slopes)])
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    batched = jax.vmap(lj.elu)(jnp.stack([x, -x]))
    np.testing.assert_allclose(
        batched, np.stack([jax.nn.elu(x), jax.nn.elu(-x)]), rtol=1e-6
    )
    grads = jax.vmap(jax.grad(lambda a: lj.leaky_relu(x, a).sum()))(slopes)
    np.testing.assert_allclose(
        grads, np.full(4, np.minimum(np.asarray(x), 0).sum()), rtol=1e-6
    )


_SHARED_SLOPE = ref_rrelu_slopes(jax.random.key(3), ())


def _shared_draw(v):  # what rrelu(v, jax.random.key(3)) gives every scalar
    a = jnp.asarray(_SHARED_SLOPE).astype(v.dtype)
    return jnp.where(v >= 0, v, a * v)


# Functions of a scalar under vmap (equinox.nn.MLP's activations) are given the
# whole batch: the same values and derivatives as the call on the array.
SCALAR_VMAP = {
    "relu": (lj.relu, lj.relu),
    "leaky_relu": (lj.leaky_relu, lj.leaky_relu),
    "leaky_relu_neg": ((f := lambda v: lj.leaky_relu(v, -0.5)), f),
    "prelu": ((f := lambda v: lj.prelu(v, 0.25)), f),
    "relu6": (lj.relu6, lj.relu6),
    "hard_tanh": (lj.hard_tanh, lj.hard_tanh),
    "hard_sigmoid": (lj.hard_sigmoid, lj.hard_sigmoid),
    "rrelu_eval": (lj.rrelu, lj.rrelu),
    "rrelu_key": (
        lambda v: lj.rrelu(v, jax.random.key(3)),
        _shared_draw,
    ),
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", list(SCALAR_VMAP))
def test_scalar_calls_under_vmap_equal_the_array_call(name, dtype):
    f, ref = SCALAR_VMAP[name]
    sv = special_values(dtype)
    x = jnp.asarray(np.resize(np.concatenate([sv, np.linspace(-7, 7, 43)]), (4, 40)))
    x = x.astype(dtype)
    w = jnp.asarray(np.random.default_rng(0).normal(size=(4, 40))).astype(dtype)
    per_scalar = jax.vmap(jax.vmap(f))
    jit = jax.jit  # compiled both sides (op by op, XLA may round x / 6 otherwise)

    def loss(g):
        return lambda v: (g(v) * w).astype(jnp.float32).sum()

    np.testing.assert_array_equal(jit(per_scalar)(x), jit(ref)(x))
    np.testing.assert_array_equal(
        jit(jax.grad(loss(per_scalar)))(x), jit(jax.grad(loss(ref)))(x)
    )
    np.testing.assert_array_equal(  # grad innermost: the scalar rule itself
        jit(jax.vmap(jax.vmap(jax.grad(f))))(x),
        jit(jax.grad(lambda v: ref(v).astype(jnp.float32).sum()))(x).astype(dtype),
    )
    _, t = jit(lambda v, u: jax.jvp(per_scalar, (v,), (u,)))(x, w)
    np.testing.assert_array_equal(
        t, jit(lambda v, u: jax.jvp(ref, (v,), (u,)))(x, w)[1]
    )
    h = jax.hessian(lambda v: jax.vmap(f)(v).astype(jnp.float32).sum())(x[1, :6])
    np.testing.assert_array_equal(h, np.zeros((6, 6)))


def test_slope_sweep_compiles_once():
    x = jnp.linspace(-2, 2, 9)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def sweep(slopes):
        return jax.vmap(lambda a: lj.leaky_relu(x, a))(slopes)

    sweep(jnp.asarray([0.1, 0.2]))
    sweep(jnp.asarray([0.3, 0.4]))

    @jax.jit
    @chex.assert_max_traces(n=1)
    def one(v, a):
        return lj.leaky_relu(v, a)

    one(x, 0.1)
    one(x, 0.7)


def test_new_float_slope_does_not_recompile():
    x = jnp.linspace(-2, 2, 9)
    lj.leaky_relu(x, 0.05)
    n = _rules._leaky_jit._cache_size()
    for a in (0.1, 0.2, 0.3, 0.015):
        lj.leaky_relu(x, a)
    assert _rules._leaky_jit._cache_size() == n
    lj.elu(x, 0.5)
    n = A._elu_from_y_jit._cache_size()
    lj.elu(x, 0.9)
    lj.elu(x, 1.3)
    assert A._elu_from_y_jit._cache_size() == n


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize(
    "f",
    [lj.leaky_relu, lj.prelu, lj.elu, lj.celu],
    ids=["leaky_relu", "prelu", "elu", "celu"],
)
def test_no_dtype_promotion_with_f32_parameter(dtype, f):
    x = jnp.asarray([-1.0, 2.0], dtype)
    a = jnp.asarray(0.3, jnp.float32)
    assert f(x, a).dtype == jnp.dtype(dtype)
    assert f(x, 0.3).dtype == jnp.dtype(dtype)
    assert jax.jit(f)(x, a).dtype == jnp.dtype(dtype)
    gx, ga = jax.grad(lambda v, s: f(v, s).sum(), argnums=(0, 1))(x, a)
    assert gx.dtype == jnp.dtype(dtype)
    assert ga.dtype == jnp.float32


def test_float64_preserved():
    with x64():
        x = jnp.asarray([-1.0, 0.5], jnp.float64)
        for f in (lj.relu, lj.leaky_relu, lj.elu, lj.celu, lj.selu, lj.rrelu, lj.gelu):
            assert f(x).dtype == jnp.float64
            assert jax.vmap(jax.grad(f))(x).dtype == jnp.float64
        np.testing.assert_array_equal(lj.leaky_relu(x, 0.1), [-0.1, 0.5])


def test_python_scalar_input():
    assert float(lj.leaky_relu(-2.0, 0.5)) == -1.0
    assert float(jax.grad(lj.leaky_relu)(-2.0)) == pytest.approx(0.01)


# --------------------------------------------------------------------------- #
# prelu
# --------------------------------------------------------------------------- #
def test_prelu_per_channel_grads_against_numpy():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 7, 3)).astype(np.float32)
    alpha = np.asarray([0.1, 0.25, 0.5], np.float32)
    g = rng.normal(size=x.shape).astype(np.float32)
    y, vjp = jax.vjp(lj.prelu, jnp.asarray(x), jnp.asarray(alpha))
    gx, ga = vjp(jnp.asarray(g))
    np.testing.assert_allclose(y, np.where(x >= 0, x, alpha * x), rtol=1e-6)
    np.testing.assert_allclose(gx, np.where(x >= 0, g, alpha * g), rtol=1e-6)
    np.testing.assert_allclose(ga, (np.minimum(x, 0) * g).sum(axis=(0, 1)), rtol=1e-5)
    # channels-first with an explicit broadcast shape
    xc = np.moveaxis(x, -1, 1)
    yc = lj.prelu(jnp.asarray(xc), jnp.asarray(alpha)[:, None])
    np.testing.assert_allclose(
        np.moveaxis(np.asarray(yc), 1, -1), np.asarray(y), rtol=1e-6
    )


def test_prelu_bf16_input_f32_alpha():
    x = jnp.asarray([[-1.0, 2.0], [-3.0, 0.5]], jnp.bfloat16)
    alpha = jnp.asarray([0.25, 0.5], jnp.float32)
    y = lj.prelu(x, alpha)
    assert y.dtype == jnp.bfloat16
    ga = jax.grad(lambda a: lj.prelu(x, a).astype(jnp.float32).sum())(alpha)
    assert ga.dtype == jnp.float32
    np.testing.assert_allclose(ga, [-4.0, 0.0])


# --------------------------------------------------------------------------- #
# rrelu
# --------------------------------------------------------------------------- #
def test_rrelu_random_slopes_pytorch_convention():
    x = -jnp.ones((20000,))
    y = lj.rrelu(x, jax.random.key(0))
    slopes = -np.asarray(y)
    assert slopes.min() >= 1 / 8 and slopes.max() <= 1 / 3
    assert abs(slopes.mean() - (1 / 8 + 1 / 3) / 2) < 3e-3
    assert len(np.unique(slopes)) > 1000
    np.testing.assert_array_equal(y, lj.rrelu(x, jax.random.key(0)))
    assert not np.array_equal(y, lj.rrelu(x, jax.random.key(1)))
    # the derivative is the drawn slope
    g = jax.grad(lambda v: lj.rrelu(v, jax.random.key(0)).sum())(x)
    np.testing.assert_allclose(g, slopes, rtol=1e-6)
    # positive inputs pass through
    np.testing.assert_array_equal(lj.rrelu(jnp.ones(5), jax.random.key(0)), jnp.ones(5))


def test_rrelu_xu_convention():
    x = -jnp.ones((20000,))
    slopes = -np.asarray(lj.rrelu(x, jax.random.key(0), convention="xu"))
    assert slopes.min() >= 1 / 8 - 1e-6 and slopes.max() <= 1 / 3 + 1e-6
    divisors = 1 / slopes
    assert abs(divisors.mean() - 5.5) < 0.05
    assert float(lj.rrelu(jnp.float32(-5.5), convention="xu")) == pytest.approx(-1.0)
    assert float(lj.rrelu(jnp.float32(-1.0), lower=0.2, upper=0.4)) == pytest.approx(
        -0.3
    )


@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (4, 40, 3), (2, 1, 9)])
def test_rrelu_slopes_match_the_numpy_reference(shape):
    """The slopes are jax's threefry bits of the key mapped as jax.random.uniform
    maps them (tests/helpers.py), in every program: eager, jit, vmap, forward and
    backward; a key that is not threefry's uses jax.random.uniform itself."""
    for key in (jax.random.key(11), jax.random.PRNGKey(12)):
        want = ref_rrelu_slopes(key, shape)
        draw = lambda k: _rrelu_draw._uniform(k, shape, 1 / 8, 1 / 3)
        np.testing.assert_array_equal(draw(key), want)
        np.testing.assert_array_equal(jax.jit(draw)(key), want)
        x = -jnp.ones(shape)
        f = lambda v, k=key: lj.rrelu(v, k)
        np.testing.assert_array_equal(-f(x), want)
        np.testing.assert_array_equal(-jax.jit(f)(x), want)
        g = jax.grad(lambda v, f=f: f(v).sum())
        np.testing.assert_array_equal(g(x), want)
        np.testing.assert_array_equal(jax.jit(g)(x), want)
        bf = -jnp.ones(shape, jnp.bfloat16)
        np.testing.assert_array_equal(-jax.jit(f)(bf), want.astype(jnp.bfloat16))
    ks = jax.random.split(jax.random.key(3), 4)
    np.testing.assert_array_equal(
        jax.jit(jax.vmap(lambda k: _rrelu_draw._uniform(k, shape, 1 / 8, 1 / 3)))(ks),
        np.stack([ref_rrelu_slopes(k, shape) for k in ks]),
    )
    rbg = jax.random.key(13, impl="rbg")
    np.testing.assert_array_equal(
        jax.jit(lambda k: _rrelu_draw._uniform(k, shape, 0.1, 0.4))(rbg),
        jax.random.uniform(rbg, shape, jnp.float32, 0.1, 0.4),
    )


def test_rrelu_legacy_key_and_dtype():
    y = lj.rrelu(-jnp.ones(8, jnp.bfloat16), jax.random.PRNGKey(0))
    assert y.dtype == jnp.bfloat16


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "f", [lj.relu, lj.leaky_relu, lj.elu, lj.celu, lj.selu, lj.rrelu, lj.gelu]
)
def test_integer_input_raises(f):
    with pytest.raises(TypeError, match=r"floating-point.*astype"):
        f(jnp.arange(3))


def test_bad_parameters_raise():
    x = jnp.ones(3)
    with pytest.raises(ValueError, match="negative_slope must be finite"):
        lj.leaky_relu(x, float("nan"))
    with pytest.raises(ValueError, match="negative_slope must be finite"):
        lj.leaky_relu(x, np.asarray([0.1, np.inf, 0.1]))
    # a jax array is checked for shape and dtype only: its values stay on the
    # device (no host round trip per call), as a traced one's
    assert np.isinf(lj.leaky_relu(-x, jnp.asarray([0.1, np.inf, 0.1]))[1])
    with pytest.raises(ValueError, match="alpha must be finite"):
        lj.elu(x, float("inf"))
    with pytest.raises(ValueError, match="alpha must be > 0"):
        lj.celu(x, 0.0)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        lj.celu(x, -1.0)
    with pytest.raises(ValueError, match=r"slope of shape \(4,\) does not broadcast"):
        lj.prelu(jnp.ones((2, 3)), jnp.ones(4))
    with pytest.raises(ValueError, match=r"slope of shape \(2, 3\) does not broadcast"):
        lj.prelu(jnp.ones((3,)), jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="convention"):
        lj.rrelu(x, convention="keras")
    with pytest.raises(ValueError, match="lower <= upper"):
        lj.rrelu(x, lower=0.5, upper=0.1)
    with pytest.raises(ValueError, match="divisor"):
        lj.rrelu(x, lower=0.0, convention="xu")
    with pytest.raises(ValueError, match="upper must be finite"):
        lj.rrelu(x, upper=float("inf"))


# --------------------------------------------------------------------------- #
# Property tests
# --------------------------------------------------------------------------- #
finite_f32 = hnp.arrays(
    np.float32,
    hnp.array_shapes(max_dims=2, max_side=16),
    elements=st.floats(-1e6, 1e6, width=32, allow_subnormal=False),
)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
# Subnormal slopes are flushed to 0 by XLA on CPU (as for jax.nn.leaky_relu).
@given(x=finite_f32, a=st.floats(0.0, 1.0, width=32, allow_subnormal=False))
def test_property_leaky_decomposition(x, a):
    y = np.asarray(lj.leaky_relu(jnp.asarray(x), a))
    tiny = np.finfo(np.float32).tiny
    with np.errstate(all="ignore"):
        ref = np.where(x >= 0, x, np.float32(a) * x)
    ref = np.where(np.abs(ref) < tiny, np.float32(0), ref)  # XLA flushes subnormals
    np.testing.assert_array_equal(y, ref)
    # for 0 <= a <= 1, leaky_relu(x) = max(x, a x)
    np.testing.assert_array_equal(
        y, np.maximum(x, np.float32(a) * x) * (np.abs(ref) > 0)
    )


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(x=finite_f32, a=st.floats(0.0625, 3.0, width=32))
def test_property_output_rule_equals_input_rule(x, a):
    """The output-based derivative equals the input-based one (traced parameter)."""
    xj = jnp.asarray(x)
    for f in (lj.leaky_relu, lj.elu, lj.celu):
        g_y = jax.grad(lambda v, f=f: f(v, a).sum())(xj)
        g_x = jax.grad(lambda v, f=f: f(v, jnp.float32(a)).sum())(xj)
        np.testing.assert_allclose(g_y, g_x, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(x=finite_f32)
def test_property_elu_bounds(x):
    y = np.asarray(lj.elu(jnp.asarray(x)))
    assert np.all(y >= -1.0)
    assert np.all((y > 0) == (x > 0))


# --------------------------------------------------------------------------- #
# The new piecewise-linear functions: kinks exactly, bit-for-bit jax.nn
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize(
    "ours,theirs,kinks",
    [
        (lj.relu6, jax.nn.relu6, [(0.0, 0.0), (-0.0, 0.0), (6.0, 0.0)]),
        (lj.hard_tanh, jax.nn.hard_tanh, [(1.0, 1.0), (-1.0, 1.0), (0.0, 1.0)]),
        (lj.hard_sigmoid, jax.nn.hard_sigmoid, [(3.0, 0.0), (-3.0, 0.0), (0.0, 1 / 6)]),
    ],
    ids=["relu6", "hard_tanh", "hard_sigmoid"],
)
def test_clipped_family_kinks_and_jax_nn(ours, theirs, kinks, dtype):
    for x0, d0 in kinks:
        x = jnp.asarray(x0, dtype)
        g = jax.grad(ours)(x)
        assert g.dtype == jnp.dtype(dtype)
        assert float(g) == float(jnp.asarray(d0, dtype)), (x0, float(g))
        assert float(g) == float(jax.grad(theirs)(x))
        _, t = jax.jvp(ours, (x,), (jnp.ones_like(x),))
        assert float(t) == float(g)
    x = jnp.asarray(
        np.concatenate(
            [np.random.default_rng(8).normal(0, 4, 300), special_values(dtype)]
        ),
        dtype,
    )
    np.testing.assert_array_equal(np.float32(ours(x)), np.float32(theirs(x)))
    np.testing.assert_array_equal(
        np.float32(_grad_elementwise(ours)(x)),
        np.float32(_grad_elementwise(theirs)(x)),
    )


def test_hard_tanh_torch_convention_differs_at_the_kinks():
    """Documented: torch.nn.Hardtanh has derivative 0 at +-1; ours (jax.nn's) 1."""
    _, d = ref_hard_tanh(np.array([-1.0, 1.0]))
    np.testing.assert_array_equal(d, [1.0, 1.0])
    np.testing.assert_array_equal(
        _grad_elementwise(lj.hard_tanh)(jnp.array([-1.0, 1.0])), [1.0, 1.0]
    )


# --------------------------------------------------------------------------- #
# One-bit residuals for any slope; parameters decided on the cast value
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("shape", [(), (1,), (3,), (5, 8), (2, 3, 13)])
def test_bit_residual_exact_for_any_slope_and_shape(shape):
    rng = np.random.default_rng(9)
    x = jnp.asarray(rng.normal(size=shape), jnp.float32)
    ct = jnp.asarray(rng.normal(size=shape), jnp.float32)
    for a in (-0.5, 0.0, 0.01, 1.0, 3.0):
        _, vjp = jax.vjp(lambda v, a=a: lj.leaky_relu(v, a), x)
        (g,) = vjp(ct)
        np.testing.assert_array_equal(g, np.where(x >= 0, ct, np.float32(a) * ct))
    _, vjp = jax.vjp(lj.relu6, x * 4)
    np.testing.assert_array_equal(
        vjp(ct)[0], np.where((x * 4 > 0) & (x * 4 < 6), ct, 0)
    )


# A long 1-D input is differentiated in a row view (n // w, w) (see _rows):
# 2**16 takes w = 1024, 2**16 + 1024 takes w = 128, 2**16 + 8 has no view.
LONG = [1 << 16, (1 << 16) + 1024, (1 << 16) + 8]
ROW_FNS = {
    "relu": (lj.relu, lambda x, a: np.where(x > 0, 1.0, 0.0)),
    "leaky_relu": (lambda v: lj.leaky_relu(v, 0.01), None),
    "leaky_relu_neg": (lambda v: lj.leaky_relu(v, -0.5), None),
    "leaky_relu_zero": (lambda v: lj.leaky_relu(v, 0.0), None),
    "relu6": (lj.relu6, lambda x, a: np.where((x > 0) & (x < 6), 1.0, 0.0)),
    "hard_tanh": (lj.hard_tanh, lambda x, a: np.where(np.abs(x) <= 1, 1.0, 0.0)),
    "hard_sigmoid": (lj.hard_sigmoid, None),  # against the (n, 1) array only
}


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=str)
@pytest.mark.parametrize("n", LONG)
@pytest.mark.parametrize("name", list(ROW_FNS))
def test_long_1d_input_exact_in_every_mode(name, n, dtype):
    """The row view changes no value: y, the VJP, the JVP (the same diagonal
    map), jvp-of-grad (zero) and vmap over a batch of long rows."""
    f, ref_slope = ROW_FNS[name]
    slope = {"leaky_relu": 0.01, "leaky_relu_neg": -0.5, "leaky_relu_zero": 0.0}
    rng = np.random.default_rng(n)
    x32 = rng.normal(size=n).astype(np.float32) * 4
    x32[:5] = [0.0, -0.0, 6.0, -1.0, 1.0]  # the kinks
    x, ct = jnp.asarray(x32, dtype), jnp.asarray(rng.normal(size=n), dtype)
    xf, ctf = np.float64(np.float32(x)), np.float64(np.float32(ct))
    if name in slope:
        a = float(np.float32(jnp.asarray(slope[name], dtype)))
        d = np.where(xf >= 0, 1.0, a)
    elif ref_slope is not None:
        d = ref_slope(xf, None)
    y, vjp = jax.jit(lambda v: jax.vjp(f, v))(x)
    assert y.shape == x.shape and y.dtype == dtype
    column = jax.vjp(f, x[:, None])[1](ct[:, None])[0][:, 0]  # no row view
    if ref_slope is None and name not in slope:
        expected_dx = np.float32(column)
    else:
        expected_dx = np.float64(np.float32(jnp.asarray(d * ctf, dtype)))
        np.testing.assert_array_equal(np.float32(column), expected_dx)

    def same(actual, expected):
        if name == "hard_sigmoid":  # t / 6: XLA multiplies by 1/6 in some programs
            eps = float(jnp.finfo(dtype).eps)
            np.testing.assert_allclose(np.float32(actual), expected, rtol=eps)
        else:
            np.testing.assert_array_equal(np.float32(actual), expected)

    same(vjp(ct)[0], expected_dx)
    np.testing.assert_array_equal(np.float32(y), np.float32(f(x[:, None])[:, 0]))
    _, tangent = jax.jit(lambda v, t: jax.jvp(f, (v,), (t,)))(x, ct)
    same(tangent, expected_dx)
    g = jax.grad(lambda v: jnp.sum(f(v).astype(jnp.float32)))
    _, hvp = jax.jvp(g, (x,), (ct,))
    np.testing.assert_array_equal(np.float32(hvp), 0.0)
    rows = jnp.stack([x, -x])
    np.testing.assert_array_equal(
        np.float32(jax.vmap(g)(rows)), np.float32(jax.vmap(g)(rows[:, :, None]))[..., 0]
    )


def test_long_1d_prelu_slopes_and_traced_slope():
    """Per-element constant slopes take the row view with x; a traced slope
    (differentiated, or swept under vmap) keeps the 1-D layout. Same values."""
    n = 1 << 16
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=n), jnp.float32)
    ct = jnp.asarray(rng.normal(size=n), jnp.float32)
    a = np.float32(rng.uniform(0, 0.5, size=n))
    _, vjp = jax.vjp(lambda v: lj.prelu(v, a), x)
    np.testing.assert_array_equal(vjp(ct)[0], np.where(x >= 0, ct, a * ct))
    gx, ga = jax.grad(lambda v, s: jnp.vdot(lj.prelu(v, s), ct), argnums=(0, 1))(
        x, jnp.asarray(a)
    )
    np.testing.assert_array_equal(gx, np.where(x >= 0, ct, a * ct))
    np.testing.assert_array_equal(ga, np.where(x >= 0, 0, x * ct))
    sweep = jax.vmap(lambda s: jax.grad(lambda v: jnp.vdot(lj.leaky_relu(v, s), ct))(x))
    out = sweep(jnp.asarray([0.0, 0.2], jnp.float32))
    np.testing.assert_array_equal(out[1], np.where(x >= 0, ct, np.float32(0.2) * ct))


def test_long_1d_backward_unpacks_in_its_row_view_on_cpu():
    """The CPU backward of a long 1-D input keeps its 2-D loop (a conditional
    over two identical branches; see _in_own_shape) and saves n / 8 bytes."""
    if jax.default_backend() != "cpu":
        pytest.skip("the conditional is taken on CPU only")
    n = 1 << 20
    x = jnp.zeros(n, jnp.bfloat16)
    for f in (lj.relu, lambda v: lj.leaky_relu(v, 0.01)):
        _, vjp = jax.vjp(f, x)
        assert sum(leaf.nbytes for leaf in jax.tree.leaves(vjp)) <= n // 8 + 64
        dx = jax.jit(lambda v, t, f=f: jax.vjp(f, v)[1](t)[0])
        assert "conditional(" in dx.lower(x, x).compile().as_text()


SHARDED_LONG_1D = """
import jax, jax.numpy as jnp, numpy as np, leakyjax as lj
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
n = 1 << 16
x = np.random.default_rng(0).normal(size=n).astype(np.float32)
w = np.arange(n, dtype=np.float32)
for types in [(AxisType.Explicit,), (AxisType.Auto,)]:
    mesh = jax.make_mesh((2,), ("d",), axis_types=types)
    xs = jax.device_put(jnp.asarray(x), NamedSharding(mesh, P("d")))
    for f in (lambda v: lj.leaky_relu(v, 0.1), lj.relu, lj.hard_tanh):
        g = jax.jit(jax.grad(lambda v: jnp.vdot(f(v), w)))
        out = g(xs)
        assert out.sharding.spec == P("d"), out.sharding
        np.testing.assert_array_equal(np.asarray(out), np.asarray(g(x)))
        rows = "conditional(" in g.lower(xs).compile().as_text()
        assert rows == (types[0] == AxisType.Auto), types  # explicit: kept 1-D
print("ok")
"""


@pytest.mark.slow
def test_long_1d_input_sharded_over_two_devices():
    """A long 1-D input sharded in its type (explicit mesh axes) keeps its 1-D
    layout; with automatic sharding the row view works too. Same gradients."""
    proc = run_on_host_devices(SHARDED_LONG_1D, 2, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


def test_float16_slope_that_rounds_to_zero_is_zero():
    x = jnp.asarray([-2.0, 3.0], jnp.float16)
    g = jax.vmap(jax.grad(lambda v: lj.leaky_relu(v, 1e-8)))(x)
    assert g.dtype == jnp.float16
    np.testing.assert_array_equal(np.float32(g), [0.0, 1.0])
    np.testing.assert_array_equal(
        np.float32(g),
        np.float32(jax.vmap(jax.grad(lambda v: jax.nn.leaky_relu(v, 1e-8)))(x)),
    )
    np.testing.assert_array_equal(np.float32(lj.leaky_relu(x, 1e-8)), [-0.0, 3.0])


def test_parameter_that_overflows_in_the_cast_raises():
    with pytest.raises(ValueError, match=r"negative_slope=1e\+40 overflows float32"):
        lj.leaky_relu(jnp.ones(3), 1e40)
    with pytest.raises(ValueError, match=r"negative_slope=100000.0 overflows float16"):
        lj.leaky_relu(jnp.ones(3, jnp.float16), 1e5)
    with pytest.raises(ValueError, match="negative_slope overflows float16"):
        lj.prelu(jnp.ones(3, jnp.float16), np.array([0.1, 1e5, 0.1]))
    with pytest.raises(ValueError, match="alpha=1e\\+40 overflows float32"):
        lj.elu(jnp.ones(3), 1e40)
    assert lj.leaky_relu(jnp.ones(3, jnp.float16), 6e4).dtype == jnp.float16


def test_celu_alpha_that_rounds_to_zero_raises():
    with pytest.raises(ValueError, match="alpha=1e-10 rounds to 0 in float16"):
        lj.celu(jnp.ones(3, jnp.float16), 1e-10)
    with pytest.raises(ValueError, match="rounds to 0 in bfloat16"):
        lj.celu(jnp.ones(3, jnp.bfloat16), np.float64(1e-45))
    # fine in float32, and its gradient is finite
    g = jax.grad(lambda v: lj.celu(v, 1e-10).sum())(-jnp.ones(3))
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("bad", [1 + 2j, np.complex64(1), jnp.ones(3, jnp.complex64)])
def test_complex_parameter_raises(bad):
    for f, name in ((lj.leaky_relu, "negative_slope"), (lj.elu, "alpha")):
        with pytest.raises(TypeError, match=f"{name} must be a real"):
            f(jnp.ones(3), bad)
    with pytest.raises(TypeError, match="negative_slope must be a real"):
        jax.jit(lj.prelu)(jnp.ones(3), jnp.ones(3, jnp.complex64))


@pytest.mark.parametrize("bad", [None, "0.1", object(), True])
def test_non_numeric_parameter_raises(bad):
    with pytest.raises(TypeError, match="negative_slope must be a real"):
        lj.leaky_relu(jnp.ones(3), bad)
    with pytest.raises(TypeError, match="alpha must be a real"):
        lj.celu(jnp.ones(3), bad)


@pytest.mark.parametrize("bad", [None, "abc", object(), {"a": 1}])
@pytest.mark.parametrize(
    "f", [lj.relu, lj.leaky_relu, lj.relu6, lj.hard_tanh, lj.elu, lj.selu, lj.rrelu]
)
def test_non_array_input_raises_naming_x(f, bad):
    with pytest.raises(TypeError, match=r"x must be a floating-point array"):
        f(bad)


@pytest.mark.parametrize(
    "bad", [0, 1.5, "key", jnp.ones(2), jnp.ones((2, 2), jnp.uint32), object()]
)
def test_rrelu_key_must_be_a_prng_key(bad):
    with pytest.raises(TypeError, match="rrelu: key must be a PRNG key"):
        lj.rrelu(jnp.ones(3), bad)


def test_rrelu_saves_the_key_not_the_slopes():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 64)), jnp.float32)
    _, vjp = jax.vjp(lambda v: lj.rrelu(v, jax.random.key(0)), x)
    float_leaves = [
        leaf
        for leaf in jax.tree.leaves(vjp)
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating)
    ]
    assert all(leaf.size < x.size for leaf in float_leaves), float_leaves


def test_prelu_old_alpha_keyword_still_accepted():
    x = jnp.asarray([-2.0, 1.0])
    with pytest.warns(DeprecationWarning, match="negative_slope"):
        y = lj.prelu(x, alpha=0.25)
    np.testing.assert_array_equal(y, lj.prelu(x, negative_slope=0.25))
    np.testing.assert_array_equal(y, lj.prelu(x, 0.25))
    with pytest.raises(TypeError, match="both negative_slope and alpha"):
        lj.prelu(x, 0.25, alpha=0.25)
    with pytest.raises(TypeError, match="missing the slope"):
        lj.prelu(x)


def test_per_channel_parameters_under_rank_promotion_raise():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32)
    a = jnp.asarray([0.1, 0.2, 0.3])
    with jax.numpy_rank_promotion("raise"):
        y = lj.prelu(x, a)
        ga = jax.grad(lambda s: lj.prelu(x, s).sum())(a)
        gx = jax.grad(lambda v: lj.prelu(v, a).sum())(x)
        jax.jit(lambda v, s: lj.leaky_relu(v, s))(x, a)
        lj.elu(x, np.asarray([0.5, 1.0, 2.0]))
        lj.celu(x, a)
        jax.grad(lambda s: lj.celu(x, s).sum())(a)
    np.testing.assert_allclose(y, np.where(x >= 0, x, a * x), rtol=1e-6)
    np.testing.assert_allclose(ga, np.minimum(x, 0).sum(0), rtol=1e-6)
    np.testing.assert_allclose(gx, np.where(x >= 0, 1.0, a * np.ones_like(x)))


def test_eager_and_jit_agree_for_every_function():
    x = jnp.asarray(np.random.default_rng(3).normal(0, 4, 33), jnp.float32)
    for f in (
        lj.relu,
        lj.leaky_relu,
        lj.relu6,
        lj.hard_tanh,
        lj.hard_sigmoid,
        lj.elu,
        lj.selu,
        lambda v: lj.celu(v, 0.5),
        lambda v: lj.prelu(v, 0.2),
        lambda v: lj.rrelu(v, jax.random.key(1)),
    ):
        np.testing.assert_array_equal(f(x), jax.jit(f)(x))


def test_celu_second_derivative_at_zero_is_one_over_alpha():
    for zero in (0.0, -0.0):
        for a in (0.5, jnp.float32(0.5)):
            d2 = jax.grad(jax.grad(lambda v, a=a: lj.celu(v, a)))(jnp.float32(zero))
            assert float(d2) == 2.0
