"""He (Kaiming) initialisers with the leaky gain, and PyTorch's ``calculate_gain``.

For an activation with negative slope :math:`a`, He et al. (2015, eq. 15) keep
the variance of the pre-activations constant through depth with weights of
variance

.. math::
    \\operatorname{Var}[W] = \\frac{2}{(1 + a^2)\\,\\mathrm{fan}},

``fan`` being the number of inputs (``mode="fan_in"``, the forward pass) or of
outputs (``mode="fan_out"``, the backward pass) of a unit, times the receptive
field for convolutions. :func:`jax.nn.initializers.he_normal` is the case
:math:`a = 0` and has no slope argument; these initialisers add it and are built
on :func:`jax.nn.initializers.variance_scaling` (which computes conv fans and
corrects the truncated normal's std). jax only.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Sequence
from typing import Any, Literal

import jax
import numpy as np

from leakyjax._src import registry as _registry

__all__ = [
    "calculate_gain",
    "for_activation",
    "he_normal",
    "he_truncated_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_truncated_normal",
    "kaiming_uniform",
]

Initializer = Any  # jax.nn.initializers.Initializer (a Protocol)
Mode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
_MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")

_LINEAR_FNS = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
_TORCH_NAMES = (*_LINEAR_FNS, "sigmoid", "tanh", "relu", "leaky_relu", "selu")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""The recommended gain for a nonlinearity, as :func:`torch.nn.init.calculate_gain`.

    Same names and values as PyTorch:

    ================================================ =========================
    nonlinearity                                      gain
    ================================================ =========================
    linear, conv1d/2d/3d, conv_transpose1d/2d/3d      1
    sigmoid                                           1
    tanh                                              5/3
    relu                                              :math:`\sqrt{2}`
    leaky_relu                                        :math:`\sqrt{2/(1+a^2)}`,
                                                      ``a = param`` (0.01)
    selu                                              3/4
    ================================================ =========================

    For the other activations of leakyjax (prelu, rrelu, elu, gelu, ...) use
    :func:`leakyjax.gain`, which takes registry specs.

    Args:
        nonlinearity: one of the names above.
        param: the negative slope for ``"leaky_relu"`` (default 0.01); ignored
            otherwise, as in PyTorch.

    Returns:
        The gain, a Python float.

    Raises:
        ValueError: for an unknown name (naming the closest valid one), or a
            ``param`` that is not a number (bools are rejected, as in PyTorch).

    Example:
        >>> from leakyjax.initializers import calculate_gain
        >>> calculate_gain("tanh")
        1.6666666666666667
        >>> round(calculate_gain("leaky_relu", 0.2), 6)
        1.38675
    """
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (bool, np.bool_)) or not isinstance(param, numbers.Real):
            raise ValueError(
                f"calculate_gain: param (the negative slope) must be a number, "
                f"got {param!r}."
            )
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    match = difflib.get_close_matches(str(nonlinearity), _TORCH_NAMES, n=1, cutoff=0)
    hint = f" Did you mean {match[0]!r}?" if match else ""
    raise ValueError(
        f"calculate_gain: unsupported nonlinearity {nonlinearity!r}.{hint} Valid "
        f"names (PyTorch's): {', '.join(_TORCH_NAMES)}. For prelu, rrelu, elu, "
        "celu, gelu, silu or softplus use leakyjax.gain(spec)."
    )


def _check(negative_slope: Any, mode: str, fn: str) -> float:
    if mode not in _MODES:
        raise ValueError(
            f"{fn}: mode must be one of {', '.join(_MODES)}, got {mode!r}."
        )
    try:
        a = float(negative_slope)
    except (TypeError, ValueError):
        raise ValueError(
            f"{fn}: negative_slope must be a number, got {negative_slope!r}."
        ) from None
    if not math.isfinite(a):
        raise ValueError(f"{fn}: negative_slope must be finite, got {a!r}.")
    return a


def _he(distribution: Literal["truncated_normal", "normal", "uniform"], fn: str):
    def init(
        *,
        negative_slope: float = 0.0,
        mode: Mode = "fan_in",
        in_axis: int | Sequence[int] = -2,
        out_axis: int | Sequence[int] = -1,
        batch_axis: Sequence[int] = (),
        dtype: Any = None,
    ) -> Initializer:
        a = _check(negative_slope, mode, fn)
        return jax.nn.initializers.variance_scaling(
            2.0 / (1.0 + a * a),
            mode,
            distribution,
            in_axis=in_axis,
            out_axis=out_axis,
            batch_axis=batch_axis,
            dtype=dtype,
        )

    init.__name__ = init.__qualname__ = fn
    return init


_ARGS_DOC = """
    Args:
        negative_slope: the slope :math:`a` of the activation for negative
            inputs (0 for relu, 0.01 for the default leaky_relu, the initial
            slope 0.25 for PReLU). Keyword-only.
        mode: ``"fan_in"`` (default; preserves the forward variance),
            ``"fan_out"`` (preserves the backward variance), ``"fan_avg"`` or
            ``"fan_geo_avg"`` (as :func:`jax.nn.initializers.variance_scaling`).
        in_axis: axis or axes of the input dimension in the weight shape
            (default -2: linen/nnx Dense and Conv kernels).
        out_axis: axis or axes of the output dimension (default -1).
        batch_axis: axes to ignore when computing the fans.
        dtype: default dtype of the weights (overridable in the call); None
            (default) for jax's default float dtype (float32 unless x64 is
            enabled), as :func:`jax.nn.initializers.variance_scaling`.

    Returns:
        A :class:`jax.nn.initializers.Initializer` ``init(key, shape,
        dtype=dtype)``, usable as ``kernel_init`` in flax linen and nnx.

    Raises:
        ValueError: for an unknown ``mode`` or a non-finite ``negative_slope``.
"""


