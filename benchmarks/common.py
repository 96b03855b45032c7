"""Shared pieces of the benchmarks (also used by the memory test)."""

from __future__ import annotations

import functools
import os
import platform
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class StepMemory(NamedTuple):
    """Compiled memory of a train step, in bytes (deterministic per backend)."""

    temp: int
    argument: int
    output: int
    compiled: object  # the jax Compiled object (for as_text() / timing)


def mlp_train_step(
    act: Callable,
    dtype=jnp.float32,
    *,
    batch: int = 256,
    width: int = 512,
    depth: int = 8,
    classes: int = 10,
    slope_init: float | None = None,
):
    """An MLP train step: ``depth`` hidden Dense+act layers, softmax CE, SGD.

    With ``slope_init``, every hidden layer also gets a learnable float32 slope
    vector of shape ``(width,)`` and the activation is called as ``act(h, slope)``
    (a PReLU trained with the weights). Params are donated. Returns
    ``(step, params, x, y)`` with ``step`` jitted.
    """
    keys = jax.random.split(jax.random.key(0), depth + 1)
    scale = 1.0 / np.sqrt(width)

    def slopes():  # a new buffer per layer: params are donated
        if slope_init is None:
            return ()
        return (jnp.full((width,), slope_init, jnp.float32),)

    params = [
        (
            jax.random.normal(k, (width, width), dtype) * scale,
            jnp.zeros((width,), dtype),
            *slopes(),
        )
        for k in keys[:depth]
    ]
    params.append(
        (
            jax.random.normal(keys[-1], (width, classes), dtype) * scale,
            jnp.zeros((classes,), dtype),
        )
    )
    x = jax.random.normal(jax.random.key(1), (batch, width), dtype)
    y = jax.random.randint(jax.random.key(2), (batch,), 0, classes)

    def loss(p, x, y):
        h = x
        for w, b, *slope in p[:-1]:
            h = act(h @ w + b, *slope)
        w, b = p[-1]
        logits = (h @ w + b).astype(jnp.float32)
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    @functools.partial(jax.jit, donate_argnums=0)
    def step(p, x, y):
        g = jax.grad(loss)(p, x, y)
        return jax.tree.map(lambda a, b: a - jnp.asarray(0.01, a.dtype) * b, p, g)

    return step, params, x, y


def train_step_memory(act: Callable, dtype=jnp.float32, **kw) -> StepMemory:
    """Compiles :func:`mlp_train_step` and reads ``memory_analysis()``."""
    step, params, x, y = mlp_train_step(act, dtype, **kw)
    compiled = step.lower(params, x, y).compile()
    m = compiled.memory_analysis()
    return StepMemory(
        int(m.temp_size_in_bytes),
        int(m.argument_size_in_bytes),
        int(m.output_size_in_bytes),
        compiled,
    )


def environment() -> dict:
    """Device and versions, recorded with every benchmark result."""
    dev = jax.devices()[0]
    return {
        "backend": jax.default_backend(),
        "device": getattr(dev, "device_kind", str(dev)),
        "device_count": jax.device_count(),
        "jax": jax.__version__,
        "jaxlib": getattr(jax.lib, "__version__", None)
        or __import__("jaxlib").__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
    }


def cpu_model() -> str:
    """The host CPU's model name (from /proc/cpuinfo on Linux), or ''."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def compiled_memory(compiled) -> StepMemory:
    """``memory_analysis()`` of an already compiled jax function."""
    m = compiled.memory_analysis()
    return StepMemory(
        int(m.temp_size_in_bytes),
        int(m.argument_size_in_bytes),
        int(m.output_size_in_bytes),
        compiled,
    )


def prelu_mlp_train_step(
    dtype=jnp.float32,
    *,
    batch: int = 256,
    width: int = 512,
    depth: int = 8,
    classes: int = 10,
    alpha_init: float = 0.25,
    prelu: Callable | None = None,
):
    """:func:`mlp_train_step` with a learnable per-channel PReLU slope per layer.

    Each hidden layer gets a float32 slope vector of shape ``(width,)`` (He et
    al.'s 0.25 init), trained with the weights, so the slope is traced and its
    gradient is computed -- the PReLU of a real model, not a frozen slope.
    ``prelu(x, alpha)`` defaults to :func:`leakyjax.prelu`. Params are donated.
    Returns ``(step, params, x, y)`` with ``step`` jitted.
    """
    if prelu is None:
        import leakyjax

        prelu = leakyjax.prelu
    return mlp_train_step(
        prelu,
        dtype,
        batch=batch,
        width=width,
        depth=depth,
        classes=classes,
        slope_init=alpha_init,
    )


def exit_status(checks: list[dict]) -> int:
    """1 if a judged check failed that is not a documented miss, else 0."""
    bad = [
        c
        for c in checks
        if c.get("judged", True) and not c["passed"] and not c.get("expected")
    ]
    return 1 if bad else 0


def report_checks(checks: list[dict], fmt: Callable[[dict], str] | None = None) -> int:
    """Prints one line per check and returns the process exit status.

    ``[PASS]``; ``[expected]`` for a miss the benchmarks README documents (the
    check carries ``"expected": reason``); ``[not judged]`` for a check that
    this run cannot judge (``"judged": False``: timing on a CPU or in
    ``--quick`` mode); ``[FAIL]`` otherwise. Returns 1 if any check failed, so
    ``make bench-quick`` fails on a real regression.
    """
    failed = 0
    for c in checks:
        text = fmt(c) if fmt is not None else c["check"]
        if not c.get("judged", True):
            status = "not judged"
        elif c["passed"]:
            status = "PASS"
        elif c.get("expected"):
            status = "expected"
            text += f" (documented: {c['expected']})"
        else:
            status = "FAIL"
            failed += 1
        print(f"[{status}] {text}")
    if failed:
        print(f"{failed} check(s) failed")
    return 1 if failed else 0
