"""Capture the pre-activations of leakyjax activation modules in Flax models.

Flax is imported when a function here is called, never at import time, so
`leakyjax.diagnostics` works with only jax installed.

* linen: every leakyjax linen activation module calls
  `self.sow("intermediates", "pre_activation", x)`; applying the model with
  `mutable=["intermediates"]` collects them.
* nnx: every leakyjax nnx activation module has a bool attribute
  `record_pre_activation` (default False) and, when it is True, calls
  `self.sow(nnx.Intermediate, "pre_activation", x)`. The capture switches the
  flag on for every such module in the graph, runs the model (inside
  `nnx.capture` where flax has it, else popping `nnx.Intermediate`
  afterwards) and restores the flags.

Layer names are module paths joined with `/` (`"Dense_0/LeakyReLU_0"` in
linen, `"layers/0/act"` in nnx); a module called `n > 1` times gives
`path[0]` ... `path[n-1]`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from leakyjax._src.names import RECORD_FLAG, SOW_NAME


def _import_flax(what: str) -> Any:
    try:
        import flax  # noqa: F401
    except ImportError as e:  # pragma: no cover - flax is in the test extra
        raise ImportError(
            f'leakyjax.diagnostics.{what} needs Flax: pip install "leakyjax[flax]"'
        ) from e


def _name_calls(path: str, values: Any, out: dict) -> None:
    """Adds the values sown by one module, one entry per call."""
    if not isinstance(values, (tuple, list)):
        values = (values,)
    if len(values) == 1:
        out[path] = values[0]
    else:
        for i, v in enumerate(values):
            out[f"{path}[{i}]"] = v


def _key(k: Any) -> str:
    return str(getattr(k, "key", k))


# --------------------------------------------------------------------------- #
# linen
# --------------------------------------------------------------------------- #
def _linen_collect(intermediates: Any) -> dict:
    from flax import traverse_util

    out: dict = {}
    flat = traverse_util.flatten_dict(dict(intermediates), keep_empty_nodes=False)
    # flatten_dict stops at tuples: the values are the tuples of sown arrays.
    for path, values in flat.items():
        if path and path[-1] == SOW_NAME:
            name = "/".join(str(p) for p in path[:-1]) or "(root)"
            _name_calls(name, values, out)
    return out


def capture_linen(model: Any, variables: Any, *args: Any, **kwargs: Any) -> tuple:
    """Applies a linen model and returns its output and every pre-activation.

    Every leakyjax linen activation module sows its input into the
    `intermediates` collection; this applies `model` with
    `mutable=["intermediates"]` and collects each `pre_activation` under its
    module path. Other mutable collections given in `kwargs["mutable"]` are
    kept mutable (their updates are dropped, as in a forward pass for
    diagnostics). Works under `jax.jit`.

    Args:
        model: a `flax.linen.Module`.
        variables: its variables (`model.init(...)`); an `intermediates`
            collection in them is ignored.
        *args: inputs of the model.
        **kwargs: passed to `model.apply` (`rngs`, `method`, `train`,
            ...).

    Returns:
        `(output, {layer name: pre-activation array})`.

    Example:
        >>> import jax, jax.numpy as jnp, flax.linen as nn
        >>> import leakyjax.linen as ljnn
        >>> from leakyjax import diagnostics as dg
        >>> class MLP(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x):
        ...         x = ljnn.LeakyReLU()(nn.Dense(4)(x))
        ...         return nn.Dense(1)(ljnn.ReLU()(nn.Dense(3)(x)))
        >>> x = jnp.ones((2, 5))
        >>> model = MLP()
        >>> variables = model.init(jax.random.key(0), x)
        >>> out, acts = dg.capture_linen(model, variables, x)
        >>> {name: a.shape for name, a in acts.items()}
        {'LeakyReLU_0': (2, 4), 'ReLU_0': (2, 3)}
    """
    _import_flax("capture_linen")
    from flax import linen as nn

    if not isinstance(model, nn.Module):
        raise TypeError(
            f"capture_linen: model must be a flax.linen.Module, got "
            f"{type(model).__name__} (for nnx models use capture_nnx)."
        )
    mutable = kwargs.pop("mutable", False)
    if mutable is False:
        mutable = ["intermediates"]
    elif mutable is not True:
        mutable = [mutable] if isinstance(mutable, str) else list(mutable)
        if "intermediates" not in mutable:
            mutable.append("intermediates")
    variables = {k: v for k, v in dict(variables).items() if k != "intermediates"}
    out, updates = model.apply(variables, *args, mutable=mutable, **kwargs)
    return out, _linen_collect(updates.get("intermediates", {}))


def _linen_pure(model: Any, variables: Any, kwargs: dict) -> tuple[Callable, Any]:
    """`pure(carry, batch) -> (acts, carry)` with the variables as carry."""
    _import_flax("dead_units")

    def pure(variables, batch):
        _, acts = capture_linen(model, variables, batch, **kwargs)
        return acts, variables

    return pure, variables


# --------------------------------------------------------------------------- #
# nnx
# --------------------------------------------------------------------------- #
def activation_modules(model: Any) -> dict:
    """The leakyjax nnx activation modules of a model, by path.

    A module qualifies if it has a bool attribute `record_pre_activation`
    (every leakyjax nnx activation module has one, and your own modules can
    follow the same contract).

    Args:
        model: a `flax.nnx.Module`.

    Returns:
        `{"layers/0/act": module, ...}` in graph order.

    Example:
        >>> from flax import nnx
        >>> import leakyjax.nnx as ljnnx
        >>> from leakyjax import diagnostics as dg
        >>> class Net(nnx.Module):
        ...     def __init__(self, rngs):
        ...         self.dense = nnx.Linear(3, 4, rngs=rngs)
        ...         self.act = ljnnx.LeakyReLU()
        >>> list(dg.activation_modules(Net(nnx.Rngs(0))))
        ['act']
    """
    _import_flax("activation_modules")
    from flax import nnx

    if not isinstance(model, nnx.Module):
        raise TypeError(
            f"activation_modules: model must be a flax.nnx.Module, got "
            f"{type(model).__name__}."
        )
    found = {}
    for path, node in nnx.iter_graph(model):
        if isinstance(node, nnx.Module) and isinstance(
            getattr(node, RECORD_FLAG, None), bool
        ):
            found["/".join(_key(p) for p in path) or "(root)"] = node
    return found


@contextlib.contextmanager
def record_pre_activations(model: Any) -> Iterator[dict]:
    """Switches `record_pre_activation` on for every activation module.

    The flags are restored on exit, also after an exception.

    Args:
        model: a `flax.nnx.Module`.

    Yields:
        The modules that were switched on, by path (see
        [activation_modules][leakyjax.diagnostics.activation_modules]).

    Raises:
        ValueError: if the model has no leakyjax activation module.

    Example:
        >>> from flax import nnx
        >>> import leakyjax.nnx as ljnnx
        >>> from leakyjax import diagnostics as dg
        >>> act = ljnnx.ReLU()
        >>> with dg.record_pre_activations(act):
        ...     act.record_pre_activation
        True
        >>> act.record_pre_activation
        False
    """
    modules = activation_modules(model)
    if not modules:
        raise ValueError(
            "record_pre_activations: the model has no leakyjax activation module "
            "(a module with a bool `record_pre_activation` attribute). Build it "
            "from leakyjax.nnx modules, e.g. leakyjax.nnx.LeakyReLU()."
        )
    old = {path: getattr(m, RECORD_FLAG) for path, m in modules.items()}
    try:
        for m in modules.values():
            setattr(m, RECORD_FLAG, True)
        yield modules
    finally:
        for path, m in modules.items():
            setattr(m, RECORD_FLAG, old[path])


def _nnx_collect(state: Any) -> dict:
    from flax import nnx

    flat = nnx.to_flat_state(state) if hasattr(nnx, "to_flat_state") else None
    items = list(flat) if flat is not None else list(state.flat_state())
    out: dict = {}
    for path, var in items:
        if not path or _key(path[-1]) != SOW_NAME:
            continue
        value = var.get_value() if hasattr(var, "get_value") else var.value
        name = "/".join(_key(p) for p in path[:-1]) or "(root)"
        _name_calls(name, value, out)
    return out


def _nnx_call(model: Any, args: tuple, kwargs: dict) -> tuple:
    """Calls a model whose flags are on; returns (output, acts)."""
    from flax import nnx

    if hasattr(nnx, "capture"):
        out, inter = nnx.capture(lambda m: m(*args, **kwargs), nnx.Intermediate)(model)
        return out, _nnx_collect(inter)
    out = model(*args, **kwargs)  # pragma: no cover - flax without nnx.capture
    return out, _nnx_collect(nnx.pop(model, nnx.Intermediate))  # pragma: no cover


def capture_nnx(model: Any, *args: Any, **kwargs: Any) -> tuple:
    """Calls an nnx model and returns its output and every pre-activation.

    Sets `record_pre_activation=True` on every leakyjax activation module,
    calls `model(*args, **kwargs)` collecting what they sow, and restores the
    flags. The model's state changes as by a normal call (RNG counters,
    batch statistics in train mode). Works inside `nnx.jit`.

    Args:
        model: a `flax.nnx.Module` built with leakyjax nnx activation modules.
        *args: inputs of the model.
        **kwargs: keyword arguments of the model call.

    Returns:
        `(output, {layer name: pre-activation array})`.

    Raises:
        ValueError: if the model has no leakyjax activation module.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> import leakyjax.nnx as ljnnx
        >>> from leakyjax import diagnostics as dg
        >>> class Net(nnx.Module):
        ...     def __init__(self, rngs):
        ...         self.dense = nnx.Linear(3, 4, rngs=rngs)
        ...         self.act = ljnnx.LeakyReLU()
        ...     def __call__(self, x):
        ...         return self.act(self.dense(x))
        >>> out, acts = dg.capture_nnx(Net(nnx.Rngs(0)), jnp.ones((2, 3)))
        >>> {name: a.shape for name, a in acts.items()}
        {'act': (2, 4)}
    """
    _import_flax("capture_nnx")
    from flax import nnx

    if not isinstance(model, nnx.Module):
        raise TypeError(
            f"capture_nnx: model must be a flax.nnx.Module, got "
            f"{type(model).__name__} (for linen models use capture_linen)."
        )
    with record_pre_activations(model):
        return _nnx_call(model, args, kwargs)


def _nnx_pure(model: Any, kwargs: dict) -> tuple[Callable, Any, Callable, Any]:
    """`pure(state, batch) -> (acts, state)` over the split model.

    The flags are switched on here and restored by `finish(state)`, which also
    writes the final state (RNG counters, ...) back into `model`.
    """
    _import_flax("dead_units")
    from flax import nnx

    ctx = record_pre_activations(model)
    ctx.__enter__()
    try:
        graphdef, state = nnx.split(model)
    except BaseException:
        ctx.__exit__(None, None, None)
        raise

    def pure(state, batch):
        m = nnx.merge(graphdef, state)
        _, acts = _nnx_call(m, (batch,), kwargs)
        return acts, nnx.state(m)

    def finish(state):
        try:
            nnx.update(model, state)
        finally:
            ctx.__exit__(None, None, None)

    return pure, state, finish, graphdef
