"""Train-step cost of each activation: step time, compile time, compiled memory.

An MLP train step (``benchmarks.common.mlp_train_step``: ``depth`` hidden
Dense+activation layers, softmax cross-entropy, SGD, params donated) is compiled
once per activation and dtype. For each it records

* compile time (``lower`` + ``compile``, wall clock);
* compiled memory from ``memory_analysis()``: temp, argument and output bytes
  (deterministic for a backend and jax version);
* step time: min and median over interleaved rounds (a shuffled order of the
  activations every round, params carried from step to step, synchronous), and
  the ratios to the identity and to jax.nn.relu within the run.

Shapes: ``test`` (B=256, W=512, depth 8: the shape of tests/test_memory.py) and
``anchors`` (B=1024, W=2048 on CPU, B=8192, W=4096 on a GPU: the shapes of
ANCHORS.md). PReLU has a learnable per-channel float32 slope per layer
(``benchmarks.common.prelu_mlp_train_step``); its comparator is the same model
with flax.linen.PReLU's formula ``jnp.where(x >= 0, x, a * x)``.

With the training stack installed (``leakyjax[train]``) it also times the
mnist1d CNN train step per activation and the seeds-in-one-program speedup of
``leakyjax compare`` (5 seeds in one program vs 5 programs of 1 seed).

Usage::

    python -m benchmarks.bench_train_step --quick    # ~1 minute on CPU
    python -m benchmarks.bench_train_step            # the published run
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import leakyjax as lj
from benchmarks.common import (
    RESULTS_DIR,
    compiled_memory,
    environment,
    exit_status,
    mlp_train_step,
    prelu_mlp_train_step,
    report_checks,
)
from leakyjax._src.io import progress, write_json

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


class Act(NamedTuple):
    """An activation of the benchmark; ``prelu``: use the learnable-slope model."""

    label: str
    fn: Callable
    prelu: bool = False


def _where_prelu(x, a):
    # flax.linen.PReLU's formula, with a per-channel slope.
    return jnp.where(x >= 0, x, jnp.asarray(a, x.dtype) * x)


ACTIVATIONS = [
    Act("identity", lambda h: h),
    Act("jax.nn.relu", jax.nn.relu),
    Act("jax.nn.leaky_relu", jax.nn.leaky_relu),
    Act("jax.nn.elu", jax.nn.elu),
    Act("jax.nn.selu", jax.nn.selu),
    Act("jax.nn.celu", jax.nn.celu),
    Act("jax.nn.gelu", jax.nn.gelu),
    Act("leakyjax.relu", lj.relu),
    Act("leakyjax.leaky_relu", lj.leaky_relu),
    Act("leakyjax.elu", lj.elu),
    Act("leakyjax.selu", lj.selu),
    Act("leakyjax.celu", lj.celu),
    Act("leakyjax.prelu", lj.prelu, prelu=True),
    Act("flax.linen.PReLU formula", _where_prelu, prelu=True),
]


def shapes_for(backend: str) -> dict[str, dict]:
    anchors = (
        dict(batch=1024, width=2048, depth=8)
        if backend == "cpu"
        else dict(batch=8192, width=4096, depth=8)
    )
    return {"test": dict(batch=256, width=512, depth=8), "anchors": anchors}


class StepCase(NamedTuple):
    act: str
    dtype: str
    compile_s: float
    temp: int
    argument: int
    output: int
    run: Callable[[int], float]  # k synchronous steps -> seconds


def build_case(act: Act, dname: str, shape: dict) -> StepCase:
    dtype = DTYPES[dname]
    if act.prelu:
        step, params, x, y = prelu_mlp_train_step(dtype, prelu=act.fn, **shape)
    else:
        step, params, x, y = mlp_train_step(act.fn, dtype, **shape)
    t0 = time.perf_counter()
    compiled = step.lower(params, x, y).compile()
    compile_s = time.perf_counter() - t0
    mem = compiled_memory(compiled)
    state = {"p": params}

    def run(k: int) -> float:
        p = state["p"]
        start = time.perf_counter()
        for _ in range(k):
            p = jax.block_until_ready(compiled(p, x, y))
        elapsed = time.perf_counter() - start
        state["p"] = p
        return elapsed

    return StepCase(
        act.label, dname, compile_s, mem.temp, mem.argument, mem.output, run
    )


def time_steps(
    cases: list[StepCase], *, rounds: int, target_s: float, seed: int = 0
) -> list[list[float]]:
    """Per-step seconds of each case over interleaved, shuffled rounds."""
    ks = []
    for c in cases:
        c.run(1)  # warm up
        one = max(c.run(1), 1e-6)
        ks.append(max(1, min(1000, math.ceil(target_s / one))))
    samples: list[list[float]] = [[] for _ in cases]
    order = list(range(len(cases)))
    rng = random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for i in order:
            samples[i].append(cases[i].run(ks[i]) / ks[i])
    return samples


def mlp_results(
    shape_name: str,
    shape: dict,
    dtypes: list[str],
    acts: list[Act],
    *,
    rounds: int,
    target_s: float,
    seed: int,
    bar=None,
) -> list[dict]:
    rows = []
    for dname in dtypes:
        cases = []
        for act in acts:
            cases.append(build_case(act, dname, shape))
            if bar is not None:
                bar.update(1)
        samples = (
            time_steps(cases, rounds=rounds, target_s=target_s, seed=seed)
            if rounds > 0
            else [[] for _ in cases]
        )
        for c, s in zip(cases, samples):
            rows.append(
                {
                    "model": "mlp",
                    "shape": shape_name,
                    **shape,
                    "act": c.act,
                    "dtype": dname,
                    "compile_s": c.compile_s,
                    "temp_bytes": c.temp,
                    "argument_bytes": c.argument,
                    "output_bytes": c.output,
                    "rounds": len(s),
                    "min_ms": float(np.min(s) * 1e3) if s else None,
                    "median_ms": float(np.median(s) * 1e3) if s else None,
                }
            )
        del cases
    _add_ratios(rows)
    return rows


def _add_ratios(rows: list[dict]) -> None:
    by = {(r["shape"], r["dtype"], r["act"]): r for r in rows}
    for r in rows:
        for key, ref in (("identity", "identity"), ("relu", "jax.nn.relu")):
            o = by.get((r["shape"], r["dtype"], ref))
            for stat in ("min", "median"):
                v = r[f"{stat}_ms"]
                w = o[f"{stat}_ms"] if o is not None else None
                r[f"ratio_{key}_{stat}"] = v / w if v is not None and w else None
            r[f"temp_vs_{key}"] = (
                r["temp_bytes"] / o["temp_bytes"]
                if o is not None and o["temp_bytes"]
                else None
            )


#: Misses documented in benchmarks/README.md: printed as [expected], not [FAIL].
EXPECTED_MISSES = {
    "leakyjax.prelu": "a learnable slope's gradient needs min(x, 0), so x is kept; "
    "judged against flax's PReLU formula instead",
}


def checks(rows: list[dict], backend: str) -> list[dict]:
    """leakyjax temp memory <= its jax.nn counterpart's (jax.nn.relu for the
    piecewise-linear family, jax.nn.elu for elu, ...), every backend, dtype and
    shape; step time <= 1.02x relu's on a GPU (reported, not judged, on CPU)."""
    out = []
    by = {(r["shape"], r["dtype"], r["act"]): r for r in rows if r["model"] == "mlp"}
    for (shape, dtype, act), r in sorted(by.items()):
        if not act.startswith("leakyjax."):
            continue
        relu = by.get((shape, dtype, "jax.nn.relu"))
        if relu is None:
            continue
        name = act.removeprefix("leakyjax.")
        # the exponential family keeps a full array: judged against its own twin
        twin = f"jax.nn.{name}" if name in ("elu", "celu", "selu") else None
        ref_name = twin if (shape, dtype, twin) in by else "jax.nn.relu"
        ref = by[(shape, dtype, ref_name)]
        check = {
            "check": f"{act} temp bytes <= {ref_name}'s, {shape} {dtype}",
            "value": r["temp_bytes"],
            "limit": ref["temp_bytes"],
            "passed": bool(r["temp_bytes"] <= ref["temp_bytes"]),
        }
        flax_prelu = by.get((shape, dtype, "flax.linen.PReLU formula"))
        if act in EXPECTED_MISSES:
            check["expected"] = EXPECTED_MISSES[act]
        if act in EXPECTED_MISSES and flax_prelu is not None:
            out.append(check)
            check = {  # what it is judged against instead
                "check": f"{act} temp bytes <= flax.linen.PReLU formula's, "
                f"{shape} {dtype}",
                "value": r["temp_bytes"],
                "limit": flax_prelu["temp_bytes"],
                "passed": bool(r["temp_bytes"] <= flax_prelu["temp_bytes"]),
            }
        out.append(check)
        if r["ratio_relu_min"] is not None:
            out.append(
                {
                    "check": f"{act} step time / jax.nn.relu's, {shape} {dtype}",
                    "value": r["ratio_relu_min"],
                    "median": r["ratio_relu_median"],
                    "limit": 1.02,
                    "passed": bool(r["ratio_relu_min"] <= 1.02),
                    "judged": backend != "cpu",
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
        prog="python -m benchmarks.bench_train_step",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="~1 minute on CPU: the test shape only (memory, 3 timing rounds), "
        "no anchors shape, no CNN / seeds part",
    )
    p.add_argument("--dtypes", type=str, default="float32,bfloat16")
    p.add_argument(
        "--acts",
        type=str,
        default=None,
        help="only these activations (labels, e.g. 'leakyjax.leaky_relu'); "
        "identity and jax.nn.relu are always included",
    )
    p.add_argument(
        "--shape",
        type=str,
        default=None,
        help="a custom shape 'B,W,DEPTH' instead of the test and anchors shapes",
    )
    p.add_argument("--rounds", type=int, default=None, help="timing rounds")
    p.add_argument(
        "--anchors-rounds",
        type=int,
        default=None,
        help="timing rounds at the anchors shape (0: memory only)",
    )
    p.add_argument("--target-ms", type=float, default=100.0)
    p.add_argument(
        "--no-train-stack",
        action="store_true",
        help="skip the mnist1d CNN step and the seeds-in-one-program speedup",
    )
    p.add_argument("--name", type=str, default=None)
    p.add_argument("--out", type=str, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.dtypes = _csv(args.dtypes)
    for d in args.dtypes:
        if d not in DTYPES:
            p.error(f"--dtypes: unknown dtype {d!r}; choose from {sorted(DTYPES)}")
    if args.acts is not None:
        labels = {a.label for a in ACTIVATIONS}
        args.acts = _csv(args.acts)
        bad = [a for a in args.acts if a not in labels]
        if bad:
            p.error(f"--acts: unknown {bad}; choose from {sorted(labels)}")
    if args.shape is not None:
        try:
            b, w, d = (int(v) for v in _csv(args.shape))
        except ValueError:
            p.error(f"--shape must be 'B,W,DEPTH' (three integers), got {args.shape!r}")
        if min(b, w, d) < 1:
            p.error(f"--shape: B, W and DEPTH must be >= 1, got {args.shape!r}")
        args.shape = dict(batch=b, width=w, depth=d)
    if args.rounds is None:
        args.rounds = 3 if args.quick else 9
    if args.anchors_rounds is None:
        args.anchors_rounds = 3
    if args.rounds < 0 or args.anchors_rounds < 0 or args.target_ms <= 0:
        p.error("--rounds and --anchors-rounds must be >= 0, --target-ms > 0")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    env = environment()
    acts = ACTIVATIONS
    if args.acts is not None:
        keep = set(args.acts) | {"identity", "jax.nn.relu"}
        acts = [a for a in ACTIVATIONS if a.label in keep]
    if args.shape is not None:
        plan = [("custom", args.shape, args.rounds)]
    else:
        shapes = shapes_for(env["backend"])
        plan = [("test", shapes["test"], args.rounds)]
        if not args.quick:
            plan.append(("anchors", shapes["anchors"], args.anchors_rounds))
    t_start = time.perf_counter()
    bar = progress(
        total=len(plan) * len(args.dtypes) * len(acts),
        desc="bench_train_step (compile)",
        leave=False,
    )
    rows = []
    for shape_name, shape, rounds in plan:
        rows += mlp_results(
            shape_name,
            shape,
            args.dtypes,
            acts,
            rounds=rounds,
            target_s=args.target_ms / 1e3,
            seed=args.seed,
            bar=bar,
        )
    bar.close()
    train_stack = None
    if not (args.quick or args.no_train_stack or args.shape is not None):
        from benchmarks import train_stack as ts

        train_stack = ts.run(seed=args.seed, cnn_rounds=max(args.rounds, 3))
    result = {
        "benchmark": "train_step",
        "environment": env,
        "config": {
            "quick": args.quick,
            "dtypes": args.dtypes,
            "shapes": {name: shape for name, shape, _ in plan},
            "rounds": {name: r for name, _, r in plan},
            "target_ms": args.target_ms,
            "command": "python -m benchmarks.bench_train_step "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "wall_s": time.perf_counter() - t_start,
        },
        "results": rows,
        "train_stack": train_stack,
        "checks": checks(rows, env["backend"]),
    }
    name = args.name or (
        f"train_step_{env['backend']}{'_quick' if args.quick else ''}_{env['date']}"
    )
    path = Path(args.out) if args.out else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, result)
    print(f"wrote {path} ({len(rows)} rows, {result['config']['wall_s']:.0f} s)")
    for r in rows:
        t = (
            f"{r['min_ms']:8.2f} ms (x{r['ratio_relu_min']:.2f} relu)"
            if r["min_ms"] is not None
            else "    (not timed)"
        )
        print(
            f"{r['shape']:8s} {r['dtype']:9s} {r['act']:26s} "
            f"temp {r['temp_bytes'] / 2**20:8.1f} MiB  {t}"
        )
    report_checks([c for c in result["checks"] if c.get("judged", True)])
    return result


if __name__ == "__main__":
    sys.exit(exit_status(main()["checks"]))
