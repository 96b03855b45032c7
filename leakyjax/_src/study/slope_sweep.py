r"""`slope-sweep`: the rectifier family side by side (Xu et al. 2015).

Xu, Wang, Chen and Li (2015), "Empirical Evaluation of Rectified Activations
in Convolutional Network", compare ReLU, leaky ReLU (slope 1/100 and 1/5.5),
PReLU and randomized leaky ReLU (RReLU: slope $1/a$, $a \sim
U(3, 8)$ in training, $1/5.5$ at test time) on CIFAR-10/100 and NDSB.
Their conclusions (abstract): a non-zero negative slope consistently helps;
on small data sets a fixed or learned slope overfits (PReLU has the lowest
*training* error) while the randomized slope generalises best.

Here the same activations plus ELU train the training stack's mnist1d MLP and
1-D CNN (AdamW, warmup-cosine schedule, no early stopping, several seeds in
one program). Train error is measured in evaluation mode (RReLU at its mean
slope) on the whole training set after the last step.
"""

from __future__ import annotations

import itertools
from functools import partial
from pathlib import Path
from typing import cast

import jax
import jax.numpy as jnp
import numpy as np

from leakyjax._src.study import studies as S

NAME = "slope-sweep"
#: label -> registry spec. 1/5.5 is Xu et al.'s best fixed slope and the
#: test-time slope of their RReLU.
ACTIVATIONS: dict[str, str] = {
    "ReLU": "relu",
    "leaky 0.01": "leaky_relu:0.01",
    "leaky 1/5.5": f"leaky_relu:{1 / 5.5!r}",
    "PReLU": "prelu",
    "RReLU (Xu)": "rrelu:convention=xu",
    "ELU": "elu",
}


def train_error(result, dataset) -> np.ndarray:
    """Per seed, the error on the whole training set in evaluation mode."""
    from leakyjax._src.train import make_model

    c = result.config
    model = make_model(
        c.model,
        c.activation,
        dataset.num_outputs,
        depth=c.depth,
        width=c.width,
        dropout=c.dropout,
        batch_norm=c.batch_norm,
    )
    variables = {k: v for k, v in result.variables.items() if v}
    x, y = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)

    @jax.jit
    def err(v):
        logits = cast(jax.Array, model.apply(v, x, train=False))  # not mutable
        return jnp.mean(jnp.argmax(logits, -1) != y)

    return np.asarray(jax.vmap(err)(variables), np.float64)


def sweep_one(
    spec: str, model: str, *, seeds: tuple[int, ...], cfg: dict, dataset
) -> dict:
    """Trains one (activation, model) for all seeds; returns errors per seed."""
    from leakyjax._src.train import TrainConfig, train

    config = TrainConfig(
        activation=spec,
        dataset="mnist1d",
        model=model,
        width=cfg["widths"][model],
        steps=cfg["steps"],
        batch_size=cfg["batch_size"],
        eval_every=cfg["eval_every"],
        val_fraction=0.0,
        num_train=cfg["num_train"],
        num_test=cfg["num_test"],
        **cfg["optimizer"],
    )
    res = train(config, seeds=seeds, dataset=dataset)
    test_err = np.array([1.0 - r.final_test_acc for r in res.runs])
    return dict(
        spec=spec,
        model=model,
        seeds=list(seeds),
        train_error=train_error(res, dataset),
        test_error=test_err,
        diverged=[r.diverged for r in res.runs],
        test_acc_curve=[np.asarray(r.history.test_acc) for r in res.runs],
        step=np.asarray(res.runs[0].history.step),
        wall_time=res.wall_time,
    )


#: the study's optimiser, pinned (not the training stack's defaults, which may change)
OPTIMIZER = dict(
    optimizer="adamw",
    learning_rate=3e-3,
    schedule="warmup_cosine",
    warmup_steps=100,
    weight_decay=1e-4,
    clip_norm=1.0,
)


def _config(quick: bool, seed: int) -> dict:
    if quick:
        return dict(
            activations=["ReLU", "leaky 1/5.5", "RReLU (Xu)"],
            models=["mlp"],
            widths={"mlp": 32, "cnn": 16},
            seeds=[seed, seed + 1],
            steps=300,
            batch_size=64,
            eval_every=150,
            num_train=1000,
            num_test=500,
            optimizer=OPTIMIZER,
        )
    return dict(
        activations=list(ACTIVATIONS),
        models=["mlp", "cnn"],
        widths={"mlp": 100, "cnn": 16},
        seeds=[seed + i for i in range(5)],
        steps=1500,
        batch_size=100,
        eval_every=500,
        num_train=4000,
        num_test=1000,
        optimizer=OPTIMIZER,
    )


def ordering(rows: dict, model: str, metric: str) -> list[str]:
    """Activation labels sorted by mean `metric` (lowest first)."""
    labels = [k for (m, k) in rows if m == model]
    return sorted(labels, key=lambda k: float(np.mean(rows[(model, k)][metric])))


