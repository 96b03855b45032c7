"""He initialisers with the leaky gain, and PyTorch's calculate_gain."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import leakyjax as lj
from leakyjax import initializers as li

# torch.nn.init.calculate_gain(name[, param]) -- PyTorch's numbers, hard-coded.
TORCH_GAINS = [
    ("linear", None, 1.0),
    ("conv1d", None, 1.0),
    ("conv2d", None, 1.0),
    ("conv3d", None, 1.0),
    ("conv_transpose1d", None, 1.0),
    ("conv_transpose2d", None, 1.0),
    ("conv_transpose3d", None, 1.0),
    ("sigmoid", None, 1.0),
    ("tanh", None, 1.6666666666666667),
    ("relu", None, 1.4142135623730951),
    ("leaky_relu", None, 1.4141428569978354),
    ("leaky_relu", 0.2, 1.3867504905630728),
    ("leaky_relu", 0, 1.4142135623730951),
    ("leaky_relu", np.float32(0.2), 1.3867504905630728),
    ("selu", None, 0.75),
    ("tanh", 0.3, 1.6666666666666667),  # param ignored, as in torch
]


@pytest.mark.parametrize("name, param, expected", TORCH_GAINS)
def test_calculate_gain_matches_pytorch(name, param, expected):
    assert li.calculate_gain(name, param) == pytest.approx(expected, rel=1e-7)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match=r"unsupported nonlinearity 'tahn'.*'tanh'"):
        li.calculate_gain("tahn")
    with pytest.raises(ValueError, match=r"leakyjax\.gain"):
        li.calculate_gain("elu")
    with pytest.raises(ValueError, match="must be a number"):
        li.calculate_gain("leaky_relu", True)
    with pytest.raises(ValueError, match="must be a number"):
        li.calculate_gain("leaky_relu", "0.2")


def _target_std(a, fan):
    return math.sqrt(2.0 / ((1.0 + a * a) * fan))


INITS = [li.he_normal, li.he_uniform, li.he_truncated_normal]


def draw(init, key, shape, *dtype):
    """``init(key, shape, *dtype)`` as numpy. Eager on purpose: the primitives'
    compiled kernels are cached across initialisers of one shape, which is
    cheaper on CI than compiling one jitted program per initialiser."""
    return np.asarray(init(key, shape, *dtype))


@pytest.mark.parametrize("init", INITS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("a", [0.0, 0.01, 0.2])
def test_dense_std_within_2_percent(init, a):
    w = draw(init(negative_slope=a), jax.random.key(0), (1000, 1000))
    assert w.shape == (1000, 1000) and w.dtype == jnp.float32
    std = float(np.std(w))
    assert std == pytest.approx(_target_std(a, 1000), rel=0.02)
    assert abs(float(np.mean(w))) < 0.02 * std


@pytest.mark.parametrize("init", INITS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_conv_kernel_fan(init, mode):
    # (kh, kw, C_in, C_out): fan_in = 3*3*C_in, fan_out = 3*3*C_out
    shape = (3, 3, 64, 128)
    fan = 9 * 64 if mode == "fan_in" else 9 * 128
    w = draw(init(negative_slope=0.2, mode=mode), jax.random.key(1), shape)
    assert float(np.std(w)) == pytest.approx(_target_std(0.2, fan), rel=0.02)


def test_distribution_shapes():
    key = jax.random.key(2)
    u = draw(li.he_uniform(negative_slope=0.2), key, (200, 300))
    bound = math.sqrt(3) * _target_std(0.2, 200)
    assert float(np.max(np.abs(u))) <= bound
    assert float(np.max(np.abs(u))) > 0.99 * bound
    t = draw(li.he_truncated_normal(), key, (200, 300))
    # truncated at 2 std of the underlying normal (std / 0.8796)
    assert float(np.max(np.abs(t))) <= 2 * _target_std(0, 200) / 0.87962566
    # negative_slope=0 truncated normal is exactly jax's he_normal
    np.testing.assert_array_equal(
        t, draw(jax.nn.initializers.he_normal(), key, (200, 300))
    )
    n = draw(li.he_normal(), key, (200, 300))
    assert float(np.max(np.abs(n))) > 3 * _target_std(0, 200)  # untruncated


def test_aliases_dtype_and_axes():
    assert li.kaiming_normal is li.he_normal
    assert li.kaiming_uniform is li.he_uniform
    assert li.kaiming_truncated_normal is li.he_truncated_normal
    assert lj.initializers.he_normal is li.he_normal
    key = jax.random.key(3)
    w = li.he_normal(dtype=jnp.bfloat16)(key, (64, 32))
    assert w.dtype == jnp.bfloat16
    assert li.he_normal()(key, (64, 32), jnp.float16).dtype == jnp.float16
    # explicit axes: (C_out, C_in, kh, kw) as in PyTorch
    w = draw(li.he_normal(in_axis=1, out_axis=0), key, (128, 64, 3, 3))
    assert float(np.std(w)) == pytest.approx(_target_std(0, 9 * 64), rel=0.02)
    with pytest.raises(TypeError):
        li.he_normal(0.2)  # keyword-only


def test_errors():
    with pytest.raises(ValueError, match="mode must be one of"):
        li.he_normal(mode="fan_inn")
    with pytest.raises(ValueError, match="negative_slope must be finite"):
        li.he_uniform(negative_slope=float("nan"))
    with pytest.raises(ValueError, match="negative_slope must be a number"):
        li.he_uniform(negative_slope="0.2x")
    with pytest.raises(ValueError, match="distribution must be one of"):
        li.for_activation("relu", distribution="gaussian")
    with pytest.raises(ValueError, match="Did you mean 'leaky_relu'"):
        li.for_activation("leaky_rel")


@pytest.mark.parametrize("spec", ["relu", "leaky_relu:0.2", "prelu", "tanh", "selu"])
def test_for_activation_uses_the_gain(spec):
    w = draw(li.for_activation(spec), jax.random.key(4), (1000, 500))
    assert float(np.std(w)) == pytest.approx(lj.gain(spec) / math.sqrt(1000), rel=0.02)


def test_for_activation_matches_he_with_slope():
    key = jax.random.key(5)
    for dist, he in [("normal", li.he_normal), ("uniform", li.he_uniform)]:
        a = draw(li.for_activation("leaky_relu:0.2", distribution=dist), key, (30, 20))
        b = draw(he(negative_slope=0.2), key, (30, 20))
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_kernel_init_in_linen_and_nnx():
    pytest.importorskip("flax")
    import flax.linen as nn
    from flax import nnx

    init = li.he_normal(negative_slope=0.2)
    params = nn.Dense(1000, kernel_init=init).init(
        jax.random.key(0), jnp.ones((1, 1000))
    )["params"]
    std = float(jnp.std(params["kernel"]))
    assert std == pytest.approx(_target_std(0.2, 1000), rel=0.02)
    lin = nnx.Linear(1000, 1000, kernel_init=init, rngs=nnx.Rngs(0))
    assert float(jnp.std(lin.kernel[...])) == pytest.approx(std, rel=0.02)
    conv = nnx.Conv(
        64, 128, kernel_size=(3, 3), kernel_init=li.he_uniform(), rngs=nnx.Rngs(0)
    )
    std = float(jnp.std(conv.kernel[...]))
    assert std == pytest.approx(_target_std(0.0, 9 * 64), rel=0.02)


@pytest.mark.parametrize("param", [float("nan"), float("inf"), -math.inf, np.nan])
def test_calculate_gain_rejects_non_finite_like_gain(param):
    with pytest.raises(ValueError, match=r"^calculate_gain: param .* must be finite"):
        li.calculate_gain("leaky_relu", param)
    with pytest.raises(ValueError, match="must be finite"):
        lj.gain(f"leaky_relu:{param}")


_INITS = [
    ("he_normal", lambda **k: li.he_normal(**k)),
    ("he_uniform", lambda **k: li.he_uniform(**k)),
    ("he_truncated_normal", lambda **k: li.he_truncated_normal(**k)),
    ("for_activation", lambda **k: li.for_activation("leaky_relu:0.2", **k)),
]


@pytest.mark.parametrize("name, make", _INITS)
@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (2, 0, 4, 5)])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
def test_empty_weight_is_empty_not_a_zero_division(name, make, shape, mode):
    w = make(mode=mode)(jax.random.key(0), shape)
    assert w.shape == shape and w.dtype == jnp.float32
    w = make(mode=mode)(jax.random.key(0), shape, jnp.bfloat16)
    assert w.shape == shape and w.dtype == jnp.bfloat16


@pytest.mark.parametrize("name, make", _INITS)
@pytest.mark.parametrize(
    "kw, shape, words",
    [
        (
            {"in_axis": 5},
            (4, 3),
            "in_axis=5 is out of range for a weight of shape (4, 3)",
        ),
        ({"out_axis": -3}, (4, 3), "out_axis=-3 is out of range"),
        ({"in_axis": (0, 7)}, (4, 3), "in_axis=(0, 7) is out of range"),
        ({"batch_axis": (2,)}, (4, 3), "batch_axis=(2,) is out of range"),
        ({}, (5,), "in_axis=-2 is out of range for a weight of shape (5,) (1 axis)"),
        ({}, (), "a weight of shape () has no input or output axis"),
    ],
)
def test_axis_out_of_range_names_the_initializer_and_argument(
    name, make, kw, shape, words
):
    with pytest.raises(ValueError, match=f"^{name}: ") as e:
        make(**kw)(jax.random.key(0), shape)
    assert words in str(e.value)


def test_checked_initializer_draws_what_jax_draws():
    key = jax.random.key(3)
    for shape, kw in [
        ((64, 32), {}),
        ((3, 3, 8, 16), {}),
        ((16, 8), {"in_axis": -1, "out_axis": -2}),
    ]:
        ours = li.he_normal(negative_slope=0.2, **kw)(key, shape)
        ref = jax.nn.initializers.variance_scaling(
            2.0 / (1 + 0.2**2), "fan_in", "normal", **kw
        )(key, shape)
        np.testing.assert_array_equal(ours, ref)
