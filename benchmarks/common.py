"""Shared pieces of the benchmarks (also used by the memory test)."""

from __future__ import annotations

import functools
import itertools
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

#: Where a benchmark writes its JSON without ``--out``: a scratch folder. The committed
#: files under benchmarks/results/ are made by ``make results-slow`` (tools/results.py).
RESULTS_DIR = Path(__file__).resolve().parents[1] / "runs" / "benchmarks"


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
    # A Python float: a float64 numpy scale would promote bf16 weights to f32.
    scale = float(1.0 / np.sqrt(width))

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
    assert_param_dtype(params, dtype, slope_init is not None)

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
    """Compiles `mlp_train_step` and reads ``memory_analysis()``."""
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
    """`mlp_train_step` with a learnable per-channel PReLU slope per layer.

    Each hidden layer gets a float32 slope vector of shape ``(width,)`` (He et
    al.'s 0.25 init), trained with the weights, so the slope is traced and its
    gradient is computed -- the PReLU of a real model, not a frozen slope.
    ``prelu(x, alpha)`` defaults to [`leakyjax.prelu`][]. Params are donated.
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


def assert_param_dtype(params, dtype, allow_f32_slopes: bool = False) -> None:
    """Every weight really has ``dtype`` (float32 PReLU slopes excepted)."""
    for leaf in jax.tree.leaves(params):
        if not hasattr(leaf, "dtype") or not jnp.issubdtype(leaf.dtype, jnp.floating):
            continue
        if allow_f32_slopes and leaf.dtype == jnp.float32 and leaf.ndim <= 1:
            continue
        if leaf.dtype != jnp.dtype(dtype):
            raise AssertionError(
                f"a parameter of shape {leaf.shape} is {leaf.dtype}, not {dtype}"
            )


# --------------------------------------------------------------------------- #
# The model zoo: train steps whose compiled memory the tests assert
# --------------------------------------------------------------------------- #
class Act(NamedTuple):
    """An activation as the zoo applies it.

    ``fn(h)``, or ``fn(h, slope)`` with ``learnable``: a float32 scalar slope
    per layer (init 0.25), trained with the weights (a PReLU).
    """

    label: str
    fn: Callable
    learnable: bool = False


class ZooModel(NamedTuple):
    """``build(act, dtype, **shape) -> (step, params, x, y, act_elements)``.

    ``act_elements``: the number of activation outputs of one step (the
    one-bit bound is ``act_elements / 8`` bytes above the identity's memory).
    """

    name: str
    build: Callable
    test_shape: dict
    bench_shape: dict
    supports_learnable: bool = True
    #: > 1: a data-parallel step, the batch sharded over that many devices
    #: (memory is per device).
    devices: int = 1


def _normal(key, shape, dtype, fan_in):
    return jax.random.normal(key, shape, dtype) * jnp.asarray(
        1.0 / math.sqrt(fan_in), dtype
    )


def _slope():
    return jnp.asarray(0.25, jnp.float32)


def _apply(act: Act, h, layer: dict):
    return act.fn(h, layer["slope"]) if act.learnable else act.fn(h)


def _ce(logits, y):
    logp = jax.nn.log_softmax(logits.astype(jnp.float32))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def _sgd_step(loss, donate=True):
    def step(p, x, y):
        g = jax.grad(loss)(p, x, y)
        return jax.tree.map(lambda a, b: a - jnp.asarray(0.01, a.dtype) * b, p, g)

    return jax.jit(step, donate_argnums=0 if donate else ())


def _dense_layers(key, sizes, dtype, learnable):
    keys = jax.random.split(key, len(sizes) - 1)
    layers = []
    for k, (i, o) in zip(keys, itertools.pairwise(sizes)):
        layer = {"w": _normal(k, (i, o), dtype, i), "b": jnp.zeros((o,), dtype)}
        if learnable:
            layer["slope"] = _slope()
        layers.append(layer)
    return layers


def _mlp_data(batch, width, classes, dtype):
    x = jax.random.normal(jax.random.key(1), (batch, width), dtype)
    y = jax.random.randint(jax.random.key(2), (batch,), 0, classes)
    return x, y


def build_mlp(act, dtype, *, batch, width, depth, classes=10, mode="unrolled"):
    """MLP: ``depth`` Dense+act layers and a Dense head; ``mode``: "unrolled",
    "scan" (stacked layers under lax.scan) or "remat" (jax.checkpoint per layer)."""
    hidden = _dense_layers(
        jax.random.key(0), [width] * (depth + 1), dtype, act.learnable
    )
    head = _dense_layers(jax.random.key(3), [width, classes], dtype, False)[0]
    if mode == "scan":
        hidden = jax.tree.map(lambda *a: jnp.stack(a), *hidden)
    params = {"hidden": hidden, "head": head}
    x, y = _mlp_data(batch, width, classes, dtype)

    def layer_fn(h, layer):
        return _apply(act, h @ layer["w"] + layer["b"], layer)

    def loss(p, x, y):
        h = x
        if mode == "scan":
            h, _ = lax.scan(lambda c, layer: (layer_fn(c, layer), None), h, p["hidden"])
        else:
            f = jax.checkpoint(layer_fn) if mode == "remat" else layer_fn
            for layer in p["hidden"]:
                h = f(h, layer)
        return _ce(h @ p["head"]["w"] + p["head"]["b"], y)

    return _sgd_step(loss), params, x, y, depth * batch * width


def _conv(x, w):
    return lax.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def _batchnorm(x, scale, bias, eps=1e-5):
    # Training-mode BatchNorm over (N, H, W), statistics in float32.
    xf = x.astype(jnp.float32)
    mean = jnp.mean(xf, axis=(0, 1, 2))
    var = jnp.mean(jnp.square(xf - mean), axis=(0, 1, 2))
    out = (xf - mean) * lax.rsqrt(var + eps) * scale.astype(jnp.float32)
    return (out + bias.astype(jnp.float32)).astype(x.dtype)


def build_resnet(act, dtype, *, batch, size, channels, blocks, classes=10):
    """ResNet-style CNN, NHWC: stem conv, then ``blocks`` x
    (conv-BN-act-conv-BN + skip, act), global average pool, Dense head."""
    keys = iter(jax.random.split(jax.random.key(0), 2 * blocks + 2))
    c = channels

    def bn():
        return {"scale": jnp.ones((c,), dtype), "bias": jnp.zeros((c,), dtype)}

    params = {"stem": _normal(next(keys), (3, 3, 3, c), dtype, 27), "blocks": []}
    for _ in range(blocks):
        blk = {
            "w1": _normal(next(keys), (3, 3, c, c), dtype, 9 * c),
            "bn1": bn(),
            "w2": _normal(next(keys), (3, 3, c, c), dtype, 9 * c),
            "bn2": bn(),
        }
        if act.learnable:
            blk["slope1"], blk["slope2"] = _slope(), _slope()
        params["blocks"].append(blk)
    params["head"] = {
        "w": _normal(next(keys), (c, classes), dtype, c),
        "b": jnp.zeros((classes,), dtype),
    }
    x = jax.random.normal(jax.random.key(1), (batch, size, size, 3), dtype)
    y = jax.random.randint(jax.random.key(2), (batch,), 0, classes)

    def a(h, blk, i):
        return act.fn(h, blk[f"slope{i}"]) if act.learnable else act.fn(h)

    def loss(p, x, y):
        h = _conv(x, p["stem"])
        for blk in p["blocks"]:
            r = a(_batchnorm(_conv(h, blk["w1"]), **blk["bn1"]), blk, 1)
            r = _batchnorm(_conv(r, blk["w2"]), **blk["bn2"])
            h = a(h + r, blk, 2)
        pooled = jnp.mean(h, axis=(1, 2))
        return _ce(pooled @ p["head"]["w"] + p["head"]["b"], y)

    return _sgd_step(loss), params, x, y, 2 * blocks * batch * size * size * c


def _layernorm(x, scale, bias, eps=1e-6):
    xf = x.astype(jnp.float32)
    mean = jnp.mean(xf, -1, keepdims=True)
    var = jnp.mean(jnp.square(xf - mean), -1, keepdims=True)
    out = (xf - mean) * lax.rsqrt(var + eps)
    return (out * scale.astype(jnp.float32) + bias.astype(jnp.float32)).astype(x.dtype)


def build_transformer(act, dtype, *, batch, tokens, d, ff, blocks, classes=10):
    """Pre-LayerNorm transformer MLP blocks: ``h + W2 act(W1 LN(h) + b1) + b2``,
    ``blocks`` times, on (batch, tokens, d); mean-pooled Dense head."""
    keys = iter(jax.random.split(jax.random.key(0), 2 * blocks + 1))
    params = {"blocks": []}
    for _ in range(blocks):
        blk = {
            "ln_scale": jnp.ones((d,), dtype),
            "ln_bias": jnp.zeros((d,), dtype),
            "w1": _normal(next(keys), (d, ff), dtype, d),
            "b1": jnp.zeros((ff,), dtype),
            "w2": _normal(next(keys), (ff, d), dtype, ff),
            "b2": jnp.zeros((d,), dtype),
        }
        if act.learnable:
            blk["slope"] = _slope()
        params["blocks"].append(blk)
    params["head"] = {
        "w": _normal(next(keys), (d, classes), dtype, d),
        "b": jnp.zeros((classes,), dtype),
    }
    x = jax.random.normal(jax.random.key(1), (batch, tokens, d), dtype)
    y = jax.random.randint(jax.random.key(2), (batch,), 0, classes)

    def loss(p, x, y):
        h = x
        for blk in p["blocks"]:
            u = _layernorm(h, blk["ln_scale"], blk["ln_bias"]) @ blk["w1"] + blk["b1"]
            h = h + _apply(act, u, blk) @ blk["w2"] + blk["b2"]
        pooled = jnp.mean(h, axis=1)
        return _ce(pooled @ p["head"]["w"] + p["head"]["b"], y)

    return _sgd_step(loss), params, x, y, blocks * batch * tokens * ff


def build_equinox_mlp(act, dtype, *, batch, width, depth, classes=10):
    """``equinox.nn.MLP(activation=act)`` (applies act to scalars under vmap)."""
    import equinox as eqx

    model = eqx.nn.MLP(
        width,
        classes,
        width,
        depth,
        activation=act.fn,
        dtype=dtype,
        key=jax.random.key(0),
    )
    params, static = eqx.partition(model, eqx.is_array)
    x, y = _mlp_data(batch, width, classes, dtype)

    def loss(p, x, y):
        return _ce(jax.vmap(eqx.combine(p, static))(x), y)

    return _sgd_step(loss), params, x, y, depth * batch * width


def build_nnx_mlp(act, dtype, *, batch, width, depth, classes=10):
    """A flax.nnx MLP (nnx.Linear layers, the activation between them), split
    into (graphdef, state) and trained as a pure function."""
    from flax import nnx

    rngs = nnx.Rngs(0)
    layers = []
    for _ in range(depth):
        layers += [
            nnx.Linear(width, width, dtype=dtype, param_dtype=dtype, rngs=rngs),
            act.fn,
        ]
    layers.append(nnx.Linear(width, classes, dtype=dtype, param_dtype=dtype, rngs=rngs))
    graphdef, params = nnx.split(nnx.Sequential(*layers))
    x, y = _mlp_data(batch, width, classes, dtype)

    def loss(p, x, y):
        return _ce(nnx.merge(graphdef, p)(x), y)

    return _sgd_step(loss), params, x, y, depth * batch * width


def build_linen_cnn(act, dtype, *, batch, size, channels, blocks, classes=10):
    """A flax.linen CNN written as users write it: `nn.Conv`, `nn.BatchNorm`
    with `batch_stats` (training mode), the activation, `nn.Dense`; trained with
    `optax.sgd` (momentum 0.9). The step's state ``{params, batch_stats, opt}``
    is one donated pytree. A learnable activation gets a float32 scalar slope
    per layer (``self.param("slope", ...)``, init 0.25)."""
    import flax.linen as nn
    import optax

    class Block(nn.Module):
        @nn.compact
        def __call__(self, h):
            h = nn.Conv(channels, (3, 3), dtype=dtype, param_dtype=dtype)(h)
            h = nn.BatchNorm(use_running_average=False, dtype=dtype, param_dtype=dtype)(
                h
            )
            if act.learnable:
                slope = self.param("slope", lambda _: jnp.asarray(0.25, jnp.float32))
                return act.fn(h, slope)
            return act.fn(h)

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, h):
            for _ in range(blocks):
                h = Block()(h)
            h = jnp.mean(h, axis=(1, 2))
            return nn.Dense(classes, dtype=dtype, param_dtype=dtype)(h)

    model = CNN()
    x = jax.random.normal(jax.random.key(1), (batch, size, size, 3), dtype)
    y = jax.random.randint(jax.random.key(2), (batch,), 0, classes)
    variables = model.init(jax.random.key(0), x)
    opt = optax.sgd(0.01, momentum=0.9)
    state = {
        "params": variables["params"],
        "batch_stats": variables["batch_stats"],
        "opt": opt.init(variables["params"]),
    }

    def loss(params, batch_stats, x, y):
        logits, updates = model.apply(
            {"params": params, "batch_stats": batch_stats}, x, mutable=["batch_stats"]
        )
        return _ce(logits, y), updates["batch_stats"]

    def step(s, x, y):
        grads, stats = jax.grad(loss, has_aux=True)(s["params"], s["batch_stats"], x, y)
        updates, opt_state = opt.update(grads, s["opt"], s["params"])
        params = optax.apply_updates(s["params"], updates)
        return {"params": params, "batch_stats": stats, "opt": opt_state}

    n = blocks * batch * size * size * channels
    return jax.jit(step, donate_argnums=0), state, x, y, n


ZOO = [
    ZooModel(
        "mlp",
        functools.partial(build_mlp, mode="unrolled"),
        dict(batch=64, width=256, depth=4),
        dict(batch=256, width=512, depth=8),
    ),
    ZooModel(
        "mlp_scan",
        functools.partial(build_mlp, mode="scan"),
        dict(batch=64, width=256, depth=4),
        dict(batch=256, width=512, depth=8),
    ),
    ZooModel(
        "mlp_remat",
        functools.partial(build_mlp, mode="remat"),
        dict(batch=64, width=256, depth=4),
        dict(batch=256, width=512, depth=8),
    ),
    ZooModel(
        "resnet",
        build_resnet,
        dict(batch=8, size=16, channels=32, blocks=2),
        dict(batch=64, size=32, channels=64, blocks=4),
    ),
    ZooModel(
        "transformer",
        build_transformer,
        dict(batch=4, tokens=64, d=128, ff=512, blocks=2),
        dict(batch=16, tokens=256, d=512, ff=2048, blocks=4),
    ),
    ZooModel(
        "linen_cnn",
        build_linen_cnn,
        dict(batch=8, size=16, channels=32, blocks=3),
        dict(batch=64, size=32, channels=64, blocks=6),
    ),
    ZooModel(
        "mlp_dp",
        functools.partial(build_mlp, mode="unrolled"),
        dict(batch=64, width=256, depth=4),
        dict(batch=1024, width=512, depth=8),
        devices=4,
    ),
    ZooModel(
        "equinox_mlp",
        build_equinox_mlp,
        dict(batch=64, width=256, depth=4),
        dict(batch=256, width=512, depth=8),
        supports_learnable=False,
    ),
    ZooModel(
        "nnx_mlp",
        build_nnx_mlp,
        dict(batch=64, width=256, depth=4),
        dict(batch=256, width=512, depth=8),
        supports_learnable=False,
    ),
]
ZOO_BY_NAME = {m.name: m for m in ZOO}


def zoo_activations() -> list[tuple[Act, str | None]]:
    """(leakyjax activation, the label of its jax.nn / flax counterpart), plus
    the identity and the counterparts themselves."""
    import leakyjax as lj

    def flax_prelu(h, slope):
        import flax.linen as nn

        return nn.PReLU(param_dtype=jnp.float32).apply(
            {"params": {"negative_slope": slope}}, h
        )

    key = jax.random.key(7)

    def rrelu_formula(h):  # rrelu written with plain jax autodiff (saves slopes)
        a = jax.random.uniform(key, h.shape, jnp.float32, 1 / 8, 1 / 3)
        return jnp.where(h >= 0, h, a.astype(h.dtype) * h)

    return [
        (Act("identity", lambda h: h), None),
        (Act("jax.nn.relu", jax.nn.relu), None),
        (Act("jax.nn.leaky_relu", jax.nn.leaky_relu), None),
        (Act("jax.nn.relu6", jax.nn.relu6), None),
        (Act("jax.nn.hard_tanh", jax.nn.hard_tanh), None),
        (Act("jax.nn.hard_sigmoid", jax.nn.hard_sigmoid), None),
        (Act("jax.nn.elu", jax.nn.elu), None),
        (Act("jax.nn.celu", jax.nn.celu), None),
        (Act("jax.nn.selu", jax.nn.selu), None),
        (Act("flax.linen.PReLU", flax_prelu, True), None),
        (Act("jax rrelu formula", rrelu_formula), None),
        (Act("leakyjax.relu", lj.relu), "jax.nn.relu"),
        (Act("leakyjax.leaky_relu", lj.leaky_relu), "jax.nn.leaky_relu"),
        (Act("leakyjax.rrelu", lambda h: lj.rrelu(h, key)), "jax rrelu formula"),
        (Act("leakyjax.relu6", lj.relu6), "jax.nn.relu6"),
        (Act("leakyjax.hard_tanh", lj.hard_tanh), "jax.nn.hard_tanh"),
        (Act("leakyjax.hard_sigmoid", lj.hard_sigmoid), "jax.nn.hard_sigmoid"),
        (Act("leakyjax.elu", lj.elu), "jax.nn.elu"),
        (Act("leakyjax.celu", lj.celu), "jax.nn.celu"),
        (Act("leakyjax.selu", lj.selu), "jax.nn.selu"),
        (Act("leakyjax.prelu", lj.prelu, True), "flax.linen.PReLU"),
    ]


#: The piecewise-linear family: identity + n/8 bytes per activation.
ONE_BIT = (
    "leakyjax.relu",
    "leakyjax.leaky_relu",
    "leakyjax.rrelu",
    "leakyjax.relu6",
    "leakyjax.hard_tanh",
    "leakyjax.hard_sigmoid",
)


def weights(state):
    """The trained weights of a zoo step's state: flax's ``params`` where the
    state also holds ``batch_stats`` (float32 in flax whatever the dtype) and
    an optimizer state."""
    if isinstance(state, dict) and "batch_stats" in state:
        return state["params"]
    return state


class ZooMemory(NamedTuple):
    temp: int
    act_elements: int
    compiled: object


def zoo_memory(
    model: ZooModel,
    act: Act,
    dtype,
    shape: dict | None = None,
    *,
    target: str = "cpu",
):
    """Compiles one zoo train step for ``target`` (`benchmarks.targets`);
    asserts the parameters' dtype. ``act_elements`` is per device."""
    from benchmarks.targets import compile_step

    step, params, x, y, n = model.build(act, dtype, **(shape or model.test_shape))
    assert_param_dtype(weights(params), dtype, allow_f32_slopes=act.learnable)
    assert x.dtype == jnp.dtype(dtype)
    compiled = compile_step(step, params, x, y, target, n=model.devices)
    temp = int(compiled.memory_analysis().temp_size_in_bytes)
    return ZooMemory(temp, n // model.devices, compiled)


def _opcode(line: str) -> str | None:
    """The opcode of one HLO instruction line (`%a = f32[4]{0} fusion(...)`)."""
    _, eq, rhs = line.partition(" = ")
    if not eq:
        return None
    rhs = rhs.lstrip()
    if rhs.startswith("("):  # a tuple shape: skip to its closing parenthesis
        depth = 0
        for i, ch in enumerate(rhs):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0:
                rhs = rhs[i + 1 :]
                break
    else:
        rhs = rhs.partition(" ")[2]
    return rhs.lstrip().partition("(")[0] or None


def kernel_count(hlo_text: str) -> dict:
    """What a compiled step launches, read from its optimized HLO
    (`compiled.as_text()`): its fusions and custom calls (library calls: a
    cuBLAS or YNNPACK matmul, a cuDNN convolution). An op inside a fusion is
    part of its fusion's kernel, not counted again; a loop body's kernels are
    counted once, as written."""
    ops = [_opcode(line) for line in hlo_text.splitlines()]
    return {
        "fusions": ops.count("fusion"),
        "custom_calls": ops.count("custom-call"),
    }


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
