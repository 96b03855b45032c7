"""Tests derived from the activation table: every entry of ``leakyjax.available()``.

A new table entry gets all of these without touching this file: values and
derivatives against its float64 reference (tests/helpers.py REFERENCES), exact
derivatives at its kinks (+0.0 and -0.0), dtypes, jit/vmap/grad/hessian,
registry round trips, its gain, and the modules of every installed API.
"""

from __future__ import annotations

import inspect
import math
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest

import leakyjax as lj
from leakyjax._src import table as T
from leakyjax._src.registry import parse
from tests import helpers as H

ENTRIES = {e.name: e for e in T.TABLE}
NAMES = sorted(ENTRIES)
DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]


#: Further values of a float parameter, by its domain: the one-bit residual is exact for
#: every slope (negative, zero, steeper than 1), the exponential family for every alpha.
MORE_VALUES = {"finite": (-0.5, 0.0, 3.0), "> 0": (0.5, 3.0)}


def _samples(e: T.Entry) -> list[dict]:
    """The defaults; other values of each float parameter; each other choice of a
    string parameter (rrelu's convention)."""
    out = [e.defaults()]
    for p in e.params:
        if p.kind is float and p.default is not None:
            values = (0.5 * p.default + 0.05, *MORE_VALUES.get(p.domain, ()))
            out += [{**e.defaults(), p.name: v} for v in values if v != p.default]
        if p.kind is str:
            out += [{**e.defaults(), p.name: c} for c in p.choices if c != p.default]
    return out


CASES = [(n, kw) for n in NAMES for kw in _samples(ENTRIES[n])]
CASE_IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]


def _kink_points(e: T.Entry, kw: dict) -> list[float]:
    pts = []
    for x0, _ in e.kinks(**kw):
        pts += [0.0, -0.0] if x0 == 0 else [x0]
    return pts


def _grid(e: T.Entry, kw: dict) -> np.ndarray:
    """Ordinary points, away from the kinks (derivatives are checked there)."""
    return _away_from_kinks(
        e, kw, np.concatenate([np.linspace(-7.9, 7.9, 41), [1e-3, -1e-3, 0.37, -0.37]])
    )


def _points(e: T.Entry, kw: dict) -> np.ndarray:
    """The grid and random normal points (sd 3), away from the kinks."""
    rand = np.random.default_rng(0).normal(0, 3, 256)
    return np.concatenate([_grid(e, kw), _away_from_kinks(e, kw, rand)])


def _away_from_kinks(e: T.Entry, kw: dict, x: np.ndarray) -> np.ndarray:
    kinks = np.array([k for k, _ in e.kinks(**kw)], np.float64)
    if kinks.size:
        x = x[np.min(np.abs(x[:, None] - kinks[None, :]), axis=1) > 1e-2]
    return x


def test_every_entry_has_a_reference_and_the_registry_lists_it():
    assert set(H.REFERENCES) == set(ENTRIES)
    assert lj.available() == T.names()
    for e in T.TABLE:
        sig = inspect.signature(H.REFERENCES[e.name])
        assert list(sig.parameters)[1:] == [p.name for p in e.params], e.name
        assert e.residual in (T.BIT, T.OUTPUT, T.KEY, T.JAX_NN, T.NONE)
        assert isinstance(e.formula, str) and e.formula


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("name, kw", CASES, ids=CASE_IDS)
def test_values_against_float64_reference(name, kw, dtype):
    e = ENTRIES[name]
    f = e.bind(**kw)
    x = np.concatenate([H.special_values(dtype), _points(e, kw)])
    xd = jnp.asarray(x, dtype)
    y = f(xd)
    assert y.dtype == jnp.dtype(dtype) and y.shape == xd.shape
    ref, _ = H.REFERENCES[name](np.asarray(xd, np.float64), **kw)
    ref = np.asarray(ref.astype(dtype), np.float64)  # rounded to dtype
    got = np.asarray(y, np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=name)
    ok = ~np.isnan(ref)
    fi = jnp.finfo(dtype)
    # results within a few smallest normals of 0 may flush to 0 (XLA CPU); the
    # comparators are jax.nn's (or jnp's) own approximations, to an ulp of 1.
    atol = 4 * float(fi.eps) if e.residual == T.JAX_NN else 16 * float(fi.tiny)
    t = {**H.tol(dtype), "atol": atol}
    np.testing.assert_allclose(got[ok], ref[ok], **t, err_msg=name)
    # the registry function is the same function
    spec = str(parse(name)._replace(kwargs=kw))
    np.testing.assert_array_equal(lj.get(spec)(xd), y)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("name, kw", CASES, ids=CASE_IDS)
