"""The activation table: every activation declared once.

Each `Entry` names an activation and holds its function, its parameters
(defaults, domains), its He gain, its derivative at the kinks, the residual its
backward pass keeps and the paper it comes from. Everything else is derived
from `TABLE`:

* the registry ([`leakyjax.get`][], [`leakyjax.available`][],
  [`leakyjax.gain`][]) and the spec parser;
* the initialisers' gains ([`leakyjax.initializers.calculate_gain`][],
  [`for_activation`][leakyjax.initializers.for_activation], the leaky gain of
  [`he_normal`][leakyjax.initializers.he_normal]);
* the module factories `leakyjax.linen.get`, `leakyjax.nnx.get` and
  `leakyjax.equinox.get` and the attributes of the named modules;
* the guide's registry table (docs/GUIDE.md) (`markdown_table`, checked by a test);
* the tests, which loop over the table.

Adding an activation means writing its function in `activations.py`, its
entry here and its float64 reference formula in `tests/helpers.py`.
jax only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from leakyjax._src import activations as _act

Array = jax.Array

__all__ = ["TABLE", "Entry", "Param", "entry", "leaky_gain", "markdown_table"]

# Residual kinds: what the reverse pass keeps of an activation layer.
BIT = "1 bit"  # which piece x was on: a packed sign/interval bit per element
OUTPUT = "y"  # the output (the exponential family's derivative is a function of y)
KEY = "1 bit + key"  # rrelu with a key: the bits and the key (slopes redrawn)
JAX_NN = "as jax.nn"  # comparators: whatever jax.nn's own rule keeps
NONE = "none"  # the identity


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of an activation.

    Attributes:
        name: the keyword of the function and of the registry spec.
        kind: `float`, `bool` or `str`.
        default: the default value (None: the function picks it, e.g. rrelu's
            bounds come from its `convention`).
        domain: the valid values, in words (`"finite"`, `"> 0"`,
            `">= 0"`, `"true|false"`, `"pytorch|xu"`); the function
            checks it and the tests try a value outside it (`invalid`).
        choices: the valid strings of a `str` parameter.
        attribute: the name of the module attribute when it differs from
            `name` (PReLU's `negative_slope_init`: the slope is a learnable
            parameter and this is its initial value, flax's name).
        invalid: a spec value outside the domain that the function rejects, or
            None when every finite value is valid.
    """

    name: str
    kind: type
    default: Any
    domain: str = "finite"
    choices: tuple[str, ...] = ()
    attribute: str | None = None
    invalid: str | None = None

    @property
    def module_name(self) -> str:
        """The attribute name of this parameter on the modules."""
        return self.attribute or self.name


@dataclasses.dataclass(frozen=True)
class Entry:
    """One activation of the table.

    Attributes:
        name: the registry name.
        function: the function, called as `function(x, **params)`.
        params: the parameters, in positional spec order.
        gain: `gain(**params) -> float`, the He (Kaiming) gain.
        gain_formula: the gain in words for the docs (`"√2"`,
            `"√(2/(1+a²))"`).
        kinks: `kinks(**params) -> ((x, f'(x)), ...)`: each point where the
            function is not differentiable and the derivative it gives there
            (at `x = 0` the tests check `+0.0` and `-0.0`). Empty for
            smooth functions.
        residual: what the reverse pass keeps: `BIT`, `OUTPUT`,
            `KEY`, `JAX_NN` or `NONE`.
        formula: the function in one line of plain text.
        reference: the paper (or library) it comes from.
        stateful: for the modules: `"learnable slope"` (PReLU) or
            `"random slope"` (RReLU); as a registry function such an entry is
            the fixed (initial / evaluation) slope.
        aliases: other registry names of the same entry.
    """

    name: str
    function: Callable[..., Array]
    params: tuple[Param, ...]
    gain: Callable[..., float]
    gain_formula: str
    kinks: Callable[..., tuple[tuple[float, float], ...]]
    residual: str
    formula: str
    reference: str
    stateful: str | None = None
    aliases: tuple[str, ...] = ()

    def defaults(self) -> dict[str, Any]:
        """The parameters' default values, by name."""
        return {p.name: p.default for p in self.params}

    def bind(self, **params: Any) -> Callable[[Array], Array]:
        """The function of `x` alone with these parameters."""
        fn = self.function
        return lambda x: fn(x, **params)


_SQRT2 = math.sqrt(2.0)


def leaky_gain(negative_slope: float) -> float:
    r"""The He gain of a leaky rectifier, $\sqrt{2 / (1 + a^2)}$.

    He et al. (2015, eq. 15); `torch.nn.init.calculate_gain` for
    `"leaky_relu"`. The one place this formula is written.

    Args:
        negative_slope: the slope $a$ for negative inputs.

    Returns:
        The gain, a Python float.

    Example:
        >>> from leakyjax._src.table import leaky_gain
        >>> round(leaky_gain(0.2), 6)
        1.38675
    """
    a = float(negative_slope)
    return math.sqrt(2.0 / (1.0 + a * a))


def _no_kinks(**_: Any) -> tuple:
    return ()


