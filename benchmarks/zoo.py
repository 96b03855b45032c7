"""Train-step memory (and optionally time) of every activation on the model zoo.

For each zoo model (``benchmarks.common.ZOO``: MLP unrolled / under lax.scan /
with jax.checkpoint per layer, ResNet-style CNN with BatchNorm and skips, pre-LN
transformer MLP blocks, equinox.nn.MLP, a flax.nnx MLP), dtype (float32 and
truly bfloat16 weights, asserted) and activation, the SGD train step is
compiled and ``memory_analysis().temp_size_in_bytes`` recorded (deterministic
for a backend and jax version). The one-bit bound of a model is the identity's
temp memory plus ``act_elements / 8`` bytes. With ``--time`` the steps of each
(model, dtype) are also timed, interleaved, and reported as ratios to the
jax.nn counterpart within the run.

``--target`` compiles for another chip without one (`benchmarks/targets.py`):
``h100`` (XLA:GPU) and ``tpu-v5e`` (XLA:TPU) need their compiler installed
(``python -m benchmarks.targets venv h100 DIR``); their results record that
they are deviceless compiles. ``mlp_dp`` is data parallel over 4 devices: on
``cpu`` the run forces 4 host devices.

Usage::

    python -m benchmarks.zoo                 # bench shapes, memory only, cpu
    python -m benchmarks.zoo --target h100   # the same, compiled for an H100
    python -m benchmarks.zoo --test-shapes   # the shapes of tests/test_memory.py
    python -m benchmarks.zoo --time --models mlp,resnet
    python -m tools.render_results           # re-render the docs' zoo tables
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import (
    RESULTS_DIR,
    ZOO,
    ZOO_BY_NAME,
    assert_param_dtype,
    environment,
    kernel_count,
    weights,
    zoo_activations,
)
from benchmarks.targets import TARGETS, compile_step
from leakyjax._src.io import progress, write_json

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _versions() -> dict:
    out = {}
    for mod in ("jax", "jaxlib", "flax", "equinox", "numpy"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    return out


def _time(cases: list, rounds: int, target_s: float) -> list[list[float]]:
    """Per-step seconds, interleaved in a shuffled order every round."""
    import math
    import random

    ks = []
    for c in cases:
        c["run"](1)
        ks.append(max(1, min(200, math.ceil(target_s / max(c["run"](1), 1e-6)))))
    samples = [[] for _ in cases]
    order = list(range(len(cases)))
    rng = random.Random(0)
    for _ in range(rounds):
        rng.shuffle(order)
        for i in order:
            samples[i].append(cases[i]["run"](ks[i]) / ks[i])
    return samples


def run(args) -> dict:
    acts = zoo_activations()
    if args.acts:
        keep = set(args.acts) | {"identity"}
        refs = {r for a, r in acts if a.label in keep and r}
        acts = [(a, r) for a, r in acts if a.label in keep | refs]
    rows = []
    models = [ZOO_BY_NAME[m] for m in args.models]
    total = sum(
        len([a for a, _ in acts if m.supports_learnable or not a.learnable])
        for m in models
    ) * len(args.dtypes)
    bar = progress(total=total, desc="zoo")
    for model in models:
        shape = model.test_shape if args.test_shapes else model.bench_shape
        for dname in args.dtypes:
            cases = []
            for act, ref in acts:
                if act.learnable and not model.supports_learnable:
                    continue
                step, params, x, y, n = model.build(act, DTYPES[dname], **shape)
                assert_param_dtype(
                    weights(params), DTYPES[dname], allow_f32_slopes=act.learnable
                )
                t0 = time.perf_counter()
                compiled = compile_step(
                    step, params, x, y, args.target, n=model.devices
                )
                compile_s = time.perf_counter() - t0
                m = compiled.memory_analysis()
                row = {
                    "model": model.name,
                    "shape": shape,
                    "dtype": dname,
                    "act": act.label,
                    "ref": ref,
                    "devices": model.devices,
                    "act_elements": n // model.devices,
                    "temp_bytes": int(m.temp_size_in_bytes),
                    "argument_bytes": int(m.argument_size_in_bytes),
                    "output_bytes": int(m.output_size_in_bytes),
                    "compile_s": compile_s,
                    "kernels": kernel_count(compiled.as_text()),
                }
                rows.append(row)
                if args.time:
                    state = {"p": params}

                    def run_k(k, compiled=compiled, state=state, x=x, y=y):
                        p = state["p"]
                        t = time.perf_counter()
                        for _ in range(k):
                            p = jax.block_until_ready(compiled(p, x, y))
                        state["p"] = p
                        return time.perf_counter() - t

                    cases.append({"row": row, "run": run_k})
                else:
                    del params
                bar.update(1)
            if cases:
                for c, s in zip(cases, _time(cases, args.rounds, args.target_ms / 1e3)):
                    c["row"]["step_ms_samples"] = [v * 1e3 for v in s]
                    c["row"]["step_ms_min"] = float(np.min(s) * 1e3)
                    c["row"]["step_ms_median"] = float(np.median(s) * 1e3)
            del cases
    bar.close()
    _derive(rows)
    target = TARGETS[args.target]
    return {
        "benchmark": "zoo",
        "target": {
            "name": target.name,
            "platform": target.platform,
            "description": target.description,
            "deviceless": target.name != "cpu",
        },
        "environment": environment(),
        "versions": _versions(),
        "git_commit": _git_commit(),
        "config": {
            "command": "python -m benchmarks.zoo " + " ".join(args.argv),
            "models": args.models,
            "dtypes": args.dtypes,
            "test_shapes": args.test_shapes,
            "target": args.target,
            "time": args.time,
            "rounds": args.rounds if args.time else 0,
        },
        "results": rows,
    }


def _derive(rows: list[dict]) -> None:
    """One-bit bound, and ratios to the counterpart within the run."""
    by = {(r["model"], r["dtype"], r["act"]): r for r in rows}
    for r in rows:
        ident = by.get((r["model"], r["dtype"], "identity"))
        r["one_bit_bound_bytes"] = (
            ident["temp_bytes"] + r["act_elements"] // 8 if ident else None
        )
        ref = by.get((r["model"], r["dtype"], r["ref"])) if r["ref"] else None
        r["ref_temp_bytes"] = ref["temp_bytes"] if ref else None
        if ref and "step_ms_samples" in r and "step_ms_samples" in ref:
            a, b = np.asarray(r["step_ms_samples"]), np.asarray(ref["step_ms_samples"])
            r["time_ratio_ref_paired"] = float(np.median(a / b))
            r["time_ratio_ref_min"] = float(a.min() / b.min())


def _force_host_devices(args) -> None:
    """Data-parallel models on ``--target cpu`` need that many host devices:
    forced before jax starts its backend (compiled memory is per device)."""
    need = max(ZOO_BY_NAME[m].devices for m in args.models)
    flag = f"--xla_force_host_platform_device_count={need}"
    if (
        args.target == "cpu"
        and need > 1
        and "device_count" not in os.environ.get("XLA_FLAGS", "")
    ):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.zoo", description=__doc__)
    p.add_argument("--models", default=",".join(m.name for m in ZOO))
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--acts", default=None, help="leakyjax labels to include")
    p.add_argument("--test-shapes", action="store_true")
    p.add_argument(
        "--target",
        default="cpu",
        choices=sorted(TARGETS),
        help="the compiler: cpu (this machine), or h100 / tpu-v5e compiled "
        "without a device",
    )
    p.add_argument("--time", action="store_true", help="also time the steps")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--target-ms", type=float, default=200.0)
    p.add_argument("--name", default=None)
    p.add_argument(
        "--out", default=None, help="write the JSON here (default: results/NAME.json)"
    )
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.models = [m for m in args.models.split(",") if m]
    bad = [m for m in args.models if m not in ZOO_BY_NAME]
    if bad:
        p.error(f"--models: unknown {bad}; choose from {sorted(ZOO_BY_NAME)}")
    args.dtypes = [d for d in args.dtypes.split(",") if d]
    if any(d not in DTYPES for d in args.dtypes):
        p.error(f"--dtypes: choose from {sorted(DTYPES)}")
    args.acts = [a for a in args.acts.split(",") if a] if args.acts else None
    if args.time and args.target != "cpu":
        p.error(
            "--time: only on --target cpu (the others are compiled without a device)"
        )
    _force_host_devices(args)
    result = run(args)
    env = result["environment"]
    name = args.name or f"zoo_{args.target}_{env['date']}"
    path = Path(args.out) if args.out else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, result)
    print(f"wrote {path} ({len(result['results'])} rows)")
    return result


if __name__ == "__main__":
    main()
