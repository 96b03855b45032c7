"""One interface over the models the loop trains: built-in, user linen, user nnx.

`as_net` turns a linen module, or a user's factory `f(act) -> module`
(linen or nnx), into a `Net` of three pure functions that the loop
vmaps over seeds:

* `init(key, x0) -> (params, extra)`: `params` are what the optimiser
  updates; `extra` is the rest of the model's state (batch statistics, nnx
  RNG counters), carried and updated by training steps.
* `apply(params, extra, x, train, key) -> (out, extra)`.
* `capture(params, extra, x) -> (out, {layer: pre-activation})` in evaluation
  mode, for the dead-unit statistics of leakyjax activation modules.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax


class Net(NamedTuple):
    init: Callable[[Any, Any], tuple[Any, Any]]
    apply: Callable[..., tuple[Any, Any]]
    capture: Callable[[Any, Any, Any], tuple[Any, dict]]
    api: str


def _takes(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins, some partials
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _linen_net(model: Any) -> Net:
    from leakyjax._src.diagnostics import capture as _capture

    train_kw = _takes(type(model).__call__, "train")

    def kw(train: bool) -> dict:
        return {"train": train} if train_kw else {}

    def rngs(key):
        return {"params": jax.random.fold_in(key, 0), "dropout": key, "rrelu": key}

    def init(key, x0):
        variables = dict(model.init(rngs(key), x0, **kw(False)))
        variables.pop("intermediates", None)
        params = variables.pop("params", {})
        return params, variables

    def apply(params, extra, x, train, key):
        k_drop, k_rrelu = jax.random.split(key)
        mutable = list(extra) if train and extra else False
        res = model.apply(
            {"params": params, **extra},
            x,
            rngs={"dropout": k_drop, "rrelu": k_rrelu},
            mutable=mutable,
            **kw(train),
        )
        if mutable:
            out, new = res
            return out, {k: new.get(k, v) for k, v in extra.items()}
        return res, extra

    def capture(params, extra, x):
        return _capture.capture_linen(
            model, {"params": params, **extra}, x, **kw(False)
        )

    return Net(init, apply, capture, "linen")


def _nnx_net(build: Callable[[Any], Any]) -> Net:
    """`build(rngs) -> nnx.Module`: split into params / rest for the loop."""
    from flax import nnx

    from leakyjax._src.diagnostics import capture as _capture

    graph: dict = {}

    def split(m):
        gdef, params, rest = nnx.split(m, nnx.Param, ...)
        graph.setdefault("def", gdef)
        return params, rest

    def init(key, x0):
        k = jax.random.fold_in(key, 0)
        m = build(nnx.Rngs(params=k, dropout=key, rrelu=key, default=key))
        return split(m)

    def merged(params, extra, train):
        # fresh Variables at the current trace level (states hold Variable
        # objects; mutating one made under another transform is an error)
        fresh = lambda t: jax.tree_util.tree_map(lambda a: a, t)
        m = nnx.merge(graph["def"], fresh(params), fresh(extra))
        m.train() if train else m.eval()
        return m

    def apply(params, extra, x, train, key):
        m = merged(params, extra, train)
        out = m(x)
        return out, split(m)[1]

    def capture(params, extra, x):
        return _capture.capture_nnx(merged(params, extra, False), x)

    return Net(init, apply, capture, "nnx")


def is_nnx_factory(factory: Callable) -> bool:
    """A user factory builds an nnx module when it takes `rngs`."""
    return _takes(factory, "rngs")


def as_net(model: Any, act: Any = None) -> Net:
    """A `Net` for a linen module or a factory `f(act[, rngs=])`.

    Raises:
        TypeError: when `model` is neither, or the factory returns something
            that is not a Flax module.
    """
    import flax.linen as nn

    if isinstance(model, nn.Module):
        return _linen_net(model)
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover - old flax
        nnx = None
    if nnx is not None and isinstance(model, nnx.Module):
        raise TypeError(
            "train: give an nnx model as a factory f(act, *, rngs) -> nnx.Module "
            "(every seed builds its own), not a built module."
        )
    if not callable(model):
        raise TypeError(
            f"train: model must be a flax.linen.Module or a factory f(act) -> "
            f"module, got {type(model).__name__}."
        )
    if nnx is not None and is_nnx_factory(model):
        nnx_act = act.with_api("nnx") if act is not None else None

        def build(rngs):
            m = model(nnx_act, rngs=rngs)
            if not isinstance(m, nnx.Module):
                raise TypeError(
                    f"train: the model factory {_name(model)} took rngs= but "
                    f"returned {type(m).__name__}, not a flax.nnx.Module."
                )
            return m

        return _nnx_net(build)
    m = model(act)
    if not isinstance(m, nn.Module):
        raise TypeError(
            f"train: the model factory {_name(model)} returned {type(m).__name__}; "
            "it must return a flax.linen.Module (or take rngs= and return an "
            "nnx.Module)."
        )
    return _linen_net(m)


def _name(fn: Any) -> str:
    mod = getattr(fn, "__module__", None)
    qual = getattr(fn, "__qualname__", None) or type(fn).__name__
    return f"{mod}:{qual}" if mod else qual
