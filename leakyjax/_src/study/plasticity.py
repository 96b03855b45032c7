r"""`plasticity`: loss of plasticity under re-permuted labels, and its cures.

Dohare et al. (Nature 2024) show that a network trained by plain backprop on a
long sequence of tasks learns each new task worse than the last ("loss of
plasticity"), and that continual backprop (replacing a small fraction of the
least useful mature units every step) keeps it learning. Sokar et al. (ICML
2023) tie the same decline to a growing share of τ-dormant units and cure it
by recycling them (ReDo). Does a leaky rectifier, whose units never stop
passing a gradient, already prevent it, and do the cures still matter?

The continual task: mnist1d (`num_train` training and `num_test` test
examples), an MLP (`depth` hidden layers of `width` units, the He
initialiser of its activation), Adam; every `steps_per_task` steps the ten
class labels are re-permuted by a fresh random bijection (the same sequence
for every variant of a seed), for `tasks` tasks. For relu,
leaky_relu(0.01), leaky_relu(0.2), prelu (one slope per layer, init 0.25) and
elu, three methods share seeds, data order and label sequences:

* `plain`: backprop;
* `redo`: ReDo every `redo_every` steps, τ = `tau`, scored on a probe
  batch of training examples ([recycle_dormant][leakyjax.recycle.recycle_dormant]);
* `cbp`: continual backprop every step, replacement rate `cbp_rate`,
  maturity `cbp_maturity`, utility decay 0.99
  ([continual_backprop][leakyjax.recycle.continual_backprop]).

Per task we record the online training accuracy (the mean accuracy of the
task's training batches, as Dohare et al. plot it), the test accuracy under the
task's labels at its end, and, on the probe batch at its end, the shares of
hidden units never positive, τ-dormant and gradient-dormant
([unit_scores][leakyjax.diagnostics.unit_scores]).
"""

from __future__ import annotations

import itertools
import math
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from leakyjax._src import activations as _act
from leakyjax._src import diagnostics as _dg
from leakyjax._src import initializers as _init
from leakyjax._src import recycle as _rc
from leakyjax._src import registry as _registry
from leakyjax._src.study import studies as S

NAME = "plasticity"
ACTIVATIONS = ("relu", "leaky_relu:0.01", "leaky_relu:0.2", "prelu", "elu")
METHODS = ("plain", "redo", "cbp")
SCORES = ("never_positive", "dormant", "grad_dormant")


def _act_fn(spec: str):
    if spec == "prelu":
        return lambda x, a: _act.prelu(x, a)
    fn = _registry.get(spec)
    return lambda x, a: fn(x)


def _init_params(key, sizes, spec: str) -> dict:
    params: dict[str, Any] = {}
    keys = jax.random.split(key, len(sizes))
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        last = i == len(sizes) - 2
        kinit = _init.for_activation("linear" if last else spec)
        params[f"Dense_{i}"] = {
            "kernel": kinit(keys[i], (a, b), jnp.float32),
            "bias": jnp.zeros((b,), jnp.float32),
        }
    if spec == "prelu":
        params["slopes"] = {
            f"act_{i}": jnp.asarray(0.25, jnp.float32) for i in range(len(sizes) - 2)
        }
    return params


def _forward(params, x, spec: str, *, tap: bool = False):
    fn = _act_fn(spec)
    n = sum(1 for k in params if k.startswith("Dense_"))
    hs = {}
    for i in range(n):
        layer = params[f"Dense_{i}"]
        x = x @ layer["kernel"] + layer["bias"]
        if i < n - 1:
            name = f"act_{i}"
            slope = params["slopes"][name] if "slopes" in params else None
            f = partial(lambda z, a: fn(z, a), a=slope)
            x = _dg.tap(name, x, f) if tap else f(x)
            hs[name] = x
    return x, hs


