"""Train-stack benchmarks: CNN steps, the loop's overhead, seeds, ``make demo``.

Needs the ``train`` extra (``pip install "leakyjax[train]"``). Used by
``python -m benchmarks.bench_train_step`` (full mode); it can also run alone::

    python -m benchmarks.train_stack

* CNN step: the model of ``leakyjax compare --model cnn`` (``make_model("cnn",
  spec, 10)``: 3 conv layers of 25 channels, kernels 5/3/3, stride 2, the
  mnist1d notebook's ConvBase), AdamW as built by ``make_optimizer(TrainConfig(...))``, a batch of 100
  mnist1d examples, params and optimiser state donated; one compiled step per
  activation (registry spec), timed interleaved; compiled memory as for the MLP.
* Loop overhead (``--parts loop``): per-step time of a model inside
  [`leakyjax.train.train`][] (the one loop, ``chunking="auto"`` and
  ``"scan"``) against the same vmapped train step jitted alone, as a ratio in
  one run. In-loop time per step is ``(T(n2) - T(n1)) / (n2 - n1)`` of two warm
  ``train`` calls (compile time excluded, one evaluation at each end), so it
  counts everything the loop does per step (data order, index transfer,
  dispatch). Cases: the digits 2-D CNN and the mnist1d CNN (2 seeds) and the
  mnist1d MLP.
* ``make demo`` (``--parts demo --before REV``): wall time and XLA compile
  count of ``leakyjax compare`` (the demo) at git revision ``REV`` (exported
  with ``git archive``) and at the working tree, cold and with a warm
  persistent compilation cache, in one run (``benchmarks/count_compiles.py``).
* Seeds in one program: ``train(config, seeds=(0, 1, 2, 3, 4))`` (one vmapped
  program, what ``leakyjax compare`` runs) against five calls
  ``train(config, seeds=(s,))``, on the default ``leakyjax compare`` configuration
  (mnist1d MLP, 3000 steps), with the data set loaded once outside the timing.
"""

from __future__ import annotations

import functools
import json
import math
import random
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import compiled_memory, environment
from leakyjax._src.io import write_json

CNN_ACTS = (
    "identity",
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "prelu",
    "gelu",
)


def _train_modules():
    try:
        import optax

        from leakyjax._src.train import (
            TrainConfig,
            load_dataset,
            make_model,
            make_optimizer,
            train,
        )
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            'benchmarks.train_stack needs the training stack: pip install "leakyjax[train]"'
        ) from e
    return optax, TrainConfig, load_dataset, make_model, make_optimizer, train


