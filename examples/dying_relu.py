"""Dying ReLU, measured: the same MLP trained with ReLU and with LeakyReLU.

A deep MLP (8 hidden layers) on scikit-learn's digits (embedded, no download) is
trained with plain SGD at a too-high learning rate, once with ReLU and once with
LeakyReLU -- same initialisation, same batches. Every few steps
:func:`leakyjax.diagnostics.dead_units` runs the model over the whole training
set and counts, per layer, the units whose pre-activation is ``<= 0`` on every
example ("dead"; for leaky units the same "never positive" statistic). The
script prints a table per run and plots the dead fraction per layer over
training.

Run::

    python examples/dying_relu.py                 # writes docs/dying_relu.png
    python examples/dying_relu.py --quick --out /tmp/dying.png   # a few seconds

Needs ``pip install "leakyjax[train]"`` (flax, optax, matplotlib, scikit-learn,
tqdm).
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from tqdm.auto import tqdm

import leakyjax.linen as ljnn
from leakyjax import diagnostics as dg

ROOT = Path(__file__).resolve().parents[1]


class MLP(nn.Module):
    """``depth`` Dense + activation layers of ``width`` units, then a classifier."""

    activation: str
    depth: int = 8
    width: int = 128
    num_classes: int = 10

    @nn.compact
    def __call__(self, x):
        x = x.reshape(x.shape[0], -1)
        for i in range(self.depth):
            x = nn.Dense(self.width, kernel_init=nn.initializers.he_normal())(x)
            # leakyjax modules sow their input: the pre-activation of this layer
            x = ljnn.get(self.activation)(name=f"act{i}")(x)
        return nn.Dense(self.num_classes)(x)


def load_data(seed: int):
    x, y = load_digits(return_X_y=True)  # 1797 8x8 images, shipped with sklearn
    perm = np.random.default_rng(seed).permutation(len(y))
    x = x[perm].astype(np.float32) / 16.0
    x = (x - x.mean()) / x.std()
    return jnp.asarray(x), jnp.asarray(y[perm].astype(np.int32))


def train_run(spec, args, x, y, progress=True):
    """Trains one model; returns [(step, report)], final accuracy, final report."""
    model = MLP(spec, depth=args.depth, width=args.width)
    params = model.init(jax.random.key(args.seed), x[:1])["params"]
    if args.optimizer == "adam":
        opt = optax.adam(args.lr)
    else:
        opt = optax.sgd(args.lr, momentum=args.momentum or None)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, xb, yb):
        def loss_fn(p):
            logits = model.apply({"params": p}, xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def accuracy(params):
        return jnp.mean(jnp.argmax(model.apply({"params": params}, x), -1) == y)

    def report(params):  # the whole training set, in two batches
        half = x.shape[0] // 2
        return dg.dead_units(model, [x[:half], x[half:]], variables={"params": params})

    n = x.shape[0]
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(n)
    pos = 0
    history = [(0, report(params))]
    steps = range(1, args.steps + 1)
    for t in tqdm(steps, desc=spec, disable=not progress, leave=False):
        if pos + args.batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos : pos + args.batch_size]
        pos += args.batch_size
        params, opt_state, _ = step(params, opt_state, x[idx], y[idx])
        if t % args.eval_every == 0 or t == args.steps:
            history.append((t, report(params)))
    return history, float(accuracy(params)), history[-1][1]


def describe(args):
    if args.optimizer == "adam":
        return f"Adam(lr={args.lr})"
    return f"SGD(lr={args.lr}, momentum={args.momentum})"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD only")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--activations",
        default="relu,leaky_relu:0.01",
        help="comma-separated registry specs to compare",
    )
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "dying_relu.png")
    p.add_argument("--quick", action="store_true", help="a tiny run for the test suite")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.depth, args.width, args.eval_every = 30, 3, 32, 10
    return args


def main(argv=None):
    args = parse_args(argv)
    x, y = load_data(args.seed)
    specs = [s.strip() for s in args.activations.split(",") if s.strip()]
    histories, summary = {}, []
    for spec in specs:
        history, acc, final = train_run(spec, args, x, y, not args.no_progress)
        histories[spec] = history
        title = (
            f"{spec}: after {args.steps} steps of {describe(args)}, "
            f"train accuracy {acc:.3f}"
        )
        print(dg.format_report(final, title=title), end="\n\n")
        dead = np.mean([float(r.dead_fraction) for r in final.values()])
        summary.append((spec, dead, acc))
    for spec, dead, acc in summary:
        print(f"{spec:>16}: {100 * dead:5.1f}% of hidden units never positive, "
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
    functools.partial(main, sys.argv[1:])()
