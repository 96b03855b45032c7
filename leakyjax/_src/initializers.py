"""He (Kaiming) initialisers with the leaky gain, and PyTorch's `calculate_gain`.

For an activation with negative slope $a$, He et al. (2015, eq. 15) keep
the variance of the pre-activations constant through depth with weights of
variance

$$
\\operatorname{Var}[W] = \\frac{2}{(1 + a^2)\\,\\mathrm{fan}},
$$

`fan` being the number of inputs (`mode="fan_in"`, the forward pass) or of
outputs (`mode="fan_out"`, the backward pass) of a unit, times the receptive
field for convolutions. `jax.nn.initializers.he_normal` is the case
$a = 0$ and has no slope argument; these initialisers add it and are built
on `jax.nn.initializers.variance_scaling` (which computes conv fans and
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
from leakyjax._src import table as _table

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

# PyTorch's names -> the table entry that gives the gain. PyTorch's "linear"
# and conv names are the identity's gain; param is the leaky slope.
_TORCH_NAMES = {
    **dict.fromkeys(
        (
            "linear",
            "conv1d",
            "conv2d",
            "conv3d",
            "conv_transpose1d",
            "conv_transpose2d",
            "conv_transpose3d",
        ),
        "identity",
    ),
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "selu": "selu",
}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""The recommended gain for a nonlinearity, as `torch.nn.init.calculate_gain`.

    Same names and values as PyTorch:

    | nonlinearity | gain |
    |---|---|
    | linear, conv1d/2d/3d, conv_transpose1d/2d/3d | 1 |
    | sigmoid | 1 |
    | tanh | 5/3 |
    | relu | $\sqrt{2}$ |
    | leaky_relu | $\sqrt{2/(1+a^2)}$, `a = param` (0.01) |
    | selu | 3/4 |

    The values are those of [`leakyjax.gain`][] (one activation table holds
    them). For the other activations of leakyjax (prelu, rrelu, elu, gelu, ...)
    use [`leakyjax.gain`][], which takes registry specs.

    Args:
        nonlinearity: one of the names above.
        param: the negative slope for `"leaky_relu"` (default 0.01); ignored
            otherwise, as in PyTorch.

    Returns:
        The gain, a Python float.

    Raises:
        ValueError: for an unknown name (naming the closest valid one), or a
            `param` that is not a number (bools are rejected, as in PyTorch).

    Example:
        >>> from leakyjax.initializers import calculate_gain
        >>> calculate_gain("tanh")
        1.6666666666666667
        >>> round(calculate_gain("leaky_relu", 0.2), 6)
        1.38675
    """
    if nonlinearity not in _TORCH_NAMES:
        match = difflib.get_close_matches(
            str(nonlinearity), list(_TORCH_NAMES), n=1, cutoff=0
        )
        hint = f" Did you mean {match[0]!r}?" if match else ""
        raise ValueError(
            f"calculate_gain: unsupported nonlinearity {nonlinearity!r}.{hint} Valid "
            f"names (PyTorch's): {', '.join(_TORCH_NAMES)}. For the other "
            "activations (prelu, rrelu, elu, gelu, ...) use leakyjax.gain(spec)."
        )
    entry = _table.entry(_TORCH_NAMES[nonlinearity])
    kwargs = entry.defaults()
    if nonlinearity == "leaky_relu" and param is not None:
        if isinstance(param, (bool, np.bool_)) or not isinstance(param, numbers.Real):
            raise ValueError(
                f"calculate_gain: param (the negative slope) must be a number, "
                f"got {param!r}."
            )
        if not math.isfinite(param):
            raise ValueError(
                f"calculate_gain: param (the negative slope) must be finite, got "
                f"{param!r}."
            )
        kwargs["negative_slope"] = float(param)
    return float(entry.gain(**kwargs))


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


