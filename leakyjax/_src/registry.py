"""Activation registry: `"leaky_relu:0.2"` -> a function, its He gain, a module.

A *spec* names an activation and, optionally, its parameters::

    name                      "leaky_relu"
    name:value[,value...]     "leaky_relu:0.2"        (positional, in declared order)
    name:key=value[,...]      "elu:alpha=0.5", "rrelu:convention=xu"
    mixed                     "rrelu:0.1,upper=0.3"   (positional first)

Names are case-insensitive and `-` may stand for `_`. Float values accept a
simple fraction (`"rrelu:1/8,1/3"`), bools accept `true/false/1/0`. The
registry is jax-only and derived from the activation table
(`leakyjax._src.table`); [`leakyjax.linen`][], [`leakyjax.nnx`][] and
[`leakyjax.equinox`][] build module factories from the same parsed specs
(`parse`).
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from leakyjax._src import table as _table

Array = jax.Array

__all__ = ["Spec", "available", "gain", "get", "parse"]


class Spec(NamedTuple):
    """A parsed activation spec.

    Attributes:
        name: the canonical registry name (`"identity"` for `"linear"`).
        kwargs: every parameter of the activation, defaults filled in.
    """

    name: str
    kwargs: Mapping[str, Any]

    def __str__(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.kwargs.items() if v is not None)
        if not args:
            return self.name
        return f"{self.name}:{args}"


def available() -> tuple[str, ...]:
    """Every name the registry knows, in a stable order.

    Returns:
        The names accepted by [`get`][leakyjax.get], [`gain`][leakyjax.gain], `leakyjax.linen.get`,
        `leakyjax.nnx.get` and `leakyjax.equinox.get`, in the order of the
        activation table (`"linear"` is an alias of `"identity"`).

    Example:
        >>> import leakyjax
        >>> leakyjax.available()[:4]
        ('relu', 'leaky_relu', 'prelu', 'rrelu')
        >>> "elu" in leakyjax.available()
        True
    """
    return _table.names()


def _options(entry: _table.Entry) -> str:
    if not entry.params:
        return f"{entry.name!r} takes no parameters"
    parts = []
    for p in entry.params:
        if p.choices:
            parts.append(f"{p.name} (one of {', '.join(p.choices)})")
        else:
            parts.append(f"{p.name} ({p.kind.__name__}, default {p.default})")
    return f"{entry.name!r} takes " + ", ".join(parts)


def _closest(word: str, options) -> str:
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.0)
    return f" Did you mean {match[0]!r}?" if match else ""


def _value(raw: str, p: _table.Param, entry: _table.Entry, spec: str) -> Any:
    raw = raw.strip()
    err = (
        f"leakyjax.get({spec!r}): bad value {raw!r} for {entry.name}'s "
        f"parameter {p.name!r}"
    )
    if p.kind is bool:
        low = raw.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ValueError(f"{err}: give true or false.")
    if p.kind is str:
        if raw not in p.choices:
            raise ValueError(
                f"{err}: give one of {', '.join(p.choices)}.{_closest(raw, p.choices)}"
            )
        return raw
    try:
        if "/" in raw:
            num, den = raw.split("/")
            value = float(num) / float(den)
        else:
            value = float(raw)
    except (ValueError, ZeroDivisionError):
        raise ValueError(
            f"{err}: give a number, e.g. {entry.name}:{p.name}=0.2."
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"{err}: it must be finite.")
    return value


def parse(spec: str) -> Spec:
    """Parses a spec string into the registry name and its full keyword arguments.

    Args:
        spec: `"name"`, `"name:v1,v2"` or `"name:key=value,..."`
            (see the module docstring).

    Returns:
        A `Spec` with the canonical name and every parameter (defaults
        filled in), e.g. `Spec("leaky_relu", {"negative_slope": 0.2})`.

    Raises:
        TypeError: if `spec` is not a string.
        ValueError: for an unknown name (naming the closest valid name and the
            valid names), a malformed parameter list, an unknown parameter name
            (naming the closest one and the valid ones), a bad value, or a
            value the activation rejects (e.g. `celu:alpha=0`).

    Example:
        >>> from leakyjax._src.registry import parse
        >>> parse("leaky_relu:0.2")
        Spec(name='leaky_relu', kwargs={'negative_slope': 0.2})
        >>> str(parse("elu:alpha=0.5"))
        'elu:alpha=0.5'
    """
    if not isinstance(spec, str):
        raise TypeError(
            f"an activation spec must be a string such as 'leaky_relu:0.2', got "
            f"{type(spec).__name__}."
        )
    name, sep, rest = spec.strip().partition(":")
    name = name.strip().lower().replace("-", "_")
    known = _table.names()
    if name not in known:
        raise ValueError(
            f"leakyjax.get({spec!r}): unknown activation {name!r}."
            f"{_closest(name, known)} Valid names: {', '.join(known)}."
        )
    entry = _table.entry(name)
    kwargs: dict[str, Any] = {p.name: p.default for p in entry.params}
    if sep:
        if not rest.strip():
            raise ValueError(
                f"leakyjax.get({spec!r}): nothing after ':'. Drop the ':' or give "
                f"parameters; {_options(entry)}."
            )
        # a module attribute name is accepted too (prelu:negative_slope_init=0.1)
        by_name = {n: p for p in entry.params for n in {p.name, p.module_name}}
        seen: set[str] = set()
        keyword_seen = False
        for i, item in enumerate(rest.split(",")):
            item = item.strip()
            if not item:
                raise ValueError(
                    f"leakyjax.get({spec!r}): empty parameter (a stray ','); "
                    f"{_options(entry)}."
                )
            key, eq, raw = item.partition("=")
            if eq:
                key = key.strip()
                keyword_seen = True
                if key not in by_name:
                    raise ValueError(
                        f"leakyjax.get({spec!r}): {entry.name} has no parameter "
                        f"{key!r}.{_closest(key, by_name)} {_options(entry)}."
                    )
                p = by_name[key]
            else:
                if keyword_seen:
                    raise ValueError(
                        f"leakyjax.get({spec!r}): positional value {item!r} after "
                        "a keyword one; put positional values first."
                    )
                if i >= len(entry.params):
                    raise ValueError(
                        f"leakyjax.get({spec!r}): too many values; {_options(entry)}."
                    )
                p, raw = entry.params[i], item
            if p.name in seen:
                raise ValueError(
                    f"leakyjax.get({spec!r}): parameter {p.name!r} given twice."
                )
            seen.add(p.name)
            kwargs[p.name] = _value(raw, p, entry, spec)
    parsed = Spec(entry.name, kwargs)
    # Let the function check its own domain now (celu alpha > 0, rrelu
    # lower <= upper, ...) instead of at the first call; abstract, so no compile.
    try:
        jax.eval_shape(entry.bind(**kwargs), jax.ShapeDtypeStruct((1,), jnp.float32))
    except ValueError as e:
        raise ValueError(f"leakyjax.get({spec!r}): {e}") from None
    return parsed


def get(spec: str | Callable[[Array], Array]) -> Callable[[Array], Array]:
    r"""Looks up an activation function by name, with optional parameters.

    Spec syntax: `"name"`, `"name:v1,v2"` (positional, in the order of the
    activation's parameters) or `"name:key=value,..."`; names are
    case-insensitive and `-` may replace `_`. The names are
    [`available`][leakyjax.available]; their parameters, defaults and gains are listed in the
    guide's registry table, rendered from the same table of activations as everything
    this function knows.

    The result is a pure function of `x` only, with the dtype rule of the
    leakyjax functions (output dtype = input dtype). Two names are functions of
    what is otherwise stateful:

    * `"prelu"` is [`leakyjax.prelu`][] with the slope **fixed at its init
      value** (`negative_slope`, 0.25 unless given); a learnable slope needs
      the `PReLU` module (`leakyjax.linen.get("prelu")`,
      `leakyjax.nnx.get("prelu")`, `leakyjax.equinox.get("prelu")`), whose
      `negative_slope_init` the spec sets.
    * `"rrelu"` is the **deterministic evaluation** [`leakyjax.rrelu`][] (the
      mean slope, or `2/(lower+upper)` with `convention=xu`); random slopes
      need a key (`leakyjax.rrelu(x, key)`) or the `RReLU` module.

    Args:
        spec: a spec string, or a callable, which is returned unchanged (so
            configs may hold either).

    Returns:
        A function `f(x) -> y`; for a string spec `f.spec` holds the
        canonical spec (every parameter spelled out) and `f.__name__` the
        name.

    Raises:
        TypeError: if `spec` is neither a string nor callable.
        ValueError: for an unknown name or parameter (the message names the
            closest valid one and lists the valid options), a malformed spec, or
            a value the activation rejects.

    Example:
        >>> import jax.numpy as jnp, leakyjax
        >>> x = jnp.array([-2.0, 0.0, 3.0])
        >>> leakyjax.get("leaky_relu:0.2")(x)
        Array([-0.4,  0. ,  3. ], dtype=float32)
        >>> leakyjax.get("elu:alpha=0.5").spec
        'elu:alpha=0.5'
        >>> leakyjax.get("leaky_rleu")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: leakyjax.get('leaky_rleu'): unknown activation 'leaky_rleu'. Did you mean 'leaky_relu'? ...
    """
    if callable(spec) and not isinstance(spec, str):
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            f"leakyjax.get: spec must be a string such as 'leaky_relu:0.2' (see "
            f"leakyjax.available()) or a callable, got {type(spec).__name__} {spec!r}."
        )
    return _get_string(spec)


@functools.lru_cache(maxsize=512)
def _get_string(spec: str) -> Callable[[Array], Array]:
    """[`get`][leakyjax.get] of a string, cached: modules resolve their spec per call."""
    parsed = parse(spec)
    entry = _table.entry(parsed.name)
    inner = entry.bind(**parsed.kwargs)
    canonical = str(parsed)

    def activation(x):
        return inner(x)

    activation.__name__ = activation.__qualname__ = parsed.name
    activation.__doc__ = f"leakyjax.get({canonical!r}): {entry.formula}."
    activation.spec = canonical  # type: ignore[attr-defined]
    return activation


def gain(spec: str | Callable[[Array], Array]) -> float:
    r"""The He (Kaiming) gain for an activation: weight std = gain / √fan.

    Matches `torch.nn.init.calculate_gain` wherever PyTorch defines a
    value: relu √2; leaky_relu $\sqrt{2/(1+a^2)}$; selu 3/4 (PyTorch's
    choice; Klambauer et al. use LeCun init, gain 1); tanh 5/3; sigmoid and
    identity/linear 1. For the rest:

    * prelu: the leaky gain at the initial slope (He et al. 2015, eq. 15);
    * rrelu: the leaky gain at the evaluation slope (the mean slope
      $(l+u)/2$, or $2/(l+u)$ for `convention=xu`);
    * elu, celu, gelu, silu, softplus: √2, relu's gain. PyTorch defines no value
      for them. Each is the identity for large positive inputs and (nearly) flat
      for negative ones, so He et al.'s argument -- about half the
      pre-activations pass with slope 1 and half are (nearly) zeroed -- holds
      approximately, and He initialisation is what these functions are usually
      paired with in practice. (The exact variance-preserving gain depends on
      the input distribution and lies between 1 and √2 for all of them.)

    Args:
        spec: a registry spec (see [`get`][leakyjax.get]), or a function returned by
            [`get`][leakyjax.get] (it carries its spec).

    Returns:
        The gain, a Python float.

    Raises:
        ValueError: for an invalid spec, or a callable that did not come from
            [`get`][leakyjax.get] (its gain is unknown: pass the name instead).

    Example:
        >>> import leakyjax
        >>> round(leakyjax.gain("relu"), 6)
        1.414214
        >>> round(leakyjax.gain("leaky_relu:0.2"), 6)
        1.386750
        >>> leakyjax.gain("tanh")
        1.6666666666666667
    """
    if callable(spec) and not isinstance(spec, str):
        inner_spec = getattr(spec, "spec", None)
        if not isinstance(inner_spec, str):
            raise ValueError(
                f"gain: cannot tell the gain of the callable {spec!r}; pass a "
                f"registry name instead (one of {', '.join(_table.names())})."
            )
        spec = inner_spec
    parsed = spec if isinstance(spec, Spec) else parse(spec)
    return float(_table.entry(parsed.name).gain(**parsed.kwargs))
