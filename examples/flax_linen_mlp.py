"""Train a small flax.linen MLP with leakyjax activations on sklearn's digits.

The model takes its activation from the registry (``--activation prelu``,
``leaky_relu:0.2``, ``rrelu``, ``elu``, ...), its kernels from the matching He
initialiser ([`leakyjax.initializers.for_activation`][]), and trains with
``optax.adamw`` whose weight decay skips the PReLU slopes
([`leakyjax.linen.decay_mask`][]). Runs in a few seconds on a CPU::

    python examples/flax_linen_mlp.py                 # 300 steps
    python examples/flax_linen_mlp.py --activation leaky_relu:0.2
    python examples/flax_linen_mlp.py --quick         # 30 steps (tests)

Needs ``pip install "leakyjax[train]"`` (flax, optax, scikit-learn).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import leakyjax as lj
from leakyjax import linen as ljnn
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


class MLP(nn.Module):
    """Dense -> activation blocks, then a linear classifier."""

    activation: str = "prelu"
    hidden: Sequence[int] = (128, 128)
    num_classes: int = 10

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        make_act = ljnn.get(self.activation)  # a fresh module per layer
        kernel_init = for_activation(self.activation)  # He init with its gain
        for width in self.hidden:
            x = nn.Dense(width, kernel_init=kernel_init)(x)
            act = make_act()
            # RReLU draws random slopes in training, like dropout
            x = (
                act(x, deterministic=not train)
                if isinstance(act, ljnn.RReLU)
                else act(x)
            )
        return nn.Dense(self.num_classes)(x)


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
    model = MLP(args.activation)
    key = jax.random.key(args.seed)
    params = model.init(key, x_tr[:1])["params"]
    tx = optax.adamw(args.lr, weight_decay=args.weight_decay, mask=ljnn.decay_mask)
    opt_state = tx.init(params)

    @jax.jit
    def train_step(params, opt_state, x, y, key):
        def loss_fn(p):
            logits = model.apply({"params": p}, x, train=True, rngs={"rrelu": key})
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def accuracy(params, x, y):
        logits = model.apply({"params": params}, x)
        return jnp.mean(jnp.argmax(logits, -1) == y)

    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        idx = rng.choice(len(x_tr), args.batch_size, replace=False)
        key, sub = jax.random.split(key)
        params, opt_state, loss = train_step(
            params, opt_state, x_tr[idx], y_tr[idx], sub
        )
        if step % max(1, steps // 6) == 0 or step == steps:
            print(f"step {step:4d}  loss {float(loss):.4f}", flush=True)
    acc = float(accuracy(params, x_te, y_te))
    seconds = time.perf_counter() - start
    print(
        f"activation {args.activation}: test accuracy {acc:.4f} after {steps} steps "
        f"({seconds:.1f} s)"
    )
    slopes = [
        np.asarray(v["negative_slope"]).mean()
        for v in params.values()
        if isinstance(v, dict) and "negative_slope" in v
    ]
    if slopes:
        print(
            "learned PReLU slopes (init 0.25, no weight decay):",
            ", ".join(f"{s:.3f}" for s in slopes),
        )
    return {"accuracy": acc, "steps": steps, "seconds": seconds}


if __name__ == "__main__":
    main()
