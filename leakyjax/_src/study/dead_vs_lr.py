r"""`dead-vs-lr`: dead units against the learning rate, ReLU vs leaky ReLU.

CS231n (Karpathy, "Commonly used activation functions", course notes) warns
that a ReLU unit can be knocked into a region where it never activates again,
and that "you may find that as much as 40% of your network can be dead" with
a learning rate set too high. This study trains the training stack's mnist1d
MLP with SGD + momentum 0.9 at a constant learning rate (no clipping, no
warmup) over a range of learning rates and measures, after training, the
fraction of units per hidden layer whose pre-activation is <= 0 on every
training example ([`leakyjax.diagnostics`][], through the training stack's
`RunResult.dead_fraction`). For leaky units such a unit still passes a
gradient (slope `a`) and can recover; for ReLU it cannot.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from leakyjax._src.study import studies as S

NAME = "dead-vs-lr"
ACTIVATIONS = {"ReLU": "relu", "leaky 0.01": "leaky_relu:0.01"}


def _nanmean(a, axis=None):
    """Mean over finite entries (nan where there are none), without warnings."""
    a = np.asarray(a, np.float64)
    ok = np.isfinite(a)
    n = ok.sum(axis=axis)
    total = np.where(ok, a, 0.0).sum(axis=axis)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def train_at(spec: str, lr: float, *, cfg: dict, dataset) -> dict:
    """Trains all seeds at one learning rate; dead fractions per seed and layer."""
    from leakyjax._src.train import TrainConfig, train

    config = TrainConfig(
        activation=spec,
        dataset="mnist1d",
        model="mlp",
        depth=cfg["depth"],
        width=cfg["width"],
        steps=cfg["steps"],
        batch_size=cfg["batch_size"],
        optimizer="sgd",
        learning_rate=lr,
        schedule="constant",
        clip_norm=None,
        val_fraction=0.0,
        eval_every=cfg["steps"],
        num_train=cfg["num_train"],
        num_test=cfg["num_test"],
    )
    res = train(config, seeds=tuple(cfg["seeds"]), dataset=dataset)
    # None where it cannot be measured (a seed whose parameters became non-finite)
    nan = [np.nan] * cfg["depth"]
    dead = np.array(
        [nan if r.dead_fraction is None else list(r.dead_fraction) for r in res.runs],
        np.float64,
    )
    return dict(
        spec=spec,
        learning_rate=lr,
        dead_fraction=dead,  # (seeds, layers)
        test_acc=[r.final_test_acc for r in res.runs],
        diverged=[r.diverged for r in res.runs],
        steps=[r.steps for r in res.runs],
    )


def _config(quick: bool, seed: int) -> dict:
    if quick:
        return dict(
            learning_rates=[0.01, 0.3],
            depth=3,
            width=32,
            seeds=[seed],
            steps=300,
            batch_size=64,
            num_train=1000,
            num_test=500,
        )
    return dict(
        learning_rates=[0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
        depth=3,
        width=100,
        seeds=[seed, seed + 1, seed + 2],
        steps=1500,
        batch_size=100,
        num_train=4000,
        num_test=1000,
    )


def _figure(path: Path, cfg: dict, rows: dict) -> Path:
    plt = S.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    lrs = np.asarray(cfg["learning_rates"])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ax = axes[0]
    for i, (label, _) in enumerate(ACTIVATIONS.items()):
        dead = np.stack([np.asarray(rows[(label, lr)]["dead_fraction"]) for lr in lrs])
        for layer in range(dead.shape[2]):
            ax.plot(
                lrs,
                _nanmean(dead[:, :, layer], axis=1),
                ["o-", "s--", "^:", "d-."][layer % 4],
                color=colors[i],
                label=f"{label}, layer {layer + 1}",
            )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (SGD, momentum 0.9)")
    ax.set_ylabel("dead fraction (<= 0 on every training example)")
    ax.set_title(f"mnist1d MLP {cfg['depth']}x{cfg['width']}, mean of seeds")
    ax.axhline(0.4, color="gray", lw=0.8, ls=":")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax = axes[1]
    for i, (label, _) in enumerate(ACTIVATIONS.items()):
        acc = np.array(
            [np.asarray(rows[(label, lr)]["test_acc"], float) for lr in lrs]
        )  # nan where diverged
        ax.plot(lrs, _nanmean(acc, axis=1), "o-", color=colors[i], label=label)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("test accuracy (mean of non-diverged seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return S.save_figure(fig, path)


def _key(label: str, lr: float) -> str:
    return f"{ACTIVATIONS[label]}_lr{lr:g}"


def _parts(cfg: dict, seed: int) -> dict:
    dataset = S.mnist1d_loader(cfg)

    def part(label: str, lr: float) -> dict:
        return train_at(ACTIVATIONS[label], lr, cfg=cfg, dataset=dataset())

    return {
        _key(a, lr): partial(part, a, lr)
        for a in ACTIVATIONS
        for lr in cfg["learning_rates"]
    }


def _rows(cfg: dict, values: dict) -> dict:
    return {
        (a, lr): values[_key(a, lr)]
        for a in ACTIVATIONS
        for lr in cfg["learning_rates"]
    }


def _summarise(cfg: dict, values: dict) -> tuple[dict, dict]:
    rows = _rows(cfg, values)
    lines = ["dead fraction per layer (mean of seeds); test acc; diverged seeds"]
    table = []
    for (label, lr), r in rows.items():
        dead = np.asarray(r["dead_fraction"], float)
        acc = np.asarray(r["test_acc"], float)
        per_layer = _nanmean(dead, axis=0)
        table.append(
            dict(
                activation=label,
                learning_rate=lr,
                dead_fraction_per_layer=per_layer,
                dead_fraction_max_layer=float(np.nanmax(per_layer))
                if np.isfinite(per_layer).any()
                else None,
                test_acc=float(_nanmean(acc)),
                diverged=int(np.sum(r["diverged"])),
            )
        )
        lines.append(
            f"  {label:<10} lr={lr:<6g} dead "
            + " ".join(f"{v:.2f}" for v in per_layer)
            + f"  acc {float(_nanmean(acc)):.3f}"
            + f"  diverged {int(np.sum(r['diverged']))}/{len(acc)}"
        )
    summary = dict(table=table, lines=lines)
    return summary, dict(runs=[dict(label=k[0], **v) for k, v in rows.items()])


def _frac(x: float | None) -> str:
    if x is None:
        return "—"
    return "0" if x == 0 else "< 0.01" if x < 0.005 else f"{x:.2f}"


def _fracs(xs) -> str:
    return " / ".join(_frac(x) for x in xs)


def render_markdown(res: dict) -> str:
    """The tables of docs/STUDY.md's `dead-vs-lr` section, from the results JSON."""
    cfg = res["config"]
    layers = "/".join(str(i + 1) for i in range(cfg["depth"]))
    by = {(r["activation"], r["learning_rate"]): r for r in res["summary"]["table"]}
    runs = {(r["label"], r["learning_rate"]): r for r in res["runs"]}
    labels = list(ACTIVATIONS)
    n = len(cfg["seeds"])
    header = ["learning rate"]
    for a in labels:
        header += [f"{a} dead fraction, layers {layers}", f"{a} test acc"]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for lr in cfg["learning_rates"]:
        cells = [f"{lr:g}"]
        for a in labels:
            t = by[(a, lr)]
            if t["diverged"] == n:
                cells += [f"all {n} seeds diverged", "—"]
                continue
            dead = _fracs(t["dead_fraction_per_layer"])
            if t["diverged"]:
                dead += f" ({n - t['diverged']} seeds; {t['diverged']} diverged)"
            acc = "—" if t["test_acc"] is None else f"{t['test_acc']:.3f}"
            cells += [dead, acc]
        out.append("| " + " | ".join(cells) + " |")
    out += [
        "",
        f"Mean over seeds ({n}); for {labels[1]}, *dead* = negative on every training "
        "example. Per seed (layers "
        + layers
        + "), at the learning rates where a unit died:",
        "",
        "| learning rate | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for lr in cfg["learning_rates"]:
        per = [np.asarray(runs[(a, lr)]["dead_fraction"], dtype=float) for a in labels]
        if not any(np.nan_to_num(p).max() > 0 for p in per):
            continue
        cells = [
            "; ".join(
                "diverged"
                if not np.isfinite(seed_row).all()
                else _fracs(seed_row.tolist())
                for seed_row in p
            )
            for p in per
        ]
        out.append(f"| {lr:g} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def _plot(path: Path, cfg: dict, values: dict) -> Path:
    return _figure(path, cfg, _rows(cfg, values))


STUDY = S.Study(NAME, _config, _parts, _summarise, _plot, render_markdown)