def cnn_steps(
    acts=CNN_ACTS,
    *,
    batch: int = 100,
    rounds: int = 7,
    target_s: float = 0.1,
    seed: int = 0,
    dataset=None,
) -> list[dict]:
    """Compile time, compiled memory and step time of the mnist1d CNN per spec."""
    optax, TrainConfig, load_dataset, make_model, make_optimizer, _ = _train_modules()
    ds = load_dataset("mnist1d") if dataset is None else dataset
    xb = jnp.asarray(ds.x_train[:batch])
    yb = jnp.asarray(ds.y_train[:batch])
    cases = []
    for spec in acts:
        model = make_model("cnn", spec, ds.num_outputs)
        tx = make_optimizer(TrainConfig(activation=spec, model="cnn"))
        params = model.init(jax.random.key(seed), xb[:1], train=False)["params"]
        opt_state = tx.init(params)

        def loss_fn(p, x, y, model=model):
            out = model.apply({"params": p}, x, train=True)
            return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def step(p, s, x, y, loss_fn=loss_fn, tx=tx):
            g = jax.grad(loss_fn)(p, x, y)
            updates, s = tx.update(g, s, p)
            return optax.apply_updates(p, updates), s

        t0 = time.perf_counter()
        compiled = step.lower(params, opt_state, xb, yb).compile()
        compile_s = time.perf_counter() - t0
        mem = compiled_memory(compiled)
        state = {"ps": (params, opt_state)}

        def run(k, compiled=compiled, state=state):
            p, s = state["ps"]
            start = time.perf_counter()
            for _ in range(k):
                p, s = jax.block_until_ready(compiled(p, s, xb, yb))
            elapsed = time.perf_counter() - start
            state["ps"] = (p, s)
            return elapsed

        cases.append((spec, compile_s, mem, run))
    ks = []
    for _, _, _, run in cases:
        run(2)
        ks.append(max(1, min(10_000, math.ceil(target_s / max(run(1), 1e-6)))))
    samples = [[] for _ in cases]
    order = list(range(len(cases)))
    rng = random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for i in order:
            samples[i].append(cases[i][3](ks[i]) / ks[i])
    rows = []
    for (spec, compile_s, mem, _), s in zip(cases, samples):
        rows.append(
            {
                "model": "cnn",
                "dataset": "mnist1d",
                "batch": batch,
                "act": spec,
                "dtype": "float32",
                "compile_s": compile_s,
                "temp_bytes": mem.temp,
                "argument_bytes": mem.argument,
                "output_bytes": mem.output,
                "rounds": len(s),
                "min_ms": float(np.min(s) * 1e3),
                "median_ms": float(np.median(s) * 1e3),
            }
        )
    by = {r["act"]: r for r in rows}
    for r in rows:
        for key in ("identity", "relu"):
            o = by.get(key)
            for stat in ("min", "median"):
                r[f"ratio_{key}_{stat}"] = (
                    r[f"{stat}_ms"] / o[f"{stat}_ms"] if o is not None else None
                )
    return rows


def seeds_speedup(
    activation: str = "leaky_relu",
    *,
    num_seeds: int = 5,
    steps: int = 3000,
    repeats: int = 2,
    dataset=None,
) -> dict:
    """Wall time of ``num_seeds`` seeds in one ``train`` call vs one call each.

    A short warm-up of both paths first (one-time tracing and library set-up
    would otherwise bias whichever runs first); then ``repeats`` alternating
    measurements of each, reporting the fastest of each.
    """
    _, TrainConfig, load_dataset, _, _, train = _train_modules()
    cfg = TrainConfig(activation=activation, steps=steps)
    ds = load_dataset(cfg.dataset) if dataset is None else dataset
    seeds = tuple(range(num_seeds))
    warm = cfg._replace(steps=2 * cfg.eval_every)
    train(warm, seeds=(1000,), dataset=ds)
    train(warm, seeds=tuple(range(1000, 1000 + num_seeds)), dataset=ds)
    together_runs, separate_runs = [], []
    for i in range(repeats):
        order = ("separate", "together") if i % 2 == 0 else ("together", "separate")
        for what in order:
            if what == "together":
                together_runs.append(train(cfg, seeds=seeds, dataset=ds))
            else:
                separate_runs.append(
                    [train(cfg, seeds=(s,), dataset=ds) for s in seeds]
                )
    together = min(together_runs, key=lambda r: r.wall_time)
    singles = min(separate_runs, key=lambda rs: sum(r.wall_time for r in rs))
    wall_1 = sum(r.wall_time for r in singles)
    comp_1 = sum(r.compile_time for r in singles)
    acc_1 = np.array([r.runs[0].final_test_acc for r in singles])
    acc_n = np.array([r.final_test_acc for r in together.runs])
    return {
        "config": cfg._asdict(),
        "num_seeds": num_seeds,
        "repeats": repeats,
        "together_wall_s": together.wall_time,
        "together_compile_s": together.compile_time,
        "together_wall_all_s": [r.wall_time for r in together_runs],
        "separate_wall_s": wall_1,
        "separate_compile_s": comp_1,
        "separate_wall_all_s": [sum(r.wall_time for r in rs) for rs in separate_runs],
        "separate_wall_each_s": [r.wall_time for r in singles],
        "speedup": wall_1 / together.wall_time,
        "speedup_excluding_compile": (wall_1 - comp_1)
        / (together.wall_time - together.compile_time),
        "final_test_acc_separate": acc_1.tolist(),
        "final_test_acc_together": acc_n.tolist(),
        "max_abs_diff_final_test_acc": float(np.max(np.abs(acc_1 - acc_n))),
    }


