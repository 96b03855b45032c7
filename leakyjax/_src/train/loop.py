"""The training loop: optax, seeds in one compiled program, data parallel.

One call of `train` trains every seed of one configuration together: the
parameters, optimiser states, model state (batch statistics) and data-order
streams of all seeds carry a leading seed axis, and one `jax.vmap`-ed program
advances them all. Steps run in chunks of `eval_every` with the state
donated; how a chunk runs is chosen per backend (`chunking="auto"`): a
`lax.scan` over the chunk's steps, except on CPU for models with
convolutions, where XLA's convolutions are many times slower inside a loop
body than in a plain jitted step, so the host loops over one jitted step.
Evaluation (validation + test loss and score) and the dead-unit statistics of
the training set share one program. The batch axis is sharded over all local
devices (`jax.sharding.Mesh` + `NamedSharding`; parameters replicated).

The model is a built-in one (`config.model`), a flax.linen module, or a
user's factory `f(act) -> linen module` / `f(act, *, rngs) -> nnx module`
that receives the parsed activation (`ActivationFactory`).
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from leakyjax._src import diagnostics as _dg
from leakyjax._src import optim as _optim
from leakyjax._src.train import recycling as _cure
from leakyjax._src.train.data import DATASETS, Dataset, as_dataset, load_dataset
from leakyjax._src.train.models import (
    MODELS,
    ActivationFactory,
    activation_factory,
    make_model,
)
from leakyjax._src.train.net import Net, as_net

CHUNKING = ("auto", "scan", "loop")
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("warmup_cosine", "constant")


class TrainConfig(NamedTuple):
    """Everything that defines one training configuration (all seeds share it).

    Attributes:
        activation: registry spec of the hidden activation (`"leaky_relu:0.2"`).
        dataset: `"mnist1d"`, `"digits"` or `"regression"`.
        model: `"mlp"` or `"cnn"`.
        depth: hidden layers (None: the model's default, mlp 2, cnn 3).
        width: units / channels per layer (None: mlp 100, cnn 32).
        dropout: dropout rate after each activation.
        batch_norm: BatchNorm before each activation.
        steps: optimiser steps (the budget; early stopping may use fewer).
        batch_size: examples per step (sharded over the local devices).
        optimizer: `"adamw"` (decoupled weight decay, PReLU slopes masked),
            `"adam"` or `"sgd"` (momentum 0.9).
        learning_rate: peak learning rate.
        schedule: `"warmup_cosine"` (linear warmup then cosine decay to 0) or
            `"constant"`.
        warmup_steps: linear warmup length (clamped below `steps`).
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
        init: initialisation of the built-in models' hidden layers: `"he"`
            (He-normal with the activation's gain) or `"rai"` (randomized
            asymmetric initialisation, Lu et al. 2020).
        recycle_every: recycle τ-dormant hidden units every this many steps
            (ReDo, Sokar et al. 2023, [`leakyjax.recycle_dormant`][leakyjax.recycle_dormant], scored on
            the current batch; linen models); None disables.
        recycle_tau: the dormancy threshold τ of the recycling.
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
    init: str = "he"
    recycle_every: int | None = None
    recycle_tau: float = 0.1


class History(NamedTuple):
    """Learning curves of one seed, one entry per evaluation.

    `train_loss` is the mean training loss over the steps since the previous
    evaluation (nan at step 0); `train_eval_loss` and `train_acc` are the
    loss and score on the whole training split in evaluation mode. `*_acc` is
    accuracy, or R² for regression.
    `dead_fraction` is `(evals, layers)`: per hidden layer, the fraction
    of units whose pre-activation is <= 0 on every training example (layers:
    the leakyjax activation modules; 0 columns if the model has none).
    Entries after a seed stopped (early stopping, divergence) repeat nothing:
    they are nan.
    """

    step: np.ndarray
    train_loss: np.ndarray
    val_loss: np.ndarray
    val_acc: np.ndarray
    test_loss: np.ndarray
    test_acc: np.ndarray
    train_eval_loss: np.ndarray
    train_acc: np.ndarray
    dead_fraction: np.ndarray


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
        stopped_early: early stopping ended this seed before `config.steps`.
        dead_fraction: per hidden layer, the fraction of units whose
            pre-activation is negative on every training example
            (`leakyjax.diagnostics`), or None where it cannot be measured.
        history: the learning curves.
        recycled: per hidden layer, the units recycled over training
            (`TrainConfig.recycle_every`); None when recycling is off.
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
    recycled: tuple[int, ...] | None = None


class TrainResult(NamedTuple):
    """The outcome of `train`: one `RunResult` per seed.

    Attributes:
        config: the configuration trained.
        runs: one result per seed, in the order of `seeds`.
        variables: final variables of all seeds, stacked on a leading seed
            axis: `{"params": ..., **state}` (linen: its collections such as
            `batch_stats`; nnx: `{"params": ..., "state": ...}`).
        wall_time: seconds for the whole call (all seeds, compilation included).
        compile_time: seconds spent compiling (a persistent-cache hit counts
            as its load time).
        num_devices: devices the batch axis was sharded over.
        metric: `"accuracy"` or `"r2"`.
        chunking: how chunks ran: `"scan"` or `"loop"` (host loop over one
            jitted step).
        evals: what `on_eval` returned at each evaluation (empty without it).
        compiles: programs this call compiled (init, train chunk or step,
            evaluation); 0 when an earlier call of the same configuration had
            compiled them. A persistent-cache load counts as a compile.
        step_time: seconds per training step of all seeds together, measured
            on the training chunks alone (no compilation, no evaluation).
        step_memory: bytes of temporary memory of the compiled training
            program (`memory_analysis().temp_size_in_bytes`), or None where the
            backend does not report it.
    """

    config: TrainConfig
    runs: tuple[RunResult, ...]
    variables: Any
    wall_time: float
    compile_time: float
    num_devices: int
    metric: str
    chunking: str = "scan"
    evals: tuple = ()
    compiles: int = 0
    step_time: float = float("nan")
    step_memory: int | None = None


class _State(NamedTuple):
    params: Any
    extra: Any
    opt_state: Any
    key: Any
    active: Any
    diverged: Any
    steps: Any
    recycled: Any


def check_config(
    config: TrainConfig, *, model: bool = False, dataset: bool = False
) -> TrainConfig:
    """Validate `config` and return it with the activation spec normalised.

    Args:
        config: the configuration.
        model: a model is given to `train` (`config.model` is then only
            its name in records).
        dataset: a data set is given (`config.dataset` is only its name).

    Raises:
        ValueError: naming the bad field, the bad value and what is accepted.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}.")
    if not dataset and config.dataset not in DATASETS:
        raise ValueError(
            f"unknown dataset {config.dataset!r}; valid datasets: "
            f"{', '.join(DATASETS)} (or pass your own data)."
        )
    if not model and config.model not in MODELS:
        raise ValueError(
            f"unknown model {config.model!r}; valid models: {', '.join(MODELS)} "
            "(or pass your own model factory)."
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
    _cure.check(config.init, config.recycle_every, config.recycle_tau)
    if model and config.init != "he":
        raise ValueError(
            "TrainConfig.init applies to the built-in models; give your own model "
            "its initialisers (e.g. kernel_init=leakyjax.initializers.rai())."
        )
    return config._replace(activation=activation_factory(config.activation).spec)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """The optax transformation of `config`.

    `adamw`: global-norm clipping -> AdamW whose weight decay skips PReLU
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


def _val_count(n: int, val_fraction: float) -> int:
    """Examples of `n` held out for validation."""
    n_val = round(val_fraction * n)
    return max(n_val, 1) if val_fraction > 0 else 0


def split_sizes(ds: Dataset, val_fraction: float) -> tuple[int, int, int]:
    """`(train, validation, test)` example counts that [train][] uses."""
    n = len(ds.y_train)
    n_val = _val_count(n, val_fraction)
    return n - n_val, n_val, len(ds.y_test)


def _split_val(ds: Dataset, val_fraction: float):
    n = len(ds.y_train)
    n_val = _val_count(n, val_fraction)
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
    if not leaves:
        return jnp.bool_(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def _primitives(jaxpr, out: set) -> set:
    """Names of every primitive in a jaxpr, sub-jaxprs (pjit, scan, vjp) included."""
    for eqn in jaxpr.eqns:
        out.add(eqn.primitive.name)
        for v in eqn.params.values():
            for sub in v if isinstance(v, (tuple, list)) else (v,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    _primitives(inner, out)
    return out


def choose_chunking(step: Callable, args: tuple, platform: str) -> str:
    """`"loop"` on CPU when the step has a convolution, else `"scan"`.

    XLA's CPU convolutions inside a while-loop body lose their fast (Eigen)
    path: a conv step measured 10-40x slower in a `lax.scan` than jitted
    alone (`benchmarks/train_stack.py` measures the ratio). A host loop over
    one jitted, donated step costs only the dispatch. Elsewhere, and for
    models without convolutions, a scan over the chunk is the faster choice.
    """
    if platform != "cpu":
        return "scan"
    prims = _primitives(jax.make_jaxpr(step)(*args).jaxpr, set())
    return "loop" if "conv_general_dilated" in prims else "scan"


#: Activations whose training and evaluation programs are shared across their
#: parameters: the parameters the forward pass reads, passed as traced inputs (the
#: functions take traced parameters exactly), and the ones only the initial values
#: read (PReLU's initial slope; the init program stays per activation). ReLU keeps
#: its own program: `relu'(0) = 0` while `leaky_relu'(0) = 1`. RReLU's bounds
#: are not shared: `leakyjax.rrelu` takes them as Python numbers (its evaluation
#: slope is computed from them in double precision).
_TRACED_PARAMS = {"leaky_relu": ("negative_slope",), "prelu": ()}
_INIT_PARAMS = {"prelu": ("negative_slope",)}

_HYPER = threading.local()


class _SharedActivation(ActivationFactory):
    """An activation factory whose traced parameters come from the program.

    Inside a shared program's trace, the modules it makes take their parameters
    from the program's inputs; elsewhere (the init program, shape checks) the
    spec's constants. Calls made while no program is traced are counted, so a
    model that builds its activation modules before tracing (whose constants
    would be baked in) is not shared.
    """

    __slots__ = ()

    def __call__(self, *, train: bool = False, **overrides: Any) -> Any:
        hyper = getattr(_HYPER, "values", None)
        if hyper is None:
            _HYPER.outside = getattr(_HYPER, "outside", 0) + 1
        else:
            _HYPER.inside = getattr(_HYPER, "inside", 0) + 1
            for k, v in hyper.items():
                overrides.setdefault(k, v)
        return ActivationFactory.__call__(self, train=train, **overrides)


class _with_hyper:
    """Context: modules made by a [_SharedActivation][] read `values`."""

    def __init__(self, values: dict):
        self.values = values

    def __enter__(self):
        self.prev = getattr(_HYPER, "values", None)
        _HYPER.values = self.values

    def __exit__(self, *exc):
        _HYPER.values = self.prev


def _share_plan(act: ActivationFactory) -> tuple[str, dict] | None:
    """The family key and the traced parameters of `act`, or None."""
    traced = _TRACED_PARAMS.get(act.name)
    if traced is None:
        return None
    kwargs = dict(act.kwargs)
    skip = set(traced) | set(_INIT_PARAMS.get(act.name, ()))
    static = ",".join(f"{k}={v}" for k, v in kwargs.items() if k not in skip)
    values = {k: np.float32(kwargs[k]) for k in traced}
    if any(not np.isfinite(v) for v in values.values()):
        return None
    return f"{act.name}:<traced {','.join(traced) or 'init'}>{static}", values


class _Program(NamedTuple):
    """The pure functions of one configuration (jitted; compiled on demand)."""

    init: Any
    step: Any
    chunk: Any
    evaluate: Any
    rep: Any
    compiled: dict
    init_tag: Any = None


_PROGRAMS: dict = {}


def _signature(args) -> tuple:
    leaves, tree = jax.tree_util.tree_flatten(args)
    return (
        tree,
        tuple((np.shape(a), str(getattr(a, "dtype", type(a)))) for a in leaves),
    )


def _program(
    config: TrainConfig,
    net: Net,
    tx: optax.GradientTransformation,
    classification: bool,
    mesh: Mesh,
    cache_key: Any,
    shared_as: str | None = None,
) -> _Program:
    """Builds (or finds) the jitted init, step, chunk and evaluation functions.

    Cached per (configuration, model, task, devices) when `cache_key` is not
    None, so repeated `train` calls of one configuration compile once.
    The data arrays are arguments, never constants: the same program trains on
    any data of the same shapes.
    """
    key, hit = None, None
    if cache_key is not None:
        # one program per family of activations differing in traced parameters
        same = config if shared_as is None else config._replace(activation=shared_as)
        key = (
            same,
            cache_key,
            classification,
            tuple(d.id for d in mesh.devices.flat),
        )
        try:
            hit = _PROGRAMS.get(key)
        except TypeError:  # an unhashable user model: no cache
            key, hit = None, None
        if hit is not None and shared_as is None:
            return hit
    rep = NamedSharding(mesh, P())
    batch_sharding = NamedSharding(mesh, P("data"))
    recycler = None
    if config.recycle_every:
        if net.api != "linen":
            raise ValueError(
                "TrainConfig.recycle_every: recycling in the training loop needs a "
                "linen model; for nnx call leakyjax.recycle_dormant(model, acts, "
                "..., opt_state=optimizer) yourself."
            )
        recycler = _cure.make_recycler(
            net,
            config.activation,
            config.init,
            config.recycle_every,
            config.recycle_tau,
        )

    def loss_of(out, y):
        if classification:
            return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()
        return jnp.mean((out - y) ** 2)

    def init_one(key, x0):
        params, extra = net.init(key, x0)
        n_layers = len(net.capture(params, extra, x0)[1]) if recycler else 0
        return _State(
            params,
            extra,
            tx.init(params),
            key,
            jnp.bool_(True),
            jnp.bool_(False),
            jnp.int32(0),
            jnp.zeros((n_layers,), jnp.int32),
        )

    def step_one(state: _State, idx, step, x, y):
        xb = jax.lax.with_sharding_constraint(x[idx], batch_sharding)
        yb = jax.lax.with_sharding_constraint(y[idx], batch_sharding)
        k = jax.random.fold_in(state.key, step + 1)

        def loss_fn(params):
            out, extra = net.apply(params, state.extra, xb, True, k)
            return loss_of(out, yb), extra

        (loss, extra), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        finite = jnp.isfinite(loss) & _all_finite(grads)
        ok = state.active & finite
        recycled = state.recycled
        if recycler is not None:
            params, opt_state, counts = recycler(
                step, params, extra, opt_state, xb, jax.random.fold_in(k, 0x5ED0)
            )
            recycled = recycled + jnp.where(ok, counts, 0)
        new = _State(
            _tree_where(ok, params, state.params),
            _tree_where(ok, extra, state.extra),
            _tree_where(ok, opt_state, state.opt_state),
            state.key,
            state.active & finite,
            state.diverged | (state.active & ~finite),
            state.steps + ok.astype(jnp.int32),
            recycled,
        )
        return new, jnp.where(ok, loss, jnp.nan)

    def step_at(hyper, state, idx, i, step0, x, y):
        # step i of a chunk whose batch indices are all on the device: one
        # dispatch per step, nothing transferred but the scalar i
        with _with_hyper(hyper):
            return step_one(state, idx[i], step0 + i, x, y)

    def chunk_one(hyper, state, idx, steps, x, y):
        with _with_hyper(hyper):
            return jax.lax.scan(
                lambda s, i: step_one(s, i[0], i[1], x, y), state, (idx, steps)
            )

    def terms(out, y):  # per-example loss and score terms
        if classification:
            loss = optax.softmax_cross_entropy_with_integer_labels(out, y)
            return loss, (jnp.argmax(out, -1) == y).astype(jnp.float32)
        se = jnp.sum((out - y) ** 2, -1)
        return se / y.shape[-1], se

    def eval_one(hyper, state: _State, ex, ey, dx, dy):
        with _with_hyper(hyper):
            return eval_body(state, ex, ey, dx, dy)

    def eval_body(state: _State, ex, ey, dx, dy):
        # val + test in one forward; the training split's loss, score and
        # dead-unit statistics in the same program
        out, _ = net.apply(state.params, state.extra, ex, False, state.key)
        loss, term = terms(out, ey)
        out_tr, acts = net.capture(state.params, state.extra, dx)
        loss_tr, term_tr = terms(out_tr, dy)
        names = sorted(acts, key=_cure.layer_order)
        if names:
            acts = {n: acts[n] for n in names}
            stats = _dg.result(_dg.update(_dg.init(acts), acts))
            dead = jnp.stack([stats[n].dead_fraction for n in names])
        else:
            dead = jnp.zeros((0,), jnp.float32)
        return loss, term, loss_tr.mean(), term_tr.sum(), dead

    prog = _Program(
        # on one device, then replicated: the same program (and the same initial
        # values, to the bit) whatever the number of devices
        init=jax.jit(jax.vmap(init_one, in_axes=(0, None))),
        step=jax.jit(
            jax.vmap(step_at, in_axes=(None, 0, 0, None, None, None, None)),
            donate_argnums=1,
            out_shardings=rep,
        ),
        chunk=jax.jit(
            jax.vmap(chunk_one, in_axes=(None, 0, 0, None, None, None)),
            donate_argnums=1,
            out_shardings=rep,
        ),
        evaluate=jax.jit(jax.vmap(eval_one, in_axes=(None, 0, None, None, None, None))),
        rep=rep,
        compiled={},
        init_tag=config.activation,
    )
    if hit is not None:  # the family's program; this activation's own init
        return hit._replace(init=prog.init, init_tag=config.activation)
    if key is not None:
        if len(_PROGRAMS) >= 16:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
        _PROGRAMS[key] = prog
    return prog


#: Compiler options per program and platform. `init` runs once per training run,
#: so on CPU it is compiled without LLVM optimisation: its random draws (threefry,
#: erfinv) otherwise take seconds to compile, once per activation. The draws are the
#: same distribution; a value may differ in its last bit from an optimised compile.
_COMPILER_OPTIONS = {("init", "cpu"): {"xla_backend_optimization_level": 0}}


class _Compiler:
    """Compiles a program's functions once per argument signature; times it."""

    def __init__(self, prog: _Program, platform: str, hyper: dict):
        self.prog = prog
        self.platform = platform
        self.hyper = hyper
        self.seconds = 0.0
        self.compiles = 0
        self.memory: dict[str, int | None] = {}

    def get(self, name: str, *args) -> Any:
        """The compiled function `name` for arguments like `args`.

        Every function but `init` takes the traced activation parameters first;
        the function returned has them bound.
        """
        if name != "init":
            args = (self.hyper, *args)
        tag = self.prog.init_tag if name == "init" else None
        sig = (name, tag, _signature(args))
        fn = self.prog.compiled.get(sig)
        if fn is None:
            t0 = time.perf_counter()
            options = _COMPILER_OPTIONS.get((name, self.platform))
            fn = getattr(self.prog, name).lower(*args).compile(options)
            self.seconds += time.perf_counter() - t0
            self.compiles += 1
            self.prog.compiled[sig] = fn
        if name not in self.memory:
            try:
                self.memory[name] = int(fn.memory_analysis().temp_size_in_bytes)
            except Exception:  # a backend without memory analysis
                self.memory[name] = None
        return fn if name == "init" else functools.partial(fn, self.hyper)

    def __call__(self, name: str, *args):
        return self.get(name, *args)(*args)


def _model_and_key(config: TrainConfig, model: Any, ds: Dataset):
    """The `Net` of `model` (or of `config.model`) and its cache key."""
    return _model_and_key_of(config, model, ds, activation_factory(config.activation))


def _net_plan(config: TrainConfig, model: Any, ds: Dataset):
    """As [_model_and_key][], with the family key of a shared program (or None)
    and the traced parameters."""
    act = activation_factory(config.activation)
    plan = None
    if isinstance(config.activation, str) and not config.recycle_every:
        plan = _share_plan(act)
    if plan is None:
        net, key = _model_and_key_of(config, model, ds, act)
        return net, key, None, {}
    shared = _SharedActivation(*act)
    _HYPER.outside, _HYPER.inside = 0, 0
    net, key = _model_and_key_of(config, model, ds, shared)
    built_outside = _HYPER.outside
    if net.api != "linen" or built_outside:
        # nnx modules, and linen modules made before tracing, hold constants
        net, key = _model_and_key_of(config, model, ds, act)
        return net, key, None, {}
    return net, key, plan[0], plan[1]


def _reads_hyper(net: Net, x0, hyper: dict) -> bool:
    """Whether every activation module of `net`'s forward pass is made in it.

    A linen model whose `__call__` (or `setup`) makes its activation modules
    makes them inside the program's trace, where they read the traced
    parameters; modules made outside the trace are counted as such.
    """
    _HYPER.outside, _HYPER.inside = 0, 0

    def probe(k, h):
        params, extra = net.init(k, x0)
        _HYPER.outside = 0  # init reads the constants, as it should
        with _with_hyper(h):
            return net.apply(params, extra, x0, True, k)[0]

    try:
        jax.eval_shape(probe, jax.random.key(0), hyper)
    except Exception:
        return False
    return _HYPER.inside > 0 and _HYPER.outside == 0


def _model_and_key_of(config: TrainConfig, model: Any, ds: Dataset, act: Any):
    if model is None:
        m = make_model(
            config.model,
            act,
            ds.num_outputs,
            depth=config.depth,
            width=config.width,
            dropout=config.dropout,
            batch_norm=config.batch_norm,
            init=config.init,
        )
        return as_net(m), (None, ds.num_outputs)
    return as_net(model, act), (model, ds.num_outputs)


def _load(config: TrainConfig, dataset: Any) -> Dataset:
    """Phase 1 of [train][]: the data set (`config.dataset`, or the user's)."""
    if dataset is None:
        return load_dataset(
            config.dataset,
            num_train=config.num_train,
            num_test=config.num_test,
            seed=config.data_seed,
        )
    return as_dataset(dataset)


_CURVES = (
    "train_loss",
    "val_loss",
    "val_acc",
    "test_loss",
    "test_acc",
    "train_eval_loss",
    "train_acc",
)


class _Book:
    """The evaluation phase of [train][]: learning curves, dead fractions, the
    best validation evaluation and early stopping of every seed, and the
    [RunResult][] of each at the end."""

    def __init__(self, num_seeds, n_evals, classification, n_train, tr_ss, slices):
        self.hist = {k: np.full((num_seeds, n_evals), np.nan) for k in _CURVES}
        self.dead: np.ndarray | None = None
        self.classification, self.n_train, self.tr_ss = classification, n_train, tr_ss
        self.slices = slices
        self.best_score = np.full(num_seeds, -np.inf)
        self.best_at = np.zeros(num_seeds, np.int64)
        self.since_best = np.zeros(num_seeds, np.int64)
        self.stopped_early = np.zeros(num_seeds, bool)

    def train_loss(self, e: int, losses: np.ndarray) -> None:
        """Mean training loss over the finite steps of a chunk."""
        with np.errstate(invalid="ignore"):
            counted = np.isfinite(losses).sum(1)
            self.hist["train_loss"][:, e] = np.where(
                counted > 0, np.nansum(losses, 1) / np.maximum(counted, 1), np.nan
            )

    def record(self, e: int, alive: np.ndarray, outputs) -> None:
        """Evaluation `e` (the evaluation program's outputs) of the seeds alive."""
        hist = self.hist
        loss, term, loss_tr, term_tr, dead = (
            np.asarray(a, np.float64) for a in outputs
        )
        hist["train_eval_loss"][alive, e] = loss_tr[alive]
        if self.classification:
            score_tr = term_tr / self.n_train
        else:
            score_tr = 1.0 - term_tr / self.tr_ss
        hist["train_acc"][alive, e] = score_tr[alive]
        if self.dead is None:
            n_evals = hist["train_loss"].shape[1]
            self.dead = np.full((len(alive), n_evals, dead.shape[1]), np.nan)
        self.dead[alive, e] = dead[alive]
        for name, (sl, y) in self.slices.items():
            hist[f"{name}_loss"][alive, e] = loss[alive, sl].mean(1)
            if self.classification:
                score = term[:, sl].mean(1)
            else:
                score = 1.0 - term[:, sl].sum(1) / np.sum((y - y.mean(0)) ** 2)
            hist[f"{name}_acc"][alive, e] = score[alive]

    def select(self, e: int, alive: np.ndarray, patience: int | None) -> np.ndarray:
        """Tracks the best validation score; returns the seeds to stop now."""
        score = self.hist["val_acc"][:, e]
        improved = alive & (score > self.best_score)
        self.best_score = np.where(improved, score, self.best_score)
        self.best_at = np.where(improved, e, self.best_at)
        self.since_best = np.where(improved, 0, self.since_best + 1)
        stop = np.zeros_like(alive)
        if patience is not None:
            stop = alive & (self.since_best >= patience)
            self.stopped_early |= stop
        return stop

    def runs(self, seeds, steps, *, has_val, diverged, steps_done, recycled):
        """The [RunResult][] of every seed, curves cut at the last evaluation."""
        out = []
        n = len(steps)
        assert self.dead is not None  # evaluation 0 always runs
        for i, seed in enumerate(seeds):
            history = History(
                step=np.asarray(steps, np.int64),
                **{k: v[i, :n].copy() for k, v in self.hist.items()},
                dead_fraction=self.dead[i, :n].copy(),
            )
            # the final evaluation of a seed is its last finite one
            fin = np.flatnonzero(np.isfinite(history.test_loss))
            last = int(fin[-1]) if len(fin) else 0
            b = (
                int(self.best_at[i])
                if has_val and self.best_score[i] > -np.inf
                else last
            )
            nan = float("nan")
            dead = history.dead_fraction[last]
            out.append(
                RunResult(
                    seed=seed,
                    final_test_acc=nan
                    if diverged[i]
                    else float(history.test_acc[last]),
                    final_test_loss=nan
                    if diverged[i]
                    else float(history.test_loss[last]),
                    best_test_acc=nan if diverged[i] else float(history.test_acc[b]),
                    best_test_loss=nan if diverged[i] else float(history.test_loss[b]),
                    best_step=int(history.step[b]),
                    steps=int(steps_done[i]),
                    diverged=bool(diverged[i]),
                    stopped_early=bool(self.stopped_early[i]),
                    dead_fraction=None
                    if diverged[i] or not len(dead)
                    else tuple(float(v) for v in dead),
                    history=history,
                    recycled=None
                    if recycled is None
                    else tuple(int(v) for v in recycled[i]),
                )
            )
        return tuple(out)


def train(
    config: TrainConfig,
    seeds: Sequence[int] = (0,),
    *,
    model: Any = None,
    dataset: Any = None,
    optimizer: optax.GradientTransformation | None = None,
    devices: Sequence[Any] | None = None,
    progress: Callable[[int], Any] | None = None,
    on_eval: Callable[[int, Any], Any] | None = None,
    chunking: str = "auto",
) -> TrainResult:
    """Train every seed of `config` in one compiled program.

    Seeds share the data set and differ in initialisation, data order and
    dropout/RReLU noise. A seed whose loss or gradients become non-finite is
    frozen and reported as diverged; the others continue. Results do not
    depend on which other seeds train alongside (up to float reassociation),
    so `train(c, seeds=(0, 1))` matches `train(c, (0,))` and
    `train(c, (1,))`.

    Args:
        config: the configuration (see `TrainConfig`).
        seeds: training seeds, trained together (vmapped).
        model: None (build `config.model`), a `flax.linen.Module`, or a
            factory that receives the parsed activation `act` (an
            `ActivationFactory`; `act(train=train)` makes a fresh
            module per layer) and returns a linen module, or takes
            `rngs` as well (`f(act, *, rngs)`) and returns an nnx module
            (built once per seed). Linen models whose `__call__` takes
            `train` get it (BatchNorm, Dropout); nnx models are switched with
            `.train()` / `.eval()`. The output must be `(batch, classes)`
            logits, or `(batch, targets)` for regression.
        dataset: None (load `config.dataset`), a `Dataset`, or any
            data `as_dataset` accepts (arrays, an `.npz`, ...).
        optimizer: an optax transformation to use instead of
            `make_optimizer` `(config)`.
        devices: devices to shard the batch over (default: all local devices; the
            largest count dividing `batch_size` is used).
        progress: called with the number of steps advanced after each chunk
            (e.g. `tqdm.update`).
        on_eval: called as `on_eval(step, params)` after each evaluation
            (`params` with the leading seed axis); what it returns is kept in
            `TrainResult.evals`.
        chunking: `"auto"` (see `choose_chunking`), `"scan"` or
            `"loop"`.

    Returns:
        A `TrainResult`.

    Raises:
        ValueError: for an invalid configuration, empty / duplicate seeds, or a
            model whose output does not fit the data.

    Example:
        >>> from leakyjax.train import TrainConfig, train
        >>> cfg = TrainConfig(activation="leaky_relu:0.2", dataset="digits",
        ...                   steps=20, eval_every=10, num_train=200, num_test=100)
        >>> res = train(cfg, seeds=(0, 1))
        >>> [r.steps for r in res.runs], res.runs[0].history.step.tolist()
        ([20, 20], [0, 10, 20])
    """
    config = check_config(config, model=model is not None, dataset=dataset is not None)
    if chunking not in CHUNKING:
        raise ValueError(
            f"train: chunking must be one of {CHUNKING}, got {chunking!r}."
        )
    seeds = tuple(int(s) for s in seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"train: seeds must be distinct and non-empty, got {seeds!r}.")
    t_start = time.perf_counter()
    ds = _load(config, dataset)
    x_tr, y_tr, x_va, y_va = _split_val(ds, config.val_fraction)
    check_batch(config, ds, stacklevel=2)
    has_val = len(y_va) > 0
    classification = ds.task == "classification"
    num_seeds = len(seeds)
    mesh = _mesh(config.batch_size, devices)
    net, cache_key, shared_as, hyper = _net_plan(config, model, ds)
    x0 = jnp.asarray(x_tr[:1])
    if shared_as is not None and not _reads_hyper(net, x0, hyper):
        net, cache_key = _model_and_key(config, model, ds)
        shared_as, hyper = None, {}
    tx = make_optimizer(config) if optimizer is None else optimizer
    prog = _program(
        config,
        net,
        tx,
        classification,
        mesh,
        None if optimizer else cache_key,
        shared_as,
    )
    platform = mesh.devices.flat[0].platform
    run = _Compiler(prog, platform, hyper)
    rep = prog.rep
    put = lambda a: jax.device_put(jnp.asarray(a), rep)
    data_x, data_y = put(x_tr), put(y_tr)
    eval_parts = {"test": (ds.x_test, ds.y_test)}
    if has_val:
        eval_parts["val"] = (x_va, y_va)
    eval_x = put(np.concatenate([x for x, _ in eval_parts.values()]))
    eval_y = put(np.concatenate([y for _, y in eval_parts.values()]))
    y_tr64 = np.asarray(y_tr, np.float64)
    tr_ss = np.sum((y_tr64 - y_tr64.mean(0)) ** 2)
    eval_slices, start = {}, 0
    for name, (_, y) in eval_parts.items():
        eval_slices[name] = (slice(start, start + len(y)), np.asarray(y, np.float64))
        start += len(y)

    keys = jnp.stack([jax.random.key(s) for s in seeds])
    _check_output(net, x0, ds)
    state = jax.device_put(run("init", keys, x0), rep)
    orders = [_Order(s, len(y_tr)) for s in seeds]
    idx_sharding = NamedSharding(mesh, P(None, None, "data"))
    if chunking == "auto":
        idx0 = jnp.zeros((num_seeds, 1, config.batch_size), jnp.int32)
        chunking = choose_chunking(
            prog.step,
            (hyper, state, idx0, jnp.int32(0), jnp.int32(0), data_x, data_y),
            platform,
        )

    bounds = [*range(0, config.steps, config.eval_every), config.steps]
    book = _Book(num_seeds, len(bounds), classification, len(y_tr), tr_ss, eval_slices)
    evals: list = []
    last_eval = 0
    train_seconds, train_steps = 0.0, 0

    def do_eval(e: int, alive: np.ndarray):
        book.record(e, alive, run("evaluate", state, eval_x, eval_y, data_x, data_y))
        if on_eval is not None:
            evals.append(on_eval(bounds[e], state.params))

    do_eval(0, np.ones(num_seeds, bool))
    for e in range(1, len(bounds)):
        k = bounds[e] - bounds[e - 1]
        idx = np.stack([o.take(k, config.batch_size) for o in orders])
        was_active = np.asarray(state.active)
        idx = jax.device_put(idx, idx_sharding)
        if chunking == "scan":
            steps = put(np.arange(bounds[e - 1], bounds[e], dtype=np.int32))
            chunk = run.get("chunk", state, idx, steps, data_x, data_y)
            t0 = time.perf_counter()
            state, losses = chunk(state, idx, steps, data_x, data_y)
            losses = np.asarray(losses, np.float64)
        else:  # a host loop over one compiled, donated step
            step0 = np.int32(bounds[e - 1])
            step = run.get("step", state, idx, np.int32(0), step0, data_x, data_y)
            t0 = time.perf_counter()
            per_step = []
            for i in range(k):
                state, loss_i = step(state, idx, np.int32(i), step0, data_x, data_y)
                per_step.append(loss_i)
            losses = np.stack(jax.device_get(per_step), 1).astype(np.float64)
        train_seconds += time.perf_counter() - t0
        train_steps += k
        book.train_loss(e, losses)
        active = np.asarray(state.active)
        alive = was_active & active  # diverged seeds keep nan metrics
        do_eval(e, alive)
        last_eval = e
        if has_val:
            stop = book.select(e, alive, config.patience)
            if stop.any():
                state = state._replace(
                    active=jax.device_put(jnp.asarray(active & ~stop), rep)
                )
        if progress is not None:
            progress(k)
        if not np.asarray(state.active).any():
            break
    if progress is not None and bounds[last_eval] < config.steps:
        progress(config.steps - bounds[last_eval])

    variables = {"params": state.params}
    if net.api == "nnx":
        variables["state"] = state.extra
    else:
        variables.update(state.extra)
    runs = book.runs(
        seeds,
        bounds[: last_eval + 1],
        has_val=has_val,
        diverged=np.asarray(state.diverged),
        steps_done=np.asarray(state.steps),
        recycled=np.asarray(state.recycled) if config.recycle_every else None,
    )
    return TrainResult(
        config=config,
        runs=runs,
        variables=variables,
        wall_time=time.perf_counter() - t_start,
        compile_time=run.seconds,
        num_devices=mesh.size,
        metric=ds.metric,
        chunking=chunking,
        evals=tuple(evals),
        compiles=run.compiles,
        step_time=train_seconds / train_steps if train_steps else float("nan"),
        step_memory=run.memory.get("chunk" if chunking == "scan" else "step"),
    )


class BatchWarning(UserWarning):
    """A batch larger than the training split: every batch repeats examples."""


def check_batch(config: TrainConfig, ds: Dataset, *, stacklevel: int = 2) -> bool:
    """Warns ([BatchWarning][]) when `config.batch_size` exceeds the training
    split; returns whether it does.

    The training split is what is left of the data set's training examples once
    `config.val_fraction` is held out for validation. A larger batch still
    trains (each batch draws from consecutive epochs' shuffles, so it repeats
    examples), but is rarely what was meant.
    """
    n = len(ds.y_train)
    n_val = _val_count(n, config.val_fraction)
    if config.batch_size <= n - n_val:
        return False
    import warnings

    held = f" once val_fraction {config.val_fraction} holds out {n_val}" * (n_val > 0)
    warnings.warn(
        f"train: TrainConfig.batch_size {config.batch_size} is larger than the "
        f"training split ({n - n_val} examples of {n}{held}), so every batch "
        f"repeats examples; give a batch size <= {n - n_val} (--batch-size)",
        BatchWarning,
        stacklevel=stacklevel + 1,
    )
    return True


def _check_output(net: Net, x0, ds: Dataset) -> None:
    """Raises ValueError when the model's output does not fit the data."""
    try:
        out = jax.eval_shape(
            lambda k: net.apply(*net.init(k, x0), x0, False, k)[0], jax.random.key(0)
        )
    except Exception as e:
        raise ValueError(
            f"train: the model cannot be applied to inputs of shape "
            f"(batch, {', '.join(map(str, ds.input_shape))}): "
            f"{type(e).__name__}: {e}"
        ) from e
    want = (1, ds.num_outputs)
    if tuple(out.shape) != want:
        what = "classes" if ds.task == "classification" else "targets"
        raise ValueError(
            f"train: the model's output has shape {tuple(out.shape)} for one "
            f"example; the data needs {want} (batch, {ds.num_outputs} {what})."
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise ValueError(f"train: the model's output must be float, got {out.dtype}.")
