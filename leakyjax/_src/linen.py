"""flax.linen modules of the leaky rectifier family.

One generic stateless module, [`Activation`][leakyjax.linen.Activation] (any registry spec or
function), thin named modules for the table's entries ([`LeakyReLU`][leakyjax.linen.LeakyReLU],
[`ELU`][leakyjax.linen.ELU], ...: attributes named as the function's parameters), and the two
modules with state: [`PReLU`][leakyjax.linen.PReLU] (a learnable slope) and [`RReLU`][leakyjax.linen.RReLU]
(random slopes). Every module calls the leakyjax function, so values,
derivatives at the kink, the dtype rule (output dtype = input dtype; f32
parameters are cast to a bf16 input's dtype) and the small residuals are those
of the functions.

Diagnostics hook: every module calls `self.sow("intermediates",
"pre_activation", x)` before applying its function. This is free unless the
`"intermediates"` collection is mutable; with
`model.apply(variables, x, mutable=["intermediates"])` each activation's input
is returned under `intermediates/<module path>/pre_activation` (a tuple, one
entry per call), which is what the dying-unit diagnostics read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

try:
    import flax.linen as nn
except ImportError as e:  # pragma: no cover - exercised without flax only
    raise ImportError('leakyjax.linen needs flax: pip install "leakyjax[flax]"') from e

import jax
import jax.numpy as jnp

from leakyjax._src import activations as _act
from leakyjax._src import modules as _m
from leakyjax._src.names import SOW_COLLECTION, SOW_NAME

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


class _Stateless(nn.Module):
    """Base of the parameter-free modules: sow the input, apply the function."""

    def _apply(self, x: Array) -> Array:
        return _m.apply_entry(self, x)

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Applies the activation.

        Args:
            x: floating-point input.

        Returns:
            The activation of `x`, with the dtype and shape of `x`.
        """
        self.sow(SOW_COLLECTION, SOW_NAME, x)
        return self._apply(x)


class Activation(_Stateless):
    """Any activation as a linen module: a registry spec or a function.

    `Activation("leaky_relu:0.2")` applies `leakyjax.get("leaky_relu:0.2")`;
    `Activation(fn)` applies `fn`. This is what [`get`][leakyjax.linen.get] makes for the
    names without a named module (sigmoid, gelu, ...). Stateless: PReLU and
    RReLU, as modules, are [`PReLU`][leakyjax.linen.PReLU] and [`RReLU`][leakyjax.linen.RReLU] (as a spec here they
    are the fixed initial / evaluation slope, like [`leakyjax.get`][]).

    Diagnostics: calls `self.sow("intermediates", "pre_activation", x)` before
    the function (free unless `"intermediates"` is mutable).

    Attributes:
        function: a registry spec such as `"gelu"` or `"elu:alpha=0.5"`, or
            a function of `x`.

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> from leakyjax.linen import Activation
        >>> Activation("leaky_relu:0.2").apply({}, jnp.array([-1.0, 2.0]))
        Array([-0.2,  2. ], dtype=float32)
        >>> Activation(leakyjax.sigmoid).apply({}, jnp.array([0.0]))
        Array([0.5], dtype=float32)
    """

    function: str | Callable[[Array], Array]

    def _apply(self, x: Array) -> Array:
        return _m.resolve(self.function, "Activation")(x)


class ReLU(_Stateless):
    """[`leakyjax.relu`][] as a linen module: `max(x, 0)`, `relu'(0) = 0`.

    Diagnostics: sows its input as `"pre_activation"` (see
    [`Activation`][leakyjax.linen.Activation]).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.linen import ReLU
        >>> ReLU().apply({}, jnp.array([-1.0, 2.0]))
        Array([0., 2.], dtype=float32)
    """

    _entry = "relu"


