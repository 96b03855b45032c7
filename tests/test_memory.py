"""Output-only residuals: a train step needs no more memory than with relu/identity.

Compiled memory is deterministic for a given backend and jax version, so it is
asserted here (speed is checked in benchmarks/, not in tests).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import leakyjax as lj
from benchmarks.common import train_step_memory

SHAPE = dict(batch=256, width=512, depth=8)


@pytest.fixture(scope="module")
def temps():
    acts = {
        "identity": lambda h: h,
        "jax.nn.relu": jax.nn.relu,
        "leakyjax.leaky_relu": lj.leaky_relu,
        "leakyjax.elu": lj.elu,
        "leakyjax.selu": lj.selu,
        "leakyjax.celu": lambda h: lj.celu(h, 0.5),
        "leakyjax.relu": lj.relu,
    }
    return {
        dt: {k: train_step_memory(f, dt, **SHAPE).temp for k, f in acts.items()}
        for dt in (jnp.float32, jnp.bfloat16)
    }


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize(
    "name",
    [
        "leakyjax.leaky_relu",
        "leakyjax.elu",
        "leakyjax.selu",
        "leakyjax.celu",
        "leakyjax.relu",
    ],
)
def test_train_step_temp_no_larger_than_relu(temps, dtype, name):
    t = temps[dtype]
    assert t[name] <= t["jax.nn.relu"], t


@pytest.mark.parametrize(
    "name", ["leakyjax.leaky_relu", "leakyjax.elu", "leakyjax.relu"]
)
def test_train_step_temp_no_larger_than_identity_f32(temps, name):
    t = temps[jnp.float32]
    assert t[name] <= t["identity"], t


def test_piecewise_linear_residual_is_one_bit_per_element():
    """Reverse mode saves the packed sign/piece bits: ceil(C/8) bytes per row."""
    x = jnp.linspace(-7.0, 7.0, 4 * 40).reshape(4, 40)
    fns = (
        lj.relu,
        lj.leaky_relu,
        lambda v: lj.leaky_relu(v, -0.5),
        lj.relu6,
        lj.hard_tanh,
        lj.hard_sigmoid,
        lambda v: lj.prelu(v, 0.25),
        lambda v: lj.rrelu(v, jax.random.key(0)),
    )
    for f in fns:
        _, f_vjp = jax.vjp(f, x)
        big = [
            leaf
            for leaf in jax.tree.leaves(f_vjp)
            if hasattr(leaf, "nbytes") and leaf.size > 8
        ]
        assert [(b.shape, b.dtype) for b in big] == [((4, 5), jnp.uint8)], f


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
def test_learnable_prelu_no_worse_than_flax_formula(dtype):
    """A learnable slope must keep x; it must not keep more than flax's PReLU."""
    from benchmarks.common import prelu_mlp_train_step

    def temp(prelu):
        step, p, x, y = prelu_mlp_train_step(dtype, prelu=prelu, **SHAPE)
        return step.lower(p, x, y).compile().memory_analysis().temp_size_in_bytes

    flax_formula = lambda x, a: jnp.where(x >= 0, x, a.astype(x.dtype) * x)
    assert temp(lj.prelu) <= temp(flax_formula)
