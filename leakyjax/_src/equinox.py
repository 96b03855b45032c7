"""equinox modules of the leaky rectifier family.

Same names, arguments and numbers as [`leakyjax.linen`][] and
[`leakyjax.nnx`][], in equinox's idiom: modules are immutable pytrees, every
`__call__` takes `key=` (so they work in `equinox.nn.Sequential`),
the hyperparameters are static fields (a concrete slope keeps the small
residuals under `equinox.filter_jit` and `jax.jit` alike), and the
only array leaf is PReLU's `negative_slope`. RReLU switches like
`equinox.nn.Dropout`: `inference=True` (or
`equinox.nn.inference_mode`) for the evaluation slope, a `key` in the
call for random slopes.

Diagnostics: [`capture`][leakyjax.equinox.capture] returns every activation module's input by path;
[`leakyjax.diagnostics.dead_units`][] uses it for equinox models.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

try:
    import equinox as eqx
except ImportError as e:  # pragma: no cover - exercised without equinox only
    raise ImportError(
        'leakyjax.equinox needs equinox: pip install "leakyjax[equinox]"'
    ) from e

import jax
import jax.numpy as jnp

from leakyjax._src import activations as _act
from leakyjax._src import modules as _m

Array = jax.Array

__all__ = [
    "CELU",
    "ELU",
    "Activation",
    "HardSigmoid",
    "HardTanh",
    "LeakyReLU",
    "PReLU",
    "RReLU",
    "ReLU",
    "ReLU6",
    "SELU",
    "capture",
    "get",
]


class _Stateless(eqx.Module):
    """Base of the parameter-free modules."""

    def _apply(self, x: Array) -> Array:
        return _m.apply_entry(self, x)

    def __call__(self, x: Array, *, key: Array | None = None) -> Array:
        """Applies the activation.

        Args:
            x: floating-point input.
            key: ignored (accepted so that the module works in
                `equinox.nn.Sequential`).

        Returns:
            The activation of `x`, with the dtype and shape of `x`.
        """
        return self._apply(x)


class Activation(_Stateless):
    """Any activation as an equinox module: a registry spec or a function.

    `Activation("leaky_relu:0.2")` applies `leakyjax.get("leaky_relu:0.2")`;
    `Activation(fn)` applies `fn`. This is what [`get`][leakyjax.equinox.get] makes for the
    names without a named module (sigmoid, gelu, ...). Stateless, and the
    function is a static field: the module has no array leaves.

    Attributes:
        function: a registry spec such as `"gelu"` or `"elu:alpha=0.5"`, or
            a function of `x`.

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> from leakyjax.equinox import Activation
        >>> Activation("leaky_relu:0.2")(jnp.array([-1.0, 2.0]))
        Array([-0.2,  2. ], dtype=float32)
        >>> Activation(leakyjax.sigmoid)(jnp.array([0.0]))
        Array([0.5], dtype=float32)
    """

    function: str | Callable[[Array], Array] = eqx.field(static=True)

    def __check_init__(self):
        _m.resolve(self.function, "Activation")

    def _apply(self, x: Array) -> Array:
        return _m.resolve(self.function, "Activation")(x)


class ReLU(_Stateless):
    """[`leakyjax.relu`][] as an equinox module: `max(x, 0)`, `relu'(0) = 0`.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.equinox import ReLU
        >>> ReLU()(jnp.array([-1.0, 2.0]))
        Array([0., 2.], dtype=float32)
    """

    _entry = "relu"


class LeakyReLU(_Stateless):
    """[`leakyjax.leaky_relu`][] as an equinox module.

    `y = x` for `x >= 0`, `negative_slope * x` otherwise; derivative 1 at
    `x = 0` (the jax.nn convention). Output dtype = input dtype.

    Attributes:
        negative_slope: the slope for negative inputs (default 0.01); static.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.equinox import LeakyReLU
        >>> LeakyReLU(0.2)(jnp.array([-1.0, 2.0]))
        Array([-0.2,  2. ], dtype=float32)
    """

    _entry = "leaky_relu"
    negative_slope: float = eqx.field(static=True, default=0.01)


class ELU(_Stateless):
    """[`leakyjax.elu`][] as an equinox module.

    `y = x` for `x > 0`, `alpha * (exp(x) - 1)` otherwise; derivative
    `alpha` at `x = 0` (as `jax.nn.elu`). Output dtype = input dtype.

    Attributes:
        alpha: the negative saturation value (default 1.0); static.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.equinox import ELU
        >>> ELU()(jnp.array([-1.0, 2.0]))
        Array([-0.63212055,  2.        ], dtype=float32)
    """

    _entry = "elu"
    alpha: float = eqx.field(static=True, default=1.0)


class CELU(_Stateless):
    """[`leakyjax.celu`][] as an equinox module.

    `y = x` for `x > 0`, `alpha * (exp(x / alpha) - 1)` otherwise; alpha > 0.
    Derivative 1 at `x = 0`. Output dtype = input dtype.

    Attributes:
        alpha: positive scale (default 1.0); static.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.equinox import CELU
        >>> CELU(0.5)(jnp.array([-1.0, 2.0]))
        Array([-0.43233237,  2.        ], dtype=float32)
    """

    _entry = "celu"
    alpha: float = eqx.field(static=True, default=1.0)


class SELU(_Stateless):
    """[`leakyjax.selu`][] as an equinox module (Klambauer et al. 2017).

    `y = scale * elu(x, alpha)` with the constants of `jax.nn.selu`;
    derivative `scale * alpha` at `x = 0`. Output dtype = input dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.equinox import SELU
        >>> SELU()(jnp.array([-1.0, 2.0]))
        Array([-1.1113307,  2.101402 ], dtype=float32)
    """

    _entry = "selu"


class ReLU6(_Stateless):
    """[`leakyjax.relu6`][] as an equinox module.

    `min(max(x, 0), 6)`; derivative 0 at both kinks (0 and 6), as
    `jax.nn.relu6` and `torch.nn.ReLU6`. Output dtype = input dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.equinox import ReLU6
        >>> ReLU6()(jnp.array([-1.0, 8.0]))
        Array([0., 6.], dtype=float32)
    """

    _entry = "relu6"


class HardTanh(_Stateless):
    """[`leakyjax.hard_tanh`][] as an equinox module.

    `max(-1, min(x, 1))`; derivative 1 at the kinks ±1 (the
    `jax.nn.hard_tanh` convention; `torch.nn.Hardtanh` gives 0). Output
    dtype = input dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.equinox import HardTanh
        >>> HardTanh()(jnp.array([-2.0, 0.5]))
        Array([-1. ,  0.5], dtype=float32)
    """

    _entry = "hard_tanh"


class HardSigmoid(_Stateless):
    """[`leakyjax.hard_sigmoid`][] as an equinox module.

    `relu6(x + 3) / 6`, as `jax.nn.hard_sigmoid`; derivative 0 at
    the kinks ±3. Output dtype = input dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.equinox import HardSigmoid
        >>> HardSigmoid()(jnp.array([-4.0, 1.5]))
        Array([0.  , 0.75], dtype=float32)
    """

    _entry = "hard_sigmoid"


class PReLU(eqx.Module):
    """Parametric ReLU with a learnable slope (He et al. 2015), as an equinox module.

    `y = x` for `x >= 0`, `a * x` otherwise, where `a` is the array field
    `negative_slope`: shape `()` for one slope shared by all units
    (`num_parameters=1`) or `(C,)` for one per channel on `axis`. Computed
    by [`leakyjax.prelu`][]: the slope is cast to the input dtype and its
    gradient has the slope's dtype, so a bfloat16 slope with bfloat16 input stays
    bfloat16 through optax updates, and a float32 slope with bfloat16 input gives
    bfloat16 output. Derivative in `x` at 0: 1. Same arguments and numbers as
    [`leakyjax.linen.PReLU`][] and [`leakyjax.nnx.PReLU`][].

    Differences from `equinox.nn.PReLU`: per-channel slopes on any axis,
    the output keeps the input dtype (equinox's PReLU drifts to float32 after
    one optax update of a bfloat16 model), the initial slope is
    `negative_slope_init` (flax's name; 0.25 in both). He et al. train the
    slopes without weight decay: see [`leakyjax.decay_mask`][].

    Args:
        num_parameters: 1 (one shared slope, default) or the number of channels
            `C` on `axis`.
        axis: the feature axis of per-channel slopes (default -1).
        negative_slope_init: the initial slope (default 0.25).
        dtype: dtype of the slope (default None: jax's default float dtype,
            float32 unless x64 is enabled), as equinox's layers.

    Raises:
        ValueError: in the call, if the input's size on `axis` is not
            `num_parameters` or the slope has been given a wrong shape.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.equinox import PReLU
        >>> act = PReLU(3)
        >>> act.negative_slope
        Array([0.25, 0.25, 0.25], dtype=float32)
        >>> act(jnp.array([[-1.0, -2.0, 3.0]], dtype=jnp.bfloat16))
        Array([[-0.25, -0.5, 3]], dtype=bfloat16)
    """

    _entry = "prelu"
    negative_slope: Array
    num_parameters: int = eqx.field(static=True)
    axis: int = eqx.field(static=True)

    def __init__(
        self,
        num_parameters: int = 1,
        *,
        axis: int = -1,
        negative_slope_init: float = 0.25,
        dtype: Any = None,
    ):
        n = _m.check_num_parameters(num_parameters, "PReLU")
        _m.check_slope_init(negative_slope_init, "PReLU")
        if dtype is None:
            dtype = jnp.zeros(()).dtype  # the default float dtype
        _m.check_param_dtype(dtype, "PReLU", "dtype")
        self.num_parameters = n
        self.axis = axis
        self.negative_slope = jnp.full(_m.slope_shape(n), negative_slope_init, dtype)

    def __call__(self, x: Array, *, key: Array | None = None) -> Array:
        """Applies PReLU.

        Args:
            x: floating-point input; for per-channel slopes, `x.shape[axis]`
                must be `num_parameters`.
            key: ignored (for `equinox.nn.Sequential`).

        Returns:
            `prelu(x, negative_slope)`, with the dtype and shape of `x`.
        """
        x = jnp.asarray(x)
        a = _m.slope_for(
            self.negative_slope, x, self.num_parameters, self.axis, "PReLU"
        )
        return _act.prelu(x, a)


class RReLU(eqx.Module):
    """Randomized leaky ReLU (Xu et al. 2015), as an equinox module.

    Training (`inference=False`, the default, as `equinox.nn.Dropout`):
    every element gets its own slope, drawn with the `key` given in the call
    from `U(lower, upper)` (`convention="pytorch"`, default: 1/8, 1/3) or as
    `1/U(lower, upper)` (`convention="xu"`: 3, 8). Inference
    (`inference=True`, or `equinox.nn.inference_mode` on the model): the
    fixed evaluation slope (`(lower+upper)/2`, or `2/(lower+upper)` for
    `"xu"`), no key needed. See [`leakyjax.rrelu`][].

    Args:
        lower: lower bound of the slope (or divisor for `"xu"`); None for the
            convention's default.
        upper: upper bound; None for the convention's default.
        convention: `"pytorch"` (default) or `"xu"`.
        inference: True for the evaluation slope, False (default) for random
            slopes.

    Raises:
        ValueError: for invalid bounds or convention (at construction).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from leakyjax.equinox import RReLU
        >>> x = jnp.array([-1.0, -1.0, 2.0])
        >>> y = RReLU()(x, key=jax.random.key(0))  # random slopes in [1/8, 1/3]
        >>> bool(jnp.all((-1 / 3 <= y[:2]) & (y[:2] <= -1 / 8)))
        True
        >>> RReLU(inference=True)(x)  # (1/8 + 1/3) / 2
        Array([-0.22916667, -0.22916667,  2.        ], dtype=float32)
    """

    _entry = "rrelu"
    lower: float | None = eqx.field(static=True)
    upper: float | None = eqx.field(static=True)
    convention: _act.RReLUConvention = eqx.field(static=True)
    inference: bool

    def __init__(
        self,
        lower: float | None = None,
        upper: float | None = None,
        *,
        convention: _act.RReLUConvention = "pytorch",
        inference: bool = False,
    ):
        _m.check_rrelu(lower, upper, convention)
        self.lower = lower
        self.upper = upper
        self.convention = convention
        self.inference = inference

    def __call__(
        self,
        x: Array,
        *,
        key: Array | None = None,
        inference: bool | None = None,
    ) -> Array:
        """Applies RReLU.

        Args:
            x: floating-point input.
            key: a PRNG key for the random slopes (needed unless in inference).
            inference: overrides the attribute.

        Returns:
            The activation, with the dtype and shape of `x`.

        Raises:
            ValueError: in training mode without a key.
        """
        if inference is None:
            inference = self.inference
        if inference:
            return _act.rrelu(
                x, lower=self.lower, upper=self.upper, convention=self.convention
            )
        if key is None:
            raise ValueError(
                "RReLU: inference is False (training) but no key was given. Call "
                "it with key=jax.random.key(...), or switch to the evaluation "
                "slope with inference=True / equinox.nn.inference_mode(model)."
            )
        return _act.rrelu(
            x, key, lower=self.lower, upper=self.upper, convention=self.convention
        )


_NAMED = _m.named_modules(
    ReLU, LeakyReLU, ELU, CELU, SELU, ReLU6, HardTanh, HardSigmoid, PReLU, RReLU
)


def get(spec: str | Callable | type) -> Callable[..., eqx.Module]:
    """A factory of equinox modules for a registry spec (see [`leakyjax.get`][]).

    Each call of the factory makes a fresh module. `"prelu"` gives
    [`PReLU`][leakyjax.equinox.PReLU] (`"prelu:0.1"` sets `negative_slope_init`), `"rrelu"`
    [`RReLU`][leakyjax.equinox.RReLU], `"leaky_relu:0.2"` `LeakyReLU(0.2)`, and names without a
    named module (sigmoid, gelu, ...) an [`Activation`][leakyjax.equinox.Activation] of the spec. The
    factory is a `functools.partial`, so keyword arguments override the
    spec's, e.g. `get("prelu")(num_parameters=64)`.

    Args:
        spec: a registry spec, a function (wrapped in [`Activation`][leakyjax.equinox.Activation]) or an
            equinox Module class (returned as the factory).

    Returns:
        A callable returning a new module on each call.

    Raises:
        ValueError: as [`leakyjax.get`][] for invalid specs.

    Example:
        >>> import jax, jax.numpy as jnp, equinox as eqx
        >>> from leakyjax import equinox as ljeqx
        >>> act = ljeqx.get("prelu:0.1")
        >>> keys = jax.random.split(jax.random.key(0), 2)
        >>> model = eqx.nn.Sequential(
        ...     [eqx.nn.Linear(3, 4, key=keys[0]), act(), eqx.nn.Linear(4, 1, key=keys[1])]
        ... )
        >>> model.layers[1].negative_slope
        Array(0.1, dtype=float32)
        >>> model(jnp.ones(3)).shape
        (1,)
    """
    if isinstance(spec, type) and issubclass(spec, eqx.Module):
        return spec
    if callable(spec) and not isinstance(spec, str):
        return functools.partial(Activation, spec)
    cls, kwargs = _m.factory_args(spec, _NAMED, Activation)
    return functools.partial(cls, **kwargs)


# --------------------------------------------------------------------------- #
# Diagnostics: capture the activations' inputs
# --------------------------------------------------------------------------- #
_ACTIVATIONS = (_Stateless, PReLU, RReLU)
_RECORDING: list[list] = []


def _is_activation(node: Any) -> bool:
    return isinstance(node, _ACTIVATIONS)


def _path_name(path: tuple) -> str:
    parts = []
    for k in path:
        for attr in ("name", "key", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:  # pragma: no cover - other key types
            parts.append(str(k))
    return "/".join(parts) or "(root)"


class _Recorder(eqx.Module):
    """Wraps an activation module while [`capture`][leakyjax.equinox.capture] runs: records its input."""

    inner: Callable[..., Array]  # an activation module
    name: str = eqx.field(static=True)

    def __call__(self, x: Array, *args: Any, **kwargs: Any) -> Array:
        _RECORDING[-1].append((self.name, x))
        return self.inner(x, *args, **kwargs)


def capture(model: Any, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Array]]:
    """Calls an equinox model and returns its output and every pre-activation.

    Every leakyjax equinox activation module in `model` (found by pytree path)
    records its input while the model runs; the model itself is not changed.
    Works under `equinox.filter_jit` and `jax.jit`. A module called
    several times gives `path[0]`, `path[1]`, ...; modules called inside a
    transformation of their own (`jax.lax.scan` or `jax.vmap` over layers
    inside the model) cannot be recorded.

    Args:
        model: an equinox model built with leakyjax equinox activation modules.
        *args: inputs of the model.
        **kwargs: keyword arguments of the model call (`key=`, ...).

    Returns:
        `(output, {layer path: pre-activation array})`.

    Raises:
        ValueError: if the model has no leakyjax activation module.

    Example:
        >>> import jax, jax.numpy as jnp, equinox as eqx
        >>> from leakyjax import equinox as ljeqx
        >>> k1, k2 = jax.random.split(jax.random.key(0))
        >>> model = eqx.nn.Sequential(
        ...     [eqx.nn.Linear(3, 4, key=k1), ljeqx.PReLU(), eqx.nn.Linear(4, 2, key=k2)]
        ... )
        >>> out, acts = ljeqx.capture(model, jnp.ones(3))
        >>> {name: a.shape for name, a in acts.items()}
        {'layers/1': (4,)}
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(model, is_leaf=_is_activation)
    if not any(_is_activation(n) for _, n in flat):
        raise ValueError(
            "capture: the model has no leakyjax activation module. Build it from "
            "leakyjax.equinox modules, e.g. leakyjax.equinox.LeakyReLU()."
        )
    wrapped = jax.tree_util.tree_unflatten(
        treedef,
        [_Recorder(n, _path_name(p)) if _is_activation(n) else n for p, n in flat],
    )
    _RECORDING.append([])
    try:
        out = wrapped(*args, **kwargs)
    finally:
        calls = _RECORDING.pop()
    per_name: dict[str, list] = {}
    for name, x in calls:
        per_name.setdefault(name, []).append(x)
    acts: dict[str, Array] = {}
    for name, xs in per_name.items():
        if len(xs) == 1:
            acts[name] = xs[0]
        else:
            acts.update({f"{name}[{i}]": x for i, x in enumerate(xs)})
    return out, acts


def _dead_units_pure(model: Any, kwargs: dict) -> tuple[Callable, Any, Any]:
    """For [`leakyjax.diagnostics.dead_units`][]: `(pure, carry, cache_key)`.

    `pure(params, batch) -> (acts, params)` over the model's array leaves, so
    the jitted step takes the weights as an argument (one compile per model
    structure and batch shape). As everywhere in equinox the model takes one
    example: it is mapped with `jax.vmap` over the batch's leading axis.
    """
    params, static = eqx.partition(model, eqx.is_array)

    def pure(params, batch):
        m = eqx.combine(params, static)
        acts = jax.vmap(lambda x: capture(m, x, **kwargs)[1])(batch)
        return acts, params

    return pure, params, ("equinox", static)