class LeakyReLU(_Stateless):
    """[`leakyjax.leaky_relu`][] as a linen module.

    `y = x` for `x >= 0`, `negative_slope * x` otherwise; derivative 1 at
    `x = 0` (the jax.nn convention). Output dtype = input dtype. Diagnostics:
    sows its input as `"pre_activation"` (see [`Activation`][leakyjax.linen.Activation]).

    Attributes:
        negative_slope: the slope for negative inputs (default 0.01, as
            `jax.nn.leaky_relu` and PyTorch).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.linen import LeakyReLU
        >>> LeakyReLU(0.2).apply({}, jnp.array([-1.0, 2.0]))
        Array([-0.2,  2. ], dtype=float32)
    """

    _entry = "leaky_relu"
    negative_slope: float = 0.01


class ELU(_Stateless):
    """[`leakyjax.elu`][] as a linen module.

    `y = x` for `x > 0`, `alpha * (exp(x) - 1)` otherwise; derivative
    `alpha` at `x = 0` (as `jax.nn.elu`). Output dtype = input dtype.
    Diagnostics: sows its input as `"pre_activation"` (see
    [`Activation`][leakyjax.linen.Activation]).

    Attributes:
        alpha: the negative saturation value (default 1.0).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.linen import ELU
        >>> ELU().apply({}, jnp.array([-1.0, 2.0]))
        Array([-0.63212055,  2.        ], dtype=float32)
    """

    _entry = "elu"
    alpha: float = 1.0


class CELU(_Stateless):
    """[`leakyjax.celu`][] as a linen module.

    `y = x` for `x > 0`, `alpha * (exp(x / alpha) - 1)` otherwise; alpha > 0.
    Derivative 1 at `x = 0`. Output dtype = input dtype. Diagnostics: sows its
    input as `"pre_activation"` (see [`Activation`][leakyjax.linen.Activation]).

    Attributes:
        alpha: positive scale (default 1.0).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.linen import CELU
        >>> CELU(0.5).apply({}, jnp.array([-1.0, 2.0]))
        Array([-0.43233237,  2.        ], dtype=float32)
    """

    _entry = "celu"
    alpha: float = 1.0


class SELU(_Stateless):
    """[`leakyjax.selu`][] as a linen module (Klambauer et al. 2017).

    `y = scale * elu(x, alpha)` with the constants of `jax.nn.selu`;
    derivative `scale * alpha` at `x = 0`. Output dtype = input dtype.
    Diagnostics: sows its input as `"pre_activation"` (see
    [`Activation`][leakyjax.linen.Activation]).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.linen import SELU
        >>> SELU().apply({}, jnp.array([-1.0, 2.0]))
        Array([-1.1113307,  2.101402 ], dtype=float32)
    """

    _entry = "selu"


class ReLU6(_Stateless):
    """[`leakyjax.relu6`][] as a linen module.

    `min(max(x, 0), 6)`; derivative 0 at both kinks (0 and 6), as
    `jax.nn.relu6` and `torch.nn.ReLU6`. Output dtype = input dtype. Diagnostics: sows its input as `"pre_activation"` (see
    [`Activation`][leakyjax.linen.Activation]).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.linen import ReLU6
        >>> ReLU6().apply({}, jnp.array([-1.0, 8.0]))
        Array([0., 6.], dtype=float32)
    """

    _entry = "relu6"


class HardTanh(_Stateless):
    """[`leakyjax.hard_tanh`][] as a linen module.

    `max(-1, min(x, 1))`; derivative 1 at the kinks ±1 (the
    `jax.nn.hard_tanh` convention; `torch.nn.Hardtanh` gives 0). Output
    dtype = input dtype. Diagnostics: sows its input as `"pre_activation"` (see
    [`Activation`][leakyjax.linen.Activation]).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.linen import HardTanh
        >>> HardTanh().apply({}, jnp.array([-2.0, 0.5]))
        Array([-1. ,  0.5], dtype=float32)
    """

    _entry = "hard_tanh"


class HardSigmoid(_Stateless):
    """[`leakyjax.hard_sigmoid`][] as a linen module.

    `relu6(x + 3) / 6`, as `jax.nn.hard_sigmoid`; derivative 0 at
    the kinks ±3. Output dtype = input dtype. Diagnostics: sows its input as `"pre_activation"` (see
    [`Activation`][leakyjax.linen.Activation]).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.linen import HardSigmoid
        >>> HardSigmoid().apply({}, jnp.array([-4.0, 1.5]))
        Array([0.  , 0.75], dtype=float32)
    """

    _entry = "hard_sigmoid"