def _he(
    distribution: Literal["truncated_normal", "normal", "uniform"],
    fn: str,
    negative_slope: Any,
    mode: Mode,
    in_axis: Any,
    out_axis: Any,
    batch_axis: Any,
    dtype: Any,
) -> Initializer:
    a = _check(negative_slope, mode, fn)
    init = jax.nn.initializers.variance_scaling(
        _table.leaky_gain(a) ** 2,
        mode,
        distribution,
        in_axis=in_axis,
        out_axis=out_axis,
        batch_axis=batch_axis,
        dtype=dtype,
    )
    return _checked(init, fn, in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis)


def _checked(init: Any, fn: str, **axes: Any) -> Initializer:
    """`init` with its weight shape checked against `axes` first.

    An axis out of range is a `ValueError` naming `fn` and the argument
    (not an `IndexError`); a weight with no elements (a zero in its shape,
    hence a fan of 0) is returned empty, as PyTorch's `kaiming_normal_` does
    (not a `ZeroDivisionError`).
    """

    def checked(key: Any, shape: Any, dtype: Any = None) -> Any:
        shape = tuple(shape)
        n = len(shape)
        if n == 0:
            raise ValueError(
                f"{fn}: a weight of shape () has no input or output axis; give the "
                "shape of a kernel, e.g. (fan_in, fan_out)."
            )
        for name, axis in axes.items():
            for ax in (axis,) if isinstance(axis, (int, np.integer)) else axis:
                if not -n <= ax < n:
                    raise ValueError(
                        f"{fn}: {name}={axis!r} is out of range for a weight of "
                        f"shape {shape} ({n} {'axes' if n > 1 else 'axis'}); give "
                        f"{name} an axis in [{-n}, {n - 1}] (linen/nnx kernels: "
                        "in_axis=-2, out_axis=-1; equinox Linear: in_axis=-1, "
                        "out_axis=-2)."
                    )
        kw = {} if dtype is None else {"dtype": dtype}
        if math.prod(shape) == 0:  # nothing to draw: fan 0, variance undefined
            dt = jax.eval_shape(lambda k: init(k, (1,) * n, **kw), key).dtype
            return jax.numpy.zeros(shape, dt)
        return init(key, shape, **kw)

    return checked


def he_normal(
    *,
    negative_slope: float = 0.0,
    mode: Mode = "fan_in",
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    batch_axis: Sequence[int] = (),
    dtype: Any = None,
) -> Initializer:
    r"""He (Kaiming) normal initialiser with the leaky gain.

    Weights with variance $2 / ((1 + a^2)\,\mathrm{fan})$ (He et al.
    2015), i.e. std $\mathrm{gain} / \sqrt{\mathrm{fan}}$ with the
    leaky gain $\sqrt{2/(1+a^2)}$. Drawn from the (untruncated) normal
    distribution, as PyTorch's `kaiming_normal_`; note that
    `jax.nn.initializers.he_normal` draws from a truncated normal -- that
    is [`he_truncated_normal`][leakyjax.initializers.he_truncated_normal] here. For a convolution kernel of
    shape `(kh, kw, C_in, C_out)` the fan is `kh*kw*C_in` (`fan_in`) or
    `kh*kw*C_out` (`fan_out`).

    Args:
        negative_slope: the slope $a$ of the activation for negative
            inputs (0 for relu, 0.01 for the default leaky_relu, the initial
            slope 0.25 for PReLU). Keyword-only.
        mode: `"fan_in"` (default; preserves the forward variance),
            `"fan_out"` (preserves the backward variance), `"fan_avg"` or
            `"fan_geo_avg"` (as `jax.nn.initializers.variance_scaling`).
        in_axis: axis or axes of the input dimension in the weight shape
            (default -2: linen/nnx Dense and Conv kernels; -1 for equinox's
            `Linear`, whose weight is `(out, in)`).
        out_axis: axis or axes of the output dimension (default -1; -2 for
            equinox's `Linear`).
        batch_axis: axes to ignore when computing the fans.
        dtype: default dtype of the weights (overridable in the call); None
            (default) for jax's default float dtype (float32 unless x64 is
            enabled), as `jax.nn.initializers.variance_scaling`.

    Returns:
        A `jax.nn.initializers.Initializer` `init(key, shape,
        dtype=dtype)`, usable as `kernel_init` in flax linen and nnx.

    Raises:
        ValueError: for an unknown `mode` or a non-finite `negative_slope`.

    Example:
        >>> import jax, leakyjax.initializers as li
        >>> init = li.he_normal(negative_slope=0.2)
        >>> w = init(jax.random.key(0), (512, 256))
        >>> w.shape, w.dtype
        ((512, 256), dtype('float32'))

    References:
        He, Zhang, Ren, Sun. Delving Deep into Rectifiers. ICCV 2015.
    """
    return _he(
        "normal",
        "he_normal",
        negative_slope,
        mode,
        in_axis,
        out_axis,
        batch_axis,
        dtype,
    )


