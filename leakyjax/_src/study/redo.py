r"""`redo`: dormant units under shifting targets, and what cures them.

Sokar, Agarwal, Castro and Evci (ICML 2023) report that the share of τ-dormant
units grows when a network is trained on non-stationary targets, and that
recycling them (ReDo, [`leakyjax.recycle_dormant`][leakyjax.recycle.recycle_dormant]) keeps it low and
improves performance. Their evidence is deep RL (DQN and DrQ on Atari, SAC on
MuJoCo) plus a supervised check with shifting targets; this study is the CPU-sized
supervised version.

Two tasks on mnist1d with an MLP (3 hidden layers, He initialisation):

* `permuted`: Adam, the ten class labels re-permuted (a fresh random
  bijection) every `K` steps, so the representation stays useful and only
  the read-out must be relearned -- non-stationary targets as in the paper's
  supervised experiments;
* `high_lr`: stationary labels, SGD with momentum 0.9 at a learning rate one
  step beyond the best one (the `dead-vs-lr` study's lr 0.3, where ReLU
  layers die).

Four variants share seeds and data order: ReLU; ReLU + ReDo (every `F` steps,
τ = 0.1, scored on a fixed probe batch of training examples; incoming weights
re-drawn from the He initialiser, outgoing set to 0, the optimiser's moments of
those weights zeroed); leaky_relu(0.01); ReLU with RAI initialisation
([`leakyjax.initializers.rai`][]). Every `F` steps we record the test
accuracy (under the current labelling), the τ-dormant fraction and the dead
fraction of the hidden units (pooled over layers, on the probe batch) --
before recycling, so the ReDo curve shows what accumulated in `F` steps.
"""

from __future__ import annotations

import itertools
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from leakyjax._src import initializers as _init
from leakyjax._src import recycle as _rc
from leakyjax._src import registry as _registry
from leakyjax._src.study import studies as S

NAME = "redo"
VARIANTS: dict[str, dict[str, Any]] = {
    "relu": dict(act="relu", init="he", redo=False),
    "relu+redo": dict(act="relu", init="he", redo=True),
    "leaky_relu": dict(act="leaky_relu:0.01", init="he", redo=False),
    "relu+rai": dict(act="relu", init="rai", redo=False),
}
TASKS = ("permuted", "high_lr")


def _init_params(key, sizes, act: str, init: str) -> dict:
    params = {}
    keys = jax.random.split(key, 2 * len(sizes))
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        last = i == len(sizes) - 2
        if last:
            kinit, binit = _init.for_activation("linear"), jax.nn.initializers.zeros
        elif init == "rai":
            kinit, binit = _init.rai(), _init.rai_bias(a)
        else:
            kinit, binit = _init.for_activation(act), jax.nn.initializers.zeros
        params[f"Dense_{i}"] = {
            "kernel": kinit(keys[2 * i], (a, b), jnp.float32),
            "bias": binit(keys[2 * i + 1], (b,), jnp.float32),
        }
    return params


def _forward(params, x, fn):
    hs = {}
    n = len(params)
    for i in range(n):
        layer = params[f"Dense_{i}"]
        x = x @ layer["kernel"] + layer["bias"]
        if i < n - 1:
            x = fn(x)
            hs[f"act_{i}"] = x
    return x, hs


