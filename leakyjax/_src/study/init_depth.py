r"""`init-depth`: He vs Xavier initialisation of deep plain rectifier nets.

He, Zhang, Ren and Sun (2015), "Delving Deep into Rectifiers", section 2.2:
for a layer $y_l = W_l x_l + b_l$ with $x_l = f(y_{l-1})$ and a
leaky rectifier $f$ of slope $a$,

$$
\operatorname{Var}[y_l] = n_l \operatorname{Var}[w_l]\,
\frac{1 + a^2}{2} \operatorname{Var}[y_{l-1}],
$$

so the signal keeps its scale through depth when
$\operatorname{Var}[w_l] = 2 / ((1 + a^2) n_l)$ (He) and shrinks by
$(1+a^2)/2$ per layer with Xavier/Glorot's $1/n_l$ (square
layers). Their Fig. 3: a 30-layer plain ReLU network trains with their
initialisation and does not learn at all with Xavier's.

Part 1 propagates Gaussian inputs through 30 random fully connected layers
(no training) and records the second moment of the pre-activations per layer,
with the theory line. Part 2 trains a 30-hidden-layer MLP without
normalisation on mnist1d (SGD with momentum, constant learning rate, no
gradient clipping) with both initialisations: the model is built here (the
training stack's models always use the He initialiser of their activation)
and trained on the training stack's one loop ([`leakyjax.train.train`][]).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from leakyjax._src.study import studies as S

NAME = "init-depth"
INITS = ("he", "xavier", "he_relu_gain")
_LABEL = {
    "he": "He, gain sqrt(2/(1+a^2))",
    "xavier": "Xavier/Glorot",
    "he_relu_gain": "He with the ReLU gain sqrt(2)",
}


def _initializer(init: str, slope: float):
    import leakyjax.initializers as li

    if init == "he":
        return li.he_normal(negative_slope=slope)
    if init == "he_relu_gain":
        return li.he_normal(negative_slope=0.0)
    if init == "xavier":
        return jax.nn.initializers.glorot_normal()
    raise ValueError(f"init-depth: init must be one of {INITS}, got {init!r}.")


def per_layer_factor(init: str, slope: float) -> float:
    """Theoretical `Var[y_l] / Var[y_{l-1}]` for square layers.

    >>> per_layer_factor("xavier", 0.0), per_layer_factor("he", 0.2)
    (0.5, 1.0)
    """
    n_var = {"he": 2.0 / (1.0 + slope**2), "he_relu_gain": 2.0, "xavier": 1.0}[init]
    return n_var * (1.0 + slope**2) / 2.0


def _act(slope: float):
    from leakyjax._src import activations as A

    if slope == 0.0:
        return A.relu
    return lambda z: A.leaky_relu(z, slope)


def propagate(
    key: jax.Array,
    *,
    init: str,
    negative_slope: float,
    depth: int = 30,
    width: int = 256,
    batch: int = 1024,
) -> np.ndarray:
    """Second moment of the pre-activations of each of `depth` random layers.

    Inputs are standard normal; every layer is `width x width` with zero
    biases and the given initialiser; the activation is relu (slope 0) or
    leaky_relu.

    Returns:
        `(depth,)` array: `mean(y_l ** 2)` over units and inputs.

    >>> m = propagate(jax.random.key(0), init="xavier", negative_slope=0.0,
    ...               depth=10, width=128, batch=256)
    >>> bool(1e-4 < m[-1] < 1e-2)  # about 0.5 ** 9
    True
    """
    fn = _act(negative_slope)
    kinit = _initializer(init, negative_slope)
    kx, key = jax.random.split(key)
    x = jax.random.normal(kx, (batch, width))
    moments = []
    for k in jax.random.split(key, depth):
        y = x @ kinit(k, (width, width), jnp.float32)
        moments.append(float(jnp.mean(y * y)))
        x = fn(y)
    return np.asarray(moments)


def _model(depth: int, width: int, slope: float, init: str, num_outputs: int):
    import flax.linen as nn

    import leakyjax.linen as ll

    spec = "relu" if slope == 0.0 else f"leaky_relu:{slope}"
    kinit = _initializer(init, slope)

    class PlainMLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            for _ in range(depth):
                x = nn.Dense(width, kernel_init=kinit)(x)
                x = ll.get(spec)()(x)
            return nn.Dense(num_outputs, kernel_init=kinit)(x)

    return PlainMLP()


def train_plain(
    *,
    init: str,
    negative_slope: float,
    seeds: tuple[int, ...] = (0,),
    depth: int = 30,
    width: int = 64,
    steps: int = 2000,
    batch_size: int = 128,
    learning_rate: float = 0.01,
    momentum: float = 0.9,
    eval_every: int = 100,
    num_train: int = 4000,
    num_test: int = 1000,
) -> dict:
    """Train a plain (no normalisation) deep MLP on mnist1d; seeds vmapped.

    SGD with momentum at a constant learning rate and no gradient clipping, as
    in He et al. (2015). Returns the learning curves (train loss on the whole
    training set, test accuracy) for each seed.
    """
    import optax

    from leakyjax._src.train import load_dataset

    ds = load_dataset("mnist1d", num_train=num_train, num_test=num_test)
    model = _model(depth, width, negative_slope, init, ds.num_outputs)
    tx = optax.sgd(learning_rate, momentum=momentum)
    curves, _ = S.train_curves(
        model,
        ds,
        tx=tx,
        seeds=tuple(seeds),
        steps=steps,
        batch_size=batch_size,
        eval_every=eval_every,
    )
    curves.pop("extra")
    return curves


def _config(quick: bool, seed: int) -> dict:
    if quick:
        return dict(
            depth=30,
            slopes=[0.0, 0.2],
            inits=list(INITS),
            var_width=64,
            var_batch=256,
            var_seeds=1,
            train_slopes=[0.0],
            train_inits=["he", "xavier"],
            train_seeds=[seed],
            train_width=32,
            steps=300,
            batch_size=64,
            learning_rate=0.01,
            eval_every=100,
            num_train=1000,
            num_test=500,
        )
    return dict(
        depth=30,
        slopes=[0.0, 0.01, 0.2],
        inits=list(INITS),
        var_width=256,
        var_batch=1024,
        var_seeds=5,
        train_slopes=[0.0, 0.2],
        train_inits=["he", "xavier"],
        train_seeds=[seed, seed + 1],
        train_width=64,
        steps=1500,
        batch_size=128,
        learning_rate=0.01,
        eval_every=100,
        num_train=4000,
        num_test=1000,
    )


def _figure(path: Path, cfg: dict, var: dict, runs: dict) -> Path:
    plt = S.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = {"he": "-", "xavier": "--", "he_relu_gain": ":"}
    layers = np.arange(1, cfg["depth"] + 1)
    ax = axes[0]
    for i, a in enumerate(cfg["slopes"]):
        for init in cfg["inits"]:
            if init == "he_relu_gain" and a == 0.0:
                continue  # identical to "he"
            m = np.asarray(var[f"{init}_{a}"]["moment"])
            ax.semilogy(
                layers,
                m / m[0],
                styles[init],
                color=colors[i],
                label=f"{_LABEL[init]}, a={a}",
            )
            theory = per_layer_factor(init, a) ** (layers - 1)
            ax.semilogy(layers, theory, ".", color=colors[i], ms=3)
    ax.set_xlabel("layer l")
    ax.set_ylabel("E[y_l^2] / E[y_1^2]")
    ax.set_title(
        f"{cfg['depth']} random layers (dots: theory ((1+a^2)/2 n Var w)^(l-1))"
    )
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    for j, (metric, ylabel) in enumerate(
        (
            ("train_loss", "training loss (full train set)"),
            ("test_acc", "test accuracy"),
        )
    ):
        ax = axes[j + 1]
        for i, a in enumerate(cfg["train_slopes"]):
            for init in cfg["train_inits"]:
                r = runs[f"{init}_{a}"]
                vals = np.asarray(r[metric], dtype=float)
                for k, row in enumerate(vals):
                    ax.plot(
                        r["step"],
                        row,
                        styles[init],
                        color=colors[i],
                        label=f"{_LABEL[init]}, a={a}" if k == 0 else None,
                    )
        ax.set_xlabel("SGD step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[1].set_title(f"{cfg['depth']}-layer plain MLP on mnist1d")
    axes[2].legend(fontsize=7)
    return S.save_figure(fig, path)


def _parts(cfg: dict, seed: int) -> dict:
    def variance(init: str, a: float) -> dict:
        ms = [
            propagate(
                jax.random.key(seed * 1000 + s),
                init=init,
                negative_slope=a,
                depth=cfg["depth"],
                width=cfg["var_width"],
                batch=cfg["var_batch"],
            )
            for s in range(cfg["var_seeds"])
        ]
        m = np.mean(ms, axis=0)
        return dict(
            moment=m,
            ratio_last_first=m[-1] / m[0],
            theory_ratio=per_layer_factor(init, a) ** (cfg["depth"] - 1),
        )

    def training(init: str, a: float) -> dict:
        return train_plain(
            init=init,
            negative_slope=a,
            seeds=tuple(cfg["train_seeds"]),
            depth=cfg["depth"],
            width=cfg["train_width"],
            steps=cfg["steps"],
            batch_size=cfg["batch_size"],
            learning_rate=cfg["learning_rate"],
            eval_every=cfg["eval_every"],
            num_train=cfg["num_train"],
            num_test=cfg["num_test"],
        )

    parts = {
        f"var_{init}_{a}": partial(variance, init, a)
        for a in cfg["slopes"]
        for init in cfg["inits"]
    }
    parts.update(
        {
            f"train_{init}_{a}": partial(training, init, a)
            for a in cfg["train_slopes"]
            for init in cfg["train_inits"]
        }
    )
    return parts


def _split(values: dict) -> tuple[dict, dict]:
    """`(variance, training)`, each keyed `f"{init}_{slope}"`."""
    var = {k[4:]: v for k, v in values.items() if k.startswith("var_")}
    runs = {k[6:]: v for k, v in values.items() if k.startswith("train_")}
    return var, runs


def _summarise(cfg: dict, values: dict) -> tuple[dict, dict]:
    var, runs = _split(values)
    lines = [f"E[y_{cfg['depth']}^2]/E[y_1^2] measured (theory):"]
    for key, v in var.items():
        lines.append(f"  {key}: {v['ratio_last_first']:.3g} ({v['theory_ratio']:.3g})")
    lines.append(f"{cfg['depth']}-layer MLP, final train loss / test acc per seed:")
    for key, r in runs.items():
        loss = ", ".join(
            f"{x:.3f}" if x is not None else "nan" for x in r["final_train_loss"]
        )
        acc = ", ".join(
            f"{x:.3f}" if x is not None else "nan" for x in r["final_test_acc"]
        )
        lines.append(f"  {key}: loss {loss}; acc {acc}")
    summary = dict(
        ratio_last_first={k: v["ratio_last_first"] for k, v in var.items()},
        theory_ratio={k: v["theory_ratio"] for k, v in var.items()},
        final_train_loss={k: r["final_train_loss"] for k, r in runs.items()},
        final_test_acc={k: r["final_test_acc"] for k, r in runs.items()},
        lines=lines,
    )
    return summary, dict(variance=var, training=runs)


def _g(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "nan"
    return f"{x:.{digits}g}".replace("e-0", "e−").replace("e-", "e−")


def _f3(xs) -> str:
    return ", ".join("nan" if x is None else f"{x:.3f}" for x in xs)


def render_markdown(res: dict) -> str:
    """The tables of docs/STUDY.md's `init-depth` section, from the results JSON."""
    cfg = res["config"]
    var, runs = res["variance"], res["training"]
    d = cfg["depth"]
    theory = {
        "he": "theory 1",
        "xavier": "theory ((1 + a²)/2)^" + str(d - 1),
        "he_relu_gain": "theory (1 + a²)^" + str(d - 1),
    }
    out = [
        f"| E[y_{d}²] / E[y_1²] (theory) | "
        + " | ".join(f"a = {a:g}" for a in cfg["slopes"])
        + " |",
        "|---|" + "---|" * len(cfg["slopes"]),
    ]
    for init in cfg["inits"]:
        cells = []
        for a in cfg["slopes"]:
            v = var[f"{init}_{a}"]
            if init == "he_relu_gain" and a == 0.0:
                cells.append("= He")
            else:
                cells.append(
                    f"{_g(v['ratio_last_first'])} ({_g(v['theory_ratio'], 4)})"
                )
        out.append(f"| {_LABEL[init]} ({theory[init]}) | " + " | ".join(cells) + " |")
    seeds = ", ".join(str(s) for s in cfg["train_seeds"])
    out += [
        "",
        f"| {d}-layer MLP, after {cfg['steps']} steps | final training loss "
        f"(seeds {seeds}) | test accuracy | first step with training loss "
        "< 0.99 ln 10 |",
        "|---|---|---|---|",
    ]
    name = {"he": "He", "xavier": "Xavier"}
    for a in cfg["train_slopes"]:
        for init in cfg["train_inits"]:
            r = runs[f"{init}_{a}"]
            act = "ReLU" if a == 0.0 else f"leaky {a:g}"
            left = []
            for row in r["train_loss"]:
                below = [
                    st
                    for st, x in zip(r["step"], row)
                    if x is not None and x < 0.99 * np.log(10)
                ]
                left.append(str(below[0]) if below else "never")
            out.append(
                f"| {act}, {name.get(init, init)} | {_f3(r['final_train_loss'])} | "
                f"{_f3(r['final_test_acc'])} | {', '.join(left)} |"
            )
    ratio = [
        v["ratio_last_first"] / v["theory_ratio"]
        for k, v in var.items()
        if not k.startswith("he_relu_gain_0.0")
    ]
    out += [
        "",
        f"Measured / theoretical E[y_{d}²] / E[y_1²]: from {min(ratio):.2f} to "
        f"{max(ratio):.2f}. Chance level: training loss ln 10 = {np.log(10):.3f}; "
        f"curves evaluated every {cfg['eval_every']} steps.",
    ]
    return "\n".join(out)


def _plot(path: Path, cfg: dict, values: dict) -> Path:
    return _figure(path, cfg, *_split(values))


STUDY = S.Study(NAME, _config, _parts, _summarise, _plot, render_markdown)
