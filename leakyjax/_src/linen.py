"""flax.linen modules of the leaky rectifier family.

Every module calls the leakyjax function (:func:`leakyjax.leaky_relu`,
:func:`leakyjax.prelu`, ...), so values, derivatives at the kink, the dtype rule
(output dtype = input dtype; f32 parameters are cast to a bf16 input's dtype)
and the output-only residuals are those of the functions.

Diagnostics hook: every module calls ``self.sow("intermediates",
"pre_activation", x)`` before applying its function. This is free unless the
``"intermediates"`` collection is mutable; with
``model.apply(variables, x, mutable=["intermediates"])`` each activation's input
is returned under ``intermediates/<module path>/pre_activation`` (a tuple, one
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
import numpy as np

from leakyjax._src import activations as _act
from leakyjax._src import registry as _registry

Array = jax.Array
Dtype = Any

__all__ = [
    "CELU",
    "ELU",
    "Activation",
    "LeakyReLU",
    "PReLU",
    "RReLU",
    "ReLU",
    "SELU",
    "get",
]


# --------------------------------------------------------------------------- #
# PReLU parameter helpers (shared with leakyjax.nnx)
# --------------------------------------------------------------------------- #
def _check_num_parameters(num_parameters: Any, module: str) -> int:
    if isinstance(num_parameters, bool) or not isinstance(
        num_parameters, (int, np.integer)
    ):
        raise TypeError(
            f"{module}: num_parameters must be an int (1 for one shared slope, C "
            f"for one slope per channel), got {num_parameters!r}."
        )
    if num_parameters < 1:
        raise ValueError(
            f"{module}: num_parameters must be >= 1 (1 for one shared slope, C "
            f"for one per channel), got {num_parameters}."
        )
    return int(num_parameters)


def _slope_shape(num_parameters: int) -> tuple[int, ...]:
    return () if num_parameters == 1 else (num_parameters,)


def _slope_for(
    slope: Array, x: Array, num_parameters: int, axis: int, module: str
) -> Array:
    """Checks the slope parameter against ``x`` and reshapes it to broadcast."""
    expected = _slope_shape(num_parameters)
    if tuple(jnp.shape(slope)) != expected:
        raise ValueError(
            f"{module}: the negative_slope parameter has shape "
            f"{tuple(jnp.shape(slope))}, expected {expected} for "
            f"num_parameters={num_parameters} (shape () for one shared slope, "
            "(C,) for one per channel). Re-initialise the module or fix the "
            "parameter."
        )
    if num_parameters == 1:
        return slope
    ndim = jnp.ndim(x)
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{module}: axis={axis} is out of range for an input of shape "
            f"{jnp.shape(x)}."
        )
    ax = axis % ndim
    if x.shape[ax] != num_parameters:
        raise ValueError(
            f"{module}: num_parameters={num_parameters} but the input has "
            f"{x.shape[ax]} channels on axis {axis} (shape {x.shape}). Set "
            f"num_parameters={x.shape[ax]}, or pick the feature axis with axis=."
        )
    shape = [1] * ndim
    shape[ax] = num_parameters
    return jnp.reshape(slope, shape)


_SOW_DOC = """
    Diagnostics: calls ``self.sow("intermediates", "pre_activation", x)`` before
    the activation (free unless ``"intermediates"`` is mutable).
"""


class _Elementwise(nn.Module):
    """Base of the parameter-free modules: sow the input, apply ``_fn``."""

    def _fn(self, x: Array) -> Array:
        raise NotImplementedError

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Applies the activation.

        Args:
            x: floating-point input.

        Returns:
            The activation of ``x``, with the dtype and shape of ``x``.
        """
        self.sow("intermediates", "pre_activation", x)
        return self._fn(x)


class ReLU(_Elementwise):
    """:func:`leakyjax.relu` as a linen module (``relu'(0) = 0``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from leakyjax.linen import ReLU
        >>> ReLU().apply({}, jnp.array([-1.0, 2.0]))
        Array([0., 2.], dtype=float32)
    """

    def _fn(self, x):
        return _act.relu(x)


class LeakyReLU(_Elementwise):
    """:func:`leakyjax.leaky_relu` as a linen module.

    ``y = x`` for ``x >= 0``, ``negative_slope * x`` otherwise; derivative 1 at
    ``x = 0`` (the jax.nn convention). Output dtype = input dtype.

    Attributes:
        negative_slope: the slope for negative inputs (default 0.01, as
            :func:`jax.nn.leaky_relu` and PyTorch).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.linen import LeakyReLU
        >>> LeakyReLU(0.2).apply({}, jnp.array([-1.0, 2.0]))
        Array([-0.2,  2. ], dtype=float32)
    """

    negative_slope: float = 0.01

    def _fn(self, x):
        return _act.leaky_relu(x, self.negative_slope)


