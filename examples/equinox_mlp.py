"""Train a small equinox MLP with leakyjax activations on sklearn's digits.

The equinox twin of ``flax_nnx_mlp.py``: activation from the registry
(``--activation prelu``, ``leaky_relu:0.2``, ``rrelu``, ``elu``, ...) through
[`leakyjax.equinox.get`][], weights from the matching He initialiser,
``optax.adamw`` with the PReLU slopes excluded from weight decay
([`leakyjax.decay_mask`][]), an ``eqx.filter_jit`` train step with a key per
example (RReLU's random slopes), ``eqx.nn.inference_mode`` for testing (RReLU's
evaluation slope), and the dying-unit report of
[`leakyjax.diagnostics.dead_units`][]::

    python examples/equinox_mlp.py                    # 300 steps
    python examples/equinox_mlp.py --activation rrelu
    python examples/equinox_mlp.py --quick            # 30 steps (tests)

Needs ``pip install "leakyjax[equinox,train]"`` (equinox, optax, scikit-learn).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import leakyjax as lj
from leakyjax import diagnostics as dg
from leakyjax import equinox as ljeqx
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


def make_model(
    activation: str, key, hidden: Sequence[int] = (128, 128), num_in: int = 64
):
    """Linear -> activation blocks, then a linear classifier (one example in)."""
    make_act = ljeqx.get(activation)  # a fresh module per layer
    init = for_activation(activation, in_axis=-1, out_axis=-2)  # eqx: (out, in)
    keys = jax.random.split(key, 2 * len(hidden) + 1)
    layers = []
    for i, width in enumerate(hidden):
        linear = eqx.nn.Linear(num_in, width, key=keys[2 * i])
        w = init(keys[2 * i + 1], linear.weight.shape)
        layers += [eqx.tree_at(lambda m: m.weight, linear, w), make_act()]
        num_in = width
    layers.append(eqx.nn.Linear(num_in, 10, key=keys[-1]))
    return eqx.nn.Sequential(layers)


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
    key, model_key = jax.random.split(jax.random.key(args.seed))
    model = make_model(args.activation, model_key)
    tx = optax.adamw(args.lr, weight_decay=args.weight_decay, mask=lj.decay_mask)
    opt_state = tx.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def train_step(model, opt_state, x, y, key):
        def loss_fn(model):
            keys = jax.random.split(key, x.shape[0])  # RReLU: slopes per example
            logits = jax.vmap(lambda xi, ki: model(xi, key=ki))(x, keys)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, opt_state = tx.update(grads, opt_state, params)
        return eqx.apply_updates(model, updates), opt_state, loss

    @eqx.filter_jit
    def accuracy(model, x, y):
        return jnp.mean(jnp.argmax(jax.vmap(model)(x), -1) == y)

    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        idx = rng.choice(len(x_tr), args.batch_size, replace=False)
        key, step_key = jax.random.split(key)
        model, opt_state, loss = train_step(
            model, opt_state, x_tr[idx], y_tr[idx], step_key
        )
        if step % max(1, steps // 6) == 0 or step == steps:
            print(f"step {step:4d}  loss {float(loss):.4f}", flush=True)
    test_model = eqx.nn.inference_mode(model)  # RReLU: the evaluation slope
    acc = float(accuracy(test_model, x_te, y_te))
    seconds = time.perf_counter() - start
    print(
        f"activation {args.activation}: test accuracy {acc:.4f} after {steps} steps "
        f"({seconds:.1f} s)"
    )
    slopes = [
        float(np.mean(layer.negative_slope))
        for layer in model.layers
        if isinstance(layer, ljeqx.PReLU)
    ]
    if slopes:
        print(
            "learned PReLU slopes (init 0.25, no weight decay):",
            ", ".join(f"{s:.3f}" for s in slopes),
        )
    report = dg.dead_units(test_model, np.array_split(x_te, 4))
    print(dg.format_report(report, title="dead units on the test set"))
    return {"accuracy": acc, "steps": steps, "seconds": seconds, "report": report}


if __name__ == "__main__":
    main()