def run_task(task: str, variant: str, *, cfg: dict, dataset) -> dict:
    """Trains every seed of one (task, variant); curves as (seeds, evals) lists."""
    import optax

    spec = VARIANTS[variant]
    fn = _registry.get(spec["act"])
    tcfg = cfg[task]
    steps, every = tcfg["steps"], cfg["recycle_every"]
    xtr = jnp.asarray(dataset.x_train.reshape(len(dataset.y_train), -1))
    ytr = np.asarray(dataset.y_train)
    xte = jnp.asarray(dataset.x_test.reshape(len(dataset.y_test), -1))
    yte = np.asarray(dataset.y_test)
    probe = xtr[: cfg["probe"]]
    sizes = (xtr.shape[1], *([cfg["width"]] * cfg["depth"]), 10)
    seeds = cfg["seeds"]
    if task == "permuted":
        tx = optax.adam(tcfg["lr"])
        period = tcfg["permute_every"]
    else:
        tx = optax.sgd(tcfg["lr"], momentum=0.9)
        period = steps  # never re-permuted
    n_seg = -(-steps // period)
    # per seed: label tables per segment (segment 0: identity) and batch order
    tables = np.stack(
        [
            np.stack(
                [np.arange(10)]
                + [
                    np.random.default_rng([s, 77, j]).permutation(10)
                    for j in range(1, n_seg)
                ]
            )
            for s in seeds
        ]
    )  # (seeds, segments, 10)
    order = np.stack(
        [
            np.random.default_rng([s, 13]).integers(0, len(ytr), (steps, cfg["batch"]))
            for s in seeds
        ]
    )  # (seeds, steps, batch)
    seg_of_step = np.arange(steps) // period
    keys = jnp.stack([jax.random.key(s) for s in seeds])
    params = jax.vmap(lambda k: _init_params(k, sizes, spec["act"], spec["init"]))(keys)
    opt = jax.vmap(tx.init)(params)
    he = _init.for_activation(spec["act"])

    def loss_fn(p, x, y):
        logits, _ = _forward(p, x, fn)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def chunk_one(p, o, idx, lab):
        def body(carry, inp):
            p, o = carry
            i, table = inp
            y = table[jnp.asarray(ytr)[i]]
            loss, g = jax.value_and_grad(loss_fn)(p, xtr[i], y)
            u, o = tx.update(g, o, p)
            return (optax.apply_updates(p, u), o), loss

        (p, o), losses = jax.lax.scan(body, (p, o), (idx, lab))
        return p, o, jnp.mean(losses)

    chunk = jax.jit(jax.vmap(chunk_one))

    @jax.jit
    def evaluate(p, table):
        def one(p, table):
            logits, _ = _forward(p, xte, fn)
            acc = jnp.mean(jnp.argmax(logits, -1) == table[jnp.asarray(yte)])
            _, hs = _forward(p, probe, fn)
            r = _rc.recycle_dormant(p, hs, tau=cfg["tau"], count_only=True)
            units = sum(r.units.values())
            dormant = sum(r.dormant.values()) / units
            dead = sum(r.dead.values()) / units
            return acc, dormant, dead

        return jax.vmap(one)(p, table)

    @jax.jit
    def recycle(p, o, key):
        def one(p, o, key):
            _, hs = _forward(p, probe, fn)
            r = _rc.recycle_dormant(
                p, hs, key=key, opt_state=o, tau=cfg["tau"], kernel_init=he
            )
            return r.params, r.opt_state, sum(r.recycled.values())

        return jax.vmap(one)(p, o, key)

    curve = dict(step=[], test_acc=[], dormant=[], dead=[], train_loss=[], recycled=[])
    tables_j = jnp.asarray(tables)
    for start in range(0, steps, every):
        stop = min(start + every, steps)
        lab = tables_j[:, seg_of_step[start:stop]]  # (seeds, k, 10)
        params, opt, loss = chunk(params, opt, jnp.asarray(order[:, start:stop]), lab)
        acc, dormant, dead = evaluate(params, tables_j[:, seg_of_step[stop - 1]])
        n_rec = np.zeros(len(seeds), np.int64)
        if spec["redo"] and stop < steps:
            rk = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, stop)
            params, opt, n_rec = recycle(params, opt, rk)
        curve["step"].append(stop)
        for k, v in (
            ("test_acc", acc),
            ("dormant", dormant),
            ("dead", dead),
            ("train_loss", loss),
            ("recycled", n_rec),
        ):
            curve[k].append(np.asarray(v, np.float64).tolist())
    # (evals, seeds) -> (seeds, evals)
    out = {
        k: (np.asarray(v).T.tolist() if k != "step" else v) for k, v in curve.items()
    }
    return dict(task=task, variant=variant, **out)


def _config(quick: bool, seed: int) -> dict:
    if quick:
        return dict(
            version=1,
            width=32,
            depth=3,
            batch=64,
            probe=256,
            tau=0.1,
            recycle_every=50,
            seeds=[seed],
            num_train=1000,
            num_test=500,
            permuted=dict(steps=300, permute_every=100, lr=1e-3),
            high_lr=dict(steps=200, lr=0.3),
        )
    return dict(
        version=1,
        width=100,
        depth=3,
        batch=128,
        probe=1024,
        tau=0.1,
        recycle_every=250,
        seeds=[seed, seed + 1, seed + 2],
        num_train=4000,
        num_test=1000,
        permuted=dict(steps=8000, permute_every=1000, lr=1e-3),
        high_lr=dict(steps=3000, lr=0.3),
    )