class ELU(_Elementwise):
    """:func:`leakyjax.elu` as a linen module.

    ``y = x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise; derivative
    ``alpha`` at ``x = 0`` (as :func:`jax.nn.elu`). Output dtype = input dtype.

    Attributes:
        alpha: the negative saturation value (default 1.0).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.linen import ELU
        >>> ELU().apply({}, jnp.array([-1.0, 2.0]))
        Array([-0.63212055,  2.        ], dtype=float32)
    """

    alpha: float = 1.0

    def _fn(self, x):
        return _act.elu(x, self.alpha)


class CELU(_Elementwise):
    """:func:`leakyjax.celu` as a linen module.

    ``y = x`` for ``x > 0``, ``alpha * (exp(x / alpha) - 1)`` otherwise; alpha > 0.
    Derivative 1 at ``x = 0``. Output dtype = input dtype.

    Attributes:
        alpha: positive scale (default 1.0).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.linen import CELU
        >>> CELU(0.5).apply({}, jnp.array([-1.0, 2.0]))
        Array([-0.43233237,  2.        ], dtype=float32)
    """

    alpha: float = 1.0

    def _fn(self, x):
        return _act.celu(x, self.alpha)


class SELU(_Elementwise):
    """:func:`leakyjax.selu` as a linen module (Klambauer et al. 2017).

    ``y = scale * elu(x, alpha)`` with the constants of :func:`jax.nn.selu`;
    derivative ``scale * alpha`` at ``x = 0``. Output dtype = input dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax.linen import SELU
        >>> SELU().apply({}, jnp.array([-1.0, 2.0]))
        Array([-1.1113307,  2.101402 ], dtype=float32)
    """

    def _fn(self, x):
        return _act.selu(x)


class Activation(_Elementwise):
    """Any elementwise function as a linen module (what ``get("gelu")`` makes).

    Attributes:
        function: the function of ``x`` to apply, e.g. ``leakyjax.get("gelu")``.

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> from leakyjax.linen import Activation
        >>> Activation(leakyjax.sigmoid).apply({}, jnp.array([0.0]))
        Array([0.5], dtype=float32)
    """

    function: Callable[[Array], Array]

    def _fn(self, x):
        return self.function(x)


for _cls in (ReLU, LeakyReLU, ELU, CELU, SELU, Activation):
    _cls.__doc__ = (_cls.__doc__ or "").replace(
        "\n    Example:", _SOW_DOC + "\n    Example:"
    )


class PReLU(nn.Module):
    """Parametric ReLU with a learnable slope (He et al. 2015), as a linen module.

    ``y = x`` for ``x >= 0``, ``alpha * x`` otherwise, where ``alpha`` is the
    parameter ``"negative_slope"`` (the name :class:`flax.linen.PReLU` uses): shape
    ``()`` for one slope shared by all units (``num_parameters=1``) or ``(C,)``
    for one per channel on ``axis``. Computed by :func:`leakyjax.prelu`: the slope
    is cast to the input dtype (bf16 in, bf16 out with f32 parameters) and gets
    gradient ``sum(min(x, 0))``. Derivative in ``x`` at 0: 1.

    Differences from :class:`flax.linen.PReLU`: the slope starts at 0.25 (He et
    al., PyTorch) instead of 0.01, and per-channel slopes are supported. He et al.
    train the slopes without weight decay: see :func:`leakyjax.decay_mask`.

    Attributes:
        num_parameters: 1 (one shared slope, default) or the number of channels
            ``C`` on ``axis``.
        axis: the feature axis of per-channel slopes (default -1, channels
            last).
        negative_slope_init: the initial slope (default 0.25).
        param_dtype: dtype of the slope parameter (default float32).

    Raises:
        ValueError: if the input's size on ``axis`` is not ``num_parameters``, or
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

    num_parameters: int = 1
    axis: int = -1
    negative_slope_init: float = 0.25
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Applies PReLU.

        Args:
            x: floating-point input; for per-channel slopes, ``x.shape[axis]``
                must be ``num_parameters``.

        Returns:
            ``prelu(x, negative_slope)``, with the dtype and shape of ``x``.
        """
        n = _check_num_parameters(self.num_parameters, "PReLU")
        init = self.negative_slope_init
        slope = self.param(
            "negative_slope",
            lambda key, shape, dtype: jnp.full(shape, init, dtype),
            _slope_shape(n),
            self.param_dtype,
        )
        x = jnp.asarray(x)
        alpha = _slope_for(slope, x, n, self.axis, "PReLU")
        self.sow("intermediates", "pre_activation", x)
        return _act.prelu(x, alpha)