def run_variant(spec: str, method: str, *, cfg: dict, dataset) -> dict:
    """Trains every seed of one (activation, method); per-task lists (seeds, tasks)."""
    import optax

    xtr = jnp.asarray(dataset.x_train.reshape(len(dataset.y_train), -1))
    ytr = jnp.asarray(dataset.y_train)
    xte = jnp.asarray(dataset.x_test.reshape(len(dataset.y_test), -1))
    yte = jnp.asarray(dataset.y_test)
    probe_x, probe_y = xtr[: cfg["probe"]], ytr[: cfg["probe"]]
    sizes = (xtr.shape[1], *([cfg["width"]] * cfg["depth"]), 10)
    seeds, tasks, per = cfg["seeds"], cfg["tasks"], cfg["steps_per_task"]
    every = cfg["redo_every"] if method == "redo" else per
    tx = optax.adam(cfg["lr"])
    tables = jnp.asarray(
        np.stack(
            [
                np.stack(
                    [np.arange(10)]
                    + [
                        np.random.default_rng([s, 91, t]).permutation(10)
                        for t in range(1, tasks)
                    ]
                )
                for s in seeds
            ]
        )
    )  # (seeds, tasks, 10)
    keys = jnp.stack([jax.random.key(s) for s in seeds])
    params = jax.vmap(lambda k: _init_params(k, sizes, spec))(keys)
    opt = jax.vmap(tx.init)(params)
    he = _init.for_activation(spec)
    probe_acts = _forward(jax.tree.map(lambda a: a[0], params), probe_x, spec)[1]
    cbp = jax.vmap(lambda _: _rc.continual_backprop_init(probe_acts))(keys)

    def loss_fn(p, x, y, tap=False):
        logits, hs = _forward(p, x, spec, tap=tap)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, (hs, jnp.mean(jnp.argmax(logits, -1) == y))

    def chunk_one(p, o, c, key, table, t0, n):
        def body(carry, i):
            p, o, c = carry
            step = t0 + i
            idx = jax.random.randint(
                jax.random.fold_in(key, step), (cfg["batch"],), 0, xtr.shape[0]
            )
            y = table[ytr[idx]]
            (_, (hs, acc)), g = jax.value_and_grad(loss_fn, has_aux=True)(
                p, xtr[idx], y
            )
            u, o = tx.update(g, o, p)
            p = optax.apply_updates(p, u)
            if method == "cbp":
                r = _rc.continual_backprop(
                    p,
                    hs,
                    c,
                    key=jax.random.fold_in(key, -1 - step),
                    opt_state=o,
                    replacement_rate=cfg["cbp_rate"],
                    maturity=cfg["cbp_maturity"],
                    decay=0.99,
                    kernel_init=he,
                )
                p, o, c = r.params, r.opt_state, r.state
            return (p, o, c), acc

        (p, o, c), accs = jax.lax.scan(body, (p, o, c), jnp.arange(n))
        return p, o, c, jnp.sum(accs)

    chunk = jax.jit(
        jax.vmap(chunk_one, in_axes=(0, 0, 0, 0, 0, None, None)), static_argnums=6
    )

    @jax.jit
    def evaluate(p, table):
        def one(p, table):
            logits, _ = _forward(p, xte, spec)
            acc = jnp.mean(jnp.argmax(logits, -1) == table[yte])
            y = table[probe_y]
            _, _, probes = _dg.value_grad_and_probes(
                lambda p: loss_fn(p, probe_x, y, tap=True)[0]
            )(p)
            state = _dg.update_scores(_dg.init_scores(probes), probes)
            fr = _dg.pooled_fractions(_dg.unit_scores(state, tau=cfg["tau"]))
            return acc, fr

        return jax.vmap(one)(p, table)

    @jax.jit
    def recycle(p, o, key):
        def one(p, o, key):
            _, hs = _forward(p, probe_x, spec)
            r = _rc.recycle_dormant(
                p, hs, key=key, opt_state=o, tau=cfg["tau"], kernel_init=he
            )
            return r.params, r.opt_state, sum(r.recycled.values())

        return jax.vmap(one)(p, o, key)

    out: dict[str, list] = {
        k: [] for k in ("online_acc", "test_acc", "replaced", *[f"{s}" for s in SCORES])
    }
    replaced_before = np.zeros(len(seeds))
    for t in range(tasks):
        table = tables[:, t]
        correct = jnp.zeros(len(seeds))
        n_rec = np.zeros(len(seeds))
        for start in range(0, per, every):
            n = min(every, per - start)
            params, opt, cbp, c = chunk(
                params, opt, cbp, keys, table, t * per + start, n
            )
            correct = correct + c
            if method == "redo":
                rk = jax.vmap(jax.random.fold_in, in_axes=(0, None))(
                    keys, 10**7 + t * per + start
                )
                params, opt, r = recycle(params, opt, rk)
                n_rec = n_rec + np.asarray(r)
        if method == "cbp":
            total = np.asarray(sum(cbp.replaced.values()), np.float64)
            n_rec, replaced_before = total - replaced_before, total
        acc, fr = evaluate(params, table)
        out["online_acc"].append(np.asarray(correct / per, np.float64).tolist())
        out["test_acc"].append(np.asarray(acc, np.float64).tolist())
        out["replaced"].append(np.asarray(n_rec, np.float64).tolist())
        for s in SCORES:
            out[s].append(np.asarray(fr[s], np.float64).tolist())
    # (tasks, seeds) -> (seeds, tasks)
    res = {k: np.asarray(v).T.tolist() for k, v in out.items()}
    return dict(activation=spec, method=method, **res)