LOOP_CASES = (
    ("cnn", "digits", 2),
    ("cnn", "mnist1d", 2),
    ("mlp", "mnist1d", 2),
)


def loop_overhead(
    cases=LOOP_CASES, *, steps: tuple[int, int] = (20, 120), rounds: int = 3
) -> list[dict]:
    """Per-step time inside ``train`` vs the same vmapped step jitted alone."""
    rows = []
    for case in cases:
        rows.append(_loop_case(*case, steps=steps, rounds=rounds))
        print(f"train_stack loop: {rows[-1]}", file=sys.stderr)
    return rows


def _loop_case(model: str, dataset: str, num_seeds: int, *, steps, rounds) -> dict:
    optax, TrainConfig, load_dataset, _, make_optimizer, train = _train_modules()
    from leakyjax._src.train.loop import _model_and_key

    base = TrainConfig(
        model=model, dataset=dataset, activation="relu", val_fraction=0.0
    )
    ds = load_dataset(dataset)
    seeds = tuple(range(num_seeds))
    net, _ = _model_and_key(base, None, ds)
    tx = make_optimizer(base)
    x, y = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)

    def init(key):
        p, e = net.init(key, x[:1])
        return p, e, tx.init(p)

    def step(state, idx):
        p, e, s = state

        def loss_fn(p):
            out, e2 = net.apply(p, e, x[idx], True, jax.random.key(0))
            loss = optax.softmax_cross_entropy_with_integer_labels(out, y[idx])
            return loss.mean(), e2

        (_, e2), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), e2, s

    alone = jax.jit(jax.vmap(step), donate_argnums=0)
    state = jax.vmap(init)(jnp.stack([jax.random.key(s) for s in seeds]))
    idx = jnp.asarray(
        np.random.default_rng(0).integers(0, len(ds.y_train), (num_seeds, 100))
    )
    state = jax.block_until_ready(alone(state, idx))

    held = {"state": state}  # donated on every call: keep the newest

    def time_alone(k, held=held, alone=alone, idx=idx):
        state = held["state"]
        t0 = time.perf_counter()
        for _ in range(k):
            state = jax.block_until_ready(alone(state, idx))
        held["state"] = state
        return (time.perf_counter() - t0) / k

    def time_loop(chunking, base=base, ds=ds, seeds=seeds):
        ts = {}
        for n in steps:
            cfg = base._replace(steps=n, eval_every=n, warmup_steps=1)
            train(cfg, seeds, dataset=ds, chunking=chunking)  # compile
            r = train(cfg, seeds, dataset=ds, chunking=chunking)
            ts[n] = r.wall_time - r.compile_time
        return (ts[steps[1]] - ts[steps[0]]) / (steps[1] - steps[0]), r.chunking

    samples = {"alone": [], "auto": [], "scan": []}
    used = None
    for _ in range(rounds):  # interleaved
        samples["alone"].append(time_alone(steps[1] - steps[0]))
        t, used = time_loop("auto")
        samples["auto"].append(t)
        samples["scan"].append(time_loop("scan")[0])
    med = {k: float(np.median(v)) for k, v in samples.items()}
    return {
        "model": model,
        "dataset": dataset,
        "seeds": num_seeds,
        "batch": 100,
        "auto_chunking": used,
        "alone_ms": med["alone"] * 1e3,
        "in_loop_auto_ms": med["auto"] * 1e3,
        "in_loop_scan_ms": med["scan"] * 1e3,
        "ratio_auto": med["auto"] / med["alone"],
        "ratio_scan": med["scan"] / med["alone"],
        "samples_ms": {k: [v * 1e3 for v in vs] for k, vs in samples.items()},
    }


