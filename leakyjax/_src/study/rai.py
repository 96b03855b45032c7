r"""`rai`: randomized asymmetric initialisation against being born dead.

Lu, Shin, Su and Karniadakis (CiCP 2020, arXiv:1903.06733) prove that deep,
narrow ReLU networks initialised from symmetric distributions are born dead
(constant on the input domain) with probability $\to 1$ as the depth
grows, and propose RAI: one incoming weight (or the bias) of every unit is drawn
from the positive Beta(2, 1), the others from $N(0, 0.6007^2/\mathrm{fan\_in})$
([`leakyjax.initializers.rai`][]). Their numerical examples show that RAI
lowers the probability of being born dead and of collapsing during training.

Part 1 (Monte Carlo, float64, the machinery of the `born-dead` study): the
probability that the network is constant on `[-1, 1]` at initialisation, for
widths 2-10 and depths 10-50, under three schemes with the same sampler
structure: He-normal weights and zero biases; RAI as in the paper (the positive
entry drawn among the `fan_in + 1` entries of `[W, b]`); RAI as the library
offers it to flax users (`kernel_init=rai()`, `bias_init=rai_bias(fan_in)`:
the positive entry always a weight). The output layer is He-normal in every
scheme (it cannot change whether the output is constant).

Part 2 (training): deep narrow ReLU networks fit a 1-D function on 256 points
of `[-1, 1]` with full-batch Adam; a run has *collapsed* when its final mean
squared error is no better than the best constant's (`>= 0.99 Var f`).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from leakyjax._src import initializers as _init
from leakyjax._src.study import born_dead as _bd
from leakyjax._src.study import studies as S

NAME = "rai"
SCHEMES = {
    "he": "He normal, zero bias",
    "rai": "RAI (paper: [W, b] jointly)",
    "rai_kernel": "RAI (kernel_init=rai, bias_init=rai_bias)",
}
TARGETS = {
    "abs": ("|x|", lambda x: np.abs(x)),
    "xsin5x": ("x sin(5x)", lambda x: x * np.sin(5 * x)),
}
COLLAPSE_FRACTION = 0.99


def _layer(rng, scheme: str, trials: int, fan_in: int, width: int):
    """(W, b) stacked over trials: `(trials, fan_in, width)`, `(trials, width)`."""
    if scheme == "he":
        w = rng.standard_normal((trials, fan_in, width)) * np.sqrt(2.0 / fan_in)
        return w, np.zeros((trials, width))
    s = _init.RAI_SCALE / np.sqrt(fan_in)
    a, b = _init.RAI_BETA
    if scheme == "rai":
        v = rng.standard_normal((trials, fan_in + 1, width)) * s
        idx = rng.integers(0, fan_in + 1, (trials, width))
        pos = rng.beta(a, b, (trials, width))
        t, j = np.meshgrid(np.arange(trials), np.arange(width), indexing="ij")
        v[t, idx, j] = pos
        return v[:, :fan_in], v[:, fan_in]
    if scheme == "rai_kernel":  # the library initialisers, vmapped over trials
        seed = int(rng.integers(0, 2**31 - 1))
        keys = jax.random.split(jax.random.key(seed), 2 * trials).reshape(2, trials)
        with jax.enable_x64(True):
            w = jax.vmap(lambda k: _init.rai()(k, (fan_in, width), jnp.float64))(
                keys[0]
            )
            bias = jax.vmap(lambda k: _init.rai_bias(fan_in)(k, (width,), jnp.float64))(
                keys[1]
            )
        return np.asarray(w), np.asarray(bias)
    raise ValueError(f"rai study: unknown scheme {scheme!r}.")


def sample(rng, scheme: str, trials: int, d_in: int, width: int, n_hidden: int):
    """Weights in the layout of `leakyjax._src.study.born_dead._forward`."""
    w1, b1 = _layer(rng, scheme, trials, d_in, width)
    hidden = [_layer(rng, scheme, trials, width, width) for _ in range(n_hidden - 1)]
    return dict(
        w1=w1,
        b1=b1,
        wh=np.stack([w for w, _ in hidden], axis=1),
        bh=np.stack([b for _, b in hidden], axis=1),
        wo=rng.standard_normal((trials, width, 1)) * np.sqrt(2.0 / width),
        bo=np.zeros((trials, 1)),
    )


def born_dead(
    key, *, scheme: str, width: int, depths, trials: int, n_inputs: int, chunk=250
) -> dict:
    """P(constant on [-1, 1]) per depth for one scheme and width."""
    seed = np.asarray(jax.random.key_data(key)).ravel().tolist()
    rng = np.random.default_rng(seed)
    n_hidden = max(max(depths) - 1, 2)
    x = _bd.domain_inputs(1, n_inputs, rng=rng)
    consts = []
    with jax.enable_x64(True):
        done = 0
        while done < trials:
            n = min(chunk, trials - done)
            p = sample(rng, scheme, n, 1, width, n_hidden)
            out = jax.device_get(_bd._forward(x, p, act="relu", slope=0.0))
            consts.append(np.asarray(out[0]))
            done += n
    const = np.concatenate(consts)
    res = {}
    for d in depths:
        pc = float(const[:, d - 2].mean())
        res[str(d)] = dict(
            p_constant=pc, stderr=float(np.sqrt(pc * (1 - pc) / trials)), trials=trials
        )
    return res


def _init_params(rng, scheme, trials, width, depth):
    p = sample(rng, scheme, trials, 1, width, depth)
    return {k: jnp.asarray(v, jnp.float32) for k, v in p.items()}


def _apply(p, x):
    h = jax.nn.relu(x @ p["w1"] + p["b1"])

    def layer(h, wb):
        return jax.nn.relu(h @ wb[0] + wb[1]), None

    h, _ = jax.lax.scan(layer, h, (p["wh"], p["bh"]))
    return (h @ p["wo"] + p["bo"])[:, 0]


def train_cell(
    key, *, scheme: str, target: str, width: int, depth: int, cfg: dict
) -> dict:
    """Trains `cfg["train_trials"]` networks; collapse rate and final losses."""
    import optax

    seed = np.asarray(jax.random.key_data(key)).ravel().tolist()
    rng = np.random.default_rng(seed)
    x = np.linspace(-1.0, 1.0, cfg["train_points"])[:, None]
    y = TARGETS[target][1](x[:, 0])
    var = float(np.var(y))
    xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    params = _init_params(rng, scheme, cfg["train_trials"], width, depth)
    tx = optax.adam(cfg["lr"])

    def loss(p):
        return jnp.mean((_apply(p, xj) - yj) ** 2)

    def run(p):
        def step(carry, _):
            p, o = carry
            g = jax.grad(loss)(p)
            u, o = tx.update(g, o, p)
            return (optax.apply_updates(p, u), o), None

        born_const = jnp.ptp(_apply(p, xj)) == 0
        (p, _), _ = jax.lax.scan(step, (p, tx.init(p)), None, length=cfg["steps"])
        return loss(p), born_const

    l1, born = jax.jit(jax.vmap(run))(params)
    l1 = np.asarray(l1, np.float64)
    collapsed = ~np.isfinite(l1) | (l1 >= COLLAPSE_FRACTION * var)
    return dict(
        p_collapse=float(collapsed.mean()),
        p_born_constant=float(np.asarray(born).mean()),
        median_final_mse=float(np.median(l1)),
        median_final_rel_mse=float(np.median(l1 / var)),
        target_var=var,
        trials=int(cfg["train_trials"]),
    )


def _config(quick: bool, seed: int) -> dict:
    if quick:
        return dict(
            version=1,
            widths=[2, 4],
            depths=[10, 30],
            trials=200,
            n_inputs=65,
            train_widths=[2],
            train_depths=[10],
            targets=["abs"],
            train_trials=8,
            train_points=64,
            steps=200,
            lr=1e-3,
            seed=seed,
        )
    return dict(
        version=1,
        widths=[2, 3, 4, 6, 8, 10],
        depths=[10, 20, 30, 40, 50],
        trials=2000,
        n_inputs=257,
        train_widths=[2, 4],
        train_depths=[10, 20],
        targets=["abs", "xsin5x"],
        train_trials=100,
        train_points=256,
        steps=3000,
        lr=1e-3,
        seed=seed,
    )


def _figure(path: Path, cfg: dict, cells: dict) -> Path:
    plt = S.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = {"he": "o-", "rai": "s--", "rai_kernel": "^:"}
    half = max(1, len(cfg["widths"]) // 2)
    for ax, widths in zip(axes, (cfg["widths"][:half], cfg["widths"][half:])):
        for w in widths:
            c = colors[cfg["widths"].index(w) % len(colors)]
            for sch, st in styles.items():
                ax.plot(
                    cfg["depths"],
                    [cells[(sch, w)][str(d)]["p_constant"] for d in cfg["depths"]],
                    st,
                    color=c,
                    label=f"{sch}, N={w}",
                )
        ax.set_xlabel("depth L")
        ax.set_ylabel("P(ReLU net constant on [-1, 1]) at init")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle("rai: He (o-) vs RAI paper (s--) vs RAI kernel_init (^:)", fontsize=10)
    return S.save_figure(fig, path)


def _parts(cfg: dict, seed: int) -> dict:
    def mc(sch: str, w: int) -> dict:
        key = jax.random.key(seed * 100_003 + 7 * w + list(SCHEMES).index(sch))
        return born_dead(
            key,
            scheme=sch,
            width=w,
            depths=cfg["depths"],
            trials=cfg["trials"],
            n_inputs=cfg["n_inputs"],
        )

    def fit(sch: str, t: str, w: int, d: int) -> dict:
        key = jax.random.key(seed * 100_003 + 1000 * w + d)  # same for all schemes
        return train_cell(key, scheme=sch, target=t, width=w, depth=d, cfg=cfg)

    parts = {f"mc_{s}_N{w}": partial(mc, s, w) for w in cfg["widths"] for s in SCHEMES}
    parts.update(
        {
            f"train_{s}_{t}_N{w}_L{d}": partial(fit, s, t, w, d)
            for t in cfg["targets"]
            for w in cfg["train_widths"]
            for d in cfg["train_depths"]
            for s in SCHEMES
        }
    )
    return parts


def _cells(cfg: dict, values: dict) -> dict:
    return {(s, w): values[f"mc_{s}_N{w}"] for w in cfg["widths"] for s in SCHEMES}


def _summarise(cfg: dict, values: dict) -> tuple[dict, dict]:
    cells = _cells(cfg, values)
    train = {
        (s, t, w, d): values[f"train_{s}_{t}_N{w}_L{d}"]
        for t in cfg["targets"]
        for w in cfg["train_widths"]
        for d in cfg["train_depths"]
        for s in SCHEMES
    }
    born_rows = [
        dict(scheme=s, width=w, depth=int(d), **v)
        for (s, w), cell in cells.items()
        for d, v in cell.items()
    ]
    train_rows = [
        dict(scheme=s, target=t, width=w, depth=d, **v)
        for (s, t, w, d), v in train.items()
    ]
    lines = ["P(constant at init), He / RAI paper / RAI kernel_init:"]
    for w in cfg["widths"]:
        lines.append(
            f"  N={w}: "
            + " ".join(
                f"L={d}:"
                + "/".join(
                    f"{cells[(s, w)][str(d)]['p_constant']:.3f}" for s in SCHEMES
                )
                for d in cfg["depths"]
            )
        )
    lines.append("training collapse rate, He / RAI paper / RAI kernel_init:")
    for t in cfg["targets"]:
        for w in cfg["train_widths"]:
            for d in cfg["train_depths"]:
                lines.append(
                    f"  {TARGETS[t][0]} N={w} L={d}: "
                    + "/".join(
                        f"{train[(s, t, w, d)]['p_collapse']:.2f}" for s in SCHEMES
                    )
                )
    data = dict(
        schemes=SCHEMES,
        targets={k: v[0] for k, v in TARGETS.items()},
        born_dead=born_rows,
        training=train_rows,
    )
    return dict(lines=lines), data


def _plot(path: Path, cfg: dict, values: dict) -> Path:
    return _figure(path, cfg, _cells(cfg, values))


def render_markdown(res: dict) -> str:
    """The numbers of docs/STUDY.md's `rai` section, from the results JSON."""
    cfg = res["config"]
    bd = {(r["scheme"], r["width"], r["depth"]): r for r in res["born_dead"]}
    out = [
        "P(ReLU network constant on [−1, 1] at initialisation), "
        f"{cfg['trials']} networks per cell, He / RAI (paper) / RAI (kernel_init):",
        "",
        "| N | " + " | ".join(f"L={d}" for d in cfg["depths"]) + " |",
        "|---|" + "---|" * len(cfg["depths"]),
    ]
    for w in cfg["widths"]:
        out.append(
            f"| {w} | "
            + " | ".join(
                " / ".join(f"{bd[(s, w, d)]['p_constant']:.3f}" for s in res["schemes"])
                for d in cfg["depths"]
            )
            + " |"
        )
    out += [
        "",
        f"Training ({cfg['train_trials']} networks per cell, full-batch Adam lr "
        f"{cfg['lr']:g}, {cfg['steps']} steps, {cfg['train_points']} points): share "
        "collapsed (final MSE ≥ 0.99 Var f) and median final MSE / Var f,"
        " He / RAI (paper) / RAI (kernel_init):",
        "",
        "| target | N | L | collapsed | median MSE / Var f | constant at init |",
        "|---|---|---|---|---|---|",
    ]
    tr = {
        (r["scheme"], r["target"], r["width"], r["depth"]): r for r in res["training"]
    }
    for t in cfg["targets"]:
        for w in cfg["train_widths"]:
            for d in cfg["train_depths"]:
                cell = [tr[(s, t, w, d)] for s in res["schemes"]]
                out.append(
                    f"| {res['targets'][t].replace('|', chr(92) + '|')} | {w} | {d} | "
                    + " / ".join(f"{c['p_collapse']:.2f}" for c in cell)
                    + " | "
                    + " / ".join(f"{c['median_final_rel_mse']:.3f}" for c in cell)
                    + " | "
                    + " / ".join(f"{c['p_born_constant']:.2f}" for c in cell)
                    + " |"
                )
    return "\n".join(out)


STUDY = S.Study(NAME, _config, _parts, _summarise, _plot, render_markdown)
