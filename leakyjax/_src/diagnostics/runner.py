"""Running a function or a Flax / equinox model over batches: [dead_units][leakyjax.diagnostics.dead_units]."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

import jax

from leakyjax._src import io as _io
from leakyjax._src.diagnostics.accumulator import init, result, update


# --------------------------------------------------------------------------- #
# Running functions and models over batches
# --------------------------------------------------------------------------- #
def _as_layer_dict(acts: Any, where: str) -> dict:
    """A function's pre-activations as `{name: array}`."""
    if isinstance(acts, Mapping):
        return dict(acts)
    if isinstance(acts, (tuple, list)):
        return {str(i): a for i, a in enumerate(acts)}
    if hasattr(acts, "shape"):
        return {"pre_activation": acts}
    raise TypeError(
        f"{where}: the function must return its pre-activations as a mapping "
        f"{{layer name: array}}, a sequence of arrays or one array; got "
        f"{type(acts).__name__}."
    )


def _model_kind(obj: Any) -> str:
    """'linen', 'nnx', 'equinox' or 'function' -- without importing flax/equinox."""
    if sys.modules.get("leakyjax._src.equinox") is not None:  # leakyjax.equinox used
        import equinox

        if isinstance(obj, equinox.Module):
            return "equinox"
    if sys.modules.get("flax") is not None:  # a flax model needs flax imported
        try:
            from flax import linen, nnx
        except ImportError:  # pragma: no cover - a broken flax install
            return "function"
        if isinstance(obj, linen.Module):
            return "linen"
        if isinstance(obj, nnx.Module):
            return "nnx"
    return "function"


_STEP_CACHE: dict = {}
_STEP_CACHE_SIZE = 32


def _cached_jit(key: Any, kwargs: Mapping, step: Any) -> Any:
    """The jitted step for a model or function seen before, so that calling
    [dead_units][leakyjax.diagnostics.dead_units] every few training steps compiles once per batch shape."""
    try:
        full_key = (key, tuple(sorted(kwargs.items())))
        hash(full_key)
    except TypeError:  # unhashable model or keyword values: no caching
        return jax.jit(step)
    if full_key not in _STEP_CACHE:
        if len(_STEP_CACHE) >= _STEP_CACHE_SIZE:
            _STEP_CACHE.pop(next(iter(_STEP_CACHE)))
        _STEP_CACHE[full_key] = jax.jit(step)
    return _STEP_CACHE[full_key]