def he_uniform(
    *,
    negative_slope: float = 0.0,
    mode: Mode = "fan_in",
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    batch_axis: Sequence[int] = (),
    dtype: Any = None,
) -> Initializer:
    r"""He (Kaiming) uniform initialiser with the leaky gain.

    Weights with variance $2 / ((1 + a^2)\,\mathrm{fan})$ (He et al.
    2015), i.e. std $\mathrm{gain} / \sqrt{\mathrm{fan}}$ with the
    leaky gain $\sqrt{2/(1+a^2)}$. Drawn from $U(-b, b)$ with
    $b = \mathrm{gain}\sqrt{3/\mathrm{fan}}$, as PyTorch's
    `kaiming_uniform_`. For a convolution kernel of
    shape `(kh, kw, C_in, C_out)` the fan is `kh*kw*C_in` (`fan_in`) or
    `kh*kw*C_out` (`fan_out`).

    Args:
        negative_slope: the slope $a$ of the activation for negative
            inputs (0 for relu, 0.01 for the default leaky_relu, the initial
            slope 0.25 for PReLU). Keyword-only.
        mode: `"fan_in"` (default; preserves the forward variance),
            `"fan_out"` (preserves the backward variance), `"fan_avg"` or
            `"fan_geo_avg"` (as `jax.nn.initializers.variance_scaling`).
        in_axis: axis or axes of the input dimension in the weight shape
            (default -2: linen/nnx Dense and Conv kernels; -1 for equinox's
            `Linear`, whose weight is `(out, in)`).
        out_axis: axis or axes of the output dimension (default -1; -2 for
            equinox's `Linear`).
        batch_axis: axes to ignore when computing the fans.
        dtype: default dtype of the weights (overridable in the call); None
            (default) for jax's default float dtype (float32 unless x64 is
            enabled), as `jax.nn.initializers.variance_scaling`.

    Returns:
        A `jax.nn.initializers.Initializer` `init(key, shape,
        dtype=dtype)`, usable as `kernel_init` in flax linen and nnx.

    Raises:
        ValueError: for an unknown `mode` or a non-finite `negative_slope`.

    Example:
        >>> import jax, leakyjax.initializers as li
        >>> init = li.he_uniform(negative_slope=0.2)
        >>> w = init(jax.random.key(0), (512, 256))
        >>> w.shape, w.dtype
        ((512, 256), dtype('float32'))

    References:
        He, Zhang, Ren, Sun. Delving Deep into Rectifiers. ICCV 2015.
    """
    return _he(
        "uniform",
        "he_uniform",
        negative_slope,
        mode,
        in_axis,
        out_axis,
        batch_axis,
        dtype,
    )