def demo(before: str, *, argv: tuple[str, ...] = ()) -> dict:
    """``leakyjax compare`` at git revision ``before`` vs the working tree."""
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    from benchmarks.count_compiles import extract_revision

    repo = Path(__file__).resolve().parent.parent
    counter = str(repo / "benchmarks" / "count_compiles.py")
    out: dict = {"revision": before, "argv": list(argv)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        old = extract_revision(repo, before, tmp / "before")
        runs = (
            ("before", old, "1"),
            ("after_cold", repo, ""),
            ("after_warm", repo, ""),
        )
        for name, root, no_cache in runs:
            env = dict(
                os.environ,
                PYTHONPATH=str(root),
                LEAKYJAX_NO_COMPILE_CACHE=no_cache,
                LEAKYJAX_CACHE_DIR=str(tmp / "cache"),
            )
            res = tmp / f"{name}.json"
            cmd = [sys.executable, counter, str(res), "--", "compare", *argv]
            cmd += ["--out", str(tmp / f"run_{name}"), "--no-progress"]
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            out[name] = json.loads(res.read_text())
            print(f"train_stack demo {name}: {out[name]}", file=sys.stderr)
    return out


def run(*, seed: int = 0, cnn_rounds: int = 7, steps: int = 3000) -> dict:
    """Both parts; returns a JSON-ready dict (progress on stderr)."""
    _, _, load_dataset, _, _, _ = _train_modules()
    ds = load_dataset("mnist1d")
    print("train_stack: mnist1d CNN steps ...", file=sys.stderr)
    cnn = cnn_steps(rounds=cnn_rounds, seed=seed, dataset=ds)
    print(
        "train_stack: 5 seeds in one program vs 5 x 1 seed ...",
        file=sys.stderr,
    )
    speed = seeds_speedup(steps=steps, dataset=ds)
    return {"cnn": cnn, "seeds": speed}


def main(argv=None) -> dict:
    import argparse
    from pathlib import Path

    p = argparse.ArgumentParser(
        prog="python -m benchmarks.train_stack",
        description="mnist1d CNN train step and seeds-in-one-program speedup.",
    )
    p.add_argument("--parts", default="cnn,seeds", help="any of cnn, seeds, loop, demo")
    p.add_argument("--before", default=None, help="git revision for --parts demo")
    p.add_argument(
        "--loop-steps", default="20,120", help="n1,n2: the two train() lengths"
    )
    p.add_argument("--loop-rounds", type=int, default=3, help="interleaved rounds")
    p.add_argument(
        "--demo-args",
        default="",
        help="extra compare flags for --parts demo (default: the full demo)",
    )
    p.add_argument("--rounds", type=int, default=7, help="CNN timing rounds")
    p.add_argument("--steps", type=int, default=3000, help="steps of the seeds part")
    p.add_argument("--out", default=None, help="write the JSON here")
    args = p.parse_args(argv)
    parts = {v.strip() for v in args.parts.split(",") if v.strip()}
    if not parts or parts - {"cnn", "seeds", "loop", "demo"}:
        p.error(f"--parts must name cnn, seeds, loop or demo, got {args.parts!r}")
    if "demo" in parts and not args.before:
        p.error("--parts demo needs --before REV (the revision to compare with)")
    _, _, load_dataset, _, _, _ = _train_modules()
    ds = load_dataset("mnist1d")
    out = {
        "benchmark": "train_stack",
        "environment": environment(),
        "command": "python -m benchmarks.train_stack "
        + " ".join(sys.argv[1:] if argv is None else argv),
    }
    if "cnn" in parts:
        out["cnn"] = cnn_steps(rounds=args.rounds, dataset=ds)
    if "seeds" in parts:
        out["seeds"] = seeds_speedup(steps=args.steps, dataset=ds)
    if "loop" in parts:
        n1, n2 = (int(v) for v in args.loop_steps.split(","))
        out["loop"] = loop_overhead(steps=(n1, n2), rounds=args.loop_rounds)
    if "demo" in parts:
        out["demo"] = demo(args.before, argv=tuple(args.demo_args.split()))
    text = json.dumps(out, indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, out)
        print(f"wrote {args.out}")
    else:
        print(text)
    return out


if __name__ == "__main__":
    main()