def test_derivative_against_float64_reference(name, kw, dtype):
    e = ENTRIES[name]
    x = jnp.asarray(_points(e, kw), dtype)
    d = jax.vmap(jax.grad(e.bind(**kw)))(x)
    assert d.dtype == jnp.dtype(dtype)
    _, ref = H.REFERENCES[name](np.asarray(x, np.float64), **kw)
    t = H.tol(dtype)
    np.testing.assert_allclose(
        np.asarray(d, np.float64), ref, rtol=4 * t["rtol"], atol=4 * t["rtol"]
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("name, kw", CASES, ids=CASE_IDS)
def test_exact_derivative_at_the_kinks(name, kw, dtype):
    e = ENTRIES[name]
    f = e.bind(**kw)
    fns = {"": f}
    if e.residual == T.KEY:  # with a key: random slopes, the same derivative at 0
        fns["key"] = lambda v: e.function(v, jax.random.key(3), **kw)
    for x0, expected in e.kinks(**kw):
        for x in [0.0, -0.0] if x0 == 0 else [x0]:
            xd = jnp.asarray(x, dtype)
            want = np.asarray(expected, np.float64).astype(dtype)
            for how, fn in fns.items():
                g = jax.grad(fn)(xd)
                assert g.dtype == jnp.dtype(dtype)
                assert np.asarray(g) == want, (name, how, x, float(g), float(want))
                jg = jax.jit(jax.grad(fn))(xd)
                assert np.asarray(jg) == want, (name, how, "jit", x)
                _, t = jax.jvp(fn, (xd,), (jnp.ones_like(xd),))  # forward mode too
                assert np.asarray(t) == want, (name, how, "jvp", x)
            # the value at the kink, exactly
            ref, _ = H.REFERENCES[name](np.float64(x), **kw)
            assert np.asarray(f(xd), np.float64) == np.asarray(ref).astype(dtype), (
                name,
                x,
            )


def _float_params(e: T.Entry, kw: dict) -> list[str]:
    return [p.name for p in e.params if p.kind is float and kw.get(p.name) is not None]


TRACED_CASES = [(n, kw) for n, kw in CASES if _float_params(ENTRIES[n], kw)]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize(
    "name, kw", TRACED_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(TRACED_CASES)]
)
def test_traced_parameters_match_the_reference(name, kw, dtype):
    """Parameters as traced float32 arrays (a slope sweep, a learnable slope): cast to
    the input dtype, the same values, derivatives and kinks as with Python floats."""
    e = ENTRIES[name]
    names = _float_params(e, kw)

    def f(x, *values):
        return e.function(x, **{**kw, **dict(zip(names, values))})

    args = [jnp.float32(kw[n]) for n in names]
    xd = jnp.asarray(np.concatenate([H.special_values(dtype), _points(e, kw)]), dtype)
    y = jax.jit(f)(xd, *args)
    assert y.dtype == jnp.dtype(dtype)
    cast = {**kw, **{n: float(H.cast_param(kw[n], dtype)) for n in names}}
    x64v = np.asarray(xd, np.float64)
    ref, dref = H.REFERENCES[name](x64v, **cast)
    with np.errstate(all="ignore"):
        ref = np.asarray(ref.astype(dtype), np.float64)
    got = np.asarray(y, np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=name)
    ok = ~np.isnan(ref)
    t = {**H.tol(dtype), "atol": 16 * float(jnp.finfo(dtype).tiny)}
    np.testing.assert_allclose(got[ok], ref[ok], **t, err_msg=name)
    away = np.isfinite(x64v) & (np.abs(x64v) < 1e4)
    kinks = [k for k, _ in e.kinks(**cast)]
    if kinks:
        away &= np.min(np.abs(x64v[:, None] - np.array(kinks)), axis=1) > 1e-2
    g = jax.jit(jax.vmap(jax.grad(f), in_axes=(0, *[None] * len(args))))(
        xd[away], *args
    )
    # the exponential family reads its derivative from the output (y + alpha):
    # exact to a few ulps of the constant, absolute
    tol = H.tol(dtype)
    np.testing.assert_allclose(
        np.asarray(g, np.float64),
        dref[away],
        rtol=4 * tol["rtol"],
        atol=8 * float(jnp.finfo(dtype).eps),
        err_msg=name,
    )
    for x0, expected in e.kinks(**cast):
        for x in [0.0, -0.0] if x0 == 0 else [x0]:
            gk = jax.jit(jax.grad(f))(jnp.asarray(x, dtype), *args)
            want = np.asarray(expected, np.float64).astype(dtype)
            assert np.asarray(gk) == want, (name, "traced", x, float(gk))


