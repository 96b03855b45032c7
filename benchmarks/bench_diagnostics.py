"""What the three unit scores cost inside a jitted train step.

Two jitted train steps of the same model (Dense + leakyjax activation layers,
softmax cross-entropy, Adam, params donated) are timed side by side:

* ``plain``: ``jax.value_and_grad`` and the optimiser update;
* ``scores``: :func:`leakyjax.diagnostics.value_grad_and_probes` (the same
  backward pass, with the pre-activation gradients of every activation layer)
  and :func:`leakyjax.diagnostics.update_scores` (never positive, τ-dormant and
  gradient sums, carried in the step's state).

Two model kinds: a ``flax.linen`` MLP built from leakyjax linen modules, and a
plain function whose layers call :func:`leakyjax.diagnostics.tap`. Rounds
interleave the variants in a shuffled order; each round times ``steps``
synchronous steps (``block_until_ready``); we report the min and the median
over rounds and the overhead ``scores / plain - 1`` of both, and, from XLA's
``cost_analysis()`` of the two compiled steps, the extra floating-point
operations and bytes accessed (deterministic for a backend and jax version).
The goal is at most 5% of a step. Timings on a CPU are reported, not judged
(as the other benchmarks: a shared CPU's timings move with its load); the
flops check is judged everywhere.

Usage::

    python -m benchmarks.bench_diagnostics --quick    # ~1 minute on CPU
    python -m benchmarks.bench_diagnostics            # the published run
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import RESULTS_DIR, environment, report_checks
from leakyjax._src.io import write_json

GOAL = 0.05


def _adam():
    import optax

    return optax.adam(1e-3)


def _data(batch: int, width: int):
    kx, ky = jax.random.split(jax.random.key(1))
    x = jax.random.normal(kx, (batch, width))
    y = jax.random.randint(ky, (batch,), 0, 10)
    return x, y


def _ce(logits, y):
    import optax

    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def build_linen(batch: int, width: int, depth: int, act: str):
    """(init_params, loss(params, x, y)) of a linen MLP of leakyjax modules."""
    import flax.linen as nn

    import leakyjax.linen as ljnn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            for _ in range(depth):
                x = ljnn.Activation(act)(nn.Dense(width)(x))
            return nn.Dense(10)(x)

    model = MLP()
    x, _ = _data(batch, width)
    params = model.init(jax.random.key(0), x)["params"]
    return params, lambda p, x, y: _ce(model.apply({"params": p}, x), y)


def build_function(batch: int, width: int, depth: int, act: str):
    """(init_params, loss) of a plain-function MLP whose layers call ``tap``."""
    from leakyjax import diagnostics as dg
    from leakyjax._src import initializers

    keys = jax.random.split(jax.random.key(0), depth + 1)
    kinit = initializers.for_activation(act)
    params = [
        {"w": kinit(keys[i], (width, width)), "b": jnp.zeros(width)}
        for i in range(depth)
    ] + [{"w": kinit(keys[-1], (width, 10)) / 4, "b": jnp.zeros(10)}]

    def loss(p, x, y):
        for i, layer in enumerate(p[:-1]):
            x = dg.tap(f"act_{i}", x @ layer["w"] + layer["b"], act)
        return _ce(x @ p[-1]["w"] + p[-1]["b"], y)

    return params, loss


def steps_for(params, loss: Callable, x, y) -> dict[str, Callable]:
    """The two jitted steps and their initial carries."""
    import optax

    from leakyjax import diagnostics as dg

    tx = _adam()

    def plain(carry, x, y):
        p, o = carry
        value, g = jax.value_and_grad(loss)(p, x, y)
        u, o = tx.update(g, o, p)
        return (optax.apply_updates(p, u), o), value

    def scores(carry, x, y):
        p, o, s = carry
        value, g, probes = dg.value_grad_and_probes(loss)(p, x, y)
        s = dg.update_scores(s, probes)
        u, o = tx.update(g, o, p)
        return (optax.apply_updates(p, u), o, s), value

    probes = jax.eval_shape(
        lambda p: dg.value_grad_and_probes(loss)(p, x, y)[2], params
    )
    state = dg.init_scores(probes)
    return {
        "plain": (jax.jit(plain, donate_argnums=0), (params, tx.init(params))),
        "scores": (
            jax.jit(scores, donate_argnums=0),
            (params, tx.init(params), state),
        ),
    }


def _copy(tree):
    return jax.tree.map(lambda a: jnp.array(a, copy=True), tree)


def time_model(
    name: str, build: Callable, *, batch, width, depth, act, rounds, steps
) -> dict:
    params, loss = build(batch, width, depth, act)
    x, y = _data(batch, width)
    variants = steps_for(params, loss, x, y)
    carries, times = {}, {k: [] for k in variants}
    for k, (fn, carry) in variants.items():  # compile and warm up
        carry = _copy(carry)
        for _ in range(2):
            carry, v = fn(carry, x, y)
        jax.block_until_ready(v)
        carries[k] = carry
    rng = random.Random(0)
    for _ in range(rounds):
        order = list(variants)
        rng.shuffle(order)
        for k in order:
            fn = variants[k][0]
            carry = carries[k]
            t0 = time.perf_counter()
            for _ in range(steps):
                carry, v = fn(carry, x, y)
            jax.block_until_ready((carry, v))
            times[k].append((time.perf_counter() - t0) / steps)
            carries[k] = carry
    cost = {}
    for k, (fn, carry) in variants.items():
        ca = fn.lower(carry, x, y).compile().cost_analysis()
        ca = ca[0] if isinstance(ca, (list, tuple)) else ca
        cost[k] = {
            m: float(ca.get(m, float("nan"))) for m in ("flops", "bytes accessed")
        }
    med = {k: float(np.median(v)) for k, v in times.items()}
    mins = {k: float(np.min(v)) for k, v in times.items()}
    # the scores really were accumulated: every example of every step counted
    s = carries["scores"][2]
    counted = {n: int(st.count) for n, st in s.items()}
    return dict(
        model=name,
        batch=batch,
        width=width,
        depth=depth,
        activation=act,
        layers=len(counted),
        examples_counted=min(counted.values()),
        min_s=mins,
        median_s=med,
        overhead=mins["scores"] / mins["plain"] - 1.0,
        overhead_median=med["scores"] / med["plain"] - 1.0,
        cost=cost,
        flops_overhead=cost["scores"]["flops"] / cost["plain"]["flops"] - 1.0,
        bytes_overhead=cost["scores"]["bytes accessed"]
        / cost["plain"]["bytes accessed"]
        - 1.0,
    )


def markdown(rows: list[dict]) -> str:
    out = [
        "| model | batch x width x depth | plain step (min) | with three scores (min) "
        "| overhead (min) | overhead (median) | extra flops | extra bytes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['model']} | {r['batch']} x {r['width']} x {r['depth']} | "
            f"{1e3 * r['min_s']['plain']:.2f} ms | "
            f"{1e3 * r['min_s']['scores']:.2f} ms | {100 * r['overhead']:+.1f}% | "
            f"{100 * r['overhead_median']:+.1f}% | "
            f"{100 * r['flops_overhead']:+.2f}% | {100 * r['bytes_overhead']:+.1f}% |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small shapes, few rounds")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="JSON results path")
    args = ap.parse_args(argv)
    small = dict(batch=128, width=256, depth=3)
    if args.quick:
        shapes = [small]
        rounds, steps = args.rounds or 5, 5
    else:  # a small step (where fixed costs weigh most) and a larger one
        shapes = [small, dict(batch=512, width=1024, depth=4)]
        rounds, steps = args.rounds or 21, 5
    rows = []
    for shape in shapes:
        for name, build in (("linen", build_linen), ("function", build_function)):
            r = time_model(
                name, build, **shape, act="leaky_relu:0.2", rounds=rounds, steps=steps
            )
            rows.append(r)
            print(
                f"{name} {r['batch']}x{r['width']}x{r['depth']}: plain "
                f"{1e3 * r['min_s']['plain']:.2f} ms, scores "
                f"{1e3 * r['min_s']['scores']:.2f} ms (min), overhead "
                f"{100 * r['overhead']:+.1f}% (min), "
                f"{100 * r['overhead_median']:+.1f}% (median)",
                flush=True,
            )
    timed = not args.quick and jax.default_backend() != "cpu"
    checks = []
    for r in rows:
        where = f"{r['model']} {r['batch']}x{r['width']}x{r['depth']}"
        checks.append(
            dict(
                check=f"{where}: the three scores cost <= {GOAL:.0%} of a step "
                f"({100 * r['overhead']:+.1f}% on the minima)",
                passed=bool(r["overhead"] <= GOAL),
                judged=timed,
            )
        )
        checks.append(
            dict(
                check=f"{where}: <= {GOAL:.0%} more flops "
                f"({100 * r['flops_overhead']:+.2f}%)",
                passed=bool(r["flops_overhead"] <= GOAL),
            )
        )
    print(markdown(rows))
    out = args.out or (
        RESULTS_DIR / f"diagnostics_{jax.default_backend()}.json"
        if not args.quick
        else None
    )
    if out is not None:
        write_json(
            Path(out),
            dict(
                benchmark="diagnostics",
                environment=environment(),
                config=dict(shapes=shapes, rounds=rounds, steps=steps, goal=GOAL),
                rows=rows,
                checks=checks,
            ),
        )
        print(f"wrote {out}")
    return report_checks(checks)


if __name__ == "__main__":
    sys.exit(main())