def dead_units(
    fn: Any,
    batches: Iterable,
    *,
    variables: Any = None,
    feature_axis: Any = -1,
    rare_threshold: float = 0.01,
    jit: bool = True,
    progress: bool = False,
    return_state: bool = False,
    **apply_kwargs: Any,
) -> Any:
    r"""Runs a function or a Flax model over batches and reports every layer.

    Three kinds of `fn`:

    * a plain function `fn(batch)` returning its pre-activations explicitly:
      a mapping `{layer name: array}`, a sequence of arrays (named `"0"`,
      `"1"`, ...) or one array (named `"pre_activation"`);
    * a `flax.linen` module built from leakyjax activation modules, with
      `variables`: it is applied with `mutable=["intermediates"]` and every
      sown `pre_activation` is collected (see [capture_linen][leakyjax.diagnostics.capture_linen]);
    * a `flax.nnx` module: `record_pre_activation` is switched on for every
      leakyjax activation module while it runs (see [capture_nnx][leakyjax.diagnostics.capture_nnx]). The
      model's state is updated as by calling it (call `model.eval()` first
      for inference-mode statistics);
    * an `equinox` module built from `leakyjax.equinox` activation
      modules, taking one example as equinox models do: it is mapped over the
      batch's leading axis and each activation's input is recorded (see
      [leakyjax.equinox.capture][]; use `equinox.nn.inference_mode`
      first for RReLU's evaluation slope, or pass `key=`).

    Layers are named by module path (`"Dense_0/LeakyReLU_0"`); a module
    called several times gives `path[0]`, `path[1]`, ....

    Args:
        fn: the function or model.
        batches: an iterable of inputs, each passed as the single argument
            (drop labels with `(x for x, _ in loader)`).
        variables: the linen variables (`model.init(...)`); only for linen.
        feature_axis: the unit axis, an int or `{layer name: int}`.
        rare_threshold: see [result][leakyjax.diagnostics.result].
        jit: compile the per-batch step (default). The compiled step is
            cached per function / model (and per nnx graph), so calling
            `dead_units` again during training does not recompile; batches
            of a new shape do.
        progress: show a tqdm progress bar.
        return_state: return the [UnitState][leakyjax.diagnostics.UnitState] dict instead of the report.
        **apply_kwargs: passed on to `model.apply` (linen, e.g. `rngs`,
            `method`) or to the nnx model call.

    Returns:
        `{layer name: LayerStats}` (or `{layer name: UnitState}`).

    Raises:
        ValueError: if `batches` is empty, or no pre-activation is found.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from leakyjax import diagnostics as dg
        >>> w = jnp.array([[1.0, -1.0, 0.5]])
        >>> b = jnp.array([0.0, 0.0, -100.0])  # unit 2 can never be positive
        >>> fn = lambda x: {"hidden": x @ w + b}
        >>> batches = [jnp.linspace(-1, 1, 8).reshape(8, 1)] * 3
        >>> report = dg.dead_units(fn, batches)
        >>> report["hidden"].dead.tolist(), int(report["hidden"].count)
        ([False, False, True], 24)
    """
    kind = _model_kind(fn)
    if kind == "function" and not callable(fn):
        raise TypeError(
            f"dead_units: fn must be a function returning pre-activations or a "
            f"Flax / equinox model, got {type(fn).__name__} {fn!r}."
        )
    if isinstance(batches, (str, bytes)) or not isinstance(batches, Iterable):
        raise TypeError(
            "dead_units: batches must be an iterable of inputs (a list of "
            f"arrays, a data loader), got {type(batches).__name__}."
        )
    if kind != "linen" and variables is not None:
        raise TypeError(
            "dead_units: variables are only for flax.linen modules; a plain "
            "function should close over its parameters."
        )
    finish = lambda carry: None
    if kind == "linen":
        if variables is None:
            raise TypeError(
                "dead_units: a flax.linen module needs its variables: "
                "dead_units(model, batches, variables=model.init(key, x))."
            )
        from leakyjax._src.diagnostics.capture import _linen_pure

        pure, carry = _linen_pure(fn, variables, apply_kwargs)
        cache_key: Any = ("linen", fn)
    elif kind == "nnx":
        from leakyjax._src.diagnostics.capture import _nnx_pure

        pure, carry, finish, graphdef = _nnx_pure(fn, apply_kwargs)
        cache_key = ("nnx", graphdef)
    elif kind == "equinox":
        from leakyjax._src.equinox import _dead_units_pure

        pure, carry, cache_key = _dead_units_pure(fn, apply_kwargs)
    else:
        if apply_kwargs:
            raise TypeError(
                f"dead_units: unexpected keyword arguments {sorted(apply_kwargs)} "
                "for a plain function (they are passed to Flax models only)."
            )

        def pure(carry, batch):
            return _as_layer_dict(fn(batch), "dead_units"), carry

        carry = None
        cache_key = ("function", fn)

    def step(state, carry, batch):
        acts, carry = pure(carry, batch)
        return update(state, acts), carry

    step_fn = _cached_jit(cache_key, apply_kwargs, step) if jit else step
    state = None
    try:
        for batch in _io.progress(
            batches, desc="dead units", enable=progress, leave=False
        ):
            if state is None:
                shapes = jax.eval_shape(lambda c, b: pure(c, b)[0], carry, batch)
                if not shapes:
                    raise ValueError(
                        "dead_units: no pre-activations found. For Flax models use "
                        "leakyjax activation modules (leakyjax.linen / "
                        "leakyjax.nnx); a plain function must return them."
                    )
                state = init(shapes, feature_axis=feature_axis)
            state, carry = step_fn(state, carry, batch)
    finally:
        finish(carry)
    if state is None:
        raise ValueError("dead_units: batches is empty; give at least one batch.")
    if return_state:
        return state
    return result(state, rare_threshold=rare_threshold)