def he_truncated_normal(
    *,
    negative_slope: float = 0.0,
    mode: Mode = "fan_in",
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    batch_axis: Sequence[int] = (),
    dtype: Any = None,
) -> Initializer:
    r"""He (Kaiming) truncated-normal initialiser with the leaky gain.

    Weights with variance $2 / ((1 + a^2)\,\mathrm{fan})$ (He et al.
    2015), i.e. std $\mathrm{gain} / \sqrt{\mathrm{fan}}$ with the
    leaky gain $\sqrt{2/(1+a^2)}$. Drawn from a normal truncated at two
    standard deviations and rescaled so that the variance is exact (the
    `jax.nn.initializers.he_normal` distribution; equal to it for
    `negative_slope=0`). For a convolution kernel of
    shape `(kh, kw, C_in, C_out)` the fan is `kh*kw*C_in` (`fan_in`) or
    `kh*kw*C_out` (`fan_out`).

    Args:
        negative_slope: the slope $a$ of the activation for negative
            inputs (0 for relu, 0.01 for the default leaky_relu, the initial
            slope 0.25 for PReLU). Keyword-only.
        mode: `"fan_in"` (default; preserves the forward variance),
            `"fan_out"` (preserves the backward variance), `"fan_avg"` or
            `"fan_geo_avg"` (as `jax.nn.initializers.variance_scaling`).
        in_axis: axis or axes of the input dimension in the weight shape
            (default -2: linen/nnx Dense and Conv kernels; -1 for equinox's
            `Linear`, whose weight is `(out, in)`).
        out_axis: axis or axes of the output dimension (default -1; -2 for
            equinox's `Linear`).
        batch_axis: axes to ignore when computing the fans.
        dtype: default dtype of the weights (overridable in the call); None
            (default) for jax's default float dtype (float32 unless x64 is
            enabled), as `jax.nn.initializers.variance_scaling`.

    Returns:
        A `jax.nn.initializers.Initializer` `init(key, shape,
        dtype=dtype)`, usable as `kernel_init` in flax linen and nnx.

    Raises:
        ValueError: for an unknown `mode` or a non-finite `negative_slope`.

    Example:
        >>> import jax, leakyjax.initializers as li
        >>> init = li.he_truncated_normal(negative_slope=0.2)
        >>> w = init(jax.random.key(0), (512, 256))
        >>> w.shape, w.dtype
        ((512, 256), dtype('float32'))

    References:
        He, Zhang, Ren, Sun. Delving Deep into Rectifiers. ICCV 2015.
    """
    return _he(
        "truncated_normal",
        "he_truncated_normal",
        negative_slope,
        mode,
        in_axis,
        out_axis,
        batch_axis,
        dtype,
    )


#: Alias of [`he_normal`][leakyjax.initializers.he_normal] (PyTorch's name).
kaiming_normal = he_normal
#: Alias of [`he_uniform`][leakyjax.initializers.he_uniform] (PyTorch's name).
kaiming_uniform = he_uniform
#: Alias of [`he_truncated_normal`][leakyjax.initializers.he_truncated_normal].
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

    Weights with std $\mathrm{gain}/\sqrt{\mathrm{fan}}$, the gain being
    [`leakyjax.gain`][] of `spec` (so `"leaky_relu:0.2"` gives
    `he_normal(negative_slope=0.2)`, `"prelu"` the gain at the initial slope
    0.25, `"tanh"` 5/3, `"selu"` 3/4).

    Args:
        spec: a registry spec such as `"leaky_relu:0.2"` (see
            [`leakyjax.get`][]), or a function returned by [`leakyjax.get`][].
        distribution: `"normal"` (default, as [`he_normal`][leakyjax.initializers.he_normal]),
            `"truncated_normal"` or `"uniform"`.
        mode: `"fan_in"`, `"fan_out"`, `"fan_avg"` or `"fan_geo_avg"`.
        in_axis: input axis or axes of the weight shape.
        out_axis: output axis or axes.
        batch_axis: axes ignored for the fans.
        dtype: default dtype of the weights (None: jax's default float dtype).

    Returns:
        A `jax.nn.initializers.Initializer`.

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
    init = jax.nn.initializers.variance_scaling(
        g * g,
        mode,
        distribution,
        in_axis=in_axis,
        out_axis=out_axis,
        batch_axis=batch_axis,
        dtype=dtype,
    )
    return _checked(
        init,
        "for_activation",
        in_axis=in_axis,
        out_axis=out_axis,
        batch_axis=batch_axis,
    )


# --------------------------------------------------------------------------- #
# Randomized asymmetric initialisation (RAI), Lu, Shin, Su & Karniadakis
# (self-contained: it uses none of the gain machinery above)
# --------------------------------------------------------------------------- #
#: sigma_out of Lu et al.'s RAI: the symmetric entries are N(0, RAI_SCALE**2 / fan_in).
RAI_SCALE = 0.6007
#: (a, b) of the Beta distribution of the one positive entry per unit in RAI.
RAI_BETA = (2.0, 1.0)


def _rai_check(scale: Any, beta: Any, fn: str) -> tuple[float, float, float]:
    try:
        s = float(scale)
        a, b = (float(v) for v in beta)
    except (TypeError, ValueError):
        raise ValueError(
            f"{fn}: scale must be a number and beta a pair (a, b), got "
            f"scale={scale!r}, beta={beta!r}."
        ) from None
    if not (math.isfinite(s) and s >= 0):
        raise ValueError(f"{fn}: scale must be finite and >= 0, got {scale!r}.")
    if not (math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0):
        raise ValueError(f"{fn}: beta = (a, b) needs a, b > 0, got {beta!r}.")
    return s, a, b


def _rai_sample_dtype(dtype: Any) -> Any:
    import jax.numpy as jnp

    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"rai: dtype must be a float dtype, got {dtype}.")
    return dtype if dtype.itemsize >= 4 else jnp.float32


