"""Activation functions of the rectifier family, with hand-written derivatives.

Every nonlinear function of the leaky family is a :func:`jax.custom_jvp` over a
:func:`jax.jit`-compiled primal. The JVP rules are themselves differentiable, so
``jax.hessian``, ``jax.jacfwd`` and jvp-of-grad work.

Output-only residuals
---------------------
For a positive slope the sign of ``x`` equals the sign of ``y = leaky_relu(x)``,
and for the exponential family the derivative is a function of ``y`` (elu:
``y + alpha`` for ``y <= 0``). When the parameter is a concrete value for which
this holds (the common case: ``leaky_relu(x, 0.01)``, ``elu(x)``), the JVP rule
reads ``y`` instead of ``x`` and is wrapped in :func:`jax.checkpoint`, so reverse
mode saves exactly ``y`` -- the array the next layer's matmul keeps anyway. A
train step then needs no more memory than with ``relu`` or the identity.
When the parameter is traced (vmapped slopes, a learnable PReLU slope) or outside
that domain (``negative_slope <= 0``), the rule reads ``x``: always correct, with
the same memory as :func:`jax.nn.leaky_relu`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

RReLUConvention = Literal["pytorch", "xu"]
"""How :func:`rrelu` draws its slopes: ``"pytorch"`` U(lower, upper), ``"xu"`` 1/U."""

Array = jax.Array
ArrayLike = Any  # jax.typing.ArrayLike, kept loose for older jax versions

__all__ = [
    "relu",
    "leaky_relu",
    "prelu",
    "rrelu",
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

#: The SELU constants of Klambauer et al. (2017), as in :func:`jax.nn.selu`.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


# --------------------------------------------------------------------------- #
# Input and parameter checks
# --------------------------------------------------------------------------- #
def _float_input(x: ArrayLike, fn: str) -> Array:
    """Returns ``x`` as a jax array, or raises TypeError for non-float input."""
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{fn}: x must be a floating-point array, got a bool.")
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{fn}: x must be a floating-point array (float16, bfloat16, float32 or "
            f"float64), got dtype {x.dtype}. Cast it first, e.g. "
            f"{fn}(x.astype(jnp.float32))."
        )
    return x


def _concrete(value: ArrayLike) -> np.ndarray | None:
    """The value as a float64 numpy array, or None when it is traced."""
    if isinstance(value, jax.core.Tracer):
        return None
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        return None


def _param(
    value: ArrayLike,
    x: Array,
    name: str,
    fn: str,
    *,
    positive: bool = False,
) -> tuple[Any, np.ndarray | None]:
    """Validates a parameter and casts it to ``x.dtype``.

    Returns the parameter in ``x.dtype`` -- a numpy constant when the value is
    concrete (so jit does not retrace for a new value and reverse mode can use
    the output-based rule), else a traced array -- and its concrete float64 value
    (or None when traced).
    """
    shape = np.shape(value)
    try:
        out_shape = jnp.broadcast_shapes(shape, x.shape)
    except ValueError:
        out_shape = None
    if out_shape != x.shape:
        raise ValueError(
            f"{fn}: {name} of shape {shape} does not broadcast to x of shape "
            f"{x.shape}. Give a scalar, or an array whose shape broadcasts to "
            f"x.shape (e.g. shape ({x.shape[-1] if x.ndim else 1},) for one value "
            "per channel on the last axis)."
        )
    concrete = _concrete(value)
    if concrete is None:
        if not jnp.issubdtype(jnp.result_type(value), jnp.floating):
            value = jnp.asarray(value, jnp.float32)
        return lax.convert_element_type(value, x.dtype), None
    if not np.all(np.isfinite(concrete)):
        raise ValueError(f"{fn}: {name} must be finite, got {value!r}.")
    if positive and not np.all(concrete > 0):
        raise ValueError(f"{fn}: {name} must be > 0, got {value!r}.")
    return np.asarray(concrete, dtype=x.dtype), concrete


def _is_zero(t: Any) -> bool:
    return isinstance(t, SymbolicZero)


# --------------------------------------------------------------------------- #
# Factories: one custom_jvp shape for every function of the family
# --------------------------------------------------------------------------- #
def _unary(primal: Callable, tangent_from_y: Callable) -> Callable:
    """A parameter-free activation whose derivative is read from its output.

    ``primal`` is already jit-compiled.
    """

    @jax.custom_jvp
    def f(x):
        return primal(x)

    @f.defjvp
    def _jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        y = f(x)
        return y, jax.checkpoint(tangent_from_y)(y, t)

    return f


def _parametric(
    primal: Callable,
    tangent_from_x: Callable,
    tangent_from_y: Callable,
    param_tangent: Callable,
) -> tuple[Callable, Callable]:
    """Two custom_jvp versions of ``primal(x, a)``.

    Returns ``(from_y, from_x)``. Both differentiate in ``x`` and ``a``. ``from_y``
    reads the output ``y`` for the ``x`` derivative and is valid only for
    parameters where ``tangent_from_y`` is exact; ``from_x`` is always valid.
    Every tangent map is wrapped in :func:`jax.checkpoint`, so reverse mode saves
    only its array inputs (``y``, or ``x``), never derived masks or factors.
    ``primal`` is already jit-compiled.
    """

    def build(use_y: bool) -> Callable:
        @jax.custom_jvp
        def f(x, a):
            return primal(x, a)

        def _jvp(primals, tangents):
            (x, a), (tx, ta) = primals, tangents
            y = f(x, a)
            out = None
            if not _is_zero(tx):
                if use_y:
                    out = jax.checkpoint(tangent_from_y)(y, tx, a)
                else:
                    out = jax.checkpoint(tangent_from_x)(x, tx, a)
            if not _is_zero(ta):
                dt = jax.checkpoint(param_tangent)(x, ta, a)
                out = dt if out is None else out + dt
            return y, jnp.zeros_like(y) if out is None else out

        f.defjvp(_jvp, symbolic_zeros=True)
        return f

    return build(True), build(False)


# --------------------------------------------------------------------------- #
# The leaky rectifier (leaky_relu, prelu, rrelu share it)
# --------------------------------------------------------------------------- #
@jax.jit
def _leaky_primal(x, a):
    return jnp.where(x >= 0, x, a * x)


_leaky_from_y, _leaky_from_x = _parametric(
    _leaky_primal,
    tangent_from_x=lambda x, t, a: t * jnp.where(x >= 0, jnp.ones_like(x), a),
    tangent_from_y=lambda y, t, a: t * jnp.where(y >= 0, jnp.ones_like(y), a),
    param_tangent=lambda x, ta, a: jnp.where(x >= 0, jnp.zeros_like(x), x) * ta,
)


def _leaky(x: Array, a: Any, concrete: np.ndarray | None) -> Array:
    if concrete is not None and np.all(concrete > 0):
        return _leaky_from_y(x, a)
    return _leaky_from_x(x, a)


# --------------------------------------------------------------------------- #
# Public functions
# --------------------------------------------------------------------------- #
_relu = _unary(
    # `where`, not `maximum`: XLA duplicates a `max(h @ w + b, 0)` fusion into the
    # backward pass, which keeps the matmul output alive (+1 array per layer).
    # Same values: nan propagates, -0.0 maps to +0.0.
    jax.jit(lambda x: jnp.where(x <= 0, jnp.zeros((), x.dtype), x)),
    lambda y, t: jnp.where(y > 0, t, jnp.zeros_like(t)),
)


def relu(x: ArrayLike) -> Array:
    r"""Rectified linear unit.

    .. math::
        \mathrm{relu}(x) = \max(x, 0)

    Derivative: 1 for :math:`x > 0`, 0 for :math:`x \le 0`; at the kink
    ``relu'(+0.0) = relu'(-0.0) = 0``, as in :func:`jax.nn.relu`. The derivative
    is read from the output (``y > 0``), so reverse mode saves only ``y``.
    ``nan`` propagates in the value; its derivative is 0, as in jax.nn.

    Args:
        x: floating-point input array.

    Returns:
        ``relu(x)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.

    dtype: the output has the dtype of ``x`` (float16, bfloat16, float32,
    float64).

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.relu(jnp.array([-2.0, 0.0, 3.0]))
        Array([0., 0., 3.], dtype=float32)
    """
    return _relu(_float_input(x, "relu"))


def leaky_relu(x: ArrayLike, negative_slope: ArrayLike = 0.01) -> Array:
    r"""Leaky rectified linear unit.

    .. math::
        \mathrm{leaky\_relu}(x) = \begin{cases} x, & x \ge 0 \\
        a\,x, & x < 0 \end{cases} \qquad a = \text{negative\_slope}

    Derivative in ``x``: 1 for :math:`x \ge 0`, :math:`a` for :math:`x < 0`; at the
    kink ``leaky_relu'(+0.0) = leaky_relu'(-0.0) = 1`` (the jax.nn convention;
    PyTorch and TensorFlow give :math:`a`). Derivative in ``a``: :math:`\min(x, 0)`.

    For a concrete slope :math:`a > 0` (a Python float or a concrete array) the
    derivative is read from the output -- ``y >= 0`` exactly when ``x >= 0`` --
    so reverse mode saves only ``y`` and a train step needs no more memory than
    with the identity. (The one difference: a negative ``x`` so small that
    ``a*x`` underflows to ``-0.0`` gets the kink's derivative 1.) For a traced
    slope (under ``jax.vmap`` or ``jax.grad`` in the slope) or :math:`a \le 0`
    the derivative is read from ``x``.

    Args:
        x: floating-point input array.
        negative_slope: the slope :math:`a` for negative inputs; a scalar or an
            array that broadcasts to ``x.shape``; may be traced (``jax.vmap``
            over slopes compiles once).

    Returns:
        ``leaky_relu(x)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.
        ValueError: if a concrete ``negative_slope`` is not finite or does not
            broadcast to ``x.shape``.

    dtype: the output has the dtype of ``x``; the slope is cast to ``x.dtype``
    (bfloat16 in, bfloat16 out, also with a float32 slope array).

    Example:
        >>> import jax, jax.numpy as jnp, leakyjax
        >>> leakyjax.leaky_relu(jnp.array([-2.0, 0.0, 3.0]), 0.1)
        Array([-0.2,  0. ,  3. ], dtype=float32)
        >>> jax.grad(leakyjax.leaky_relu)(0.0)  # derivative at the kink
        Array(1., dtype=float32, weak_type=True)
    """
    x = _float_input(x, "leaky_relu")
    a, concrete = _param(negative_slope, x, "negative_slope", "leaky_relu")
    return _leaky(x, a, concrete)


def prelu(x: ArrayLike, alpha: ArrayLike) -> Array:
    r"""Parametric rectified linear unit (He et al., 2015).

    .. math::
        \mathrm{prelu}(x) = \begin{cases} x, & x \ge 0 \\
        \alpha\,x, & x < 0 \end{cases}

    ``alpha`` is usually a learnable parameter: a scalar shared by all units, or
    one value per channel (an array that broadcasts to ``x``, e.g. shape
    ``(C,)`` for channels last). The function is differentiable in ``x`` and in
    ``alpha``; :math:`\partial/\partial\alpha = \min(x, 0)`, summed over the
    broadcast axes.

    Derivative in ``x`` at the kink: 1 at ``+0.0`` and ``-0.0`` (as
    :func:`leaky_relu`).

    Args:
        x: floating-point input array.
        alpha: the negative slopes; an array that broadcasts to ``x.shape``.

    Returns:
        ``prelu(x, alpha)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.
        ValueError: if ``alpha`` does not broadcast to ``x.shape`` or a concrete
            ``alpha`` is not finite.

    dtype: the output has the dtype of ``x``; ``alpha`` is cast to ``x.dtype`` in
    the computation and its gradient has the dtype of ``alpha`` (a float32 slope
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
    x = _float_input(x, "prelu")
    a, concrete = _param(alpha, x, "alpha", "prelu")
    return _leaky(x, a, concrete)


_RRELU_DEFAULTS = {"pytorch": (1.0 / 8.0, 1.0 / 3.0), "xu": (3.0, 8.0)}


def rrelu(
    x: ArrayLike,
    key: Array | None = None,
    *,
    lower: float | None = None,
    upper: float | None = None,
    convention: RReLUConvention = "pytorch",
) -> Array:
    r"""Randomized leaky rectified linear unit (Xu et al., 2015).

    .. math::
        \mathrm{rrelu}(x) = \begin{cases} x, & x \ge 0 \\
        a\,x, & x < 0 \end{cases}

    With a ``key`` (training), the slope :math:`a` is drawn independently for every
    element; with ``key=None`` (evaluation) it is the deterministic value below.

    =============== ================================= ===========================
    ``convention``   training slope                   evaluation slope
    =============== ================================= ===========================
    ``"pytorch"``    :math:`a \sim U(l, u)`,          :math:`(l + u) / 2`
    (default)        :math:`l=1/8,\ u=1/3`
    ``"xu"``         :math:`a = 1/d,\ d \sim U(l, u)`, :math:`2 / (l + u)` (1/5.5)
                     :math:`l=3,\ u=8`
    =============== ================================= ===========================

    The default is PyTorch's ``torch.nn.RReLU``; ``convention="xu"`` is the
    divisor form of Xu et al. (2015), whose test-time slope is 1/5.5.

    Derivative in ``x``: 1 for :math:`x \ge 0`, the (drawn) slope for
    :math:`x < 0`; 1 at ``+0.0`` and ``-0.0``. The drawn slopes are not
    differentiated.

    Args:
        x: floating-point input array.
        key: a :func:`jax.random.key` (or legacy uint32 key) to draw slopes with,
            or None for the deterministic evaluation slope.
        lower: lower bound of the uniform draw (default from ``convention``).
        upper: upper bound of the uniform draw (default from ``convention``).
        convention: ``"pytorch"`` (draw the slope) or ``"xu"`` (draw the
            divisor).

    Returns:
        ``rrelu(x)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.
        ValueError: for an unknown ``convention``, or bounds that are not finite,
            not positive (``"xu"``), negative (``"pytorch"``) or not
            ``lower <= upper``.

    dtype: the output has the dtype of ``x``; slopes are drawn in float32 and
    cast to ``x.dtype``.

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
        if not np.isfinite(v):
            raise ValueError(f"rrelu: {name} must be finite, got {v!r}.")
    if convention == "xu" and lo <= 0:
        raise ValueError(f"rrelu: lower (a divisor) must be > 0, got {lo!r}.")
    if convention == "pytorch" and lo < 0:
        raise ValueError(f"rrelu: lower must be >= 0, got {lo!r}.")
    if lo > hi:
        raise ValueError(f"rrelu: need lower <= upper, got {lo!r} > {hi!r}.")
    if key is None:
        slope = (lo + hi) / 2 if convention == "pytorch" else 2 / (lo + hi)
        return leaky_relu(x, slope)
    draw = jax.random.uniform(key, x.shape, jnp.float32, lo, hi)
    slopes = draw if convention == "pytorch" else 1.0 / draw
    return _leaky_from_x(x, lax.stop_gradient(slopes.astype(x.dtype)))


# --------------------------------------------------------------------------- #
# The exponential family
# --------------------------------------------------------------------------- #
def _neg_part(x):
    """``x`` where ``x <= 0`` and 0 elsewhere, so expm1 never overflows."""
    return jnp.where(x > 0, jnp.zeros_like(x), x)


@jax.jit
def _elu_primal(x, a):
    return jnp.where(x > 0, x, a * jnp.expm1(_neg_part(x)))


_elu_from_y, _elu_from_x = _parametric(
    _elu_primal,
    tangent_from_x=lambda x, t, a: t * jnp.where(x > 0, 1, a * jnp.exp(_neg_part(x))),
    tangent_from_y=lambda y, t, a: t * jnp.where(y > 0, 1, y + a),
    param_tangent=lambda x, ta, a: (
        jnp.where(x > 0, jnp.zeros_like(x), jnp.expm1(_neg_part(x))) * ta
    ),
)


def elu(x: ArrayLike, alpha: ArrayLike = 1.0) -> Array:
    r"""Exponential linear unit (Clevert et al., 2016).

    .. math::
        \mathrm{elu}(x) = \begin{cases} x, & x > 0 \\
        \alpha\,(e^{x} - 1), & x \le 0 \end{cases}

    Derivative: 1 for :math:`x > 0`, :math:`\alpha e^{x} = y + \alpha` for
    :math:`x \le 0`; at ``+0.0`` and ``-0.0`` it is :math:`\alpha` (as
    :func:`jax.nn.elu`; continuous when :math:`\alpha = 1`).

    For a concrete :math:`\alpha \ge 0` the derivative is computed as
    :math:`y + \alpha` from the output, so reverse mode saves only ``y``. Far in
    the saturated region this is exact to one unit in the last place of
    :math:`\alpha` (absolute), not relative. A traced or negative ``alpha`` uses
    :math:`\alpha e^{x}`.

    Args:
        x: floating-point input array.
        alpha: the scale of the negative saturation; scalar or array that
            broadcasts to ``x.shape``; may be traced.

    Returns:
        ``elu(x, alpha)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.
        ValueError: if a concrete ``alpha`` is not finite or does not broadcast.

    dtype: the output has the dtype of ``x``; ``alpha`` is cast to ``x.dtype``.

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
    a, concrete = _param(alpha, x, "alpha", "elu")
    if concrete is not None and np.all(concrete >= 0):
        return _elu_from_y(x, a)
    return _elu_from_x(x, a)


@jax.jit
def _celu_primal(x, a):
    return jnp.where(x > 0, x, a * jnp.expm1(_neg_part(x) / a))


_celu_from_y, _celu_from_x = _parametric(
    _celu_primal,
    tangent_from_x=lambda x, t, a: t * jnp.where(x > 0, 1, jnp.exp(_neg_part(x) / a)),
    tangent_from_y=lambda y, t, a: t * jnp.where(y > 0, 1, y / a + 1),
    param_tangent=lambda x, ta, a: (
        jnp.where(
            x > 0,
            jnp.zeros_like(x),
            jnp.expm1(_neg_part(x) / a) - _neg_part(x) / a * jnp.exp(_neg_part(x) / a),
        )
        * ta
    ),
)


def celu(x: ArrayLike, alpha: ArrayLike = 1.0) -> Array:
    r"""Continuously differentiable exponential linear unit (Barron, 2017).

    .. math::
        \mathrm{celu}(x) = \begin{cases} x, & x > 0 \\
        \alpha\,(e^{x/\alpha} - 1), & x \le 0 \end{cases} \qquad \alpha > 0

    Derivative: 1 for :math:`x > 0`, :math:`e^{x/\alpha} = y/\alpha + 1` for
    :math:`x \le 0`; it is continuous, and 1 at ``+0.0`` and ``-0.0``. For a
    concrete ``alpha`` the derivative is read from the output (reverse mode saves
    only ``y``).

    Args:
        x: floating-point input array.
        alpha: positive scale; scalar or array that broadcasts to ``x.shape``;
            may be traced (then it is not checked).

    Returns:
        ``celu(x, alpha)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.
        ValueError: if a concrete ``alpha`` is not finite and positive.

    dtype: the output has the dtype of ``x``; ``alpha`` is cast to ``x.dtype``.

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.celu(jnp.array([-1.0, 0.0, 2.0]), 0.5)
        Array([-0.43233237,  0.        ,  2.        ], dtype=float32)

    References:
        Barron. Continuously Differentiable Exponential Linear Units.
        arXiv:1704.07483, 2017.
    """
    x = _float_input(x, "celu")
    a, concrete = _param(alpha, x, "alpha", "celu", positive=True)
    if concrete is not None:
        return _celu_from_y(x, a)
    return _celu_from_x(x, a)


@jax.jit
def _selu_primal(x):
    # One constant per branch, so that y -> -scale*alpha exactly as x -> -inf and
    # the output-based derivative y + scale*alpha is exactly 0 there.
    scale = jnp.asarray(SELU_SCALE, x.dtype)
    scale_alpha = jnp.asarray(SELU_SCALE * SELU_ALPHA, x.dtype)
    return jnp.where(x > 0, scale * x, scale_alpha * jnp.expm1(_neg_part(x)))


def _selu_tangent(y, t):
    scale = jnp.asarray(SELU_SCALE, y.dtype)
    scale_alpha = jnp.asarray(SELU_SCALE * SELU_ALPHA, y.dtype)
    return t * jnp.where(y > 0, scale, y + scale_alpha)


_selu = _unary(_selu_primal, _selu_tangent)


def selu(x: ArrayLike) -> Array:
    r"""Scaled exponential linear unit (Klambauer et al., 2017).

    .. math::
        \mathrm{selu}(x) = \lambda \begin{cases} x, & x > 0 \\
        \alpha\,(e^{x} - 1), & x \le 0 \end{cases}

    with :math:`\lambda \approx 1.0507` (:data:`SELU_SCALE`) and
    :math:`\alpha \approx 1.6733` (:data:`SELU_ALPHA`).

    Derivative: :math:`\lambda` for :math:`x > 0`, :math:`\lambda\alpha e^{x} =
    y + \lambda\alpha` for :math:`x \le 0`; at ``+0.0`` and ``-0.0`` it is
    :math:`\lambda\alpha` (as :func:`jax.nn.selu`). It is read from the output,
    so reverse mode saves only ``y``.

    Args:
        x: floating-point input array.

    Returns:
        ``selu(x)``, with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.

    dtype: the output has the dtype of ``x``.

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.selu(jnp.array([-1.0, 0.0, 2.0]))
        Array([-1.1113307,  0.       ,  2.101402 ], dtype=float32)

    References:
        Klambauer, Unterthiner, Mayr, Hochreiter. Self-Normalizing Neural
        Networks. NeurIPS 2017.
    """
    return _selu(_float_input(x, "selu"))


# --------------------------------------------------------------------------- #
# Comparators: thin wrappers of jax.nn (same numbers, same derivatives)
# --------------------------------------------------------------------------- #
def _comparator(jax_fn: Callable, name: str, formula: str, example: str) -> Callable:
    @functools.wraps(jax_fn)
    def f(x: ArrayLike, *args, **kwargs) -> Array:
        return jax_fn(_float_input(x, name), *args, **kwargs)

    f.__name__ = f.__qualname__ = name
    f.__module__ = __name__
    f.__doc__ = f"""Comparator: :func:`jax.nn.{name}` (re-exported, same derivative).

    .. math::
        {formula}

    Provided so that comparisons and the registry name every activation from
    one place. Arguments and derivatives are exactly those of
    :func:`jax.nn.{name}`; leakyjax only adds the floating-point input check.

    Args:
        x: floating-point input array.
        *args: passed to :func:`jax.nn.{name}`.
        **kwargs: passed to :func:`jax.nn.{name}`.

    Returns:
        An array with the dtype and shape of ``x``.

    Raises:
        TypeError: if ``x`` is not a floating-point array.

    dtype: the output has the dtype of ``x``. The derivative at 0 is smooth
    (no kink).

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> leakyjax.{name}(jnp.array([-1.0, 0.0, 1.0]))
        {example}
    """
    return f


sigmoid = _comparator(
    jax.nn.sigmoid,
    "sigmoid",
    r"\sigma(x) = 1 / (1 + e^{-x})",
    "Array([0.26894143, 0.5       , 0.7310586 ], dtype=float32)",
)
tanh = _comparator(
    jnp.tanh,
    "tanh",
    r"\tanh(x) = (e^{x} - e^{-x}) / (e^{x} + e^{-x})",
    "Array([-0.7615942,  0.       ,  0.7615942], dtype=float32)",
)
tanh.__doc__ = (tanh.__doc__ or "").replace(
    ":func:`jax.nn.tanh`", ":func:`jax.numpy.tanh`"
)
gelu = _comparator(
    jax.nn.gelu,
    "gelu",
    r"\mathrm{gelu}(x) = x\,\Phi(x) \text{ (tanh approximation by default)}",
    "Array([-0.15880796,  0.        ,  0.841192  ], dtype=float32)",
)
silu = _comparator(
    jax.nn.silu,
    "silu",
    r"\mathrm{silu}(x) = x\,\sigma(x)",
    "Array([-0.26894143,  0.        ,  0.7310586 ], dtype=float32)",
)
softplus = _comparator(
    jax.nn.softplus,
    "softplus",
    r"\mathrm{softplus}(x) = \log(1 + e^{x})",
    "Array([0.3132617, 0.6931472, 1.3132617], dtype=float32)",
)