@pytest.mark.parametrize("name", NAMES)
def test_dtype_rule_float64(name):
    f = lj.get(name)
    with H.x64():
        x = jnp.linspace(-3, 3, 7, dtype=jnp.float64)
        assert f(x).dtype == jnp.float64
        assert jax.grad(lambda v: f(v).sum())(x).dtype == jnp.float64
    with pytest.raises(TypeError, match="floating-point"):
        if name == "identity":  # the identity accepts anything jnp.asarray does
            raise TypeError("floating-point")
        f(jnp.arange(3))


@pytest.mark.slow  # second derivatives by finite differences, in float64
@pytest.mark.parametrize("name", NAMES)
def test_jit_vmap_grad_hessian(name):
    e = ENTRIES[name]
    kw = e.defaults()
    f = e.bind(**kw)
    x = jnp.asarray(_grid(e, kw)[::3], jnp.float32)
    np.testing.assert_array_equal(jax.jit(f)(x), f(x))
    x2 = jnp.stack([x, -x])
    np.testing.assert_array_equal(jax.vmap(f)(x2), f(x2))
    g = jax.grad(lambda v: jnp.sum(f(v)))(x)
    np.testing.assert_array_equal(g, jax.vmap(jax.grad(f))(x))
    h = jax.hessian(lambda v: jnp.sum(f(v)))(x)
    assert h.shape == (x.size, x.size) and bool(jnp.all(jnp.isfinite(h)))
    np.testing.assert_array_equal(h - jnp.diag(jnp.diag(h)), 0)  # elementwise
    # second derivatives against finite differences, in float64
    with H.x64():
        xs = jnp.asarray(_grid(e, kw)[::5], jnp.float64)
        jax.test_util.check_grads(jax.jit(f), (xs,), order=2, modes=["fwd", "rev"])


@pytest.mark.parametrize("name", NAMES)
def test_registry_round_trips(name):
    e = ENTRIES[name]
    parsed = parse(name)
    assert parsed.name == e.name and dict(parsed.kwargs) == e.defaults()
    assert parse(str(parsed)) == parsed
    f = lj.get(name)
    assert f.spec == str(parsed) and f.__name__ == e.name
    assert parse(f.spec) == parsed
    x = jnp.linspace(-2, 2, 9)
    # positional and keyword spellings of non-default values
    for kw in _samples(e)[1:]:
        (p,) = [p for p in e.params if kw[p.name] != p.default]
        i = e.params.index(p)
        value = repr(kw[p.name]) if p.kind is float else str(kw[p.name])
        positional = ",".join(
            [repr(q.default) for q in e.params[:i] if q.default is not None] + [value]
        )
        for spec in (f"{name}:{p.name}={value}", f"{name}:{positional}"):
            if e.params[:i] and any(q.default is None for q in e.params[:i]):
                continue  # positional values cannot skip a None default
            assert parse(spec) == parse(name)._replace(kwargs=kw), spec
            np.testing.assert_array_equal(lj.get(spec)(x), e.bind(**kw)(x))
    # a value outside the domain is rejected, naming the parameter
    for p in e.params:
        if p.invalid is not None:
            with pytest.raises(ValueError, match=p.name):
                lj.get(f"{name}:{p.name}={p.invalid}")
    for alias in e.aliases:
        assert parse(alias) == parsed


