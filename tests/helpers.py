"""Shared test helpers: independent numpy references and tolerances."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

FLOAT_DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]

# Relative / absolute tolerances against a float64 reference rounded to dtype.
TOL = {
    jnp.dtype(jnp.float64): dict(rtol=1e-13, atol=1e-300),
    jnp.dtype(jnp.float32): dict(rtol=3e-6, atol=1e-38),
    jnp.dtype(jnp.float16): dict(rtol=2e-3, atol=1e-7),
    jnp.dtype(jnp.bfloat16): dict(rtol=1.6e-2, atol=1e-38),
}


def run_on_host_devices(
    script: str, devices: int, timeout: float
) -> subprocess.CompletedProcess:
    """Runs ``script`` in a fresh Python on ``devices`` forced CPU devices."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}"
    )
    env["JAX_PLATFORMS"] = "cpu"
    return subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def tol(dtype) -> dict:
    return TOL[jnp.dtype(dtype)]


def x64():
    """Context manager enabling float64 (jax >= 0.6 and older spellings)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # pragma: no cover

    return enable_x64()  # pragma: no cover


def cast_param(a, dtype) -> float:
    """A parameter rounded to ``dtype`` as the library casts it, as float64."""
    return np.asarray(np.asarray(a, np.float64).astype(dtype), np.float64)


# --- references in float64: value and derivative in x ----------------------- #
def ref_relu(x):
    return np.maximum(x, 0.0), np.where(x > 0, 1.0, 0.0)


def ref_leaky(x, a):
    with np.errstate(invalid="ignore"):  # 0 * -inf = nan, as in jax.nn
        return np.where(x >= 0, x, a * x), np.where(x >= 0, 1.0, a)


def ref_relu6(x):
    """jax.nn.relu6 / torch ReLU6: derivative 0 at both kinks (0 and 6)."""
    return np.minimum(np.maximum(x, 0.0), 6.0), np.where((x > 0) & (x < 6), 1.0, 0.0)


def ref_hard_tanh(x):
    """jax.nn.hard_tanh: derivative 1 on [-1, 1] (torch Hardtanh: 0 at +-1)."""
    with np.errstate(invalid="ignore"):
        inside = ~((x > 1) | (x < -1))
    return np.clip(x, -1.0, 1.0), np.where(inside, 1.0, 0.0)


def ref_hard_sigmoid(x, dtype=np.float64):
    """jax.nn.hard_sigmoid = relu6(x + 3) / 6; the kink test is on x + 3 rounded
    to ``dtype`` (as jax.nn computes it)."""
    u = np.asarray(np.asarray(x + 3.0).astype(dtype), np.float64)
    return np.minimum(np.maximum(x + 3.0, 0.0), 6.0) / 6.0, np.where(
        (u > 0) & (u < 6), 1.0 / 6.0, 0.0
    )


def ref_elu(x, a):
    with np.errstate(over="ignore"):
        e = np.expm1(np.minimum(x, 0.0))
        return np.where(x > 0, x, a * e), np.where(
            x > 0, 1.0, a * np.exp(np.minimum(x, 0.0))
        )


def ref_celu(x, a):
    xm = np.minimum(x, 0.0) / a
    return np.where(x > 0, x, a * np.expm1(xm)), np.where(x > 0, 1.0, np.exp(xm))


def ref_selu(x):
    v, d = ref_elu(x, SELU_ALPHA)
    return SELU_SCALE * v, SELU_SCALE * d


def special_values(dtype) -> np.ndarray:
    """+-0, +-inf, nan, the smallest normal, large and ordinary values."""
    fi = jnp.finfo(dtype)
    tiny, big = float(fi.tiny), float(fi.max) / 4
    return np.array(
        [
            0.0,
            -0.0,
            np.inf,
            -np.inf,
            np.nan,
            tiny,
            -tiny,
            big,
            -big,
            1.0,
            -1.0,
            0.5,
            -0.5,
            3.0,
            -3.0,
            1e-3,
            -1e-3,
        ],
        dtype=np.float64,
    )


# --- references of every registry entry, by name ----------------------------- #
# ref(x, **params) -> (value, derivative in x), float64, params named as in the
# activation table. tests/test_table.py checks every entry against these; a new
# entry needs its formula here.
def _erf(x):
    import math

    return np.vectorize(math.erf, otypes=[np.float64])(x)


def ref_gelu(x, approximate=True):
    if approximate:
        c = np.sqrt(2.0 / np.pi)
        with np.errstate(over="ignore", invalid="ignore"):
            u = c * (x + 0.044715 * x**3)
            t = np.tanh(u)
            d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x**2)
        return 0.5 * x * (1 + t), d
    cdf = 0.5 * (1 + _erf(x / np.sqrt(2.0)))
    with np.errstate(over="ignore", invalid="ignore"):
        pdf = np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
        return x * cdf, cdf + x * pdf


def ref_sigmoid(x):
    with np.errstate(over="ignore"):
        s = 1.0 / (1.0 + np.exp(-x))
    return s, s * (1 - s)


def ref_softplus(x):
    with np.errstate(over="ignore", invalid="ignore"):
        return np.logaddexp(x, 0.0), ref_sigmoid(x)[0]


def rrelu_eval_slope(lower=None, upper=None, convention="pytorch"):
    """The evaluation slope, written independently of the library."""
    if convention == "pytorch":
        lo, hi = 1 / 8 if lower is None else lower, 1 / 3 if upper is None else upper
        return (lo + hi) / 2
    lo, hi = 3.0 if lower is None else lower, 8.0 if upper is None else upper
    return 2 / (lo + hi)


REFERENCES = {
    "relu": ref_relu,
    "leaky_relu": lambda x, negative_slope: ref_leaky(x, negative_slope),
    "prelu": lambda x, negative_slope: ref_leaky(x, negative_slope),
    "rrelu": lambda x, lower, upper, convention: ref_leaky(
        x, rrelu_eval_slope(lower, upper, convention)
    ),
    "relu6": ref_relu6,
    "hard_tanh": ref_hard_tanh,
    "hard_sigmoid": lambda x: ref_hard_sigmoid(x),
    "elu": lambda x, alpha: ref_elu(x, alpha),
    "celu": lambda x, alpha: ref_celu(x, alpha),
    "selu": ref_selu,
    "sigmoid": ref_sigmoid,
    "tanh": lambda x: (np.tanh(x), 1 - np.tanh(x) ** 2),
    "gelu": ref_gelu,
    "silu": lambda x: (
        x * ref_sigmoid(x)[0],
        ref_sigmoid(x)[0] * (1 + x * (1 - ref_sigmoid(x)[0])),
    ),
    "softplus": ref_softplus,
    "identity": lambda x: (np.asarray(x, np.float64), np.ones_like(x, np.float64)),
}


def ref_rrelu_slopes(key, shape, lo=1 / 8, hi=1 / 3) -> np.ndarray:
    """rrelu's slopes in numpy from jax's random bits of ``key``: the mapping of
    ``jax.random.uniform``, ``lo + u * (hi - lo)``, each step rounded to float32."""
    bits = np.asarray(jax.random.bits(key, shape, jnp.uint32)).astype(np.uint32)
    u = ((bits >> np.uint32(9)) | np.uint32(0x3F800000)).view(np.float32) - 1
    lo, hi = np.float32(lo), np.float32(hi)
    return np.maximum(lo, (u * (hi - lo)).astype(np.float32) + lo)