class PReLU(nn.Module):
    """Parametric ReLU with a learnable slope (He et al. 2015), as a linen module.

    `y = x` for `x >= 0`, `a * x` otherwise, where `a` is the parameter
    `"negative_slope"` (the name `flax.linen.PReLU` uses): shape `()`
    for one slope shared by all units (`num_parameters=1`) or `(C,)` for one
    per channel on `axis`. Computed by [`leakyjax.prelu`][]: the slope is cast
    to the input dtype (bf16 in, bf16 out with f32 parameters) and gets gradient
    `sum(min(x, 0))`. Derivative in `x` at 0: 1.

    Differences from `flax.linen.PReLU`: the slope starts at 0.25 (He et
    al., PyTorch) instead of 0.01, and per-channel slopes are supported. He et al.
    train the slopes without weight decay: see [`leakyjax.decay_mask`][].

    Diagnostics: calls `self.sow("intermediates", "pre_activation", x)` before
    the activation (free unless `"intermediates"` is mutable).

    Attributes:
        num_parameters: 1 (one shared slope, default) or the number of channels
            `C` on `axis`.
        axis: the feature axis of per-channel slopes (default -1, channels
            last).
        negative_slope_init: the initial slope (default 0.25).
        param_dtype: dtype of the slope parameter (default float32).

    Raises:
        ValueError: if the input's size on `axis` is not `num_parameters`, or
            the stored parameter has the wrong shape.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from leakyjax.linen import PReLU
        >>> x = jnp.array([[-1.0, -2.0, 3.0]])
        >>> variables = PReLU(3).init(jax.random.key(0), x)
        >>> variables["params"]["negative_slope"]
        Array([0.25, 0.25, 0.25], dtype=float32)
        >>> PReLU(3).apply(variables, x.astype(jnp.bfloat16))  # f32 slopes, bf16 out
        Array([[-0.25, -0.5, 3]], dtype=bfloat16)
    """

    _entry = "prelu"
    num_parameters: int = 1
    axis: int = -1
    negative_slope_init: float = 0.25
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Applies PReLU.

        Args:
            x: floating-point input; for per-channel slopes, `x.shape[axis]`
                must be `num_parameters`.

        Returns:
            `prelu(x, negative_slope)`, with the dtype and shape of `x`.
        """
        n = _m.check_num_parameters(self.num_parameters, "PReLU")
        init = _m.check_slope_init(self.negative_slope_init, "PReLU")
        _m.check_param_dtype(self.param_dtype, "PReLU")
        slope = self.param(
            "negative_slope",
            lambda key, shape, dtype: jnp.full(shape, init, dtype),
            _m.slope_shape(n),
            self.param_dtype,
        )
        x = jnp.asarray(x)
        a = _m.slope_for(slope, x, n, self.axis, "PReLU")
        self.sow(SOW_COLLECTION, SOW_NAME, x)
        return _act.prelu(x, a)


class RReLU(nn.Module):
    """Randomized leaky ReLU (Xu et al. 2015), as a linen module.

    Training (`deterministic=False`): every element gets its own slope, drawn
    from `U(lower, upper)` (`convention="pytorch"`, default: 1/8, 1/3) or as
    `1/U(lower, upper)` (`convention="xu"`: 3, 8). Evaluation
    (`deterministic=True`): the fixed evaluation slope (`(lower+upper)/2`, or
    `2/(lower+upper)` for `"xu"`). See [`leakyjax.rrelu`][].

    Switched like `flax.linen.Dropout`: `deterministic` is an attribute
    and a call argument (the call argument wins; one of them must be set), and
    the random key comes from `self.make_rng(rng_collection)`, with the
    collection `"rrelu"` by default -- pass `rngs={"rrelu": key}` to
    `apply` (or set `rng_collection="dropout"` to share dropout's stream),
    or give `key=` to the call.

    Diagnostics: calls `self.sow("intermediates", "pre_activation", x)` before
    the activation (free unless `"intermediates"` is mutable).

    Attributes:
        lower: lower bound of the slope (or divisor for `"xu"`); None for the
            convention's default.
        upper: upper bound; None for the convention's default.
        convention: `"pytorch"` (default) or `"xu"`.
        deterministic: True for the evaluation slope, False for random slopes;
            None (default) to require it in the call.
        rng_collection: the rng collection of the random slopes (`"rrelu"`).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from leakyjax.linen import RReLU
        >>> x = jnp.array([-1.0, -1.0, 2.0])
        >>> RReLU().apply({}, x, deterministic=True)  # (1/8 + 1/3) / 2
        Array([-0.22916667, -0.22916667,  2.        ], dtype=float32)
        >>> y = RReLU().apply({}, x, deterministic=False,
        ...                   rngs={"rrelu": jax.random.key(0)})
        >>> bool(jnp.all((-1 / 3 <= y[:2]) & (y[:2] <= -1 / 8)))
        True
    """

    _entry = "rrelu"
    lower: float | None = None
    upper: float | None = None
    convention: _act.RReLUConvention = "pytorch"
    deterministic: bool | None = None
    rng_collection: str = "rrelu"

    @nn.compact
    def __call__(
        self,
        x: Array,
        *,
        deterministic: bool | None = None,
        key: Array | None = None,
    ) -> Array:
        """Applies RReLU.

        Args:
            x: floating-point input.
            deterministic: overrides the attribute.
            key: a PRNG key for the random slopes; default
                `self.make_rng(self.rng_collection)`.

        Returns:
            The activation, with the dtype and shape of `x`.
        """
        deterministic = nn.merge_param(
            "deterministic", self.deterministic, deterministic
        )
        self.sow(SOW_COLLECTION, SOW_NAME, x)
        if deterministic:
            return _act.rrelu(
                x, lower=self.lower, upper=self.upper, convention=self.convention
            )
        if key is None:
            key = self.make_rng(self.rng_collection)
        return _act.rrelu(
            x, key, lower=self.lower, upper=self.upper, convention=self.convention
        )


_NAMED = _m.named_modules(
    ReLU, LeakyReLU, ELU, CELU, SELU, ReLU6, HardTanh, HardSigmoid, PReLU, RReLU
)


def get(spec: str | Callable | type) -> Callable[..., nn.Module]:
    """A factory of linen modules for a registry spec (see [`leakyjax.get`][]).

    Each call of the factory makes a fresh module, so every layer gets its own
    parameters (PReLU). `"prelu"` gives [`PReLU`][leakyjax.linen.PReLU] (`"prelu:0.1"` sets
    `negative_slope_init`), `"rrelu"` [`RReLU`][leakyjax.linen.RReLU] (`deterministic` is
    then given in the call), `"leaky_relu:0.2"` `LeakyReLU(0.2)`, and names
    without a named module (sigmoid, gelu, ...) an [`Activation`][leakyjax.linen.Activation] of the
    spec. The factory is a `functools.partial`, so keyword arguments
    override the spec's, e.g. `get("prelu")(num_parameters=64)`.

    Args:
        spec: a registry spec, a function (wrapped in [`Activation`][leakyjax.linen.Activation]) or a
            linen Module class (returned as the factory).

    Returns:
        A callable returning a new module on each call.

    Raises:
        ValueError: as [`leakyjax.get`][] for invalid specs.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import flax.linen as nn
        >>> from leakyjax import linen as ljnn
        >>> act = ljnn.get("prelu")
        >>> model = nn.Sequential([nn.Dense(4), act(), nn.Dense(2), act()])
        >>> params = model.init(jax.random.key(0), jnp.ones((1, 3)))["params"]
        >>> sorted(params)  # two independent slopes
        ['layers_0', 'layers_1', 'layers_2', 'layers_3']
        >>> params["layers_1"]["negative_slope"]
        Array(0.25, dtype=float32)
    """
    if isinstance(spec, type) and issubclass(spec, nn.Module):
        return spec
    if callable(spec) and not isinstance(spec, str):
        return functools.partial(Activation, spec)
    cls, kwargs = _m.factory_args(spec, _NAMED, Activation)
    return functools.partial(cls, **kwargs)