def rai(
    *,
    scale: float = RAI_SCALE,
    beta: tuple[float, float] = RAI_BETA,
    in_axis: int | Sequence[int] = -2,
    out_axis: int = -1,
    dtype: Any = None,
) -> Initializer:
    r"""Randomized asymmetric initialisation (RAI) of Lu et al., as `kernel_init`.

    Lu, Shin, Su and Karniadakis prove that a deep ReLU network with weights
    and biases from symmetric distributions is *born dead* (constant) with
    probability $\to 1$ as the depth grows, and propose to make one
    incoming weight of every unit positive. For each unit $j$ (an output
    of the kernel):

    1. draw every incoming weight from the symmetric
       $N(0, \sigma_\text{out}^2 / \mathrm{fan\_in})$,
       $\sigma_\text{out} = 0.6007$;
    2. pick one index $k_j$ uniformly among the $\mathrm{fan\_in}$
       inputs and replace $w_{k_j j}$ by $\xi_j \sim
       \mathrm{Beta}(2, 1)$ (positive, mean 2/3, $E\xi^2 = 1/2$).

    The constants are those of the paper's Python listing of RAI (`0.6007`,
    `np.random.beta(2, 1)`); the paper derives them from a second-moment
    analysis of the pre-activations, which we could not read in full, so the
    derivation is not repeated here. One difference: the paper draws
    $k_j$ among the $\mathrm{fan\_in} + 1$ entries of
    $[W, b]$ (the positive entry may be the bias). A `kernel_init` and a
    `bias_init` are called with independent keys by flax and equinox, so
    here the positive entry is always a weight and [`rai_bias`][leakyjax.initializers.rai_bias] draws
    biases from the symmetric part; `leakyjax study rai` measures both
    variants.

    Args:
        scale: $\sigma_\text{out}$ (default 0.6007). Keyword-only.
        beta: `(a, b)` of the positive entry's Beta distribution (2, 1).
        in_axis: input axis or axes of the kernel (-2: linen/nnx Dense,
            `(kh, kw, C_in, C_out)` convolutions; use `-1` for equinox's
            `(out, in)` weights). All axes but `out_axis` count in the fan-in
            (the receptive field of a convolution, as
            `jax.nn.initializers.variance_scaling`), so `in_axis` only
            serves to check the layout.
        out_axis: the unit axis (-1; `-2` for equinox).
        dtype: default dtype (None: jax's default float). float16/bfloat16 are
            sampled in float32 and rounded.

    Returns:
        An initializer `init(key, shape, dtype=dtype)`, usable as
        `kernel_init` in linen and nnx and for equinox weights.

    Raises:
        ValueError: for bad constants or axes; TypeError for a non-float dtype.

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax.initializers as li
        >>> w = li.rai()(jax.random.key(0), (50, 8))
        >>> bool(jnp.all(jnp.sum((w > 0) & (w <= 1) & (w == jnp.max(w, 0)), 0) >= 1))
        True

    References:
        Lu, Shin, Su, Karniadakis. Dying ReLU and Initialization: Theory and
        Numerical Examples. Commun. Comput. Phys. 28 (2020) 1671-1706.
        arXiv:1903.06733.
    """
    s, a, b = _rai_check(scale, beta, "rai")
    if not isinstance(out_axis, (int, np.integer)) or isinstance(out_axis, bool):
        raise ValueError(f"rai: out_axis must be an int, got {out_axis!r}.")
    in_axes = (in_axis,) if isinstance(in_axis, (int, np.integer)) else tuple(in_axis)
    default_dtype = dtype

    def init(key: Any, shape: Sequence[int], dtype: Any = default_dtype) -> Any:
        import jax.numpy as jnp

        shape = tuple(int(d) for d in shape)
        nd = len(shape)
        if nd < 2:
            raise ValueError(
                f"rai: a kernel needs at least 2 axes (inputs, units), got shape "
                f"{shape}; for biases use rai_bias(fan_in)."
            )
        out = int(out_axis) % nd if -nd <= out_axis < nd else None
        ins = [int(ax) % nd if -nd <= ax < nd else None for ax in in_axes]
        if out is None or None in ins or out in ins:
            raise ValueError(
                f"rai: in_axis={in_axis!r} / out_axis={out_axis!r} do not fit a "
                f"kernel of shape {shape}."
            )
        dtype = jnp.dtype(jax.dtypes.canonicalize_dtype(dtype or jnp.float_))
        sdtype = _rai_sample_dtype(dtype)
        units = shape[out]
        fan_in = math.prod(shape) // units
        k_w, k_i, k_b = jax.random.split(key, 3)
        moved = (units, *(d for i, d in enumerate(shape) if i != out))
        w = jax.random.normal(k_w, moved, sdtype) * (s / math.sqrt(fan_in))
        w = w.reshape(units, fan_in)
        idx = jax.random.randint(k_i, (units,), 0, fan_in)
        pos = jax.random.beta(k_b, a, b, (units,), sdtype)
        w = jnp.where(jnp.arange(fan_in)[None, :] == idx[:, None], pos[:, None], w)
        w = jnp.moveaxis(w.reshape(moved), 0, out)
        return w.astype(dtype)

    init.__name__ = init.__qualname__ = "rai_init"
    return init


