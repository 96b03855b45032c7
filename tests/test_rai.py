"""RAI (Lu et al. 2020): the distribution of leakyjax.initializers.rai."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import leakyjax.initializers as li


def _positive_part(shape, key=None, **kw):
    """scale=0 leaves only the asymmetric entries (same key: same positions)."""
    key = jax.random.key(0) if key is None else key
    return np.asarray(li.rai(scale=0.0, **kw)(key, shape), np.float64)


def test_one_positive_entry_per_unit_beta21():
    w0 = _positive_part((7, 20000))
    nonzero = w0 != 0
    np.testing.assert_array_equal(nonzero.sum(0), 1)
    vals = w0[nonzero]
    assert np.all((vals > 0) & (vals <= 1))
    # Beta(2, 1): CDF x^2
    assert stats.kstest(vals, lambda x: np.clip(x, 0, 1) ** 2).pvalue > 1e-3
    np.testing.assert_allclose(vals.mean(), 2 / 3, atol=0.01)
    np.testing.assert_allclose(np.mean(vals**2), 0.5, atol=0.01)
    # the index is uniform over the fan-in
    counts = nonzero.sum(1)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_symmetric_part_moments_and_normality():
    shape, scale = (64, 4000), 0.6007
    key = jax.random.key(3)
    w = np.asarray(li.rai(scale=scale)(key, shape), np.float64)
    w0 = _positive_part(shape, key)
    mask = w0 != 0
    np.testing.assert_array_equal(w[mask], w0[mask])  # positions independent of scale
    sym = w[~mask] * np.sqrt(64) / scale
    assert abs(sym.mean()) < 0.01
    np.testing.assert_allclose(sym.std(), 1.0, rtol=0.01)
    assert stats.kstest(sym[:20000], "norm").pvalue > 1e-3


def test_defaults_are_the_papers():
    assert li.RAI_SCALE == 0.6007 and li.RAI_BETA == (2.0, 1.0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_dtypes(dtype):
    w = li.rai()(jax.random.key(0), (16, 8), dtype)
    assert w.dtype == dtype and w.shape == (16, 8)
    assert bool(jnp.all(jnp.isfinite(w)))
    assert li.rai(dtype=dtype)(jax.random.key(0), (4, 3)).dtype == dtype
    assert li.rai_bias(16)(jax.random.key(0), (8,), dtype).dtype == dtype


def test_float64():
    with jax.enable_x64(True):
        w = li.rai()(jax.random.key(0), (16, 8), jnp.float64)
        assert w.dtype == jnp.float64


def test_conv_and_equinox_layouts():
    w0 = _positive_part((3, 3, 4, 8))  # flax Conv: fan_in 36 per output channel
    np.testing.assert_array_equal((w0 != 0).reshape(36, 8).sum(0), 1)
    e0 = _positive_part((5, 12), in_axis=-1, out_axis=-2)  # equinox (out, in)
    np.testing.assert_array_equal((e0 != 0).sum(1), 1)
    w = np.asarray(li.rai()(jax.random.key(1), (3, 3, 4, 500)))
    np.testing.assert_allclose(np.median(np.abs(w)) * 6, 0.6007 * 0.674, rtol=0.05)


def test_rai_bias_std():
    b = np.asarray(li.rai_bias(25)(jax.random.key(0), (50000,)))
    np.testing.assert_allclose(b.std(), 0.6007 / 5, rtol=0.02)
    assert abs(b.mean()) < 0.002


def test_flax_linen_nnx_usage():
    nn = pytest.importorskip("flax.linen")
    nnx = pytest.importorskip("flax.nnx")
    dense = nn.Dense(6, kernel_init=li.rai(), bias_init=li.rai_bias(4))
    params = dense.init(jax.random.key(0), jnp.ones((1, 4)))["params"]
    assert params["kernel"].shape == (4, 6) and params["bias"].shape == (6,)
    lin = nnx.Linear(4, 6, kernel_init=li.rai(), rngs=nnx.Rngs(0))
    assert lin.kernel[...].shape == (4, 6)


def test_jit_and_errors():
    w = jax.jit(li.rai(), static_argnums=1)(jax.random.key(0), (5, 3))
    assert w.shape == (5, 3)
    with pytest.raises(ValueError, match="scale"):
        li.rai(scale=-1.0)
    with pytest.raises(ValueError, match="beta"):
        li.rai(beta=(0.0, 1.0))
    with pytest.raises(ValueError, match="2 axes"):
        li.rai()(jax.random.key(0), (5,))
    with pytest.raises(ValueError, match="out_axis"):
        li.rai(out_axis=3)(jax.random.key(0), (5, 3))
    with pytest.raises(TypeError, match="float"):
        li.rai()(jax.random.key(0), (5, 3), jnp.int32)
    with pytest.raises(ValueError, match="fan_in"):
        li.rai_bias(0)


def test_study_rai_quick(tmp_path):
    pytest.importorskip("matplotlib")
    from leakyjax._src.cli import main
    from leakyjax._src.study import rai

    assert (
        main(["study", "rai", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    )
    import json

    res = json.loads((tmp_path / "rai.json").read_text())
    assert (tmp_path / "rai.png").exists()
    cells = {(r["scheme"], r["width"], r["depth"]): r for r in res["born_dead"]}
    # RAI lowers the probability of being born dead at every width and depth
    for (s, w, d), r in cells.items():
        if s == "he":
            assert r["p_constant"] >= cells[("rai", w, d)]["p_constant"]
    assert "| N |" in rai.render_markdown(res)
