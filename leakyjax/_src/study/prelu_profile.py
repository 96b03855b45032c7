r"""`prelu-profile`: which slopes does PReLU learn, layer by layer?

He, Zhang, Ren and Sun (2015), "Delving Deep into Rectifiers", Table 1, list
the learned PReLU coefficients of every layer of their 14-layer ImageNet model,
channel-shared and channel-wise (initialised at 0.25, no weight decay on the
slopes). Their reading: the first conv layer learns coefficients clearly
larger than 0, and with channel-wise slopes the deeper conv layers in general
learn smaller coefficients (more nonlinear units with depth).

Here a 1-D CNN on mnist1d (three conv layers, kernel 5, stride 2, then one
hidden dense layer, each followed by PReLU) is trained with channel-shared and
channel-wise slopes (`leakyjax.linen.PReLU(num_parameters=C)`), with SGD +
momentum, weight decay on the weights but not on the slopes
([`leakyjax.decay_mask`][]), and the learned slopes are reported per layer.
The training stack's CNN has channel-shared PReLU only, so this module builds
its own small model and trains it with
`train_curves` (the one training loop).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import jax
import numpy as np

from leakyjax._src.study import studies as S

NAME = "prelu-profile"
LAYERS = ("conv1", "conv2", "conv3", "fc1")


def make_cnn(*, width: int, hidden: int, channel_wise: bool, num_outputs: int = 10):
    """1-D CNN with PReLU after every conv and the hidden dense layer."""
    import flax.linen as nn

    import leakyjax.linen as ll

    class PReLUCNN(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = x[..., None]
            for i in range(3):
                x = nn.Conv(width, (5,), strides=(2,), name=f"conv{i + 1}")(x)
                x = ll.PReLU(
                    num_parameters=width if channel_wise else 1,
                    name=f"prelu_conv{i + 1}",
                )(x)
            x = x.reshape(x.shape[0], -1)
            x = nn.Dense(hidden, name="fc1")(x)
            x = ll.PReLU(
                num_parameters=hidden if channel_wise else 1, name="prelu_fc1"
            )(x)
            return nn.Dense(num_outputs, name="head")(x)

    return PReLUCNN()


def slopes_of(params) -> dict[str, np.ndarray]:
    """Per layer, the PReLU slopes `(seeds, channels)` (channels 1 if shared)."""
    out = {}
    for layer in LAYERS:
        a = np.asarray(params[f"prelu_{layer}"]["negative_slope"], np.float64)
        out[layer] = a.reshape(a.shape[0], -1)
    return out


def train_profile(*, channel_wise: bool, cfg: dict, dataset) -> dict:
    """Trains the PReLU CNN for all seeds; returns slopes per layer and curves."""
    import optax

    import leakyjax

    model = make_cnn(
        width=cfg["width"], hidden=cfg["hidden"], channel_wise=channel_wise
    )
    tx = optax.chain(
        optax.add_decayed_weights(cfg["weight_decay"], mask=leakyjax.decay_mask),
        optax.sgd(cfg["learning_rate"], momentum=0.9),
    )

    def layer_means(step, params):
        return {k: v.mean(axis=1) for k, v in slopes_of(params).items()}

    curves, params = S.train_curves(
        model,
        dataset,
        tx=tx,
        seeds=tuple(cfg["seeds"]),
        steps=cfg["steps"],
        batch_size=cfg["batch_size"],
        eval_every=cfg["eval_every"],
        on_eval=layer_means,
    )
    slopes = slopes_of(jax.device_get(params))
    return dict(
        channel_wise=channel_wise,
        slopes={k: v for k, v in slopes.items()},
        layer_mean={k: v.mean(axis=1) for k, v in slopes.items()},
        step=curves["step"],
        layer_mean_curve=curves["extra"],
        final_test_acc=curves["final_test_acc"],
        final_train_loss=curves["final_train_loss"],
    )


def _config(quick: bool, seed: int) -> dict:
    if quick:
        return dict(
            width=16,
            hidden=32,
            seeds=[seed],
            steps=300,
            batch_size=64,
            learning_rate=0.02,
            weight_decay=5e-4,
            eval_every=100,
            num_train=1000,
            num_test=500,
        )
    return dict(
        width=32,
        hidden=64,
        seeds=[seed, seed + 1, seed + 2],
        steps=3000,
        batch_size=100,
        learning_rate=0.02,
        weight_decay=5e-4,
        eval_every=250,
        num_train=4000,
        num_test=1000,
    )


def _figure(path: Path, cfg: dict, rows: dict) -> Path:
    plt = S.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = np.arange(len(LAYERS))
    ax = axes[0]
    for off, (mode, r) in zip((-0.12, 0.12), rows.items()):
        for k, layer in enumerate(LAYERS):
            a = np.asarray(r["slopes"][layer], float)  # (seeds, channels)
            if mode == "channel-wise":
                ax.plot(
                    np.full(a.size, k + off)
                    + np.random.default_rng(k).normal(0, 0.02, a.size),
                    a.ravel(),
                    ".",
                    color="tab:orange",
                    alpha=0.25,
                    ms=3,
                )
        means = [np.asarray(r["layer_mean"][layer], float) for layer in LAYERS]
        ax.errorbar(
            xs + off,
            [m.mean() for m in means],
            yerr=[m.std() for m in means],
            fmt="o-" if mode == "channel-shared" else "s-",
            color="tab:blue" if mode == "channel-shared" else "tab:red",
            label=f"{mode} (mean over channels, ± std over seeds)",
        )
    ax.axhline(0.25, color="gray", ls=":", lw=1, label="init 0.25")
    ax.set_xticks(xs, LAYERS)
    ax.set_ylabel("learned PReLU slope")
    ax.set_title("mnist1d CNN: learned slopes per layer")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax = axes[1]
    r = rows["channel-wise"]
    steps = r["step"]
    for layer in LAYERS:
        vals = np.array([np.mean(e[layer]) for e in r["layer_mean_curve"]])
        ax.plot(steps, vals, label=layer)
    ax.set_xlabel("SGD step")
    ax.set_ylabel("mean slope (channel-wise, mean of seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return S.save_figure(fig, path)


MODES = ("channel-shared", "channel-wise")


def _parts(cfg: dict, seed: int) -> dict:
    dataset = S.mnist1d_loader(cfg)

    def part(mode: str) -> dict:
        return train_profile(
            channel_wise=mode == "channel-wise", cfg=cfg, dataset=dataset()
        )

    return {mode: partial(part, mode) for mode in MODES}


def _summarise(cfg: dict, rows: dict) -> tuple[dict, dict]:
    lines = ["learned slope per layer (mean over channels; mean ± std over seeds)"]
    profile = {}
    for mode, r in rows.items():
        profile[mode] = {
            layer: float(np.mean(r["layer_mean"][layer])) for layer in LAYERS
        }
        lines.append(
            f"  {mode:<15}"
            + "  ".join(
                f"{layer} {np.mean(r['layer_mean'][layer]):.3f}"
                f"±{np.std(r['layer_mean'][layer]):.3f}"
                for layer in LAYERS
            )
            + f"  test acc {np.mean(r['final_test_acc']):.3f}"
        )
    summary = dict(profile=profile, lines=lines)
    return summary, dict(runs=rows)


def render_markdown(res: dict) -> str:
    """The table of docs/STUDY.md's `prelu-profile` section, from the results JSON."""
    cfg = res["config"]
    seeds = ", ".join(str(s) for s in cfg["seeds"])
    out = [
        f"| learned slope (mean over channels; seeds {seeds}) | "
        + " | ".join(LAYERS)
        + " | test accuracy |",
        "|---|" + "---|" * (len(LAYERS) + 1),
    ]

    def f3(xs) -> str:
        return ", ".join(f"{x:.3f}".replace("-", "−") for x in xs)

    for mode, r in res["runs"].items():
        out.append(
            f"| {mode} | "
            + " | ".join(f3(r["layer_mean"][layer]) for layer in LAYERS)
            + f" | {f3(r['final_test_acc'])} |"
        )
    cw = res["runs"].get("channel-wise")
    if cw is not None:
        lo = min(min(min(row) for row in cw["slopes"][k]) for k in LAYERS)
        hi = max(max(max(row) for row in cw["slopes"][k]) for k in LAYERS)
        out += [
            "",
            f"Channel-wise: the individual slopes range from {f3([lo])} to "
            f"{f3([hi])}; layer means over seeds: "
            + ", ".join(f"{k} {f3([np.mean(cw['layer_mean'][k])])}" for k in LAYERS)
            + ".",
        ]
    return "\n".join(out)


STUDY = S.Study(NAME, _config, _parts, _summarise, _figure, render_markdown)