def rai_bias(
    fan_in: int, *, scale: float = RAI_SCALE, dtype: Any = None
) -> Initializer:
    r"""RAI's symmetric part for biases: $N(0, \sigma_\text{out}^2/\mathrm{fan\_in})$.

    The companion `bias_init` of [`rai`][leakyjax.initializers.rai] (a bias initialiser sees only
    the bias shape, so the layer's fan-in is an argument). Zero biases, flax's
    default, are the other common choice; the paper draws biases with the
    weights (see [`rai`][leakyjax.initializers.rai]).

    Args:
        fan_in: the layer's number of inputs (times the receptive field).
        scale: $\sigma_\text{out}$ (0.6007).
        dtype: default dtype.

    Returns:
        An initializer `init(key, shape, dtype=dtype)`.

    Example:
        >>> import jax, leakyjax.initializers as li
        >>> li.rai_bias(16)(jax.random.key(0), (3,)).shape
        (3,)
    """
    s, _, _ = _rai_check(scale, RAI_BETA, "rai_bias")
    if (
        isinstance(fan_in, bool)
        or not isinstance(fan_in, (int, np.integer))
        or fan_in < 1
    ):
        raise ValueError(f"rai_bias: fan_in must be an int >= 1, got {fan_in!r}.")
    default_dtype = dtype
    std = s / math.sqrt(int(fan_in))

    def init(key: Any, shape: Sequence[int], dtype: Any = default_dtype) -> Any:
        import jax.numpy as jnp

        dtype = jnp.dtype(jax.dtypes.canonicalize_dtype(dtype or jnp.float_))
        sdtype = _rai_sample_dtype(dtype)
        return (jax.random.normal(key, tuple(shape), sdtype) * std).astype(dtype)

    init.__name__ = init.__qualname__ = "rai_bias_init"
    return init