def _figure(path: Path, cfg: dict, rows: dict) -> Path:
    plt = S.pyplot()
    models = cfg["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.2))
    axes = np.atleast_1d(axes)
    acts = cfg["activations"]
    xs = np.arange(len(acts))
    for ax, model in zip(axes, models):
        for off, metric, color in (
            (-0.2, "train_error", "tab:blue"),
            (0.2, "test_error", "tab:orange"),
        ):
            vals = [np.asarray(rows[(model, a)][metric], float) for a in acts]
            ax.bar(
                xs + off,
                [v.mean() for v in vals],
                0.4,
                yerr=[v.std() for v in vals],
                color=color,
                alpha=0.6,
                label=metric.replace("_", " "),
            )
            for x, v in zip(xs, vals):
                ax.plot(np.full(len(v), x + off), v, "k.", ms=3)
        ax.set_xticks(xs, acts, rotation=20, fontsize=8)
        ax.set_ylabel("error")
        ax.set_title(f"mnist1d {model}, {len(cfg['seeds'])} seeds (dots)")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    return S.save_figure(fig, path)


def _parts(cfg: dict, seed: int) -> dict:
    dataset = S.mnist1d_loader(cfg)

    def part(model: str, label: str) -> dict:
        return sweep_one(
            ACTIVATIONS[label],
            model,
            seeds=tuple(cfg["seeds"]),
            cfg=cfg,
            dataset=dataset(),
        )

    return {
        f"{m}_{a}": partial(part, m, a)
        for m in cfg["models"]
        for a in cfg["activations"]
    }


def _rows(cfg: dict, values: dict) -> dict:
    return {
        (m, a): values[f"{m}_{a}"] for m in cfg["models"] for a in cfg["activations"]
    }


def _summarise(cfg: dict, values: dict) -> tuple[dict, dict]:
    rows = _rows(cfg, values)
    table = []
    lines = []
    for model in cfg["models"]:
        lines.append(f"mnist1d {model}: train error / test error, mean ± std")
        for label in cfg["activations"]:
            r = rows[(model, label)]
            tr, te = np.asarray(r["train_error"]), np.asarray(r["test_error"])
            table.append(
                dict(
                    model=model,
                    activation=label,
                    spec=ACTIVATIONS[label],
                    train_error_mean=tr.mean(),
                    train_error_std=tr.std(),
                    test_error_mean=te.mean(),
                    test_error_std=te.std(),
                )
            )
            lines.append(
                f"  {label:<12} {tr.mean():.4f} ± {tr.std():.4f}   "
                f"{te.mean():.4f} ± {te.std():.4f}"
            )
        lines.append(
            "  lowest train error first: "
            + ", ".join(ordering(rows, model, "train_error"))
        )
        lines.append(
            "  lowest test error first:  "
            + ", ".join(ordering(rows, model, "test_error"))
        )
    summary = dict(
        table=table,
        train_order={m: ordering(rows, m, "train_error") for m in cfg["models"]},
        test_order={m: ordering(rows, m, "test_error") for m in cfg["models"]},
        lines=lines,
    )
    return summary, dict(runs=[dict(label=k[1], **v) for k, v in rows.items()])


def render_markdown(res: dict) -> str:
    """The table of docs/STUDY.md's `slope-sweep` section, from the results JSON.

    **Bold**: the lowest mean of a column (every one that ties at the shown
    precision); orderings join exact ties with `=`.
    """
    cfg = res["config"]
    models = cfg["models"]
    metrics = ("train_error", "test_error")
    by = {(r["model"], r["activation"]): r for r in res["summary"]["table"]}
    header = ["activation"] + [
        f"{m.upper()} {k.replace('_', ' ')}" for m in models for k in metrics
    ]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    low = {
        (m, k): min(f"{by[(m, a)][f'{k}_mean']:.3f}" for a in cfg["activations"])
        for m in models
        for k in metrics
    }
    for a in cfg["activations"]:
        cells = [a]
        for m in models:
            for k in metrics:
                r = by[(m, a)]
                mean = f"{r[f'{k}_mean']:.3f}"
                if mean == low[(m, k)]:
                    mean = f"**{mean}**"
                cells.append(f"{mean} ± {r[f'{k}_std']:.3f}")
        out.append("| " + " | ".join(cells) + " |")

    def order(m: str, k: str) -> str:
        labels = res["summary"][f"{k.split('_')[0]}_order"][m]
        text = labels[0]
        for prev, a in itertools.pairwise(labels):
            same = by[(m, a)][f"{k}_mean"] == by[(m, prev)][f"{k}_mean"]
            text += (" = " if same else ", ") + a
        return text

    notes = [
        f"(mean ± standard deviation over {len(cfg['seeds'])} seeds; **bold**: the "
        "lowest mean at this precision.) Lowest test error first — "
        + "; ".join(f"{m.upper()}: {order(m, 'test_error')}" for m in models)
        + ". Lowest train error first — "
        + "; ".join(f"{m.upper()}: {order(m, 'train_error')}" for m in models)
        + "."
    ]
    for m in models:
        te = [by[(m, a)]["test_error_mean"] for a in cfg["activations"]]
        sd = [by[(m, a)]["test_error_std"] for a in cfg["activations"]]
        notes.append(
            f"{m.upper()}: mean test errors span {min(te):.3f}–{max(te):.3f}; the "
            f"seed standard deviations {min(sd):.3f}–{max(sd):.3f}."
        )
    return "\n".join(out) + "\n\n" + "\n\n".join(notes)


def _plot(path: Path, cfg: dict, values: dict) -> Path:
    return _figure(path, cfg, _rows(cfg, values))


STUDY = S.Study(NAME, _config, _parts, _summarise, _plot, render_markdown)