def _doc(summary: str, dist: str, example: str) -> str:
    return f"""{summary}

    Weights with variance :math:`2 / ((1 + a^2)\\,\\mathrm{{fan}})` (He et al.
    2015), i.e. std :math:`\\mathrm{{gain}} / \\sqrt{{\\mathrm{{fan}}}}` with the
    leaky gain :math:`\\sqrt{{2/(1+a^2)}}`. {dist} For a convolution kernel of
    shape ``(kh, kw, C_in, C_out)`` the fan is ``kh*kw*C_in`` (``fan_in``) or
    ``kh*kw*C_out`` (``fan_out``).
{_ARGS_DOC}
    Example:
        >>> import jax, leakyjax.initializers as li
        >>> init = li.{example}(negative_slope=0.2)
        >>> w = init(jax.random.key(0), (512, 256))
        >>> w.shape, w.dtype
        ((512, 256), dtype('float32'))

    References:
        He, Zhang, Ren, Sun. Delving Deep into Rectifiers. ICCV 2015.
    """


he_normal = _he("normal", "he_normal")
he_normal.__doc__ = _doc(
    "He (Kaiming) normal initialiser with the leaky gain.",
    "Drawn from the (untruncated) normal distribution, as PyTorch's "
    "``kaiming_normal_``; note that :func:`jax.nn.initializers.he_normal` "
    "draws from a truncated normal -- that is :func:`he_truncated_normal` here.",
    "he_normal",
)
he_uniform = _he("uniform", "he_uniform")
he_uniform.__doc__ = _doc(
    "He (Kaiming) uniform initialiser with the leaky gain.",
    "Drawn from :math:`U(-b, b)` with :math:`b = \\mathrm{gain}\\sqrt{3/"
    "\\mathrm{fan}}`, as PyTorch's ``kaiming_uniform_``.",
    "he_uniform",
)
he_truncated_normal = _he("truncated_normal", "he_truncated_normal")
he_truncated_normal.__doc__ = _doc(
    "He (Kaiming) truncated-normal initialiser with the leaky gain.",
    "Drawn from a normal truncated at two standard deviations and rescaled so "
    "that the variance is exact (the :func:`jax.nn.initializers.he_normal` "
    "distribution; equal to it for ``negative_slope=0``).",
    "he_truncated_normal",
)

#: Alias of :func:`he_normal` (PyTorch's name).
kaiming_normal = he_normal
#: Alias of :func:`he_uniform` (PyTorch's name).
kaiming_uniform = he_uniform
#: Alias of :func:`he_truncated_normal`.
kaiming_truncated_normal = he_truncated_normal

_DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")


def for_activation(
    spec: Any,
    *,
    distribution: Literal["normal", "truncated_normal", "uniform"] = "normal",
    mode: Mode = "fan_in",
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    batch_axis: Sequence[int] = (),
    dtype: Any = None,
) -> Initializer:
    r"""The He initialiser matched to an activation of the registry.

    Weights with std :math:`\mathrm{gain}/\sqrt{\mathrm{fan}}`, the gain being
    :func:`leakyjax.gain` of ``spec`` (so ``"leaky_relu:0.2"`` gives
    ``he_normal(negative_slope=0.2)``, ``"prelu"`` the gain at the initial slope
    0.25, ``"tanh"`` 5/3, ``"selu"`` 3/4).

    Args:
        spec: a registry spec such as ``"leaky_relu:0.2"`` (see
            :func:`leakyjax.get`), or a function returned by :func:`leakyjax.get`.
        distribution: ``"normal"`` (default, as :func:`he_normal`),
            ``"truncated_normal"`` or ``"uniform"``.
        mode: ``"fan_in"``, ``"fan_out"``, ``"fan_avg"`` or ``"fan_geo_avg"``.
        in_axis: input axis or axes of the weight shape.
        out_axis: output axis or axes.
        batch_axis: axes ignored for the fans.
        dtype: default dtype of the weights (None: jax's default float dtype).

    Returns:
        A :class:`jax.nn.initializers.Initializer`.

    Raises:
        ValueError: for an invalid spec, distribution or mode.

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax.initializers as li
        >>> w = li.for_activation("leaky_relu:0.2")(jax.random.key(0), (2000, 500))
        >>> print(f"{float(jnp.std(w)) * (2000 ** 0.5):.2f}")  # the gain 1.387
        1.39
    """
    if distribution not in _DISTRIBUTIONS:
        raise ValueError(
            f"for_activation: distribution must be one of {', '.join(_DISTRIBUTIONS)}"
            f", got {distribution!r}."
        )
    _check(0.0, mode, "for_activation")
    g = _registry.gain(spec)
    return jax.nn.initializers.variance_scaling(
        g * g,
        mode,
        distribution,
        in_axis=in_axis,
        out_axis=out_axis,
        batch_axis=batch_axis,
        dtype=dtype,
    )
