"""Dying ReLU, measured: the same MLP trained with ReLU and with LeakyReLU.

A deep MLP (8 hidden layers) on scikit-learn's digits (embedded, no download) is
trained with Adam at a too-high learning rate (0.005), with ReLU and with
LeakyReLU (slopes 0.01 and 0.2) -- same initialisation, same batches, on
leakyjax's training loop (:func:`leakyjax.train.train` with this model, the
optimiser and the data given). Every few steps
:func:`leakyjax.diagnostics.dead_units` runs the model over the whole training
set and counts, per layer, the units whose pre-activation is ``<= 0`` on every
example ("dead"; for leaky units the same "never positive" statistic), and
:func:`leakyjax.diagnostics.gradient_stats` the fraction of exactly-zero
full-batch gradients per layer (a dead ReLU unit gets none; a never-positive
leaky unit still gets ``slope * upstream``). The script prints tables per run
and plots the dead fraction per layer over training.

Run::

    python examples/dying_relu.py                 # writes docs/dying_relu.png
    python examples/dying_relu.py --quick --out /tmp/dying.png   # a few seconds

Needs ``pip install "leakyjax[train]"`` (flax, optax, matplotlib, scikit-learn,
tqdm).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from tqdm.auto import tqdm

from leakyjax import diagnostics as dg
from leakyjax.train import TrainConfig, activation_factory, train

ROOT = Path(__file__).resolve().parents[1]


class MLP(nn.Module):
    """``depth`` Dense + activation layers of ``width`` units, then a classifier.

    ``act`` is the parsed activation the training loop hands to the model
    factory: ``act()`` makes a fresh leakyjax module per layer.
    """

    act: object
    depth: int = 8
    width: int = 128
    num_classes: int = 10

    @nn.compact
    def __call__(self, x):
        x = x.reshape(x.shape[0], -1)
        for i in range(self.depth):
            x = nn.Dense(self.width, kernel_init=nn.initializers.he_normal())(x)
            # leakyjax modules sow their input: the pre-activation of this layer
            x = self.act(name=f"act{i}")(x)
        return nn.Dense(self.num_classes)(x)


def load_data(seed: int):
    x, y = load_digits(return_X_y=True)  # 1797 8x8 images, shipped with sklearn
    perm = np.random.default_rng(seed).permutation(len(y))
    x = x[perm].astype(np.float32) / 16.0
    x = (x - x.mean()) / x.std()
    return x, y[perm].astype(np.int32)


def train_run(spec, args, x, y, progress=True):
    """Trains one model on leakyjax's training loop; returns [(step, report)],
    accuracy, gradient stats."""
    lr = args.lr
    if args.decay_at:  # the too-high rate first, then a sane one
        lr = optax.piecewise_constant_schedule(args.lr, {args.decay_at: 0.1})
    if args.optimizer == "adam":
        opt = optax.adam(lr)
    else:
        opt = optax.sgd(lr, momentum=args.momentum or None)
    if args.clip:
        opt = optax.chain(optax.clip_by_global_norm(args.clip), opt)

    def factory(act):
        return MLP(act, depth=args.depth, width=args.width)

    model = factory(activation_factory(spec))
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def report(step, params):  # the whole training set, in two batches
        params = jax.tree_util.tree_map(lambda a: a[0], params)  # the one seed
        half = x.shape[0] // 2
        return dg.dead_units(
            model, [xj[:half], xj[half:]], variables={"params": params}
        )

    config = TrainConfig(
        activation=spec,
        dataset="digits",
        model="dying_relu.MLP",
        steps=args.steps,
        batch_size=args.batch_size,
        eval_every=args.eval_every,
        val_fraction=0.0,
    )
    bar = tqdm(total=args.steps, desc=spec, disable=not progress, leave=False)
    res = train(
        config,
        seeds=(args.seed,),
        model=factory,
        dataset=(x, y, x, y),  # every number here is on the training set
        optimizer=opt,
        progress=bar.update,
        on_eval=report,
    )
    bar.close()
    params = jax.tree_util.tree_map(lambda a: a[0], res.variables["params"])

    def loss_fn(p):
        logits = model.apply({"params": p}, xj)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yj).mean()

    # a dead ReLU unit gets exactly 0 gradient
    grads = jax.jit(lambda p: dg.gradient_stats(jax.grad(loss_fn)(p)))(params)
    history = list(zip(res.runs[0].history.step.tolist(), res.evals))
    return history, float(res.runs[0].final_test_acc), grads


def describe(args):
    if args.optimizer == "adam":
        text = f"Adam(lr={args.lr})"
    else:
        text = f"SGD(lr={args.lr}, momentum={args.momentum})"
    if args.decay_at:
        text += f" (/10 at step {args.decay_at})"
    return text + (f", clip {args.clip}" if args.clip else "")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--lr", type=float, default=0.005, help="learning rate")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD only")
    p.add_argument(
        "--decay-at", type=int, default=0, help="divide the lr by 10 at this step"
    )
    p.add_argument(
        "--clip", type=float, default=0.0, help="clip the global gradient norm (0: off)"
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--activations",
        default=None,
        help="comma-separated registry specs to compare (default: "
        "relu,leaky_relu:0.01,leaky_relu:0.2; --quick: relu,leaky_relu:0.2)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "dying_relu.png")
    p.add_argument("--quick", action="store_true", help="a tiny run for the test suite")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.depth, args.width, args.eval_every = 20, 2, 16, 10
    if args.activations is None:
        args.activations = (
            "relu,leaky_relu:0.2"
            if args.quick
            else "relu,leaky_relu:0.01,leaky_relu:0.2"
        )
    return args


def main(argv=None):
    args = parse_args(argv)
    x, y = load_data(args.seed)
    specs = [s.strip() for s in args.activations.split(",") if s.strip()]
    histories, summary = {}, []
    for spec in specs:
        history, acc, grads = train_run(spec, args, x, y, not args.no_progress)
        histories[spec] = history
        final = history[-1][1]
        title = (
            f"{spec}: after {args.steps} steps of {describe(args)}, "
            f"train accuracy {acc:.3f}"
        )
        print(dg.format_report(final, title=title), end="\n\n")
        title = f"{spec}: full-batch gradients of the trained model"
        print(dg.format_gradient_stats(grads, title=title), end="\n\n")
        dead = np.mean([float(r.dead_fraction) for r in final.values()])
        hidden = [f"Dense_{i}" for i in range(args.depth)]
        zero = np.mean([float(grads.layers[n].zero_fraction) for n in hidden])
        summary.append((spec, dead, zero, acc))
    for spec, dead, zero, acc in summary:
        print(f"{spec:>16}: {100 * dead:5.1f}% of hidden units never positive, "
              f"{100 * zero:5.1f}% of hidden-layer gradients exactly 0, "
              f"train accuracy {acc:.3f}")  # fmt: skip
    dg.plot_history(
        histories,
        out=args.out,
        title=(
            f"Units never positive on the training set, {args.depth}x{args.width} MLP "
            f"on digits, {describe(args)}"
        ),
    )
    print(f"figure: {args.out}")
    return histories


if __name__ == "__main__":
    main()
