"""Elementwise speed of every leakyjax activation against jax.nn, flax and torch.

For each size ``n`` and dtype, every variant is timed in two passes:

* ``fwd``: ``y = f(x)`` (reads ``x``, writes ``y``: ``2 n`` elements of traffic);
* ``fwd+bwd``: one jitted function computing ``y`` and the VJP ``dx`` for a
  cotangent ``ct`` (reads ``x`` and ``ct``, writes ``y`` and ``dx``: ``4 n``);
* ``dx``: the same, returning ``dx`` alone (``3 n``);

and with two kinds of output buffers:

* ``fresh``: the plain call; every call allocates its outputs (on CPU a fresh
  large buffer is page-faulted in, which dominates at 2^24 elements);
* ``donated``: output buffers are donated back to the next call
  (``donate_argnums`` + ``keep_unused``), so XLA writes into reused memory.

The copy roofline is ``x * 2`` (fwd) and ``(x * 2, ct * 2)`` (fwd+bwd), measured
in the same run, on the same buffers. Timing is synchronous
(``block_until_ready`` after every call), the variants are interleaved (a
shuffled order in every round), and each variant reports the min and median
over rounds of the per-call time of a batch of calls. Ratios (to jax.nn.relu and
to the jax.nn function of the same name) are taken within the run.

flax.linen re-exports the jax.nn functions (``flax.linen.relu is jax.nn.relu``),
so flax appears only where it differs: its ``PReLU`` module. torch (eager and
``torch.compile``) is timed when it is importable; it is not a dependency.

Usage::

    python -m benchmarks.bench_activations --quick        # ~1 minute on CPU
    python -m benchmarks.bench_activations --eager        # eager calls only
    python -m benchmarks.bench_activations                # the published run
    python -m benchmarks.report benchmarks/results/<name>.json
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import leakyjax as lj
from benchmarks.common import (
    RESULTS_DIR,
    environment,
    exit_status,
    kernel_count,
    report_checks,
)
from leakyjax._src.io import progress, write_json

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
PASSES = ("fwd", "fwd+bwd", "dx")
OUTPUTS = ("fresh", "donated")


class Spec(NamedTuple):
    """One function to time.

    ``fn(x, *params)``; ``params(dtype)`` builds the parameter arrays;
    ``grad_params``: the VJP also differentiates the parameters (learnable PReLU
    slope); ``ref``: the jax.nn function the ratio column compares with.
    """

    lib: str
    name: str
    fn: Callable
    params: Callable[[Any], tuple] = lambda dtype: ()
    grad_params: bool = False
    ref: str | None = None

    @property
    def label(self) -> str:
        return f"{self.lib}.{self.name}"


def _prelu_alpha(dtype):
    # A learnable slope, as in a model: an f32 parameter, shared over channels.
    return (jnp.asarray(0.25, jnp.float32),)


def _flax_prelu() -> Callable | None:
    try:
        import flax.linen as nn
    except ImportError:
        return None
    module = nn.PReLU(param_dtype=jnp.float32)

    def prelu(x, alpha):
        return module.apply({"params": {"negative_slope": alpha}}, x)

    return prelu


def jax_specs() -> list[Spec]:
    """The JAX variants: copy roofline, jax.nn, leakyjax, flax.linen.PReLU."""
    specs = [
        Spec("copy", "x*2", lambda x: x * jnp.asarray(2, x.dtype)),
        Spec("jax.nn", "relu", jax.nn.relu),
        Spec("jax.nn", "leaky_relu", jax.nn.leaky_relu),
        Spec("jax.nn", "elu", jax.nn.elu),
        Spec("jax.nn", "celu", jax.nn.celu),
        Spec("jax.nn", "selu", jax.nn.selu),
        Spec("jax.nn", "relu6", jax.nn.relu6),
        Spec("jax.nn", "hard_tanh", jax.nn.hard_tanh),
        Spec("jax.nn", "hard_sigmoid", jax.nn.hard_sigmoid),
        Spec("leakyjax", "relu", lj.relu, ref="relu"),
        Spec("leakyjax", "leaky_relu", lj.leaky_relu, ref="leaky_relu"),
        Spec("leakyjax", "prelu", lj.prelu, _prelu_alpha, True, ref="leaky_relu"),
        Spec(
            "leakyjax",
            "rrelu",
            lj.rrelu,
            lambda dtype: (jax.random.key(0),),
            ref="leaky_relu",
        ),
        Spec("leakyjax", "elu", lj.elu, ref="elu"),
        Spec("leakyjax", "celu", lj.celu, ref="celu"),
        Spec("leakyjax", "selu", lj.selu, ref="selu"),
        Spec("leakyjax", "relu6", lj.relu6, ref="relu6"),
        Spec("leakyjax", "hard_tanh", lj.hard_tanh, ref="hard_tanh"),
        Spec("leakyjax", "hard_sigmoid", lj.hard_sigmoid, ref="hard_sigmoid"),
    ]
    flax_prelu = _flax_prelu()
    if flax_prelu is not None:
        specs.append(
            Spec("flax.linen", "PReLU", flax_prelu, _prelu_alpha, True, "leaky_relu")
        )
    return specs


class Case(NamedTuple):
    """A compiled, ready-to-time variant for one (n, dtype, pass, outputs)."""

    lib: str
    name: str
    ref: str | None
    pass_: str
    outputs: str
    bytes: int
    compile_s: float
    run: Callable[[int], float]  # k synchronous calls -> seconds
    kernels: int | None = None  # fusions + custom calls of the compiled program


def _body(spec: Spec, pass_: str) -> Callable:
    if pass_ == "fwd":
        return lambda x, ct, p: (spec.fn(x, *p),)
    if spec.lib == "copy":
        if pass_ == "dx":
            return lambda x, ct, p: (spec.fn(ct),)
        return lambda x, ct, p: (spec.fn(x), spec.fn(ct))
    if pass_ == "dx":
        if spec.grad_params:
            return lambda x, ct, p: jax.vjp(spec.fn, x, *p)[1](ct)
        return lambda x, ct, p: jax.vjp(lambda v: spec.fn(v, *p), x)[1](ct)
    if spec.grad_params:

        def fwd_bwd(x, ct, p):
            y, vjp = jax.vjp(spec.fn, x, *p)
            return (y, *vjp(ct))

    else:

        def fwd_bwd(x, ct, p):
            y, vjp = jax.vjp(lambda v: spec.fn(v, *p), x)
            return (y, *vjp(ct))

    return fwd_bwd


def jax_case(spec: Spec, x, ct, pass_: str, outputs: str) -> Case:
    """Compiles ``spec`` for one pass and output mode; returns a timing closure."""
    params = spec.params(x.dtype)
    body = _body(spec, pass_)
    t0 = time.perf_counter()
    if outputs == "fresh":
        compiled = jax.jit(body).lower(x, ct, params).compile()

        def run(k: int) -> float:
            start = time.perf_counter()
            for _ in range(k):
                jax.block_until_ready(compiled(x, ct, params))
            return time.perf_counter() - start

    else:
        shapes = jax.eval_shape(body, x, ct, params)
        donating = jax.jit(
            lambda x, ct, p, bufs: body(x, ct, p), donate_argnums=3, keep_unused=True
        )
        compiled = donating.lower(x, ct, params, shapes).compile()

        def run(k: int) -> float:
            # Fresh zeros touch their pages outside the timed region.
            bufs = jax.block_until_ready(
                tuple(jnp.zeros(s.shape, s.dtype) for s in shapes)
            )
            start = time.perf_counter()
            for _ in range(k):
                bufs = jax.block_until_ready(compiled(x, ct, params, bufs))
            elapsed = time.perf_counter() - start
            del bufs
            return elapsed

    compile_s = time.perf_counter() - t0
    kernels = sum(kernel_count(compiled.as_text()).values())
    streams = {"fwd": 2, "fwd+bwd": 4, "dx": 3}[pass_]
    return Case(
        spec.lib,
        spec.name,
        spec.ref,
        pass_,
        outputs,
        streams * x.size * x.dtype.itemsize,
        compile_s,
        run,
        kernels,
    )


# --------------------------------------------------------------------------- #
# torch (optional)
# --------------------------------------------------------------------------- #
# torch.compile costs seconds per (function, shape, dtype) on CPU: the three
# that stand for the family (threshold, scaled threshold, exponential).
TORCH_COMPILED = ("relu", "leaky_relu", "elu")


def torch_cases(
    x_np: np.ndarray,
    ct_np: np.ndarray,
    dtype_name: str,
    passes,
    skipped: list[str] | None = None,
    threads: int | None = None,
):
    """torch eager and torch.compile cases (fresh outputs), or [] without torch.

    A case torch cannot run (an op without a kernel for the dtype, a compiler
    failure) is left out and named in ``skipped``.
    """
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return []
    # One compiled graph per (function, shape, dtype): lift dynamo's recompile
    # limit, or later shapes silently fall back to eager.
    for attr in ("cache_size_limit", "recompile_limit", "accumulated_cache_size_limit"):
        if hasattr(torch._dynamo.config, attr):
            setattr(torch._dynamo.config, attr, 4096)
    if threads is not None:
        torch.set_num_threads(threads)
    on_gpu = jax.default_backend() == "gpu" and torch.cuda.is_available()
    device = "cuda" if on_gpu else "cpu"
    tdtype = getattr(torch, dtype_name)
    x = torch.from_numpy(np.asarray(x_np, np.float32)).to(device, tdtype)
    ct = torch.from_numpy(np.asarray(ct_np, np.float32)).to(device, tdtype)
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    alpha = torch.full((1,), 0.25, device=device, dtype=tdtype)
    fns = {
        "relu": F.relu,
        "leaky_relu": F.leaky_relu,
        "elu": F.elu,
        "celu": F.celu,
        "selu": F.selu,
        "prelu": lambda v: F.prelu(v, alpha),
        "rrelu": lambda v: F.rrelu(v, training=True),
    }
    refs = {"prelu": "leaky_relu", "rrelu": "leaky_relu"}
    cases = []
    for lib in ("torch", "torch.compile"):
        for name, f in fns.items():
            if lib == "torch.compile":
                if name not in TORCH_COMPILED:
                    continue
                f = torch.compile(f, dynamic=False)
            for pass_ in passes:
                if pass_ == "dx":
                    continue
                if pass_ == "fwd":

                    def call(f=f):
                        with torch.no_grad():
                            f(x)
                        sync()

                else:

                    def call(f=f):
                        xg = x.detach().requires_grad_(True)
                        y = f(xg)
                        torch.autograd.grad(y, xg, ct)
                        sync()

                t0 = time.perf_counter()
                try:
                    call()  # torch.compile compiles here
                except Exception as e:  # unsupported dtype / compiler failure
                    if skipped is not None:
                        skipped.append(
                            f"{lib}.{name} {pass_} n={x.numel()} {dtype_name}: "
                            f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
                        )
                    continue
                compile_s = time.perf_counter() - t0

                def run(k: int, call=call) -> float:
                    start = time.perf_counter()
                    for _ in range(k):
                        call()
                    return time.perf_counter() - start

                streams = 2 if pass_ == "fwd" else 4
                cases.append(
                    Case(
                        lib,
                        name,
                        refs.get(name, name),
                        pass_,
                        "fresh",
                        streams * x.numel() * x.element_size(),
                        compile_s,
                        run,
                    )
                )
    return cases


# --------------------------------------------------------------------------- #
# Timing
# --------------------------------------------------------------------------- #
def time_cases(
    cases: list[Case], *, rounds: int, target_s: float, seed: int = 0
) -> list[dict]:
    """Interleaved timing: every round runs every case once, in a shuffled order.

    Each case runs ``k`` synchronous calls per round, ``k`` calibrated so that a
    round of the case lasts about ``target_s``. Returns per-call times in seconds.
    """
    ks = []
    for c in cases:
        c.run(2)  # warm up (first-call allocations, caches)
        one = max(c.run(1), 1e-7)
        ks.append(int(min(max(1, math.ceil(target_s / one)), 100_000)))
    samples: list[list[float]] = [[] for _ in cases]
    rng = random.Random(seed)
    order = list(range(len(cases)))
    for _ in range(rounds):
        rng.shuffle(order)
        for i in order:
            samples[i].append(cases[i].run(ks[i]) / ks[i])
    out = []
    for c, k, s in zip(cases, ks, samples):
        s = np.asarray(s)
        out.append(
            {
                "lib": c.lib,
                "name": c.name,
                "fn": f"{c.lib}.{c.name}",
                "ref": c.ref,
                "pass": c.pass_,
                "outputs": c.outputs,
                "bytes": c.bytes,
                "calls_per_round": k,
                "rounds": len(s),
                "compile_s": c.compile_s,
                "kernels": c.kernels,
                "min_us": float(s.min() * 1e6),
                "median_us": float(np.median(s) * 1e6),
                "max_us": float(s.max() * 1e6),
                "samples_us": [float(v * 1e6) for v in s],
            }
        )
    return out


def add_derived(rows: list[dict]) -> None:
    """GB/s, % of the copy roofline and ratios, within each (n, dtype, pass, outputs).

    The roofline of a pass is the copy of the same pass and the same output mode
    (torch's fresh-output cases use the jax fresh copy).
    """
    groups: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        groups.setdefault((r["n"], r["dtype"], r["pass"], r["outputs"]), {})[
            r["fn"]
        ] = r
    for r in rows:
        g = groups[(r["n"], r["dtype"], r["pass"], r["outputs"])]
        fresh = groups.get((r["n"], r["dtype"], r["pass"], "fresh"), {})
        copy = g.get("copy.x*2") or fresh.get("copy.x*2")
        relu = g.get("jax.nn.relu") or fresh.get("jax.nn.relu")
        r["gbps"] = r["bytes"] / r["min_us"] / 1e3
        r["gbps_median"] = r["bytes"] / r["median_us"] / 1e3
        r["pct_roofline"] = (
            100.0 * copy["min_us"] / r["min_us"] if copy is not None else None
        )
        r["pct_roofline_median"] = (
            100.0 * copy["median_us"] / r["median_us"] if copy is not None else None
        )
        for key, other in (("relu", relu), ("ref", None)):
            if key == "ref":
                other = (
                    (g.get(f"jax.nn.{r['ref']}") or fresh.get(f"jax.nn.{r['ref']}"))
                    if r["ref"]
                    else None
                )
            r[f"ratio_{key}_min"] = (
                r["min_us"] / other["min_us"] if other is not None else None
            )
            r[f"ratio_{key}_median"] = (
                r["median_us"] / other["median_us"] if other is not None else None
            )
            r[f"ratio_{key}_paired"] = _paired(r, other)


def _paired(r: dict, other: dict | None) -> float | None:
    """Median over rounds of the per-round time ratio (robust on a busy machine:
    both were timed in the same round, so a slow round slows both)."""
    if other is None or "samples_us" not in r or "samples_us" not in other:
        return None
    a, b = np.asarray(r["samples_us"]), np.asarray(other["samples_us"])
    if len(a) != len(b) or not len(a):
        return None
    return float(np.median(a / b))


def _find(rows, fn, n, dtype, pass_, outputs):
    for r in rows:
        if (r["fn"], r["n"], r["dtype"], r["pass"], r["outputs"]) == (
            fn,
            n,
            dtype,
            pass_,
            outputs,
        ):
            return r
    return None


def checks(rows: list[dict], backend: str) -> list[dict]:
    """The acceptance numbers of issues 3, 7 and 11, evaluated on this run.

    * CPU, n = 2^20 (1-D, or the ``--shape`` of that size), fwd+bwd and dx
      alone: leakyjax.leaky_relu bf16 <= 1.3x jax.nn.relu and
      f32 <= 1.05x jax.nn.leaky_relu, judged on the paired ratio (median over
      rounds of the per-round ratio; min- and median-based ratios are shown too).
    * GPU, n >= 2^24, f32 and bf16: every leakyjax function at >= 95% of the copy
      roofline, forward and forward+backward.
    """
    out = []
    if backend == "cpu":
        for dtype, ref, limit in (
            ("bfloat16", "jax.nn.relu", 1.3),
            ("float32", "jax.nn.leaky_relu", 1.05),
        ):
            for outputs, pass_ in [(o, p) for o in OUTPUTS for p in ("fwd+bwd", "dx")]:
                a = _find(rows, "leakyjax.leaky_relu", 2**20, dtype, pass_, outputs)
                b = _find(rows, ref, 2**20, dtype, pass_, outputs)
                if a is None or b is None:
                    continue
                ratio = a["min_us"] / b["min_us"]
                paired = _paired(a, b)
                judged = paired if paired is not None else ratio
                shape = a.get("shape") or [2**20]
                size = "n=2^20" + (f" as {tuple(shape)}" if len(shape) > 1 else "")
                out.append(
                    {
                        "check": f"leakyjax.leaky_relu / {ref}, {pass_}, {size}, "
                        f"{dtype}, {outputs} outputs",
                        "limit": limit,
                        "ratio_min": ratio,
                        "ratio_median": a["median_us"] / b["median_us"],
                        "ratio_paired": paired,
                        "reference_ratio_paired": _paired(
                            _find(
                                rows,
                                "jax.nn.leaky_relu",
                                2**20,
                                dtype,
                                pass_,
                                outputs,
                            ),
                            b,
                        )
                        if ref == "jax.nn.relu"
                        else None,
                        "passed": bool(judged <= limit),
                    }
                )
    else:
        for r in rows:
            if (
                r["lib"] == "leakyjax"
                and r["n"] >= 2**24
                and r["dtype"] in ("float32", "bfloat16")
                and r["pct_roofline"] is not None
            ):
                out.append(
                    {
                        "check": f"{r['fn']} {r['pass']} n=2^{int(math.log2(r['n']))} "
                        f"{r['dtype']} {r['outputs']}: % of copy roofline",
                        "limit": 95.0,
                        "pct_roofline": r["pct_roofline"],
                        "passed": bool(r["pct_roofline"] >= 95.0),
                    }
                )
    return out


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #
def _csv(s: str) -> list[str]:
    return [v.strip() for v in s.split(",") if v.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_activations",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="~1 minute on CPU: n = 2^12, 2^20; f32, bf16; fewer rounds",
    )
    p.add_argument(
        "--sizes",
        type=str,
        default=None,
        help="log2 of the sizes, e.g. '12,16,20,24' (default: 12..24 on CPU, "
        "12..28 on GPU)",
    )
    p.add_argument(
        "--shape",
        type=str,
        default=None,
        help="time arrays of this shape instead of 1-D ones, e.g. '1024,1024' (a "
        "dense layer's (batch, units)); its size, a power of two, replaces --sizes",
    )
    p.add_argument("--dtypes", type=str, default=None, help="e.g. 'float32,bfloat16'")
    p.add_argument(
        "--functions",
        type=str,
        default=None,
        help="only these names (e.g. 'relu,leaky_relu'); the copy roofline and "
        "jax.nn.relu are always timed",
    )
    p.add_argument(
        "--passes",
        type=str,
        default="fwd,fwd+bwd",
        help="fwd, fwd+bwd (returns y and dx), dx (returns dx alone)",
    )
    p.add_argument(
        "--eager",
        action="store_true",
        help="only time eager calls (no jit) of leakyjax vs jax.nn, paired",
    )
    p.add_argument("--outputs", type=str, default="fresh,donated")
    p.add_argument("--rounds", type=int, default=None, help="timing rounds per case")
    p.add_argument(
        "--target-ms", type=float, default=None, help="length of one timed batch"
    )
    p.add_argument(
        "--torch",
        choices=("auto", "off"),
        default=None,
        help="time torch (eager, torch.compile) when importable (default: auto, "
        "off with --quick: torch.compile takes seconds per shape)",
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch.set_num_threads (default: torch's own); on a shared, "
        "oversubscribed CPU, OpenMP spin-waits in torch.compile kernels can cost "
        "milliseconds per call, use 1 there",
    )
    p.add_argument("--name", type=str, default=None, help="results/<name>.json")
    p.add_argument("--out", type=str, default=None, help="explicit JSON path")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    backend = jax.default_backend()
    if args.shape is not None:
        raw = args.shape
        try:
            args.shape = tuple(int(v) for v in _csv(raw))
        except ValueError:
            args.shape = ()
        n = math.prod(args.shape)
        if not args.shape or min(args.shape) < 1 or n & (n - 1):
            p.error(
                "--shape must be comma-separated positive integers whose product "
                f"is a power of two, e.g. '1024,1024'; got {raw!r}"
            )
        if args.sizes is not None:
            p.error("--shape replaces --sizes: give one of them")
        args.sizes = str(n.bit_length() - 1)
    if args.sizes is None:
        if args.quick:
            args.sizes = "12,20" if backend == "cpu" else "20,26"
        else:
            args.sizes = "12,16,20,24" if backend == "cpu" else "12,16,20,24,26,28"
    try:
        args.sizes = [int(v) for v in _csv(args.sizes)]
    except ValueError:
        p.error(f"--sizes must be comma-separated integers (log2 n), got {args.sizes}")
    if args.dtypes is None:
        args.dtypes = "float32,bfloat16" if args.quick else "float32,bfloat16,float16"
    args.dtypes = _csv(args.dtypes)
    for d in args.dtypes:
        if d not in DTYPES:
            p.error(f"--dtypes: unknown dtype {d!r}; choose from {sorted(DTYPES)}")
    args.passes = _csv(args.passes)
    for v in args.passes:
        if v not in PASSES:
            p.error(f"--passes: unknown pass {v!r}; choose from {PASSES}")
    args.outputs = _csv(args.outputs)
    for v in args.outputs:
        if v not in OUTPUTS:
            p.error(f"--outputs: unknown output mode {v!r}; choose from {OUTPUTS}")
    args.functions = _csv(args.functions) if args.functions else None
    if args.torch is None:
        args.torch = "off" if args.quick else "auto"
    if args.rounds is None:
        args.rounds = 5 if args.quick else 11
    if args.target_ms is None:
        args.target_ms = 4.0 if args.quick else 15.0
    if args.rounds < 1 or args.target_ms <= 0:
        p.error("--rounds must be >= 1 and --target-ms > 0")
    return args


EAGER_PAIRS = [
    ("relu", lambda x: lj.relu(x), lambda x: jax.nn.relu(x)),
    (
        "leaky_relu",
        lambda x: lj.leaky_relu(x, 0.1),
        lambda x: jax.nn.leaky_relu(x, 0.1),
    ),
    ("relu6", lj.relu6, jax.nn.relu6),
    ("hard_tanh", lj.hard_tanh, jax.nn.hard_tanh),
    ("hard_sigmoid", lj.hard_sigmoid, jax.nn.hard_sigmoid),
    ("elu", lambda x: lj.elu(x, 0.5), lambda x: jax.nn.elu(x, 0.5)),
    ("celu", lambda x: lj.celu(x, 0.5), lambda x: jax.nn.celu(x, 0.5)),
    ("selu", lj.selu, jax.nn.selu),
]
#: Calls with a jax-array parameter (an nnx or equinox PReLU's slope outside
#: jit): `(name, ours, theirs, shape of x, slope)`; limit 1.5x (issue 33).
_SLOPE = jnp.asarray(0.25, jnp.float32)
_SLOPES = jnp.linspace(0.05, 0.3, 25, dtype=jnp.float32)
EAGER_ARRAY_PAIRS = [
    (
        "prelu, array slope",
        lambda x: lj.prelu(x, _SLOPE),
        lambda x: jax.nn.leaky_relu(x, _SLOPE),
        (1000,),
    ),
    (
        "prelu, per-channel slopes",
        lambda x: lj.prelu(x, _SLOPES),
        lambda x: jax.nn.leaky_relu(x, _SLOPES),
        (40, 25),
    ),
    (
        "leaky_relu, array slope",
        lambda x: lj.leaky_relu(x, _SLOPE),
        lambda x: jax.nn.leaky_relu(x, _SLOPE),
        (1000,),
    ),
]
EAGER_LIMIT, EAGER_ARRAY_LIMIT = 2.0, 1.5


def eager_results(rounds: int = 15, calls: int = 200, n: int = 1000) -> list[dict]:
    """Per-call time of eager (un-jitted) calls, leakyjax vs jax.nn, paired:
    every round times both, in a random order; ratio = median of per-round ratios."""
    cases = [(name, a, b, (n,), EAGER_LIMIT) for name, a, b in EAGER_PAIRS]
    cases += [(*c, EAGER_ARRAY_LIMIT) for c in EAGER_ARRAY_PAIRS]
    rng = random.Random(0)
    out = []
    for name, ours, theirs, shape, limit in cases:
        x = jax.random.normal(jax.random.key(0), shape, jnp.float32)
        fns = {"leakyjax": ours, "jax.nn": theirs}
        for f in fns.values():
            for _ in range(20):
                jax.block_until_ready(f(x))
        samples = {k: [] for k in fns}
        for _ in range(rounds):
            for k in rng.sample(list(fns), 2):
                f = fns[k]
                t = time.perf_counter()
                for _ in range(calls):
                    y = f(x)
                jax.block_until_ready(y)
                samples[k].append((time.perf_counter() - t) / calls * 1e6)
        a, b = np.asarray(samples["leakyjax"]), np.asarray(samples["jax.nn"])
        out.append(
            {
                "name": name,
                "n": int(np.prod(shape)),
                "leakyjax_min_us": float(a.min()),
                "jax_nn_min_us": float(b.min()),
                "ratio_paired": float(np.median(a / b)),
                "ratio_min": float(a.min() / b.min()),
                "limit": limit,
                "passed": bool(np.median(a / b) <= limit),
            }
        )
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    env = environment()
    if args.eager:
        rows = eager_results()
        result = {
            "benchmark": "activations_eager",
            "environment": env,
            "config": {
                "command": "python -m benchmarks.bench_activations "
                + " ".join(sys.argv[1:] if argv is None else argv),
                "limit": EAGER_LIMIT,
                "limit_array_parameters": EAGER_ARRAY_LIMIT,
            },
            "results": rows,
            "checks": [
                {
                    "check": f"eager {r['name']} / jax.nn, paired",
                    "ratio_paired": r["ratio_paired"],
                    "limit": r["limit"],
                    "passed": r["passed"],
                }
                for r in rows
            ],
        }
        name = args.name or f"activations_eager_{env['backend']}_{env['date']}"
        path = Path(args.out) if args.out else RESULTS_DIR / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, result)
        print(f"wrote {path}")
        for r in rows:
            print(
                f"[{'PASS' if r['passed'] else 'FAIL'}] eager {r['name']}: "
                f"{r['leakyjax_min_us']:.1f} us vs jax.nn {r['jax_nn_min_us']:.1f} us, "
                f"paired ratio {r['ratio_paired']:.2f} (limit {r['limit']:g})"
            )
        return result
    specs = jax_specs()
    if args.functions is not None:
        known = {s.name.lower() for s in specs if s.lib != "copy"}
        unknown = [f for f in args.functions if f not in known]
        if unknown:
            raise SystemExit(
                f"--functions: unknown {unknown}; choose from {sorted(known)}"
            )
        keep = set(args.functions)
        specs = [
            s
            for s in specs
            if s.lib == "copy" or s.label == "jax.nn.relu" or s.name.lower() in keep
        ]
    rows: list[dict] = []
    groups = [(n, d) for n in args.sizes for d in args.dtypes]
    bar = progress(total=len(groups), desc="bench_activations", leave=False)
    t_start = time.perf_counter()
    torch_used = False
    torch_skipped: list[str] = []
    for logn, dname in groups:
        n = 2**logn
        dtype = DTYPES[dname]
        kx, kc = jax.random.split(jax.random.key(args.seed))
        shape = args.shape or (n,)
        x = jax.random.normal(kx, shape, dtype)
        ct = jax.random.normal(kc, shape, dtype)
        cases = [
            jax_case(s, x, ct, p, o)
            for s in specs
            for p in args.passes
            for o in args.outputs
        ]
        if args.torch == "auto":
            tc = torch_cases(
                np.asarray(x),
                np.asarray(ct),
                dname,
                args.passes,
                torch_skipped,
                args.torch_threads,
            )
            if args.functions is not None:
                tc = [c for c in tc if c.name in args.functions or c.name == "relu"]
            torch_used = torch_used or bool(tc)
            cases += tc
        for r in time_cases(
            cases, rounds=args.rounds, target_s=args.target_ms / 1e3, seed=args.seed
        ):
            r.update(n=n, log2n=logn, dtype=dname, shape=list(shape))
            rows.append(r)
        del x, ct, cases
        bar.update(1)
        bar.set_postfix_str(f"n=2^{logn} {dname}")
    bar.close()
    add_derived(rows)
    result = {
        "benchmark": "activations",
        "environment": env,
        "config": {
            "quick": args.quick,
            "sizes_log2": args.sizes,
            "shape": list(args.shape) if args.shape else None,
            "dtypes": args.dtypes,
            "passes": args.passes,
            "outputs": args.outputs,
            "rounds": args.rounds,
            "target_ms": args.target_ms,
            "torch": torch_used,
            "torch_version": _torch_version() if torch_used else None,
            "torch_skipped": torch_skipped,
            "torch_threads": args.torch_threads,
            "torch_compiled": list(TORCH_COMPILED) if torch_used else [],
            "flax_prelu": any(s.lib == "flax.linen" for s in specs),
            "command": "python -m benchmarks.bench_activations "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "wall_s": time.perf_counter() - t_start,
        },
        "results": rows,
        "checks": checks(rows, env["backend"]),
    }
    name = args.name or (
        f"activations_{env['backend']}{'_quick' if args.quick else ''}_{env['date']}"
    )
    path = Path(args.out) if args.out else RESULTS_DIR / f"{name}.json"
    if args.quick:  # too few rounds to judge a timing ratio
        for c in result["checks"]:
            c["judged"] = False
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, result)
    print(f"wrote {path} ({len(rows)} rows, {result['config']['wall_s']:.0f} s)")

    def fmt(c):
        value = (
            f"paired ratio {c['ratio_paired']:.2f} (min {c['ratio_min']:.2f}, "
            f"median {c['ratio_median']:.2f})"
            if c.get("ratio_paired") is not None
            else f"ratio {c['ratio_min']:.2f} (median {c['ratio_median']:.2f})"
            if "ratio_min" in c
            else f"{c['pct_roofline']:.1f}%"
        )
        return f"{c['check']}: {value}, limit {c['limit']}"

    report_checks(result["checks"], fmt)
    return result


def _torch_version():
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


if __name__ == "__main__":
    sys.exit(exit_status(main()["checks"]))