def _config(quick: bool, seed: int) -> dict:
    if quick:
        return dict(
            version=1,
            width=32,
            depth=2,
            batch=32,
            lr=3e-3,
            probe=256,
            tau=0.1,
            tasks=12,
            steps_per_task=40,
            redo_every=20,
            cbp_rate=1e-3,
            cbp_maturity=20,
            seeds=[seed, seed + 1],
            dataset="digits",
            num_train=1000,
            num_test=360,
        )
    return dict(
        version=1,
        width=64,
        depth=3,
        batch=32,
        lr=3e-3,
        probe=512,
        tau=0.1,
        tasks=200,
        steps_per_task=100,
        redo_every=50,
        cbp_rate=1e-4,
        cbp_maturity=100,
        seeds=[seed + i for i in range(5)],
        dataset="digits",
        num_train=1437,
        num_test=360,
    )


def _parts(cfg: dict, seed: int) -> dict:
    cache: dict = {}

    def dataset():
        if "ds" not in cache:
            from leakyjax._src.train import load_dataset

            cache["ds"] = load_dataset(
                cfg["dataset"], num_train=cfg["num_train"], num_test=cfg["num_test"]
            )
        return cache["ds"]

    def part(a: str, m: str) -> dict:
        return run_variant(a, m, cfg=cfg, dataset=dataset())

    return {f"{a}_{m}": partial(part, a, m) for a in ACTIVATIONS for m in METHODS}


def _runs(values: dict) -> dict:
    return {(a, m): values[f"{a}_{m}"] for a in ACTIVATIONS for m in METHODS}