def _identity(x: Any) -> Array:
    return jnp.asarray(x)


def _rrelu_eval_slope(
    lower: float | None, upper: float | None, convention: str
) -> float:
    lo, hi = _act._RRELU_DEFAULTS[convention]
    lo = lo if lower is None else lower
    hi = hi if upper is None else upper
    return _act._rrelu_eval_slope(lo, hi, convention)


_HE = "He, Zhang, Ren, Sun. Delving Deep into Rectifiers. ICCV 2015."
_SLOPE = Param("negative_slope", float, 0.01)
_ALPHA = Param("alpha", float, 1.0)

#: The activation table, in the order of [`leakyjax.available`][].
TABLE: tuple[Entry, ...] = (
    Entry(
        name="relu",
        function=_act.relu,
        params=(),
        gain=lambda: _SQRT2,
        gain_formula="√2",
        kinks=lambda: ((0.0, 0.0),),
        residual=BIT,
        formula="max(x, 0)",
        reference="Nair, Hinton. Rectified Linear Units Improve Restricted "
        "Boltzmann Machines. ICML 2010.",
    ),
    Entry(
        name="leaky_relu",
        function=_act.leaky_relu,
        params=(_SLOPE,),
        gain=leaky_gain,
        gain_formula="√(2/(1+a²))",
        kinks=lambda negative_slope: ((0.0, 1.0),),
        residual=BIT,
        formula="x if x ≥ 0 else a·x",
        reference="Maas, Hannun, Ng. Rectifier Nonlinearities Improve Neural "
        "Network Acoustic Models. ICML 2013.",
    ),
    Entry(
        name="prelu",
        function=_act.prelu,
        params=(Param("negative_slope", float, 0.25, attribute="negative_slope_init"),),
        gain=leaky_gain,
        gain_formula="√(2/(1+a²)), a = initial slope",
        kinks=lambda negative_slope: ((0.0, 1.0),),
        residual=BIT,
        formula="x if x ≥ 0 else a·x, a learnable (shared or per channel)",
        reference=_HE,
        stateful="learnable slope",
    ),
    Entry(
        name="rrelu",
        function=_act.rrelu,
        params=(
            Param("lower", float, None, ">= 0 (xu: > 0), <= upper", invalid="0.5"),
            Param("upper", float, None, ">= lower"),
            Param(
                "convention",
                str,
                "pytorch",
                "pytorch|xu",
                choices=("pytorch", "xu"),
                invalid="xy",
            ),
        ),
        gain=lambda lower, upper, convention: leaky_gain(
            _rrelu_eval_slope(lower, upper, convention)
        ),
        gain_formula="leaky gain at the evaluation slope",
        kinks=lambda lower, upper, convention: ((0.0, 1.0),),
        residual=KEY,
        formula="leaky with a random slope U(1/8, 1/3) per element (xu: 1/U(3, 8))",
        reference="Xu, Wang, Chen, Li. Empirical Evaluation of Rectified "
        "Activations in Convolutional Network. arXiv:1505.00853, 2015.",
        stateful="random slope",
    ),
    Entry(
        name="relu6",
        function=_act.relu6,
        params=(),
        gain=lambda: _SQRT2,
        gain_formula="√2 (as relu)",
        kinks=lambda: ((0.0, 0.0), (6.0, 0.0)),
        residual=BIT,
        formula="min(max(x, 0), 6)",
        reference="Krizhevsky. Convolutional Deep Belief Networks on CIFAR-10. "
        "2010; Howard et al. MobileNets. arXiv:1704.04861, 2017.",
    ),
    Entry(
        name="hard_tanh",
        function=_act.hard_tanh,
        params=(),
        gain=lambda: 1.0,
        gain_formula="1 (the identity on [-1, 1])",
        kinks=lambda: ((-1.0, 1.0), (1.0, 1.0)),
        residual=BIT,
        formula="max(-1, min(x, 1))",
        reference="Collobert. Large Scale Machine Learning. PhD thesis, 2004.",
    ),
    Entry(
        name="hard_sigmoid",
        function=_act.hard_sigmoid,
        params=(),
        gain=lambda: 1.0,
        gain_formula="1 (as sigmoid)",
        kinks=lambda: ((-3.0, 0.0), (3.0, 0.0)),
        residual=BIT,
        formula="relu6(x + 3) / 6",
        reference="Howard et al. Searching for MobileNetV3. ICCV 2019.",
    ),
    Entry(
        name="elu",
        function=_act.elu,
        params=(_ALPHA,),
        gain=lambda alpha: _SQRT2,
        gain_formula="√2",
        kinks=lambda alpha: ((0.0, alpha),),
        residual=OUTPUT,
        formula="x if x > 0 else α(eˣ − 1)",
        reference="Clevert, Unterthiner, Hochreiter. Fast and Accurate Deep "
        "Network Learning by Exponential Linear Units (ELUs). ICLR 2016.",
    ),
    Entry(
        name="celu",
        function=_act.celu,
        params=(Param("alpha", float, 1.0, "> 0", invalid="0"),),
        gain=lambda alpha: _SQRT2,
        gain_formula="√2",
        kinks=lambda alpha: ((0.0, 1.0),),
        residual=OUTPUT,
        formula="x if x > 0 else α(e^(x/α) − 1)",
        reference="Barron. Continuously Differentiable Exponential Linear "
        "Units. arXiv:1704.07483, 2017.",
    ),
    Entry(
        name="selu",
        function=_act.selu,
        params=(),
        gain=lambda: 0.75,
        gain_formula="3/4 (PyTorch)",
        kinks=lambda: ((0.0, _act.SELU_SCALE * _act.SELU_ALPHA),),
        residual=OUTPUT,
        formula="λ·elu(x, α), λ ≈ 1.0507, α ≈ 1.6733",
        reference="Klambauer, Unterthiner, Mayr, Hochreiter. Self-Normalizing "
        "Neural Networks. NeurIPS 2017.",
    ),
    Entry(
        name="sigmoid",
        function=_act.sigmoid,
        params=(),
        gain=lambda: 1.0,
        gain_formula="1",
        kinks=_no_kinks,
        residual=JAX_NN,
        formula="1 / (1 + e⁻ˣ)",
        reference="jax.nn.sigmoid",
    ),
    Entry(
        name="tanh",
        function=_act.tanh,
        params=(),
        gain=lambda: 5.0 / 3.0,
        gain_formula="5/3",
        kinks=_no_kinks,
        residual=JAX_NN,
        formula="tanh(x)",
        reference="jax.numpy.tanh",
    ),
    Entry(
        name="gelu",
        function=_act.gelu,
        params=(Param("approximate", bool, True, "true|false", invalid="maybe"),),
        gain=lambda approximate: _SQRT2,
        gain_formula="√2",
        kinks=lambda approximate: (),
        residual=JAX_NN,
        formula="x·Φ(x) (tanh approximation by default)",
        reference="Hendrycks, Gimpel. Gaussian Error Linear Units (GELUs). "
        "arXiv:1606.08415, 2016.",
    ),
    Entry(
        name="silu",
        function=_act.silu,
        params=(),
        gain=lambda: _SQRT2,
        gain_formula="√2",
        kinks=_no_kinks,
        residual=JAX_NN,
        formula="x·σ(x)",
        reference="Elfwing, Uchibe, Doya. Sigmoid-Weighted Linear Units. "
        "Neural Networks 2018.",
    ),
    Entry(
        name="softplus",
        function=_act.softplus,
        params=(),
        gain=lambda: _SQRT2,
        gain_formula="√2",
        kinks=_no_kinks,
        residual=JAX_NN,
        formula="log(1 + eˣ)",
        reference="jax.nn.softplus",
    ),
    Entry(
        name="identity",
        function=_identity,
        params=(),
        gain=lambda: 1.0,
        gain_formula="1",
        kinks=_no_kinks,
        residual=NONE,
        formula="x",
        reference="",
        aliases=("linear",),
    ),
)

