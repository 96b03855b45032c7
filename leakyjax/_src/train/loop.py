"""The training loop: optax, seeds in one compiled program, data parallel.

One call of :func:`train` trains every seed of one configuration together: the
parameters, optimiser states, batch-norm statistics and data-order streams of
all seeds carry a leading seed axis and a single ``jax.vmap``-ed, ``lax.scan``-ed
program advances them all by ``eval_every`` steps at a time. The batch axis is
sharded over all local devices (``jax.sharding.Mesh`` + ``NamedSharding``;
parameters replicated), so the same call is data parallel on a multi-device
host without any change.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from leakyjax._src import capture as _capture
from leakyjax._src import diagnostics as _dg
from leakyjax._src import optim as _optim
from leakyjax._src.train.data import DATASETS, Dataset, load_dataset
from leakyjax._src.train.models import MODELS, make_model, validate_activation

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("warmup_cosine", "constant")


class TrainConfig(NamedTuple):
    """Everything that defines one training configuration (all seeds share it).

    Attributes:
        activation: registry spec of the hidden activation (``"leaky_relu:0.2"``).
        dataset: ``"mnist1d"``, ``"digits"`` or ``"regression"``.
        model: ``"mlp"`` or ``"cnn"``.
        depth: hidden layers (None: the model's default, mlp 2, cnn 3).
        width: units / channels per layer (None: mlp 100, cnn 32).
        dropout: dropout rate after each activation.
        batch_norm: BatchNorm before each activation.
        steps: optimiser steps (the budget; early stopping may use fewer).
        batch_size: examples per step (sharded over the local devices).
        optimizer: ``"adamw"`` (decoupled weight decay, PReLU slopes masked),
            ``"adam"`` or ``"sgd"`` (momentum 0.9).
        learning_rate: peak learning rate.
        schedule: ``"warmup_cosine"`` (linear warmup then cosine decay to 0) or
            ``"constant"``.
        warmup_steps: linear warmup length (clamped below ``steps``).
        weight_decay: AdamW decoupled weight decay (not applied to PReLU slopes).
        clip_norm: global-norm gradient clipping (None disables).
        val_fraction: share of the training set held out for validation and
            early stopping (0 disables both).
        eval_every: evaluate (val + test) every this many steps.
        patience: stop a seed after this many evaluations without a better
            validation score (None: train the full budget).
        num_train: training examples before the validation split (None: default).
        num_test: test examples (None: default).
        data_seed: seed of the data set itself (None: the data set's default).
    """

    activation: str = "relu"
    dataset: str = "mnist1d"
    model: str = "mlp"
    depth: int | None = None
    width: int | None = None
    dropout: float = 0.0
    batch_norm: bool = False
    steps: int = 3000
    batch_size: int = 100
    optimizer: str = "adamw"
    learning_rate: float = 1e-2
    schedule: str = "warmup_cosine"
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    clip_norm: float | None = 1.0
    val_fraction: float = 0.1
    eval_every: int = 100
    patience: int | None = None
    num_train: int | None = None
    num_test: int | None = None
    data_seed: int | None = None


class History(NamedTuple):
    """Learning curves of one seed, one entry per evaluation.

    ``train_loss`` is the mean training loss over the steps since the previous
    evaluation (nan at step 0). ``*_acc`` is accuracy, or R² for regression.
    Entries after a seed stopped (early stopping, divergence) repeat nothing:
    they are nan.
    """

    step: np.ndarray
    train_loss: np.ndarray
    val_loss: np.ndarray
    val_acc: np.ndarray
    test_loss: np.ndarray
    test_acc: np.ndarray


class RunResult(NamedTuple):
    """The outcome of one seed.

    Attributes:
        seed: the training seed (initialisation, data order, dropout/RReLU noise).
        final_test_acc: test accuracy (R² for regression) at the last step trained.
        final_test_loss: test loss at the last step trained.
        best_test_acc: test accuracy at the evaluation with the best validation
            score (early-stopping selection; the final one without validation).
        best_test_loss: test loss at that evaluation.
        best_step: the step of that evaluation.
        steps: optimiser steps applied.
        diverged: the loss (or a gradient) became nan/inf; training of this seed
            stopped there and its metrics are nan.
        stopped_early: early stopping ended this seed before ``config.steps``.
        dead_fraction: per hidden layer, the fraction of units whose
            pre-activation is negative on every training example
            (``leakyjax.diagnostics``), or None where it cannot be measured.
        history: the learning curves.
    """

    seed: int
    final_test_acc: float
    final_test_loss: float
    best_test_acc: float
    best_test_loss: float
    best_step: int
    steps: int
    diverged: bool
    stopped_early: bool
    dead_fraction: tuple[float, ...] | None
    history: History


class TrainResult(NamedTuple):
    """The outcome of :func:`train`: one :class:`RunResult` per seed.

    Attributes:
        config: the configuration trained.
        runs: one result per seed, in the order of ``seeds``.
        variables: final flax variables of all seeds, stacked on a leading seed
            axis (``{"params": ..., "batch_stats": ...}``).
        wall_time: seconds for the whole call (all seeds, compilation included).
        compile_time: seconds spent compiling.
        num_devices: devices the batch axis was sharded over.
        metric: ``"accuracy"`` or ``"r2"``.
    """

    config: TrainConfig
    runs: tuple[RunResult, ...]
    variables: Any
    wall_time: float
    compile_time: float
    num_devices: int
    metric: str


class _State(NamedTuple):
    params: Any
    batch_stats: Any
    opt_state: Any
    key: Any
    active: Any
    diverged: Any
    steps: Any


def check_config(config: TrainConfig) -> TrainConfig:
    """Validate ``config`` and return it with the activation spec normalised.

    Raises:
        ValueError: naming the bad field, the bad value and what is accepted.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}.")
    if config.dataset not in DATASETS:
        raise ValueError(
            f"unknown dataset {config.dataset!r}; valid datasets: {', '.join(DATASETS)}."
        )
    if config.model not in MODELS:
        raise ValueError(
            f"unknown model {config.model!r}; valid models: {', '.join(MODELS)}."
        )
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {config.optimizer!r}; valid: {', '.join(OPTIMIZERS)}."
        )
    if config.schedule not in SCHEDULES:
        raise ValueError(
            f"unknown schedule {config.schedule!r}; valid: {', '.join(SCHEDULES)}."
        )
    for name in ("steps", "batch_size", "eval_every"):
        v = getattr(config, name)
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"TrainConfig.{name} must be an int >= 1, got {v!r}.")
    if not (config.learning_rate > 0 and math.isfinite(config.learning_rate)):
        raise ValueError(
            f"TrainConfig.learning_rate must be finite and > 0, got "
            f"{config.learning_rate!r}."
        )
    if not 0.0 <= config.val_fraction < 1.0:
        raise ValueError(
            f"TrainConfig.val_fraction must be in [0, 1), got {config.val_fraction!r}."
        )
    if config.patience is not None:
        if config.patience < 1:
            raise ValueError(
                f"TrainConfig.patience must be >= 1 or None, got {config.patience!r}."
            )
        if config.val_fraction == 0:
            raise ValueError(
                "TrainConfig.patience needs a validation split: set val_fraction > 0."
            )
    if config.clip_norm is not None and not config.clip_norm > 0:
        raise ValueError(
            f"TrainConfig.clip_norm must be > 0 or None, got {config.clip_norm!r}."
        )
    return config._replace(activation=validate_activation(config.activation))


