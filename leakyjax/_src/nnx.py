"""flax.nnx modules of the leaky rectifier family.

Same names, arguments and numbers as [`leakyjax.linen`][]; every module calls
the leakyjax function ([`leakyjax.leaky_relu`][], [`leakyjax.prelu`][], ...),
so values, derivatives and the dtype rule (output dtype = input dtype; f32
parameters are cast to a bf16 input's dtype) are those of the functions.

Diagnostics hook: every module has a bool attribute `record_pre_activation`
(default False). When True, the module calls `self.sow(nnx.Intermediate,
"pre_activation", x)` before applying its function: inside
`flax.nnx.capture` the inputs are collected there, otherwise they are
stored on the module as the `nnx.Intermediate` attribute `pre_activation`
(a tuple, one entry per call). Switch it on for a whole model with
`model.set_attributes(record_pre_activation=True, raise_if_not_found=False)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    from flax import nnx
except ImportError as e:  # pragma: no cover - exercised without flax only
    raise ImportError('leakyjax.nnx needs flax: pip install "leakyjax[flax]"') from e

import jax
import jax.numpy as jnp

from leakyjax._src import activations as _act
from leakyjax._src import modules as _m
from leakyjax._src.names import SOW_NAME

Array = jax.Array
Dtype = Any

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
    "get",
]


class _Stateless(nnx.Module):
    """Base of the parameter-free modules: optionally sow the input, apply."""

    record_pre_activation: bool

    def _apply(self, x: Array) -> Array:
        return _m.apply_entry(self, x)

    def __call__(self, x: Array) -> Array:
        """Applies the activation.

        Args:
            x: floating-point input.

        Returns:
            The activation of `x`, with the dtype and shape of `x`.
        """
        if self.record_pre_activation:
            self.sow(nnx.Intermediate, SOW_NAME, x)
        return self._apply(x)


class Activation(_Stateless):
    """Any activation as an nnx module: a registry spec or a function.

    `Activation("leaky_relu:0.2")` applies `leakyjax.get("leaky_relu:0.2")`;
    `Activation(fn)` applies `fn`. This is what [`get`][leakyjax.nnx.get] makes for the
    names without a named module (sigmoid, gelu, ...). Stateless: PReLU and
    RReLU, as modules, are [`PReLU`][leakyjax.nnx.PReLU] and [`RReLU`][leakyjax.nnx.RReLU] (as a spec here they
    are the fixed initial / evaluation slope, like [`leakyjax.get`][]).

    Diagnostics: with `record_pre_activation=True` the module calls
    `self.sow(nnx.Intermediate, "pre_activation", x)` before the function.

    Args:
        function: a registry spec such as `"gelu"` or `"elu:alpha=0.5"`, or
            a function of `x`.
        record_pre_activation: sow the input (see the module docstring).

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> from leakyjax.nnx import Activation
        >>> Activation("leaky_relu:0.2")(jnp.array([-1.0, 2.0]))
        Array([-0.2,  2. ], dtype=float32)
        >>> Activation(leakyjax.sigmoid)(jnp.array([0.0]))
        Array([0.5], dtype=float32)
    """

    def __init__(
        self,
        function: str | Callable[[Array], Array],
        *,
        record_pre_activation: bool = False,
    ):
        _m.resolve(function, "Activation")  # check the spec now
        self.function = function
        self.record_pre_activation = record_pre_activation

    def _apply(self, x: Array) -> Array:
        return _m.resolve(self.function, "Activation")(x)


class ReLU(_Stateless):
    """[`leakyjax.relu`][] as an nnx module: `max(x, 0)`, `relu'(0) = 0`.

    Args:
        record_pre_activation: sow the input (see [`Activation`][leakyjax.nnx.Activation]).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.nnx import ReLU
        >>> ReLU()(jnp.array([-1.0, 2.0]))
        Array([0., 2.], dtype=float32)
    """

    _entry = "relu"

    def __init__(self, *, record_pre_activation: bool = False):
        self.record_pre_activation = record_pre_activation


class LeakyReLU(_Stateless):
    """[`leakyjax.leaky_relu`][] as an nnx module.

    `y = x` for `x >= 0`, `negative_slope * x` otherwise; derivative 1 at
    `x = 0` (the jax.nn convention). Output dtype = input dtype.

    Args:
        negative_slope: the slope for negative inputs (default 0.01).
        record_pre_activation: sow the input (see [`Activation`][leakyjax.nnx.Activation]).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.nnx import LeakyReLU
        >>> LeakyReLU(0.2)(jnp.array([-1.0, 2.0]))
        Array([-0.2,  2. ], dtype=float32)
    """

    _entry = "leaky_relu"

    def __init__(
        self, negative_slope: float = 0.01, *, record_pre_activation: bool = False
    ):
        self.negative_slope = negative_slope
        self.record_pre_activation = record_pre_activation


class ELU(_Stateless):
    """[`leakyjax.elu`][] as an nnx module.

    `y = x` for `x > 0`, `alpha * (exp(x) - 1)` otherwise; derivative
    `alpha` at `x = 0` (as `jax.nn.elu`). Output dtype = input dtype.

    Args:
        alpha: the negative saturation value (default 1.0).
        record_pre_activation: sow the input (see [`Activation`][leakyjax.nnx.Activation]).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.nnx import ELU
        >>> ELU()(jnp.array([-1.0, 2.0]))
        Array([-0.63212055,  2.        ], dtype=float32)
    """

    _entry = "elu"

    def __init__(self, alpha: float = 1.0, *, record_pre_activation: bool = False):
        self.alpha = alpha
        self.record_pre_activation = record_pre_activation


class CELU(_Stateless):
    """[`leakyjax.celu`][] as an nnx module.

    `y = x` for `x > 0`, `alpha * (exp(x / alpha) - 1)` otherwise; alpha > 0.
    Derivative 1 at `x = 0`. Output dtype = input dtype.

    Args:
        alpha: positive scale (default 1.0).
        record_pre_activation: sow the input (see [`Activation`][leakyjax.nnx.Activation]).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.nnx import CELU
        >>> CELU(0.5)(jnp.array([-1.0, 2.0]))
        Array([-0.43233237,  2.        ], dtype=float32)
    """

    _entry = "celu"

    def __init__(self, alpha: float = 1.0, *, record_pre_activation: bool = False):
        self.alpha = alpha
        self.record_pre_activation = record_pre_activation


class SELU(_Stateless):
    """[`leakyjax.selu`][] as an nnx module (Klambauer et al. 2017).

    `y = scale * elu(x, alpha)` with the constants of `jax.nn.selu`;
    derivative `scale * alpha` at `x = 0`. Output dtype = input dtype.

    Args:
        record_pre_activation: sow the input (see [`Activation`][leakyjax.nnx.Activation]).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.nnx import SELU
        >>> SELU()(jnp.array([-1.0, 2.0]))
        Array([-1.1113307,  2.101402 ], dtype=float32)
    """

    _entry = "selu"

    def __init__(self, *, record_pre_activation: bool = False):
        self.record_pre_activation = record_pre_activation


class ReLU6(_Stateless):
    """[`leakyjax.relu6`][] as an nnx module.

    `min(max(x, 0), 6)`; derivative 0 at both kinks (0 and 6), as
    `jax.nn.relu6` and `torch.nn.ReLU6`. Output dtype = input dtype.

    Args:
        record_pre_activation: sow the input (see [`Activation`][leakyjax.nnx.Activation]).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.nnx import ReLU6
        >>> ReLU6()(jnp.array([-1.0, 8.0]))
        Array([0., 6.], dtype=float32)
    """

    _entry = "relu6"

    def __init__(self, *, record_pre_activation: bool = False):
        self.record_pre_activation = record_pre_activation


class HardTanh(_Stateless):
    """[`leakyjax.hard_tanh`][] as an nnx module.

    `max(-1, min(x, 1))`; derivative 1 at the kinks ±1 (the
    `jax.nn.hard_tanh` convention; `torch.nn.Hardtanh` gives 0). Output
    dtype = input dtype.

    Args:
        record_pre_activation: sow the input (see [`Activation`][leakyjax.nnx.Activation]).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.nnx import HardTanh
        >>> HardTanh()(jnp.array([-2.0, 0.5]))
        Array([-1. ,  0.5], dtype=float32)
    """

    _entry = "hard_tanh"

    def __init__(self, *, record_pre_activation: bool = False):
        self.record_pre_activation = record_pre_activation


class HardSigmoid(_Stateless):
    """[`leakyjax.hard_sigmoid`][] as an nnx module.

    `relu6(x + 3) / 6`, as `jax.nn.hard_sigmoid`; derivative 0 at
    the kinks ±3. Output dtype = input dtype.

    Args:
        record_pre_activation: sow the input (see [`Activation`][leakyjax.nnx.Activation]).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.nnx import HardSigmoid
        >>> HardSigmoid()(jnp.array([-4.0, 1.5]))
        Array([0.  , 0.75], dtype=float32)
    """

    _entry = "hard_sigmoid"

    def __init__(self, *, record_pre_activation: bool = False):
        self.record_pre_activation = record_pre_activation


class PReLU(nnx.Module):
    """Parametric ReLU with a learnable slope (He et al. 2015), as an nnx module.

    `y = x` for `x >= 0`, `a * x` otherwise, where `a` is the
    `nnx.Param` attribute `negative_slope`: shape `()` for one slope shared
    by all units (`num_parameters=1`) or `(C,)` for one per channel on
    `axis`. Computed by [`leakyjax.prelu`][]: the slope is cast to the input
    dtype (bf16 in, bf16 out with f32 parameters) and gets gradient
    `sum(min(x, 0))`. Derivative in `x` at 0: 1. Same arguments and numbers
    as [`leakyjax.linen.PReLU`][].

    Differences from `flax.nnx.PReLU`: the slope starts at 0.25 (He et
    al., PyTorch) instead of 0.01, per-channel slopes are supported, and the
    output keeps the input dtype. He et al. train the slopes without weight
    decay: see [`leakyjax.decay_mask`][].

    Diagnostics: with `record_pre_activation=True` the module calls
    `self.sow(nnx.Intermediate, "pre_activation", x)` before the activation.

    Args:
        num_parameters: 1 (one shared slope, default) or the number of channels
            `C` on `axis`.
        axis: the feature axis of per-channel slopes (default -1).
        negative_slope_init: the initial slope (default 0.25).
        param_dtype: dtype of the slope parameter (default float32).
        record_pre_activation: sow the input (see the module docstring).

    Raises:
        ValueError: in the call, if the input's size on `axis` is not
            `num_parameters` or the parameter has been given a wrong shape.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.nnx import PReLU
        >>> act = PReLU(3)
        >>> act.negative_slope.shape
        (3,)
        >>> act(jnp.array([[-1.0, -2.0, 3.0]], dtype=jnp.bfloat16))
        Array([[-0.25, -0.5, 3]], dtype=bfloat16)
    """

    _entry = "prelu"

    def __init__(
        self,
        num_parameters: int = 1,
        *,
        axis: int = -1,
        negative_slope_init: float = 0.25,
        param_dtype: Dtype = jnp.float32,
        record_pre_activation: bool = False,
    ):
        n = _m.check_num_parameters(num_parameters, "PReLU")
        _m.check_slope_init(negative_slope_init, "PReLU")
        _m.check_param_dtype(param_dtype, "PReLU")
        self.num_parameters = n
        self.axis = axis
        self.negative_slope_init = negative_slope_init
        self.param_dtype = param_dtype
        self.record_pre_activation = record_pre_activation
        self.negative_slope = nnx.Param(
            jnp.full(_m.slope_shape(n), negative_slope_init, param_dtype)
        )

    def __call__(self, x: Array) -> Array:
        """Applies PReLU.

        Args:
            x: floating-point input; for per-channel slopes, `x.shape[axis]`
                must be `num_parameters`.

        Returns:
            `prelu(x, negative_slope)`, with the dtype and shape of `x`.
        """
        x = jnp.asarray(x)
        a = _m.slope_for(
            self.negative_slope[...], x, self.num_parameters, self.axis, "PReLU"
        )
        if self.record_pre_activation:
            self.sow(nnx.Intermediate, SOW_NAME, x)
        return _act.prelu(x, a)


class RReLU(nnx.Module):
    """Randomized leaky ReLU (Xu et al. 2015), as an nnx module.

    Training (`deterministic=False`, the default, as `flax.nnx.Dropout`):
    every element gets its own slope, drawn from `U(lower, upper)`
    (`convention="pytorch"`, default: 1/8, 1/3) or as `1/U(lower, upper)`
    (`convention="xu"`: 3, 8). Evaluation (`deterministic=True`): the fixed
    evaluation slope (`(lower+upper)/2`, or `2/(lower+upper)` for `"xu"`).
    See [`leakyjax.rrelu`][].

    Switched like `flax.nnx.Dropout`: `model.eval()` /
    `model.train()` (or `nnx.view(model, deterministic=...)`) set
    `deterministic`, which the call argument overrides. Keys come from the
    `rngs` stream `rng_collection` (`"rrelu"`; an `nnx.Rngs` without
    that stream falls back to its `default` stream) given at construction, or
    from `rngs=` in the call (an `nnx.Rngs`, an `RngStream` or a key).

    Diagnostics: with `record_pre_activation=True` the module calls
    `self.sow(nnx.Intermediate, "pre_activation", x)` before the activation.

    Args:
        lower: lower bound of the slope (or divisor for `"xu"`); None for the
            convention's default.
        upper: upper bound; None for the convention's default.
        convention: `"pytorch"` (default) or `"xu"`.
        deterministic: True for the evaluation slope; False (default) for random
            slopes.
        rng_collection: the rng stream of the random slopes (`"rrelu"`).
        record_pre_activation: sow the input (see the module docstring).
        rngs: an `nnx.Rngs` or `RngStream` for the random slopes.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> from leakyjax.nnx import RReLU
        >>> act = RReLU(rngs=nnx.Rngs(0))
        >>> x = jnp.array([-1.0, -1.0, 2.0])
        >>> y = act(x)  # training: random slopes in [1/8, 1/3]
        >>> bool(jnp.all((-1 / 3 <= y[:2]) & (y[:2] <= -1 / 8)))
        True
        >>> act.eval()
        >>> act(x)  # evaluation: (1/8 + 1/3) / 2
        Array([-0.22916667, -0.22916667,  2.        ], dtype=float32)
    """

    _entry = "rrelu"

    def __init__(
        self,
        lower: float | None = None,
        upper: float | None = None,
        *,
        convention: _act.RReLUConvention = "pytorch",
        deterministic: bool = False,
        rng_collection: str = "rrelu",
        record_pre_activation: bool = False,
        rngs: nnx.Rngs | nnx.RngStream | None = None,
    ):
        self.lower = lower
        self.upper = upper
        self.convention: _act.RReLUConvention = convention
        self.deterministic = deterministic
        self.rng_collection = rng_collection
        self.record_pre_activation = record_pre_activation
        if isinstance(rngs, nnx.Rngs):
            self.rngs = rngs[rng_collection].fork()
        elif isinstance(rngs, nnx.RngStream):
            self.rngs = rngs.fork()
        elif rngs is None:
            self.rngs = nnx.data(None)
        else:
            raise TypeError(
                f"RReLU: rngs must be an nnx.Rngs, an nnx.RngStream or None, got "
                f"{type(rngs).__name__}."
            )
        _m.check_rrelu(lower, upper, convention)  # now, not at the first call

    def __call__(
        self,
        x: Array,
        *,
        deterministic: bool | None = None,
        rngs: nnx.Rngs | nnx.RngStream | Array | None = None,
    ) -> Array:
        """Applies RReLU.

        Args:
            x: floating-point input.
            deterministic: overrides the attribute.
            rngs: overrides the stream given at construction: an `nnx.Rngs`,
                an `nnx.RngStream` or a PRNG key.

        Returns:
            The activation, with the dtype and shape of `x`.

        Raises:
            ValueError: in training mode without any rngs.
        """
        if deterministic is None:
            deterministic = self.deterministic
        if self.record_pre_activation:
            self.sow(nnx.Intermediate, SOW_NAME, x)
        if deterministic:
            return _act.rrelu(
                x, lower=self.lower, upper=self.upper, convention=self.convention
            )
        rngs = self.rngs if rngs is None else rngs
        if rngs is None:
            raise ValueError(
                "RReLU: deterministic is False (training) but no rngs were given. "
                "Pass rngs=nnx.Rngs(...) to the constructor or the call, or switch "
                "to evaluation with model.eval() / deterministic=True."
            )
        if isinstance(rngs, nnx.Rngs):
            key = rngs[self.rng_collection]()
        elif isinstance(rngs, nnx.RngStream):
            key = rngs()
        else:
            key = rngs
        return _act.rrelu(
            x, key, lower=self.lower, upper=self.upper, convention=self.convention
        )

    def set_view(self, deterministic: bool | None = None):
        """Used by `nnx.view(model, deterministic=...)`.

        Args:
            deterministic: True for the evaluation slope, False for random ones.
        """
        if deterministic is not None:
            self.deterministic = deterministic


_NAMED = _m.named_modules(
    ReLU, LeakyReLU, ELU, CELU, SELU, ReLU6, HardTanh, HardSigmoid, PReLU, RReLU
)


def get(spec: str | Callable | type) -> Callable[..., nnx.Module]:
    """A factory of nnx modules for a registry spec (see [`leakyjax.get`][]).

    The factory takes `rngs=` (keyword; used by `RReLU`, ignored by the
    others) and keyword overrides, and makes a fresh module on each call, so
    every layer gets its own parameters (PReLU). `"prelu"` gives
    [`PReLU`][leakyjax.nnx.PReLU] (`"prelu:0.1"` sets `negative_slope_init`), `"rrelu"`
    [`RReLU`][leakyjax.nnx.RReLU], `"leaky_relu:0.2"` `LeakyReLU(0.2)`, and names without a
    named module (sigmoid, gelu, ...) an [`Activation`][leakyjax.nnx.Activation] of the spec.

    Args:
        spec: a registry spec, a function (wrapped in [`Activation`][leakyjax.nnx.Activation]) or
            an nnx Module class (called with the factory's keyword arguments,
            `rngs` included).

    Returns:
        `factory(*, rngs=None, **overrides) -> nnx.Module`.

    Raises:
        ValueError: as [`leakyjax.get`][] for invalid specs.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> from leakyjax import nnx as ljnnx
        >>> make = ljnnx.get("prelu:0.1")
        >>> a, b = make(rngs=nnx.Rngs(0)), make(num_parameters=4)
        >>> a.negative_slope[...], b.negative_slope.shape
        (Array(0.1, dtype=float32), (4,))
    """
    if isinstance(spec, type) and issubclass(spec, nnx.Module):
        cls: Any = spec
        kwargs: dict[str, Any] = {}
        takes_rngs = True
    elif callable(spec) and not isinstance(spec, str):
        cls, kwargs, takes_rngs = Activation, {"function": spec}, False
    else:
        cls, kwargs = _m.factory_args(spec, _NAMED, Activation)
        takes_rngs = cls is RReLU

    def factory(*, rngs: nnx.Rngs | None = None, **overrides: Any) -> nnx.Module:
        kw = {**kwargs, **overrides}
        if takes_rngs and rngs is not None:
            kw["rngs"] = rngs
        return cls(**kw)

    factory.__name__ = factory.__qualname__ = f"make_{cls.__name__}"
    return factory