_BY_NAME: dict[str, Entry] = {n: e for e in TABLE for n in (e.name, *e.aliases)}


def names() -> tuple[str, ...]:
    """Every registry name, aliases right after their entry."""
    return tuple(_BY_NAME)


def entry(name: str) -> Entry:
    """The entry of a canonical name or alias (KeyError if unknown)."""
    return _BY_NAME[name]


def _param_cell(e: Entry) -> str:
    parts = []
    for p in e.params:
        if p.choices:
            parts.append(p.name + "=" + "\\|".join(p.choices))
        elif p.default is None:
            parts.append(p.name)
        elif p.kind is bool:
            parts.append(f"{p.name}={str(p.default).lower()}")
        else:
            parts.append(f"{p.name}={p.default}")
    return ", ".join(parts)


def _kink_cell(e: Entry) -> str:
    kinks = e.kinks(**e.defaults())
    if not kinks:
        return "smooth"
    return ", ".join(f"{'±0' if x == 0 else f'{x:g}'}: {d:.6g}" for x, d in kinks)


def markdown_table() -> str:
    """The guide's registry table (docs/GUIDE.md), rendered from `TABLE`.

    Returns:
        A markdown table, one row per entry: name (and aliases), parameters in
        positional order with defaults, derivative at the kinks (at the default
        parameters), He gain (formula, and value at the defaults), residual.

    Example:
        >>> from leakyjax._src.table import markdown_table
        >>> print(markdown_table().splitlines()[2])
        | relu |  | ±0: 0 | √2 | 1.4142 | 1 bit |
    """
    rows = [
        "| name | parameters (positional order, default) | f′ at the kinks "
        "| `gain` | gain at the defaults | backward keeps |",
        "|---|---|---|---|---|---|",
    ]
    for e in TABLE:
        name = " / ".join((e.name, *e.aliases))
        if e.stateful:
            name += f" ({e.stateful} in the modules)"
        gain = f"{e.gain(**e.defaults()):.4f}"
        cells = (name, _param_cell(e), _kink_cell(e), e.gain_formula, gain, e.residual)
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":  # python -m leakyjax._src.table  -> the guide's table
    print(markdown_table())