def _layer_order(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def _dead_fraction_fn(model: Any) -> Callable[[Any, Any], Any]:
    """``f(variables, x) -> (layers,)`` dead-unit fractions, for jit and vmap.

    A unit is dead when its pre-activation is <= 0 on every example of ``x``
    (:func:`leakyjax.diagnostics.result`); layers are the leakyjax activation
    modules in call order.
    """

    def f(variables, x):
        _, acts = _capture.capture_linen(model, variables, x, train=False)
        names = sorted(acts, key=_layer_order)
        acts = {n: acts[n] for n in names}
        stats = _dg.result(_dg.update(_dg.init(acts), acts))
        return jnp.stack([stats[n].dead_fraction for n in names])

    return f


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """The optax transformation of ``config``.

    ``adamw``: global-norm clipping -> AdamW whose weight decay skips PReLU
    slopes (He et al. 2015), on a linear-warmup + cosine-decay schedule (or a
    constant one).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.train import TrainConfig, make_optimizer
        >>> tx = make_optimizer(TrainConfig(steps=10, warmup_steps=2))
        >>> state = tx.init({"w": jnp.ones(3)})
    """
    lr = config.learning_rate
    if config.schedule == "warmup_cosine":
        warmup = min(config.warmup_steps, config.steps - 1)
        if warmup > 0:
            sched = optax.warmup_cosine_decay_schedule(
                0.0, lr, warmup, config.steps, end_value=0.0
            )
        else:
            sched = optax.cosine_decay_schedule(lr, config.steps)
    else:
        sched = optax.constant_schedule(lr)
    parts = []
    if config.clip_norm is not None:
        parts.append(optax.clip_by_global_norm(config.clip_norm))
    if config.optimizer == "adamw":
        parts.append(
            optax.adamw(sched, weight_decay=config.weight_decay, mask=_optim.decay_mask)
        )
    elif config.optimizer == "adam":
        parts.append(optax.adam(sched))
    else:
        parts.append(optax.sgd(sched, momentum=0.9))
    return optax.chain(*parts)


def _split_val(ds: Dataset, val_fraction: float):
    n = len(ds.y_train)
    n_val = round(val_fraction * n)
    if val_fraction > 0 and n_val < 1:
        n_val = 1
    if n_val == 0:
        return ds.x_train, ds.y_train, ds.x_train[:0], ds.y_train[:0]
    # A fixed permutation: every seed and activation sees the same split.
    perm = np.random.default_rng(12345).permutation(n)
    tr, va = perm[n_val:], perm[:n_val]
    return ds.x_train[tr], ds.y_train[tr], ds.x_train[va], ds.y_train[va]


class _Order:
    """Per-seed data order: a stream of epoch permutations, cut into batches."""

    def __init__(self, seed: int, n: int):
        self.rng = np.random.default_rng([int(seed), 0xDA7A])
        self.n = n
        self.buf = np.empty((0,), np.int32)

    def take(self, k: int, batch: int) -> np.ndarray:
        need = k * batch
        while len(self.buf) < need:
            self.buf = np.concatenate(
                [self.buf, self.rng.permutation(self.n).astype(np.int32)]
            )
        out, self.buf = self.buf[:need], self.buf[need:]
        return out.reshape(k, batch)


def _mesh(batch_size: int, devices: Sequence[Any] | None) -> Mesh:
    devs = list(jax.local_devices() if devices is None else devices)
    n = max(d for d in range(1, len(devs) + 1) if batch_size % d == 0)
    return Mesh(np.array(devs[:n]), ("data",))


def _tree_where(c, new, old):
    return jax.tree_util.tree_map(lambda n, o: jnp.where(c, n, o), new, old)


def _all_finite(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


_PROGRAMS: dict = {}


def _program(config: TrainConfig, ds: Dataset, x0: np.ndarray, mesh: Mesh):
    """The model, optimiser and jitted functions of one configuration.

    Cached per (config, data set, devices), so repeated :func:`train` calls of
    one configuration (e.g. seeds one by one) compile once.
    """
    key = (config, id(ds), tuple(d.id for d in mesh.devices.flat))
    hit = _PROGRAMS.get(key)
    if hit is not None:
        return hit[1]
    classification = ds.task == "classification"
    model = make_model(
        config.model,
        config.activation,
        ds.num_outputs,
        depth=config.depth,
        width=config.width,
        dropout=config.dropout,
        batch_norm=config.batch_norm,
    )
    tx = make_optimizer(config)
    rep = NamedSharding(mesh, P())
    batch_sharding = NamedSharding(mesh, P("data"))

    def train_loss(out, y):
        if classification:
            return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()
        return jnp.mean((out - y) ** 2)

    def init_one(key):
        variables = model.init(
            {"params": jax.random.fold_in(key, 0), "dropout": key, "rrelu": key},
            jnp.asarray(x0),
            train=False,
        )
        params = variables["params"]
        stats = variables.get("batch_stats", {})
        return _State(
            params,
            stats,
            tx.init(params),
            key,
            jnp.bool_(True),
            jnp.bool_(False),
            jnp.int32(0),
        )

    def step_one(state: _State, inp, x, y):
        idx, step = inp
        xb = jax.lax.with_sharding_constraint(x[idx], batch_sharding)
        yb = jax.lax.with_sharding_constraint(y[idx], batch_sharding)
        k_drop, k_rrelu = jax.random.split(jax.random.fold_in(state.key, step + 1))

        def loss_fn(params):
            variables = {"params": params}
            if config.batch_norm:
                variables["batch_stats"] = state.batch_stats
            out, mutated = model.apply(
                variables,
                xb,
                train=True,
                rngs={"dropout": k_drop, "rrelu": k_rrelu},
                mutable=["batch_stats"] if config.batch_norm else [],
            )
            return train_loss(out, yb), mutated

        (loss, mutated), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        stats = mutated.get("batch_stats", state.batch_stats)
        finite = jnp.isfinite(loss) & _all_finite(grads)
        ok = state.active & finite
        new = _State(
            _tree_where(ok, params, state.params),
            _tree_where(ok, stats, state.batch_stats),
            _tree_where(ok, opt_state, state.opt_state),
            state.key,
            state.active & finite,
            state.diverged | (state.active & ~finite),
            state.steps + ok.astype(jnp.int32),
        )
        return new, jnp.where(ok, loss, jnp.nan)

    def chunk_one(state, idx, steps, x, y):
        return jax.lax.scan(lambda s, i: step_one(s, i, x, y), state, (idx, steps))

    def eval_one(state: _State, x, y):
        # per-example loss and score terms; val and test go in one call
        variables = {"params": state.params}
        if config.batch_norm:
            variables["batch_stats"] = state.batch_stats
        out = cast(jax.Array, model.apply(variables, x, train=False))  # not mutable
        if classification:
            loss = optax.softmax_cross_entropy_with_integer_labels(out, y)
            return loss, (jnp.argmax(out, -1) == y).astype(jnp.float32)
        se = jnp.sum((out - y) ** 2, -1)
        return se / y.shape[-1], se

    chunk = jax.jit(
        jax.vmap(chunk_one, in_axes=(0, 0, None, None, None)),
        donate_argnums=0,
        out_shardings=rep,
    )
    evaluate = jax.jit(jax.vmap(eval_one, in_axes=(0, None, None)))
    dead = jax.jit(jax.vmap(_dead_fraction_fn(model), in_axes=(0, None)))
    prog = SimpleNamespace(
        model=model,
        init_one=init_one,
        chunk=chunk,
        evaluate=evaluate,
        dead=dead,
        rep=rep,
        compiled={},
    )
    if len(_PROGRAMS) >= 16:
        _PROGRAMS.pop(next(iter(_PROGRAMS)))
    _PROGRAMS[key] = (ds, prog)  # holding ds keeps id(ds) unique
    return prog


def train(
    config: TrainConfig,
    seeds: Sequence[int] = (0,),
    *,
    dataset: Dataset | None = None,
    devices: Sequence[Any] | None = None,
    progress: Callable[[int], Any] | None = None,
) -> TrainResult:
    """Train every seed of ``config`` in one compiled program.

    Seeds share the data set and differ in initialisation, data order and
    dropout/RReLU noise. A seed whose loss or gradients become non-finite is
    frozen and reported as diverged; the others continue. Results do not
    depend on which other seeds train alongside (up to float reassociation),
    so ``train(c, seeds=(0, 1))`` matches ``train(c, (0,))`` and
    ``train(c, (1,))``.

    Args:
        config: the configuration (see :class:`TrainConfig`).
        seeds: training seeds, trained together (vmapped).
        dataset: a :class:`Dataset` to use instead of loading ``config.dataset``.
        devices: devices to shard the batch over (default: all local devices; the
            largest count dividing ``batch_size`` is used).
        progress: called with the number of steps advanced after each chunk
            (e.g. ``tqdm.update``).

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: for an invalid configuration or empty / duplicate seeds.

    Example:
        >>> from leakyjax.train import TrainConfig, train
        >>> cfg = TrainConfig(activation="leaky_relu:0.2", dataset="digits",
        ...                   steps=20, eval_every=10, num_train=200, num_test=100)
        >>> res = train(cfg, seeds=(0, 1))
        >>> [r.steps for r in res.runs], res.runs[0].history.step.tolist()
        ([20, 20], [0, 10, 20])
    """
    config = check_config(config)
    seeds = tuple(int(s) for s in seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"train: seeds must be distinct and non-empty, got {seeds!r}.")
    t_start = time.perf_counter()
    ds = dataset
    if ds is None:
        ds = load_dataset(
            config.dataset,
            num_train=config.num_train,
            num_test=config.num_test,
            seed=config.data_seed,
        )
    x_tr, y_tr, x_va, y_va = _split_val(ds, config.val_fraction)
    has_val = len(y_va) > 0
    classification = ds.task == "classification"
    num_seeds = len(seeds)
    mesh = _mesh(config.batch_size, devices)
    prog = _program(config, ds, x_tr[:1], mesh)
    rep = prog.rep
    evaluate, init_one, chunk = prog.evaluate, prog.init_one, prog.chunk
    put = lambda a: jax.device_put(jnp.asarray(a), rep)
    data_x, data_y = put(x_tr), put(y_tr)
    eval_parts = {"test": (ds.x_test, ds.y_test)}
    if has_val:
        eval_parts["val"] = (x_va, y_va)
    eval_x = put(np.concatenate([x for x, _ in eval_parts.values()]))
    eval_y = put(np.concatenate([y for _, y in eval_parts.values()]))
    eval_slices, start = {}, 0
    for name, (_, y) in eval_parts.items():
        eval_slices[name] = (slice(start, start + len(y)), np.asarray(y, np.float64))
        start += len(y)

    # Initialise seed by seed, eagerly: the random ops compile once per shape
    # and process, not once per model (jitting init costs seconds on CPU).
    per_seed = [init_one(jax.random.key(s)) for s in seeds]
    state = jax.tree_util.tree_map(lambda *a: put(jnp.stack(a)), *per_seed)
    orders = [_Order(s, len(y_tr)) for s in seeds]

    compile_time = 0.0
    compiled = prog.compiled
    bounds = [*range(0, config.steps, config.eval_every), config.steps]
    n_evals = len(bounds)
    hist = {
        k: np.full((num_seeds, n_evals), np.nan)
        for k in ("train_loss", "val_loss", "val_acc", "test_loss", "test_acc")
    }
    best_score = np.full(num_seeds, -np.inf)
    best_at = np.zeros(num_seeds, np.int64)
    since_best = np.zeros(num_seeds, np.int64)
    stopped_early = np.zeros(num_seeds, bool)
    last_eval = 0

    def do_eval(e: int, alive: np.ndarray):
        loss, term = (
            np.asarray(a, np.float64) for a in evaluate(state, eval_x, eval_y)
        )
        for name, (sl, y) in eval_slices.items():
            hist[f"{name}_loss"][alive, e] = loss[alive, sl].mean(1)
            if classification:
                score = term[:, sl].mean(1)
            else:
                score = 1.0 - term[:, sl].sum(1) / np.sum((y - y.mean(0)) ** 2)
            hist[f"{name}_acc"][alive, e] = score[alive]

    do_eval(0, np.ones(num_seeds, bool))
    for e in range(1, n_evals):
        k = bounds[e] - bounds[e - 1]
        idx = np.stack([o.take(k, config.batch_size) for o in orders])
        idx = jax.device_put(idx, NamedSharding(mesh, P(None, None, "data")))
        steps = put(np.arange(bounds[e - 1], bounds[e], dtype=np.int32))
        if (k, num_seeds) not in compiled:
            t0 = time.perf_counter()
            compiled[k, num_seeds] = chunk.lower(
                state, idx, steps, data_x, data_y
            ).compile()
            compile_time += time.perf_counter() - t0
        was_active = np.asarray(state.active)
        state, losses = compiled[k, num_seeds](state, idx, steps, data_x, data_y)
        losses = np.asarray(losses, np.float64)
        with np.errstate(invalid="ignore"):
            counted = np.isfinite(losses).sum(1)
            hist["train_loss"][:, e] = np.where(
                counted > 0, np.nansum(losses, 1) / np.maximum(counted, 1), np.nan
            )
        active = np.asarray(state.active)
        alive = was_active & active  # diverged seeds keep nan metrics
        do_eval(e, alive)
        last_eval = e
        if has_val:
            score = hist["val_acc"][:, e]
            improved = alive & (score > best_score)
            best_score = np.where(improved, score, best_score)
            best_at = np.where(improved, e, best_at)
            since_best = np.where(improved, 0, since_best + 1)
            if config.patience is not None:
                stop = alive & (since_best >= config.patience)
                if stop.any():
                    stopped_early |= stop
                    state = state._replace(
                        active=jax.device_put(jnp.asarray(active & ~stop), rep)
                    )
        if progress is not None:
            progress(k)
        if not np.asarray(state.active).any():
            break
    if progress is not None and bounds[last_eval] < config.steps:
        progress(config.steps - bounds[last_eval])

    diverged = np.asarray(state.diverged)
    steps_done = np.asarray(state.steps)
    variables = {"params": state.params}
    if config.batch_norm:
        variables["batch_stats"] = state.batch_stats
    dead = _dead_fractions(prog.dead, variables, x_tr, num_seeds)

    runs = []
    for i, seed in enumerate(seeds):
        n = last_eval + 1
        history = History(
            step=np.asarray(bounds[:n], np.int64),
            **{k: v[i, :n].copy() for k, v in hist.items()},
        )
        # the final evaluation of a seed is its last finite one
        fin = np.flatnonzero(np.isfinite(history.test_loss))
        last = int(fin[-1]) if len(fin) else 0
        b = int(best_at[i]) if has_val and best_score[i] > -np.inf else last
        nan = float("nan")
        runs.append(
            RunResult(
                seed=seed,
                final_test_acc=nan if diverged[i] else float(history.test_acc[last]),
                final_test_loss=nan if diverged[i] else float(history.test_loss[last]),
                best_test_acc=nan if diverged[i] else float(history.test_acc[b]),
                best_test_loss=nan if diverged[i] else float(history.test_loss[b]),
                best_step=int(history.step[b]),
                steps=int(steps_done[i]),
                diverged=bool(diverged[i]),
                stopped_early=bool(stopped_early[i]),
                dead_fraction=None if diverged[i] else dead[i],
                history=history,
            )
        )
    return TrainResult(
        config=config,
        runs=tuple(runs),
        variables=variables,
        wall_time=time.perf_counter() - t_start,
        compile_time=compile_time,
        num_devices=mesh.size,
        metric=ds.metric,
    )


def _dead_fractions(fn, variables, x, num_seeds):
    """Per seed, the dead-unit fraction of every hidden layer (on ``x``)."""
    try:
        fracs = np.asarray(fn(variables, jnp.asarray(x)), np.float64)
    except ValueError:  # no leakyjax activation module in the model
        return [None] * num_seeds
    return [tuple(float(v) for v in row) for row in fracs]