@pytest.mark.parametrize("name", NAMES)
def test_gain(name):
    e = ENTRIES[name]
    g = lj.gain(name)
    assert g == e.gain(**e.defaults()) and math.isfinite(g) and g > 0
    assert lj.gain(lj.get(name)) == g
    f = e.bind(**e.defaults())
    # He et al.'s argument, exactly: for a positively homogeneous f (f(cx) =
    # c f(x), c > 0; the rectifiers and the identity) and symmetric inputs,
    # E[f(z)^2] = (f(1)^2 + f(-1)^2) / 2 * E[z^2], so the variance-preserving
    # gain is sqrt(2 / (f(1)^2 + f(-1)^2)).
    with H.x64():
        z = jnp.asarray(np.random.default_rng(0).normal(size=64), jnp.float64)
        if np.allclose(f(3.0 * z), 3.0 * f(z), rtol=1e-12, atol=0):
            f1, fm1 = float(f(jnp.float64(1.0))), float(f(jnp.float64(-1.0)))
            assert g == pytest.approx(math.sqrt(2 / (f1 * f1 + fm1 * fm1)), rel=1e-12)
    # for_activation draws with that gain
    w = lj.initializers.for_activation(name)(jax.random.key(0), (1000, 400))
    assert float(jnp.std(w)) * math.sqrt(1000) == pytest.approx(g, rel=0.02)


def test_torch_gains_come_from_the_table():
    li = lj.initializers  # PyTorch's numbers are in test_initializers.py
    assert li.calculate_gain("relu") == lj.gain("relu")
    assert li.calculate_gain("leaky_relu", 0.3) == lj.gain("leaky_relu:0.3")
    assert li.calculate_gain("selu") == lj.gain("selu")
    assert li.calculate_gain("conv2d") == lj.gain("identity")


GUIDE = Path(__file__).resolve().parents[1] / "docs" / "GUIDE.md"


def test_guide_registry_table_is_rendered_from_the_table():
    readme = GUIDE.read_text()
    m = re.search(
        r"<!-- registry-table:begin.*?-->\n(.*?)\n<!-- registry-table:end -->",
        readme,
        re.S,
    )
    assert m, "docs/GUIDE.md lost its registry-table markers"
    assert m.group(1).strip() == T.markdown_table().strip(), (
        "docs/GUIDE.md's registry table is stale: paste `python -m leakyjax._src.table`"
    )


def test_guide_api_tables_list_every_function_and_module():
    readme = GUIDE.read_text()
    functions = readme.split("## Functions", 1)[1].split("\n## ", 1)[0]
    for e in T.TABLE:
        if e.name in lj.__all__:  # every function of the table has a row
            assert f"`{e.name}" in functions, e.name
    modules = readme.split("## Modules", 1)[1].split("\n## ", 1)[0]
    for api in APIS:
        for cls in _named(api).values():
            assert f"`{cls.__name__}`" in modules, cls.__name__


# --------------------------------------------------------------------------- #
# Modules of every API, for every entry
# --------------------------------------------------------------------------- #
def _apis():
    apis = {}
    try:
        from flax import nnx

        from leakyjax import linen as L
        from leakyjax import nnx as N
    except ImportError:  # pragma: no cover - flax is in the test extra
        pass
    else:
        apis["linen"] = (L, None)
        apis["nnx"] = (N, nnx)
    try:
        from leakyjax import equinox as E
    except ImportError:  # pragma: no cover - equinox is in the test extra
        pass
    else:
        apis["equinox"] = (E, None)
    return apis


APIS = _apis()


