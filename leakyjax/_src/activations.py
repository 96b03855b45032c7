"""The activation functions of the rectifier family: the public functions.

Each function reads like its `jax.nn` counterpart: an input check, the
parameters cast to the input's dtype (`_inputs.py`), and one `custom_jvp`
whose derivative rule (`_rules.py`) keeps the least a train step needs on
the compiler that runs it (`_platform.py`): one packed bit per element for the
piecewise-linear family (`_bits.py`), the output for the exponential family,
or jax's own autodiff where that compiler recomputes its residual for free.
Called outside `jit` with concrete arrays, each function dispatches one cached
`jax.jit` program (a new float parameter value does not recompile).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from leakyjax._src._bits import _traced
from leakyjax._src._inputs import (
    Array,
    ArrayLike,
    _cast,
    _eager,
    _float_input,
    _on_device,
    _param,
)
from leakyjax._src._platform import RULES
from leakyjax._src._rrelu_draw import _RRELU_DEFAULTS, _rrelu_eval_slope
from leakyjax._src._rules import (
    _leaky_call,
    _parametric,
    _pwl,
    _rrelu,
    _rrelu_jit,
    _rrelu_one,
    _rrelu_one_jit,
    _unary,
)

# The jax.nn functions the comparators wrap, bound once: a user may swap
# leakyjax's comparators into jax.nn (`jax.nn.gelu = leakyjax.gelu`).
_JNN_SIGMOID = jax.nn.sigmoid
_JNN_GELU = jax.nn.gelu
_JNN_SILU = jax.nn.silu
_JNN_SOFTPLUS = jax.nn.softplus

RReLUConvention = Literal["pytorch", "xu"]
"""How [`rrelu`][leakyjax.rrelu] draws its slopes: `"pytorch"` U(lower, upper), `"xu"` 1/U."""

__all__ = [
    "relu",
    "leaky_relu",
    "prelu",
    "rrelu",
    "relu6",
    "hard_tanh",
    "hard_sigmoid",
    "elu",
    "celu",
    "selu",
    "sigmoid",
    "tanh",
    "gelu",
    "silu",
    "softplus",
    "SELU_ALPHA",
    "SELU_SCALE",
]

#: The SELU constants of Klambauer et al. (2017), as in `jax.nn.selu`.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


# --------------------------------------------------------------------------- #
# Public functions: the piecewise-linear family
# --------------------------------------------------------------------------- #
_relu = _pwl(
    # `maximum`, as jax.nn.relu (nan propagates, -0.0 maps to +0.0). As a select
    # with a zero, XLA on CPU hoists the zero out of a `lax.scan` body as a
    # full-size array carried through the loop (the zoo's scanned f32 MLP
    # measured above the one-bit bound).
    lambda x: jnp.maximum(x, jnp.zeros((), x.dtype)),
    lambda x: x > 0,
    lambda m, t: jnp.where(m, t, jnp.zeros_like(t)),
    RULES["relu"],
)
_relu_jit = jax.jit(_relu)


def relu(x: ArrayLike) -> Array:
    r"""Rectified linear unit.

    $$
    \mathrm{relu}(x) = \max(x, 0)
    $$

    Derivative: 1 for $x > 0$, 0 for $x \le 0$; at the kink
    `relu'(+0.0) = relu'(-0.0) = 0`, as in `jax.nn.relu`. `nan`
    propagates in the value; its derivative is 0, as in jax.nn. Reverse mode
    saves one bit per element (`x > 0`, packed).

    Args:
        x: floating-point input array.

    Returns:
        `relu(x)`, with the dtype and shape of `x`.

    Raises:
        TypeError: if `x` is not a floating-point array.

    dtype: the output has the dtype of `x` (float16, bfloat16, float32,
    float64).

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.relu(jnp.array([-2.0, 0.0, 3.0]))
        Array([0., 0., 3.], dtype=float32)
    """
    x = _float_input(x, "relu")
    return _relu_jit(x) if _eager(x) else _traced(_relu, x)


def leaky_relu(x: ArrayLike, negative_slope: ArrayLike = 0.01) -> Array:
    r"""Leaky rectified linear unit.

    $$
    \mathrm{leaky\_relu}(x) = \begin{cases} x, & x \ge 0 \\
    a\,x, & x < 0 \end{cases} \qquad a = \text{negative\_slope}
    $$

    Derivative in `x`: 1 for $x \ge 0$, $a$ for $x < 0$; at the
    kink `leaky_relu'(+0.0) = leaky_relu'(-0.0) = 1` (the jax.nn convention;
    PyTorch and TensorFlow give $a$). Derivative in `a`: $\min(x, 0)$.

    On XLA:CPU reverse mode saves one bit per element (the sign of `x`,
    packed), exact for any slope: negative, zero, above 1, traced, or one
    that rounds to 0 in the dtype of `x` (then the derivative for negative
    `x` is that 0). When the slope itself is differentiated it saves
    `min(x, 0)` instead. On XLA:GPU and XLA:TPU it is jax's own autodiff
    (the compiler recomputes jax.nn's mask for free there), and a
    differentiated slope saves `x`, which the compiler may recompute
    (docs/MEMORY.md).


    Parameter checks: a Python number or numpy array is checked for finiteness
    (and the domain) on the host; a jax array, traced or not, is checked for
    shape and dtype only and cast inside the compiled program (its values are
    never copied back to the host).
    Args:
        x: floating-point input array.
        negative_slope: the slope $a$ for negative inputs; a real scalar or
            array that broadcasts to `x.shape`; may be traced (`jax.vmap`
            over slopes compiles once).

    Returns:
        `leaky_relu(x)`, with the dtype and shape of `x`.

    Raises:
        TypeError: if `x` is not a floating-point array, or `negative_slope`
            is complex, bool or not a number.
        ValueError: if a concrete `negative_slope` is not finite, overflows
            the dtype of `x`, or does not broadcast to `x.shape`.

    dtype: the output has the dtype of `x`; the slope is cast to `x.dtype`
    (bfloat16 in, bfloat16 out, also with a float32 slope array).

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax
        >>> leakyjax.leaky_relu(jnp.array([-2.0, 0.0, 3.0]), 0.1)
        Array([-0.2,  0. ,  3. ], dtype=float32)
        >>> jax.grad(leakyjax.leaky_relu)(0.0)  # derivative at the kink
        Array(1., dtype=float32, weak_type=True)
    """
    x = _float_input(x, "leaky_relu")
    a, _ = _param(negative_slope, x, "negative_slope", "leaky_relu")
    return _leaky_call(x, a)


_NO_ARG = object()


def prelu(
    x: ArrayLike, negative_slope: ArrayLike = _NO_ARG, *, alpha: ArrayLike = _NO_ARG
) -> Array:
    r"""Parametric rectified linear unit (He et al., 2015).

    $$
    \mathrm{prelu}(x) = \begin{cases} x, & x \ge 0 \\
    a\,x, & x < 0 \end{cases} \qquad a = \text{negative\_slope}
    $$

    `negative_slope` is usually a learnable parameter: a scalar shared by all
    units, or one value per channel (an array that broadcasts to `x`, e.g.
    shape `(C,)` for channels last). The function is differentiable in `x`
    and in the slope; $\partial/\partial a = \min(x, 0)$, summed over the
    broadcast axes.

    Derivative in `x` at the kink: 1 at `+0.0` and `-0.0` (as
    [`leaky_relu`][leakyjax.leaky_relu]). On XLA:CPU reverse mode saves one
    bit per element when the slope is not differentiated, and `min(x, 0)`
    alone (in the dtype of `x`) when it is: the one array its gradient
    needs, no more than `flax.linen.PReLU`. On XLA:GPU and XLA:TPU a
    differentiated slope saves `x`, which the compiler may recompute from
    its producer's inputs as it does for `flax.linen.PReLU`.


    Parameter checks: a Python number or numpy array is checked for finiteness
    (and the domain) on the host; a jax array, traced or not, is checked for
    shape and dtype only and cast inside the compiled program (its values are
    never copied back to the host).
    Args:
        x: floating-point input array.
        negative_slope: the slopes; a real array that broadcasts to `x.shape`.
            (Named like [`leaky_relu`][leakyjax.leaky_relu]'s; [`elu`][leakyjax.elu]'s `alpha` is a
            saturation scale, not a slope.)
        alpha: the old name of `negative_slope`, still accepted as a keyword
            (deprecated: it emits a DeprecationWarning).

    Returns:
        `prelu(x, negative_slope)`, with the dtype and shape of `x`.

    Raises:
        TypeError: if `x` is not a floating-point array, the slope is complex,
            bool or not a number, or it is given twice or not at all.
        ValueError: if the slope does not broadcast to `x.shape`, or a concrete
            slope is not finite or overflows the dtype of `x`.

    dtype: the output has the dtype of `x`; the slope is cast to `x.dtype` in
    the computation and its gradient has the dtype of the slope (a float32 slope
    stays float32 under optax updates with bfloat16 activations).

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax
        >>> x = jnp.array([[-1.0, -2.0], [3.0, -4.0]])
        >>> leakyjax.prelu(x, jnp.array([0.25, 0.5]))
        Array([[-0.25, -1.  ],
               [ 3.  , -2.  ]], dtype=float32)
        >>> jax.grad(lambda a: leakyjax.prelu(x, a).sum())(jnp.array([0.25, 0.5]))
        Array([-1., -6.], dtype=float32)

    References:
        He, Zhang, Ren, Sun. Delving Deep into Rectifiers. ICCV 2015.
    """
    if alpha is not _NO_ARG:
        if negative_slope is not _NO_ARG:
            raise TypeError(
                "prelu: got both negative_slope and alpha (its old name); pass "
                "negative_slope only."
            )
        import warnings

        warnings.warn(
            "prelu(x, alpha=...) is deprecated: the slope is now called "
            "negative_slope (as in leaky_relu); pass prelu(x, negative_slope=...) "
            "or positionally.",
            DeprecationWarning,
            stacklevel=2,
        )
        negative_slope = alpha
    if negative_slope is _NO_ARG:
        raise TypeError(
            "prelu: missing the slope, e.g. prelu(x, negative_slope=0.25) or "
            "prelu(x, slopes) with one value per channel."
        )
    x = _float_input(x, "prelu")
    a, _ = _param(negative_slope, x, "negative_slope", "prelu")
    return _leaky_call(x, a)


def _check_key(key: Any) -> None:
    dtype = getattr(key, "dtype", None)
    if isinstance(key, (jax.Array, np.ndarray)) and dtype is not None:
        if jnp.issubdtype(dtype, jax.dtypes.prng_key) and key.ndim == 0:
            return
        if np.dtype(dtype) == np.uint32 and key.ndim == 1:
            return  # a legacy jax.random.PRNGKey
    what = (
        f"an array of dtype {dtype} and shape {np.shape(key)}"
        if dtype is not None
        else type(key).__name__
    )
    raise TypeError(
        f"rrelu: key must be a PRNG key, e.g. jax.random.key(0) (or a legacy "
        f"jax.random.PRNGKey(0)), or None for the evaluation slope; got {what}."
    )


def rrelu(
    x: ArrayLike,
    key: Array | None = None,
    *,
    lower: float | None = None,
    upper: float | None = None,
    convention: RReLUConvention = "pytorch",
) -> Array:
    r"""Randomized leaky rectified linear unit (Xu et al., 2015).

    $$
    \mathrm{rrelu}(x) = \begin{cases} x, & x \ge 0 \\
    a\,x, & x < 0 \end{cases}
    $$

    With a `key` (training), the slope $a$ is drawn independently for every
    element; with `key=None` (evaluation) it is the deterministic value below.

    | `convention` | training slope | evaluation slope |
    |---|---|---|
    | `"pytorch"` (default) | $a \sim U(l, u)$, $l = 1/8$, $u = 1/3$ | $(l + u) / 2$ |
    | `"xu"` | $a = 1/d$, $d \sim U(l, u)$, $l = 3$, $u = 8$ | $2 / (l + u)$ (1/5.5) |

    The default is PyTorch's `torch.nn.RReLU`; `convention="xu"` is the
    divisor form of Xu et al. (2015), whose test-time slope is 1/5.5.

    Derivative in `x`: 1 for $x \ge 0$, the (drawn) slope for
    $x < 0$; 1 at `+0.0` and `-0.0`. The drawn slopes are not
    differentiated. On XLA:CPU and XLA:GPU reverse mode saves the sign bits
    and the key, not the slopes: the backward redraws them from the key. On
    XLA:TPU it is jax's autodiff of the formula with the slopes drawn by
    `jax.random.uniform` (XLA:TPU recomputes the draw from the key); that
    program may fuse the draw's last two steps into one FMA, so a slope
    there may differ in its last bit from the one a call without
    differentiation draws.

    Args:
        x: floating-point input array.
        key: a `jax.random.key` (or legacy uint32 key) to draw slopes with,
            or None for the deterministic evaluation slope.
        lower: lower bound of the uniform draw (default from `convention`).
        upper: upper bound of the uniform draw (default from `convention`).
        convention: `"pytorch"` (draw the slope) or `"xu"` (draw the
            divisor).

    Returns:
        `rrelu(x)`, with the dtype and shape of `x`.

    Raises:
        TypeError: if `x` is not a floating-point array, or `key` is neither
            None nor a PRNG key.
        ValueError: for an unknown `convention`, or bounds that are not finite,
            not positive (`"xu"`), negative (`"pytorch"`) or not
            `lower <= upper`.

    dtype: the output has the dtype of `x`; slopes are drawn in float32 and
    cast to `x.dtype`.

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax
        >>> x = jnp.array([-1.0, 2.0])
        >>> leakyjax.rrelu(x)  # evaluation: slope (1/8 + 1/3) / 2
        Array([-0.22916667,  2.        ], dtype=float32)
        >>> y = leakyjax.rrelu(x, jax.random.key(0))
        >>> bool(-1 / 3 <= y[0] <= -1 / 8)
        True

    References:
        Xu, Wang, Chen, Li. Empirical Evaluation of Rectified Activations in
        Convolutional Network. arXiv:1505.00853, 2015.
    """
    x = _float_input(x, "rrelu")
    if convention not in _RRELU_DEFAULTS:
        raise ValueError(
            f"rrelu: convention must be 'pytorch' or 'xu', got {convention!r}."
        )
    lo, hi = _RRELU_DEFAULTS[convention]
    lo = lo if lower is None else lower
    hi = hi if upper is None else upper
    for name, v in (("lower", lo), ("upper", hi)):
        if isinstance(v, (bool, complex)) or not isinstance(v, (int, float)):
            raise TypeError(f"rrelu: {name} must be a real number, got {v!r}.")
        if not math.isfinite(v):
            raise ValueError(f"rrelu: {name} must be finite, got {v!r}.")
    if convention == "xu" and lo <= 0:
        raise ValueError(f"rrelu: lower (a divisor) must be > 0, got {lo!r}.")
    if convention == "pytorch" and lo < 0:
        raise ValueError(f"rrelu: lower must be >= 0, got {lo!r}.")
    if lo > hi:
        raise ValueError(f"rrelu: need lower <= upper, got {lo!r} > {hi!r}.")
    if key is None:
        slope = _rrelu_eval_slope(lo, hi, convention)
        return leaky_relu(x, float(slope))
    _check_key(key)
    xu = convention == "xu"
    lo, hi = float(lo), float(hi)
    if x.ndim == 0:  # one draw (a batch of scalars under vmap shares it)
        if _eager(x, key):
            return _rrelu_one_jit(x, key, lo, hi, xu)
        return _traced(lambda v, k: _rrelu_one(v, k, lo, hi, xu), x, key)
    if _eager(x, key):
        return _rrelu_jit(x, key, lo, hi, xu)
    return _rrelu(x, key, lo, hi, xu)


def _clip(x, lo, hi):
    """`min(max(x, lo), hi)` in `x`'s dtype (`nan` propagates), as one
    `jax.lax.clamp` with scalar bounds: XLA on CPU hands a reduction of
    `min(max(x, lo), hi)` (a ResNet's global average pool of its last
    activation) to its YNNPACK fusion with each bound materialized as a
    full-size float32 array; the bfloat16 ResNet of the zoo measured two such
    arrays more for relu6 and hard_tanh and four for hard_sigmoid."""
    return lax.clamp(jnp.full((), lo, x.dtype), x, jnp.full((), hi, x.dtype))


_relu6 = _pwl(
    lambda x: _clip(x, 0, 6),
    lambda x: (x > 0) & (x < 6),
    lambda m, t: jnp.where(m, t, jnp.zeros_like(t)),
    RULES["clip"],
)
_relu6_jit = jax.jit(_relu6)


def relu6(x: ArrayLike) -> Array:
    r"""Rectified linear unit capped at 6 (Krizhevsky, 2010; MobileNet).

    $$
    \mathrm{relu6}(x) = \min(\max(x, 0), 6)
    $$

    Derivative: 1 for $0 < x < 6$, else 0; at both kinks it is 0:
    `relu6'(±0.0) = relu6'(6) = 0`, as `jax.nn.relu6` and
    `torch.nn.ReLU6`. `nan` propagates in the value, with derivative 0.
    Reverse mode saves one bit per element (`0 < x < 6`, packed).

    Args:
        x: floating-point input array.

    Returns:
        `relu6(x)`, with the dtype and shape of `x`.

    Raises:
        TypeError: if `x` is not a floating-point array.

    dtype: the output has the dtype of `x`.

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax
        >>> leakyjax.relu6(jnp.array([-2.0, 3.0, 8.0]))
        Array([0., 3., 6.], dtype=float32)
        >>> jax.grad(leakyjax.relu6)(6.0)  # derivative at the upper kink
        Array(0., dtype=float32, weak_type=True)
    """
    x = _float_input(x, "relu6")
    return _relu6_jit(x) if _eager(x) else _traced(_relu6, x)


def _hard_tanh_nn(x):
    """jax.nn.hard_tanh's formula, whose autodiff is the plain rule: on the
    H100 compiler (`python -m benchmarks.zoo --target h100`) the clamp and one
    mask measured 108.47 MiB in the bfloat16 flax CNN where jax.nn takes
    104.13, and a clamp with jax.nn's tangent 11.26 in the bfloat16 scanned
    MLP where jax.nn takes 10.76; jax.nn's own program is never above it."""
    one = jnp.ones((), x.dtype)
    return jnp.where(x > 1, one, jnp.where(x < -1, -one, x))


_hard_tanh = _pwl(
    lambda x: _clip(x, -1, 1),
    lambda x: ~((x > 1) | (x < -1)),
    lambda m, t: jnp.where(m, t, jnp.zeros_like(t)),
    RULES["clip"],
    plain=_hard_tanh_nn,
)
_hard_tanh_jit = jax.jit(_hard_tanh)


def hard_tanh(x: ArrayLike) -> Array:
    r"""Hard hyperbolic tangent: the identity clipped to $[-1, 1]$.

    $$
    \mathrm{hard\_tanh}(x) = \max(-1, \min(x, 1))
    $$

    Derivative: 1 for $-1 \le x \le 1$, else 0. At the kinks
    `hard_tanh'(±1) = 1`: the convention of `jax.nn.hard_tanh` (and of
    nan: derivative 1, as jax.nn). PyTorch's `torch.nn.Hardtanh` gives 0 at
    ±1 (it tests `-1 < x < 1`). Reverse mode saves one bit per element.

    Args:
        x: floating-point input array.

    Returns:
        `hard_tanh(x)`, with the dtype and shape of `x`.

    Raises:
        TypeError: if `x` is not a floating-point array.

    dtype: the output has the dtype of `x`.

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax
        >>> leakyjax.hard_tanh(jnp.array([-2.0, 0.5, 3.0]))
        Array([-1. ,  0.5,  1. ], dtype=float32)
        >>> jax.grad(leakyjax.hard_tanh)(1.0)  # jax.nn's kink convention
        Array(1., dtype=float32, weak_type=True)
    """
    x = _float_input(x, "hard_tanh")
    return _hard_tanh_jit(x) if _eager(x) else _traced(_hard_tanh, x)


def _hard_sigmoid_value(x):
    u = x + jnp.full((), 3, x.dtype)
    return _clip(u, 0, 6) / jnp.full((), 6, x.dtype)


def _hard_sigmoid_piece(x):
    u = x + jnp.full((), 3, x.dtype)
    return (u > 0) & (u < 6)


def _hard_sigmoid_tangent(m, t):
    # Masked, then divided: the same values as where(m, t / 6, 0), which in
    # the zoo's float32 transformer measured 0.9 MiB above the one-bit bound
    # (XLA on CPU repeated the backward fusion for the bias and the weight
    # gradients); this form is within it.
    return jnp.where(m, t, jnp.zeros_like(t)) / jnp.full((), 6, t.dtype)


_hard_sigmoid = _pwl(
    _hard_sigmoid_value,
    _hard_sigmoid_piece,
    _hard_sigmoid_tangent,
    RULES["clip"],
)
_hard_sigmoid_jit = jax.jit(_hard_sigmoid)


def hard_sigmoid(x: ArrayLike) -> Array:
    r"""Hard sigmoid, as `jax.nn.hard_sigmoid`: `relu6(x + 3) / 6`.

    $$
    \mathrm{hard\_sigmoid}(x) = \frac{\min(\max(x + 3, 0), 6)}{6}
    $$

    Derivative: $1/6$ for $-3 < x < 3$ (tested as
    $0 < x + 3 < 6$ in the dtype of `x`, as jax.nn), else 0; at the kinks
    `hard_sigmoid'(±3) = 0`, as `jax.nn.hard_sigmoid` and
    `torch.nn.Hardsigmoid`. Reverse mode saves one bit per element.

    Args:
        x: floating-point input array.

    Returns:
        `hard_sigmoid(x)`, with the dtype and shape of `x`.

    Raises:
        TypeError: if `x` is not a floating-point array.

    dtype: the output has the dtype of `x`.

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax
        >>> leakyjax.hard_sigmoid(jnp.array([-4.0, 0.0, 1.5, 4.0]))
        Array([0.  , 0.5 , 0.75, 1.  ], dtype=float32)
        >>> jax.grad(leakyjax.hard_sigmoid)(0.0)
        Array(0.16666667, dtype=float32, weak_type=True)
    """
    x = _float_input(x, "hard_sigmoid")
    return _hard_sigmoid_jit(x) if _eager(x) else _traced(_hard_sigmoid, x)


# --------------------------------------------------------------------------- #
# The exponential family
# --------------------------------------------------------------------------- #
def _neg_part(x):
    """`x` where `x <= 0` and 0 elsewhere, so expm1 never overflows."""
    return jnp.where(x > 0, jnp.zeros_like(x), x)


def _elu_primal(x, a):
    return jnp.where(x > 0, x, a * jnp.expm1(_neg_part(x)))


# The output-based tangents select t itself where y > 0 (XLA on CPU then keeps
# one full array fewer in a ResNet, f32, than with t * where(...)); the other
# branch reads _neg_part(y) so that it stays finite where it is not taken
# (y = +inf): reverse mode multiplies that branch by a zero cotangent there.
_elu_from_y, _elu_from_x = _parametric(
    _elu_primal,
    tangent_from_x=lambda x, t, a: t * jnp.where(x > 0, 1, a * jnp.exp(_neg_part(x))),
    tangent_from_y=lambda y, t, a: jnp.where(y > 0, t, t * (_neg_part(y) + a)),
    param_tangent=lambda x, ta, a: (
        jnp.where(x > 0, jnp.zeros_like(x), jnp.expm1(_neg_part(x))) * ta
    ),
    choice=RULES["exp"],
)


_elu_from_y_jit = jax.jit(lambda x, a: _elu_from_y(x, _cast(a, x)))
_elu_from_x_jit = jax.jit(lambda x, a: _elu_from_x(x, _cast(a, x)))


def elu(x: ArrayLike, alpha: ArrayLike = 1.0) -> Array:
    r"""Exponential linear unit (Clevert et al., 2016).

    $$
    \mathrm{elu}(x) = \begin{cases} x, & x > 0 \\
    \alpha\,(e^{x} - 1), & x \le 0 \end{cases}
    $$

    Derivative: 1 for $x > 0$, $\alpha e^{x} = y + \alpha$ for
    $x \le 0$; at `+0.0` and `-0.0` it is $\alpha$ (as
    `jax.nn.elu`; continuous when $\alpha = 1$).

    For a concrete $\alpha \ge 0$ the derivative is computed as
    $y + \alpha$ from the output, so reverse mode saves only `y`. Far in
    the saturated region this is exact to one unit in the last place of
    $\alpha$ (absolute), not relative. A traced or negative `alpha` uses
    $\alpha e^{x}$.


    Parameter checks: a Python number or numpy array is checked for finiteness
    (and the domain) on the host; a jax array, traced or not, is checked for
    shape and dtype only and cast inside the compiled program (its values are
    never copied back to the host).
    Args:
        x: floating-point input array.
        alpha: the scale of the negative saturation; scalar or array that
            broadcasts to `x.shape`; may be traced.

    Returns:
        `elu(x, alpha)`, with the dtype and shape of `x`.

    Raises:
        TypeError: if `x` is not a floating-point array.
        ValueError: if a concrete `alpha` is not finite or does not broadcast.

    dtype: the output has the dtype of `x`; `alpha` is cast to `x.dtype`.

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax
        >>> leakyjax.elu(jnp.array([-1.0, 0.0, 2.0]))
        Array([-0.63212055,  0.        ,  2.        ], dtype=float32)
        >>> jax.grad(leakyjax.elu)(0.0)
        Array(1., dtype=float32, weak_type=True)

    References:
        Clevert, Unterthiner, Hochreiter. Fast and Accurate Deep Network Learning
        by Exponential Linear Units (ELUs). ICLR 2016.
    """
    x = _float_input(x, "elu")
    a, cast = _param(alpha, x, "alpha", "elu")
    use_y = cast is not None and bool(np.all(cast >= 0))
    if _eager(x, a):
        return (_elu_from_y_jit if use_y else _elu_from_x_jit)(x, _on_device(a))
    return (_elu_from_y if use_y else _elu_from_x)(x, _cast(a, x))


def _celu_primal(x, a):
    return jnp.where(x > 0, x, a * jnp.expm1(_neg_part(x) / a))


_celu_from_y, _celu_from_x = _parametric(
    _celu_primal,
    tangent_from_x=lambda x, t, a: t * jnp.where(x > 0, 1, jnp.exp(_neg_part(x) / a)),
    tangent_from_y=lambda y, t, a: jnp.where(y > 0, t, t * (_neg_part(y) / a + 1)),
    param_tangent=lambda x, ta, a: (
        jnp.where(
            x > 0,
            jnp.zeros_like(x),
            jnp.expm1(_neg_part(x) / a) - _neg_part(x) / a * jnp.exp(_neg_part(x) / a),
        )
        * ta
    ),
    choice=RULES["exp"],
)


_celu_from_y_jit = jax.jit(lambda x, a: _celu_from_y(x, _cast(a, x)))
_celu_from_x_jit = jax.jit(lambda x, a: _celu_from_x(x, _cast(a, x)))


def celu(x: ArrayLike, alpha: ArrayLike = 1.0) -> Array:
    r"""Continuously differentiable exponential linear unit (Barron, 2017).

    $$
    \mathrm{celu}(x) = \begin{cases} x, & x > 0 \\
    \alpha\,(e^{x/\alpha} - 1), & x \le 0 \end{cases} \qquad \alpha > 0
    $$

    Derivative: 1 for $x > 0$, $e^{x/\alpha} = y/\alpha + 1$ for
    $x \le 0$; it is continuous, and 1 at `+0.0` and `-0.0`. For a
    concrete `alpha` the derivative is read from the output (reverse mode saves
    only `y`).

    Second derivative: 0 for $x > 0$, $e^{x/\alpha}/\alpha$ for
    $x \le 0$, so `celu''(+0.0) = celu''(-0.0) = 1/alpha` (the left
    limit: the kink belongs to the `x <= 0` piece, as for the first
    derivative). `jax.grad(jax.grad(jax.nn.celu))` gives `alpha` there.


    Parameter checks: a Python number or numpy array is checked for finiteness
    (and the domain) on the host; a jax array, traced or not, is checked for
    shape and dtype only and cast inside the compiled program (its values are
    never copied back to the host).
    Args:
        x: floating-point input array.
        alpha: positive scale; scalar or array that broadcasts to `x.shape`;
            may be traced (then it is not checked).

    Returns:
        `celu(x, alpha)`, with the dtype and shape of `x`.

    Raises:
        TypeError: if `x` is not a floating-point array.
        ValueError: if a concrete `alpha` is not finite and positive.

    dtype: the output has the dtype of `x`; `alpha` is cast to `x.dtype`.

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.celu(jnp.array([-1.0, 0.0, 2.0]), 0.5)
        Array([-0.43233237,  0.        ,  2.        ], dtype=float32)

    References:
        Barron. Continuously Differentiable Exponential Linear Units.
        arXiv:1704.07483, 2017.
    """
    x = _float_input(x, "celu")
    a, cast = _param(alpha, x, "alpha", "celu", positive=True)
    if cast is None:
        f, f_jit = _celu_from_x, _celu_from_x_jit
    elif np.all(cast == 1):
        # celu(x, 1) is elu(x, 1), value and derivatives, and elu's derivative
        # does not divide by alpha: XLA (CPU) computes that 1/alpha at run time,
        # one scalar buffer more than jax.nn.celu in a rematerialised MLP.
        f, f_jit = _elu_from_y, _elu_from_y_jit
    else:
        f, f_jit = _celu_from_y, _celu_from_y_jit
    return f_jit(x, _on_device(a)) if _eager(x, a) else f(x, _cast(a, x))


def _selu_primal(x):
    # One constant per branch, so that y -> -scale*alpha exactly as x -> -inf and
    # the output-based derivative y + scale*alpha is exactly 0 there.
    scale = jnp.asarray(SELU_SCALE, x.dtype)
    scale_alpha = jnp.asarray(SELU_SCALE * SELU_ALPHA, x.dtype)
    return jnp.where(x > 0, scale * x, scale_alpha * jnp.expm1(_neg_part(x)))


def _selu_tangent(y, t):
    scale = jnp.asarray(SELU_SCALE, y.dtype)
    scale_alpha = jnp.asarray(SELU_SCALE * SELU_ALPHA, y.dtype)
    return jnp.where(y > 0, t * scale, t * (_neg_part(y) + scale_alpha))


def _selu_nn(x):
    """jax.nn.selu's formula, whose autodiff is the plain rule: on XLA:TPU
    (`python -m benchmarks.zoo --target tpu-v5e`) the autodiff of
    `_selu_primal` kept 80896 B more than jax.nn.selu in the bfloat16 ResNet
    of the zoo."""
    return SELU_SCALE * jnp.where(
        x > 0, x, SELU_ALPHA * jnp.expm1(jnp.where(x > 0, 0.0, x))
    )


_selu = _unary(_selu_primal, _selu_tangent, RULES["exp"], plain=_selu_nn)
_selu_jit = jax.jit(_selu)


def selu(x: ArrayLike) -> Array:
    r"""Scaled exponential linear unit (Klambauer et al., 2017).

    $$
    \mathrm{selu}(x) = \lambda \begin{cases} x, & x > 0 \\
    \alpha\,(e^{x} - 1), & x \le 0 \end{cases}
    $$

    with $\lambda \approx 1.0507$ (`SELU_SCALE`) and
    $\alpha \approx 1.6733$ (`SELU_ALPHA`).

    Derivative: $\lambda$ for $x > 0$, $\lambda\alpha e^{x} =
    y + \lambda\alpha$ for $x \le 0$; at `+0.0` and `-0.0` it is
    $\lambda\alpha$ (as `jax.nn.selu`). On XLA:CPU it is read from the
    output, so reverse mode saves only `y`. On XLA:GPU and XLA:TPU a
    differentiated selu is jax.nn.selu's own program, `scale * elu(x, alpha)`
    and its autodiff: its values there are jax.nn.selu's, which may differ
    from this function's (one constant `scale * alpha` per branch) in the
    last bit.

    Args:
        x: floating-point input array.

    Returns:
        `selu(x)`, with the dtype and shape of `x`.

    Raises:
        TypeError: if `x` is not a floating-point array.

    dtype: the output has the dtype of `x`.

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.selu(jnp.array([-1.0, 0.0, 2.0]))
        Array([-1.1113307,  0.       ,  2.101402 ], dtype=float32)

    References:
        Klambauer, Unterthiner, Mayr, Hochreiter. Self-Normalizing Neural
        Networks. NeurIPS 2017.
    """
    x = _float_input(x, "selu")
    return (_selu_jit if _eager(x) else _selu)(x)


# --------------------------------------------------------------------------- #
# Comparators: thin wrappers of jax.nn (same numbers, same derivatives)
# --------------------------------------------------------------------------- #
def sigmoid(x: ArrayLike) -> Array:
    r"""Comparator: `jax.nn.sigmoid` (same values, same derivative).

    $$
    \sigma(x) = 1 / (1 + e^{-x})
    $$

    Provided so that comparisons and the registry name every activation from
    one place. Values and derivatives are exactly those of `jax.nn.sigmoid`;
    leakyjax only adds the floating-point input check.

    Args:
        x: floating-point input array.

    Returns:
        An array with the dtype and shape of `x`.

    Raises:
        TypeError: if `x` is not a floating-point array.

    dtype: the output has the dtype of `x`. The derivative at 0 is smooth
    (no kink).

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.sigmoid(jnp.array([-1.0, 0.0, 1.0]))
        Array([0.26894143, 0.5       , 0.7310586 ], dtype=float32)
    """
    return _JNN_SIGMOID(_float_input(x, "sigmoid"))


def tanh(x: ArrayLike) -> Array:
    r"""Comparator: `jax.numpy.tanh` (same values, same derivative).

    $$
    \tanh(x) = (e^{x} - e^{-x}) / (e^{x} + e^{-x})
    $$

    Provided so that comparisons and the registry name every activation from
    one place. Values and derivatives are exactly those of `jax.numpy.tanh`;
    leakyjax only adds the floating-point input check.

    Args:
        x: floating-point input array.

    Returns:
        An array with the dtype and shape of `x`.

    Raises:
        TypeError: if `x` is not a floating-point array.

    dtype: the output has the dtype of `x`. The derivative at 0 is smooth
    (no kink).

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.tanh(jnp.array([-1.0, 0.0, 1.0]))
        Array([-0.7615942,  0.       ,  0.7615942], dtype=float32)
    """
    return jnp.tanh(_float_input(x, "tanh"))


def gelu(x: ArrayLike, approximate: bool = True) -> Array:
    r"""Comparator: `jax.nn.gelu` (same values, same derivative).

    $$
    \mathrm{gelu}(x) = x\,\Phi(x) \text{ (tanh approximation by default)}
    $$

    Provided so that comparisons and the registry name every activation from
    one place. Values and derivatives are exactly those of `jax.nn.gelu`;
    leakyjax only adds the floating-point input check.

    Args:
        x: floating-point input array.
        approximate: the tanh approximation (True, jax.nn's default) or the exact
            erf form (False).

    Returns:
        An array with the dtype and shape of `x`.

    Raises:
        TypeError: if `x` is not a floating-point array.

    dtype: the output has the dtype of `x`. The derivative at 0 is smooth
    (no kink).

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.gelu(jnp.array([-1.0, 0.0, 1.0]))
        Array([-0.15880796,  0.        ,  0.841192  ], dtype=float32)
    """
    return _JNN_GELU(_float_input(x, "gelu"), approximate=approximate)


def silu(x: ArrayLike) -> Array:
    r"""Comparator: `jax.nn.silu` (same values, same derivative).

    $$
    \mathrm{silu}(x) = x\,\sigma(x)
    $$

    Provided so that comparisons and the registry name every activation from
    one place. Values and derivatives are exactly those of `jax.nn.silu`;
    leakyjax only adds the floating-point input check.

    Args:
        x: floating-point input array.

    Returns:
        An array with the dtype and shape of `x`.

    Raises:
        TypeError: if `x` is not a floating-point array.

    dtype: the output has the dtype of `x`. The derivative at 0 is smooth
    (no kink).

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.silu(jnp.array([-1.0, 0.0, 1.0]))
        Array([-0.26894143,  0.        ,  0.7310586 ], dtype=float32)
    """
    return _JNN_SILU(_float_input(x, "silu"))


def softplus(x: ArrayLike) -> Array:
    r"""Comparator: `jax.nn.softplus` (same values, same derivative).

    $$
    \mathrm{softplus}(x) = \log(1 + e^{x})
    $$

    Provided so that comparisons and the registry name every activation from
    one place. Values and derivatives are exactly those of `jax.nn.softplus`;
    leakyjax only adds the floating-point input check.

    Args:
        x: floating-point input array.

    Returns:
        An array with the dtype and shape of `x`.

    Raises:
        TypeError: if `x` is not a floating-point array.

    dtype: the output has the dtype of `x`. The derivative at 0 is smooth
    (no kink).

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.softplus(jnp.array([-1.0, 0.0, 1.0]))
        Array([0.3132617, 0.6931472, 1.3132617], dtype=float32)
    """
    return _JNN_SOFTPLUS(_float_input(x, "softplus"))
