"""Train a small flax.nnx MLP with leakyjax activations on sklearn's digits.

The nnx twin of ``flax_linen_mlp.py``: activation from the registry
(``--activation prelu``, ``leaky_relu:0.2``, ``rrelu``, ``elu``, ...), kernels
from the matching He initialiser, ``optax.adamw`` with the PReLU slopes
excluded from weight decay, ``nnx.jit`` train step and ``model.eval()`` for
testing (which also switches RReLU to its evaluation slope)::

    python examples/flax_nnx_mlp.py                   # 300 steps
    python examples/flax_nnx_mlp.py --activation rrelu
    python examples/flax_nnx_mlp.py --quick           # 30 steps (tests)

Needs ``pip install "leakyjax[train]"`` (flax, optax, scikit-learn).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from sklearn.datasets import load_digits

import leakyjax as lj
from leakyjax import nnx as ljnnx
from leakyjax.initializers import for_activation


def load_data(seed: int = 0):
    """sklearn's 8x8 digits (1797 images, shipped with scikit-learn), 80/20 split."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    perm = np.random.default_rng(seed).permutation(len(x))
    n_train = int(0.8 * len(x))
    tr, te = perm[:n_train], perm[n_train:]
    return (x[tr], y[tr]), (x[te], y[te])


class MLP(nnx.Module):
    """Linear -> activation blocks, then a linear classifier."""

    def __init__(
        self,
        activation: str = "prelu",
        hidden: Sequence[int] = (128, 128),
        num_in: int = 64,
        num_classes: int = 10,
        *,
        rngs: nnx.Rngs,
    ):
        make_act = ljnnx.get(activation)  # a fresh module per layer
        kernel_init = for_activation(activation)  # He init with its gain
        layers = []
        for width in hidden:
            layers.append(nnx.Linear(num_in, width, kernel_init=kernel_init, rngs=rngs))
            layers.append(make_act(rngs=rngs))  # rngs: used by RReLU only
            num_in = width
        layers.append(nnx.Linear(num_in, num_classes, rngs=rngs))
        self.net = nnx.Sequential(*layers)

    def __call__(self, x):
        return self.net(x)


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activation", default="prelu", help="registry spec")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="30 steps (for tests)")
    args = parser.parse_args(argv)
    steps = 30 if args.quick else args.steps
    lj.get(args.activation)  # fail early on a bad spec, naming the closest one

    (x_tr, y_tr), (x_te, y_te) = load_data(args.seed)
    model = MLP(args.activation, rngs=nnx.Rngs(args.seed))
    tx = optax.adamw(args.lr, weight_decay=args.weight_decay, mask=ljnnx.decay_mask)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x, y):
        def loss_fn(model):
            logits = model(x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    @nnx.jit
    def accuracy(model, x, y):
        return jnp.mean(jnp.argmax(model(x), -1) == y)

    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    model.train()  # RReLU: random slopes
    for step in range(1, steps + 1):
        idx = rng.choice(len(x_tr), args.batch_size, replace=False)
        loss = train_step(model, optimizer, x_tr[idx], y_tr[idx])
        if step % max(1, steps // 6) == 0 or step == steps:
            print(f"step {step:4d}  loss {float(loss):.4f}", flush=True)
    model.eval()  # RReLU: the evaluation slope
    acc = float(accuracy(model, x_te, y_te))
    seconds = time.perf_counter() - start
    print(
        f"activation {args.activation}: test accuracy {acc:.4f} after {steps} steps "
        f"({seconds:.1f} s)"
    )
    slopes = [
        float(np.mean(layer.negative_slope[...]))
        for layer in model.net.layers
        if isinstance(layer, ljnnx.PReLU)
    ]
    if slopes:
        print(
            "learned PReLU slopes (init 0.25, no weight decay):",
            ", ".join(f"{s:.3f}" for s in slopes),
        )
    return {"accuracy": acc, "steps": steps, "seconds": seconds}


if __name__ == "__main__":
    main()