def _summarise_run(r: dict, cfg: dict) -> dict:
    acc = np.asarray(r["test_acc"], np.float64)  # (seeds, evals)
    dorm = np.asarray(r["dormant"], np.float64)
    dead = np.asarray(r["dead"], np.float64)
    n = acc.shape[1]
    tail = slice(n - max(1, n // 4), n)  # last quarter of the run
    out = dict(
        task=r["task"],
        variant=r["variant"],
        final_acc=float(acc[:, -1].mean()),
        final_acc_std=float(acc[:, -1].std()),
        mean_acc=float(acc.mean()),
        dormant_last_quarter=float(dorm[:, tail].mean()),
        dead_last_quarter=float(dead[:, tail].mean()),
        dormant_max=float(dorm.max()),
        recycled_total=float(np.asarray(r["recycled"]).sum(1).mean()),
    )
    if r["task"] == "permuted":
        # accuracy at the end of each labelling period (before the next shift)
        every = cfg["recycle_every"]
        k = cfg["permuted"]["permute_every"] // every
        ends = acc[:, k - 1 :: k]
        out["acc_end_of_period"] = ends.mean(0).tolist()
    return out


def _figure(path: Path, cfg: dict, runs: dict) -> Path:
    plt = S.pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex="col")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for col, task in enumerate(TASKS):
        for i, v in enumerate(VARIANTS):
            r = runs[(task, v)]
            step = np.asarray(r["step"])
            for row, key in enumerate(("test_acc", "dormant")):
                vals = np.asarray(r[key], np.float64)
                axes[row][col].plot(step, vals.mean(0), color=colors[i], label=v)
        axes[0][col].set_title(
            f"labels re-permuted every {cfg['permuted']['permute_every']} steps (Adam)"
            if task == "permuted"
            else f"SGD momentum 0.9, lr {cfg['high_lr']['lr']:g}"
        )
        axes[0][col].set_ylabel("test accuracy (current labels)")
        axes[1][col].set_ylabel(f"τ-dormant fraction (τ = {cfg['tau']:g})")
        axes[1][col].set_xlabel("step")
        for row in range(2):
            axes[row][col].grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("redo: mnist1d MLP, mean of seeds", fontsize=10)
    return S.save_figure(fig, path)


def _parts(cfg: dict, seed: int) -> dict:
    dataset = S.mnist1d_loader(cfg)

    def part(t: str, v: str) -> dict:
        return run_task(t, v, cfg=cfg, dataset=dataset())

    return {f"{t}_{v}": partial(part, t, v) for t in TASKS for v in VARIANTS}


def _runs(values: dict) -> dict:
    return {(t, v): values[f"{t}_{v}"] for t in TASKS for v in VARIANTS}


def _summarise(cfg: dict, values: dict) -> tuple[dict, dict]:
    runs = _runs(values)
    table = [_summarise_run(r, cfg) for r in runs.values()]
    lines = ["task / variant: final acc, mean acc, dormant (last quarter), dead"]
    for row in table:
        lines.append(
            f"  {row['task']:<9} {row['variant']:<11} acc {row['final_acc']:.3f} "
            f"mean {row['mean_acc']:.3f} dormant {row['dormant_last_quarter']:.3f} "
            f"dead {row['dead_last_quarter']:.3f}"
        )
    return dict(table=table, lines=lines), dict(runs=list(runs.values()))


def _plot(path: Path, cfg: dict, values: dict) -> Path:
    return _figure(path, cfg, _runs(values))


def render_markdown(res: dict) -> str:
    """The numbers of docs/STUDY.md's `redo` section, from the results JSON."""
    cfg = res["config"]
    out = [
        f"Mean over seeds ({len(cfg['seeds'])}). *final* / *mean*: test accuracy at the "
        "end / averaged over all evaluations; *dormant*, *dead*: share of hidden "
        f"units τ-dormant (τ = {cfg['tau']:g}) / never positive on the probe batch, "
        "averaged over the last quarter of the run; *recycled*: units recycled in "
        "total per seed.",
        "",
        "| task | variant | final acc (± std over seeds) | mean acc | dormant | dead |"
        " recycled |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["summary"]["table"]:
        out.append(
            f"| {r['task']} | {r['variant']} | {r['final_acc']:.3f} ± "
            f"{r['final_acc_std']:.3f} | "
            f"{r['mean_acc']:.3f} | {r['dormant_last_quarter']:.3f} | "
            f"{r['dead_last_quarter']:.3f} | {r['recycled_total']:.0f} |"
        )
    perm = [r for r in res["summary"]["table"] if r["task"] == "permuted"]
    if perm:
        n = len(perm[0]["acc_end_of_period"])
        out += [
            "",
            "Permuted labels: test accuracy at the end of each labelling period "
            f"({cfg['permuted']['permute_every']} steps):",
            "",
            "| variant | " + " | ".join(str(i + 1) for i in range(n)) + " |",
            "|---|" + "---|" * n,
        ]
        for r in perm:
            out.append(
                f"| {r['variant']} | "
                + " | ".join(f"{a:.3f}" for a in r["acc_end_of_period"])
                + " |"
            )
    return "\n".join(out)


STUDY = S.Study(NAME, _config, _parts, _summarise, _plot, render_markdown)