class RReLU(nn.Module):
    """Randomized leaky ReLU (Xu et al. 2015), as a linen module.

    Training (``deterministic=False``): every element gets its own slope, drawn
    from ``U(lower, upper)`` (``convention="pytorch"``, default: 1/8, 1/3) or as
    ``1/U(lower, upper)`` (``convention="xu"``: 3, 8). Evaluation
    (``deterministic=True``): the fixed evaluation slope (``(lower+upper)/2``, or
    ``2/(lower+upper)`` for ``"xu"``). See :func:`leakyjax.rrelu`.

    Switched like :class:`flax.linen.Dropout`: ``deterministic`` is an attribute
    and a call argument (the call argument wins; one of them must be set), and
    the random key comes from ``self.make_rng(rng_collection)``, with the
    collection ``"rrelu"`` by default -- pass ``rngs={"rrelu": key}`` to
    ``apply`` (or set ``rng_collection="dropout"`` to share dropout's stream),
    or give ``key=`` to the call.

    Attributes:
        lower: lower bound of the slope (or divisor for ``"xu"``); None for the
            convention's default.
        upper: upper bound; None for the convention's default.
        convention: ``"pytorch"`` (default) or ``"xu"``.
        deterministic: True for the evaluation slope, False for random slopes;
            None (default) to require it in the call.
        rng_collection: the rng collection of the random slopes (``"rrelu"``).

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
                ``self.make_rng(self.rng_collection)``.

        Returns:
            The activation, with the dtype and shape of ``x``.
        """
        deterministic = nn.merge_param(
            "deterministic", self.deterministic, deterministic
        )
        self.sow("intermediates", "pre_activation", x)
        if deterministic:
            return _act.rrelu(
                x, lower=self.lower, upper=self.upper, convention=self.convention
            )
        if key is None:
            key = self.make_rng(self.rng_collection)
        return _act.rrelu(
            x, key, lower=self.lower, upper=self.upper, convention=self.convention
        )


RReLU.__doc__ = (RReLU.__doc__ or "").replace(
    "\n    Example:", _SOW_DOC + "\n    Example:"
)
PReLU.__doc__ = (PReLU.__doc__ or "").replace(
    "\n    Attributes:", _SOW_DOC + "\n    Attributes:"
)


# --------------------------------------------------------------------------- #
# Registry
# --------------------------------------------------------------------------- #
def _module_for(parsed: _registry.Spec) -> tuple[str, dict[str, Any]]:
    """The module class name and keyword arguments of a parsed spec (both APIs)."""
    kw = dict(parsed.kwargs)
    name = parsed.name
    if name in ("relu", "selu"):
        return {"relu": "ReLU", "selu": "SELU"}[name], {}
    if name == "leaky_relu":
        return "LeakyReLU", kw
    if name == "prelu":
        return "PReLU", kw
    if name == "rrelu":
        return "RReLU", kw
    if name in ("elu", "celu"):
        return name.upper(), kw
    return "Activation", {"function": _registry.get(str(parsed))}


def get(spec: str | Callable | type) -> Callable[..., nn.Module]:
    """A factory of linen modules for a registry spec (see :func:`leakyjax.get`).

    Each call of the factory makes a fresh module, so every layer gets its own
    parameters (PReLU). ``"prelu"`` gives :class:`PReLU` (``"prelu:0.1"`` sets
    ``negative_slope_init``), ``"rrelu"`` :class:`RReLU` (``deterministic`` is
    then given in the call), ``"leaky_relu:0.2"`` ``LeakyReLU(0.2)``, and names
    without a dedicated module (sigmoid, gelu, ...) an :class:`Activation` that
    wraps the function. The factory is a :func:`functools.partial`, so keyword
    arguments override the spec's, e.g. ``get("prelu")(num_parameters=64)``.

    Args:
        spec: a registry spec, a function (wrapped in :class:`Activation`) or a
            linen Module class (returned as the factory).

    Returns:
        A callable returning a new module on each call.

    Raises:
        ValueError: as :func:`leakyjax.get` for invalid specs.

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
    cls_name, kwargs = _module_for(_registry.parse(spec))
    return functools.partial(globals()[cls_name], **kwargs)