def _module_fn(api: str, name: str):
    """``f(x)`` of the API's module for ``name`` (evaluation mode, init slopes)."""
    mod, nnx = APIS[api]
    make = mod.get(name)
    x0 = jnp.ones((2, 4))
    if api == "linen":
        m = make()
        kw = {"deterministic": True} if name == "rrelu" else {}
        variables = m.init(jax.random.key(0), x0, **kw)
        return lambda x: m.apply(variables, x, **kw), m
    if api == "nnx":
        m = make(rngs=nnx.Rngs(0))
        m.eval()
        return m, m
    import equinox as eqx

    m = eqx.nn.inference_mode(make())
    return (lambda x: m(x)), m


@pytest.mark.skipif(len(APIS) < 3, reason="needs flax and equinox")
@pytest.mark.parametrize("name", lj.available())
def test_modules_of_every_api_agree_with_the_function(name):
    f = lj.get(name)
    x = jax.random.normal(jax.random.key(1), (5, 4)) * 3
    w = jax.random.normal(jax.random.key(2), x.shape)
    ref, ref_g = f(x), jax.grad(lambda v: jnp.sum(f(v) * w))(x)
    for api in APIS:
        fn, _ = _module_fn(api, name)
        np.testing.assert_array_equal(fn(x), ref, err_msg=f"{api} {name}")
        g = jax.grad(lambda v, fn=fn: jnp.sum(fn(v) * w))(x)
        np.testing.assert_array_equal(g, ref_g, err_msg=f"{api} {name}")
        xb = x.astype(jnp.bfloat16)
        assert fn(xb).dtype == jnp.bfloat16, (api, name)


@pytest.mark.skipif(len(APIS) < 3, reason="needs flax and equinox")
def test_named_modules_match_the_table():
    named = {api: _named(api) for api in APIS}
    assert named["linen"].keys() == named["nnx"].keys() == named["equinox"].keys()
    for api, classes in named.items():
        for name, cls in classes.items():
            e = ENTRIES[name]
            defaults = _attribute_defaults(api, cls)
            for p in e.params:
                assert p.module_name in defaults, (api, cls.__name__, p.module_name)
                assert defaults[p.module_name] == p.default, (api, cls.__name__)
            # get() builds the named module, with the spec's values
            m = APIS[api][0].get(name)()
            assert type(m) is cls
            if e.stateful is None:
                for p in e.params:
                    assert getattr(m, p.module_name) == p.default, (api, name)


def _named(api):
    from leakyjax._src import equinox as e_src
    from leakyjax._src import linen as l_src
    from leakyjax._src import nnx as n_src

    return {"linen": l_src, "nnx": n_src, "equinox": e_src}[api]._NAMED


def _attribute_defaults(api, cls) -> dict:
    sig = inspect.signature(cls.__init__ if api == "nnx" else cls)
    return {
        k: v.default
        for k, v in sig.parameters.items()
        if v.default is not inspect.Parameter.empty
    }


@pytest.mark.parametrize("name", NAMES)
def test_backward_keeps_what_the_table_says(name):
    """The residual kind of every entry, measured: the bytes of the arrays that
    ``jax.vjp`` keeps for the backward pass of one (64, 256) float32 layer."""
    e = ENTRIES[name]
    x = jax.random.normal(jax.random.key(0), (64, 256), jnp.float32)
    bits = x.size // 8  # one packed bit per element

    def kept(f):
        _, vjp = jax.vjp(f, x)
        return sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(vjp))

    n = kept(e.bind(**e.defaults()))
    if e.residual == T.BIT:
        assert n <= bits + 64, (name, n)
    elif e.residual == T.KEY:  # without a key: the evaluation slope, one bit
        assert n <= bits + 64, (name, n)
        key = jax.random.key(1)
        n = kept(lambda v: e.function(v, key, **e.defaults()))
        assert n <= bits + 64, (name, "with a key", n)
    elif e.residual == T.OUTPUT:
        assert n == x.nbytes, (name, n)
    elif e.residual == T.NONE:
        assert n == 0, (name, n)
    else:  # as jax.nn: at least something, and what jax.nn's own rule keeps
        assert n > 0