def _interval(d: np.ndarray) -> tuple[float, float, float]:
    """Mean and two-sided 95% t interval of paired differences (nan for n < 2)."""
    from scipy import stats

    n = len(d)
    mean = float(d.mean())
    if n < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.975, n - 1)) * float(d.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def _window(cfg: dict) -> int:
    return max(1, cfg["tasks"] // 10)


def _summarise_run(r: dict, cfg: dict) -> dict:
    w = _window(cfg)
    acc = np.asarray(r["online_acc"], np.float64)  # (seeds, tasks)
    test = np.asarray(r["test_acc"], np.float64)
    first, last = acc[:, :w].mean(1), acc[:, -w:].mean(1)
    mean, low, high = _interval(last - first)
    row = dict(
        activation=r["activation"],
        method=r["method"],
        first_acc=float(first.mean()),
        last_acc=float(last.mean()),
        change=mean,
        change_low=low,
        change_high=high,
        last_test_acc=float(test[:, -w:].mean()),
        replaced_per_task=float(np.asarray(r["replaced"]).mean()),
        last=last.tolist(),
    )
    for s in SCORES:
        row[f"{s}_last"] = float(np.asarray(r[s], np.float64)[:, -w:].mean())
    return row


def _compare(rows: dict, a: tuple, b: tuple) -> dict:
    d = np.asarray(rows[a]["last"]) - np.asarray(rows[b]["last"])
    mean, low, high = _interval(d)
    return dict(a=list(a), b=list(b), diff=mean, low=low, high=high)


def _sign(c: dict) -> int:
    """+1 / -1 when the interval excludes 0 upwards / downwards, else 0."""
    if c["low"] > 0:
        return 1
    if c["high"] < 0:
        return -1
    return 0


def _verdict(rows: dict, cfg: dict) -> dict:
    """The comparisons the verdict is written from."""
    plain = {a: rows[(a, "plain")] for a in ACTIVATIONS}
    falls = {
        a: _sign(dict(low=r["change_low"], high=r["change_high"]))
        for a, r in plain.items()
    }
    cbp_vs_plain = {a: _compare(rows, (a, "cbp"), (a, "plain")) for a in ACTIVATIONS}
    redo_vs_plain = {a: _compare(rows, (a, "redo"), (a, "plain")) for a in ACTIVATIONS}
    leaky_vs_relu = {
        a: _compare(rows, (a, "plain"), ("relu", "plain"))
        for a in ACTIVATIONS
        if a != "relu"
    }
    return dict(
        plain_change_sign=falls,
        cbp_vs_plain=cbp_vs_plain,
        redo_vs_plain=redo_vs_plain,
        vs_relu_plain=leaky_vs_relu,
    )


def _pct(v: float) -> str:
    return f"{100 * v:+.1f} pp"


def _ci(c: dict) -> str:
    if math.isnan(c["low"]):
        return "no interval (one seed)"
    return f"95% interval {_pct(c['low'])} to {_pct(c['high'])}"


def verdict_lines(summary: dict, cfg: dict) -> list[str]:
    """The verdict in sentences, from the summary's numbers alone."""
    v = summary["verdict"]
    rows = {(r["activation"], r["method"]): r for r in summary["table"]}
    w = _window(cfg)
    lines = []
    relu = rows[("relu", "plain")]
    sign = v["plain_change_sign"]["relu"]
    what = {1: "rises", -1: "falls", 0: "does not change measurably"}[sign]
    lines.append(
        f"Plain backprop, relu: online accuracy {what} from the first {w} tasks "
        f"({relu['first_acc']:.3f}) to the last {w} ({relu['last_acc']:.3f}); "
        f"change {_pct(relu['change'])} ({_ci(dict(low=relu['change_low'], high=relu['change_high']))})."
    )
    falling = [a for a, s in sign_items(v["plain_change_sign"]) if s < 0]
    rising = [a for a, s in sign_items(v["plain_change_sign"]) if s > 0]
    lines.append(
        "Loss of plasticity (plain backprop, last tasks below first, interval "
        f"excluding 0): {', '.join(falling) if falling else 'none of the activations'}"
        + (f"; accuracy rose for {', '.join(rising)}" if rising else "")
        + "."
    )
    held = [a for a, c in v["cbp_vs_plain"].items() if _sign(c) > 0]
    hurt = [a for a, c in v["cbp_vs_plain"].items() if _sign(c) < 0]
    c = v["cbp_vs_plain"]["relu"]
    lines.append(
        f"Continual backprop vs plain on the last {w} tasks: relu {_pct(c['diff'])} "
        f"({_ci(c)}); better for {', '.join(held) if held else 'none'}"
        + (f", worse for {', '.join(hurt)}" if hurt else "")
        + "."
    )
    held = [a for a, c in v["redo_vs_plain"].items() if _sign(c) > 0]
    hurt = [a for a, c in v["redo_vs_plain"].items() if _sign(c) < 0]
    lines.append(
        f"ReDo vs plain on the last {w} tasks: better for "
        f"{', '.join(held) if held else 'none'}"
        + (f", worse for {', '.join(hurt)}" if hurt else "")
        + "."
    )
    better = [a for a, c in v["vs_relu_plain"].items() if _sign(c) > 0]
    worse = [a for a, c in v["vs_relu_plain"].items() if _sign(c) < 0]
    lines.append(
        "Without a cure, vs relu on the last tasks: better "
        f"{', '.join(better) if better else 'none'}; worse "
        f"{', '.join(worse) if worse else 'none'}."
    )
    gap = [
        (a, rows[(a, "plain")])
        for a in ACTIVATIONS
        if rows[(a, "plain")]["grad_dormant_last"] - rows[(a, "plain")]["dormant_last"]
        > 0.1
    ]
    lines.append(
        "Units the activation score misses and the gradient score finds "
        "(plain backprop, last tasks, gradient-dormant minus τ-dormant share "
        "above 0.1): "
        + (
            "; ".join(
                f"{a} ({r['dormant_last']:.3f} τ-dormant vs "
                f"{r['grad_dormant_last']:.3f} gradient-dormant)"
                for a, r in gap
            )
            if gap
            else "none"
        )
        + "."
    )
    published = sign == -1 and _sign(v["cbp_vs_plain"]["relu"]) > 0
    cbp = rows[("relu", "cbp")]
    lines.append(
        "Direction of the published effect (plain relu falls, continual backprop "
        f"holds it): {'reproduced' if published else 'not reproduced at this size'}"
        f"; how close: continual backprop keeps relu at "
        f"{100 * cbp['last_acc'] / cbp['first_acc']:.0f}% of its first-tasks "
        f"accuracy (plain backprop: "
        f"{100 * relu['last_acc'] / relu['first_acc']:.0f}%; the paper's curve "
        "stays level, i.e. 100%)."
    )
    return lines


def sign_items(d: dict) -> list[tuple[str, int]]:
    return [(a, int(s)) for a, s in d.items()]


def _summarise(cfg: dict, values: dict) -> tuple[dict, dict]:
    runs = _runs(values)
    rows = {k: _summarise_run(r, cfg) for k, r in runs.items()}
    summary: dict[str, Any] = dict(
        table=list(rows.values()), verdict=_verdict(rows, cfg)
    )
    lines = ["activation / method: online acc first -> last tasks, dormant shares"]
    for r in rows.values():
        lines.append(
            f"  {r['activation']:<16} {r['method']:<5} {r['first_acc']:.3f} -> "
            f"{r['last_acc']:.3f}  never+ {r['never_positive_last']:.3f} "
            f"dormant {r['dormant_last']:.3f} grad {r['grad_dormant_last']:.3f}"
        )
    summary["sentences"] = verdict_lines(summary, cfg)
    summary["lines"] = lines + summary["sentences"]
    return summary, dict(runs=list(runs.values()))


def _plot(path: Path, cfg: dict, values: dict) -> Path:
    runs = _runs(values)
    plt = S.pyplot()
    fig, axes = plt.subplots(
        4, len(ACTIVATIONS), figsize=(3.2 * len(ACTIVATIONS), 10), sharex=True
    )
    colors = dict(zip(METHODS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    styles = dict(plain="-", redo="--", cbp=":")  # identical curves stay visible
    ylab = (
        "online accuracy",
        "never-positive share",
        f"τ-dormant share (τ = {cfg['tau']:g})",
        "gradient-dormant share",
    )
    for col, a in enumerate(ACTIVATIONS):
        for m in METHODS:
            r = runs[(a, m)]
            for row, key in enumerate(("online_acc", *SCORES)):
                vals = np.asarray(r[key], np.float64)
                task = np.arange(1, vals.shape[1] + 1)
                axes[row][col].plot(
                    task, vals.mean(0), color=colors[m], label=m, lw=1, ls=styles[m]
                )
        axes[0][col].set_title(a, fontsize=9)
        axes[-1][col].set_xlabel("task")
        for row in range(4):
            axes[row][col].grid(alpha=0.3)
            if col == 0:
                axes[row][0].set_ylabel(ylab[row], fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(
        f"plasticity: {cfg['dataset']} labels re-permuted every "
        f"{cfg['steps_per_task']} steps, mean of {len(cfg['seeds'])} seeds",
        fontsize=10,
    )
    return S.save_figure(fig, path)


def render_markdown(res: dict) -> str:
    """The study's tables, from the results JSON."""
    cfg = res["config"]
    w = _window(cfg)
    summary = res["summary"]
    out = [
        f"Mean over {len(cfg['seeds'])} seeds. *first*, *last*: online training "
        f"accuracy averaged over the first / last {w} of {cfg['tasks']} tasks; "
        "*change*: last minus first, with its 95% t interval over seeds; "
        "*test*: test accuracy at the end of the last tasks; the shares of "
        "hidden units never positive, τ-dormant (τ = "
        f"{cfg['tau']:g}) and gradient-dormant on the probe batch over the last "
        f"{w} tasks; *replaced*: units re-initialised per task.",
        "",
        "| activation | method | first | last | change (95% interval) | test |"
        " never positive | τ-dormant | gradient-dormant | replaced |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary["table"]:
        interval = (
            "—"
            if math.isnan(r["change_low"])
            else f"[{100 * r['change_low']:+.1f}, {100 * r['change_high']:+.1f}]"
        )
        out.append(
            f"| {r['activation']} | {r['method']} | {r['first_acc']:.3f} | "
            f"{r['last_acc']:.3f} | {100 * r['change']:+.1f} pp {interval} | "
            f"{r['last_test_acc']:.3f} | {r['never_positive_last']:.3f} | "
            f"{r['dormant_last']:.3f} | {r['grad_dormant_last']:.3f} | "
            f"{r['replaced_per_task']:.2f} |"
        )
    v = summary["verdict"]
    out += [
        "",
        f"Paired differences on the last {w} tasks (same seeds, data and labels), "
        "percentage points with 95% t intervals:",
        "",
        "| activation | cbp − plain | redo − plain | plain − relu plain |",
        "|---|---|---|---|",
    ]
    fmt = lambda c: (
        f"{100 * c['diff']:+.1f} [{100 * c['low']:+.1f}, {100 * c['high']:+.1f}]"
    )
    for a in ACTIVATIONS:
        vs = v["vs_relu_plain"].get(a)
        out.append(
            f"| {a} | {fmt(v['cbp_vs_plain'][a])} | {fmt(v['redo_vs_plain'][a])} | "
            f"{fmt(vs) if vs else '—'} |"
        )
    out += ["", "Verdict (written from the numbers above):", ""]
    out += [f"- {s}" for s in summary["sentences"]]
    return "\n".join(out)


STUDY = S.Study(NAME, _config, _parts, _summarise, _plot, render_markdown)
