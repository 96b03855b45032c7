"""Registry: names, spec parsing, round trips to functions and modules, gains, errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leakyjax as lj
from leakyjax._src.registry import Spec, parse
from leakyjax._src.table import TABLE

X = jnp.linspace(-3.0, 3.0, 13, dtype=jnp.float32)


def test_available_lists_every_table_name():
    names = tuple(n for e in TABLE for n in (e.name, *e.aliases))
    assert lj.available() == names
    assert isinstance(lj.available(), tuple)
    assert lj.available()[:4] == ("relu", "leaky_relu", "prelu", "rrelu")


# spec -> the function it must equal
SPECS = {
    "relu": lj.relu,
    "leaky_relu": lambda x: lj.leaky_relu(x, 0.01),
    "leaky_relu:0.2": lambda x: lj.leaky_relu(x, 0.2),
    "leaky_relu:negative_slope=0.3": lambda x: lj.leaky_relu(x, 0.3),
    "Leaky-ReLU:0.2": lambda x: lj.leaky_relu(x, 0.2),
    " leaky_relu : 0.2 ": lambda x: lj.leaky_relu(x, 0.2),
    "prelu": lambda x: lj.prelu(x, 0.25),
    "prelu:0.1": lambda x: lj.prelu(x, 0.1),
    "rrelu": lambda x: lj.rrelu(x),
    "rrelu:convention=xu": lambda x: lj.leaky_relu(x, 1 / 5.5),
    "rrelu:1/10,3/10": lambda x: lj.leaky_relu(x, 0.2),
    "rrelu:0.1,upper=0.3": lambda x: lj.leaky_relu(x, 0.2),
    "elu": lambda x: lj.elu(x, 1.0),
    "elu:alpha=0.5": lambda x: lj.elu(x, 0.5),
    "celu:2": lambda x: lj.celu(x, 2.0),
    "selu": lj.selu,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "gelu:approximate=false": lambda x: jax.nn.gelu(x, approximate=False),
    "silu": jax.nn.silu,
    "softplus": jax.nn.softplus,
    "identity": lambda x: x,
    "linear": lambda x: x,
}


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_get_values(spec):
    f = lj.get(spec)
    np.testing.assert_allclose(f(X), SPECS[spec](X), rtol=1e-6, atol=1e-7)
    assert f(X.astype(jnp.bfloat16)).dtype == jnp.bfloat16
    # the canonical spec round-trips
    np.testing.assert_array_equal(lj.get(f.spec)(X), f(X))
    assert parse(f.spec) == parse(spec)


@settings(max_examples=30, deadline=None)
@given(
    a=st.floats(-10, 10, allow_nan=False, width=32),
    keyword=st.booleans(),
    name=st.sampled_from(["leaky_relu", "elu", "celu", "prelu"]),
)
def test_numeric_specs_round_trip(a, keyword, name):
    if name == "celu":
        a = abs(a) + 0.1  # alpha > 0
    pname = {"leaky_relu": "negative_slope", "prelu": "negative_slope"}.get(
        name, "alpha"
    )
    spec = f"{name}:{pname}={a!r}" if keyword else f"{name}:{a!r}"
    parsed = parse(spec)
    assert parsed == Spec(name, {pname: a})
    assert parse(str(parsed)) == parsed
    assert lj.gain(spec) > 0


def test_parse_fills_defaults_and_canonical_string():
    assert parse("leaky_relu:0.2") == Spec("leaky_relu", {"negative_slope": 0.2})
    assert parse("rrelu") == Spec(
        "rrelu", {"lower": None, "upper": None, "convention": "pytorch"}
    )
    assert str(parse("rrelu:convention=xu")) == "rrelu:convention=xu"
    assert str(parse("elu")) == "elu:alpha=1.0"
    # prelu's slope is negative_slope (as the function); the modules' attribute
    # name negative_slope_init is accepted too
    assert parse("prelu:negative_slope_init=0.1") == parse("prelu:negative_slope=0.1")
    assert parse("prelu:0.1") == Spec("prelu", {"negative_slope": 0.1})
    assert parse("linear").name == "identity"
    assert lj.get("leaky_relu:0.2").__name__ == "leaky_relu"


def test_get_returns_callables_unchanged():
    f = lambda x: x * 2
    assert lj.get(f) is f
    assert lj.get(jax.nn.relu) is jax.nn.relu


def test_get_is_jittable_and_differentiable():
    f = lj.get("leaky_relu:0.2")
    np.testing.assert_array_equal(jax.jit(f)(X), f(X))
    assert float(jax.grad(f)(-1.0)) == pytest.approx(0.2)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("leaky_rleu", r"unknown activation 'leaky_rleu'\. Did you mean 'leaky_relu'"),
        ("relu7", r"Did you mean 'relu.*Valid names: relu, leaky_relu"),
        ("ELLU", r"Did you mean 'elu'"),
        ("elu:alpah=0.5", r"no parameter 'alpah'\. Did you mean 'alpha'.*alpha"),
        ("leaky_relu:slope=0.2", r"Did you mean 'negative_slope'"),
        ("relu:0.1", r"too many values; 'relu' takes no parameters"),
        ("leaky_relu:0.1,0.2", r"too many values"),
        ("leaky_relu:", r"nothing after ':'"),
        ("leaky_relu:0.2,", r"empty parameter"),
        ("leaky_relu:abc", r"bad value 'abc'.*give a number"),
        ("leaky_relu:1/0", r"give a number"),
        ("elu:nan", r"must be finite"),
        ("leaky_relu:negative_slope=0.1,negative_slope=0.2", r"given twice"),
        ("rrelu:upper=0.3,0.1", r"positional value '0.1' after a keyword"),
        ("rrelu:convention=xy", r"one of pytorch, xu\. Did you mean 'xu'"),
        ("gelu:approximate=maybe", r"true or false"),
        ("celu:alpha=0", r"alpha must be > 0"),
        ("rrelu:0.5,0.1", r"lower <= upper"),
    ],
)
def test_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        lj.get(spec)


def test_type_errors():
    with pytest.raises(TypeError, match="spec must be a string"):
        lj.get(0.2)
    with pytest.raises(TypeError, match="spec must be a string"):
        lj.gain(None)


# PyTorch's torch.nn.init.calculate_gain values (hard-coded, torch not installed)
TORCH = {
    "relu": 1.4142135623730951,
    "leaky_relu": 1.4141428569978354,  # default slope 0.01
    "leaky_relu:0.2": 1.3867504905630728,
    "selu": 0.75,
    "tanh": 1.6666666666666667,
    "sigmoid": 1.0,
    "linear": 1.0,
    "identity": 1.0,
}


@pytest.mark.parametrize("spec", sorted(TORCH))
def test_gain_matches_pytorch(spec):
    assert lj.gain(spec) == pytest.approx(TORCH[spec], rel=1e-15)


def test_gain_of_the_rest():
    leaky = lambda a: math.sqrt(2 / (1 + a * a))
    assert lj.gain("prelu") == pytest.approx(leaky(0.25))
    assert lj.gain("prelu:0.1") == pytest.approx(leaky(0.1))
    assert lj.gain("rrelu") == pytest.approx(leaky((1 / 8 + 1 / 3) / 2))
    assert lj.gain("rrelu:convention=xu") == pytest.approx(leaky(1 / 5.5))
    for name in ("elu", "celu:0.5", "gelu", "silu", "softplus"):
        assert lj.gain(name) == pytest.approx(math.sqrt(2))
    assert lj.gain(lj.get("leaky_relu:0.2")) == pytest.approx(TORCH["leaky_relu:0.2"])
    with pytest.raises(ValueError, match="pass a registry name"):
        lj.gain(lambda x: x)
    with pytest.raises(ValueError, match="Did you mean 'tanh'"):
        lj.gain("tahn")


def test_module_factories_use_the_spec():
    # (every name through every API against the function: tests/test_table.py)
    pytest.importorskip("flax")
    from flax import nnx

    from leakyjax import linen as L
    from leakyjax import nnx as N

    # dedicated modules where they exist, with the spec's parameters
    assert isinstance(L.get("leaky_relu:0.2")(), L.LeakyReLU)
    assert L.get("leaky_relu:0.2")().negative_slope == 0.2
    assert N.get("elu:alpha=0.5")().alpha == 0.5
    assert isinstance(N.get("rrelu:convention=xu")(), N.RReLU)
    assert isinstance(L.get("gelu")(), L.Activation)
    assert isinstance(N.get("sigmoid")(rngs=nnx.Rngs(0)), N.Activation)
    # callables and classes
    assert isinstance(L.get(jnp.tanh)(), L.Activation)
    assert L.get(L.SELU) is L.SELU
    assert isinstance(N.get(N.SELU)(), N.SELU)
    # overrides
    assert N.get("prelu")(num_parameters=3).negative_slope.shape == (3,)
    with pytest.raises(ValueError, match="Did you mean 'prelu'"):
        L.get("prelu_")


def test_factories_make_fresh_modules():
    pytest.importorskip("flax")
    import flax.linen as nn

    from leakyjax import linen as L
    from leakyjax import nnx as N

    make = L.get("prelu")
    model = nn.Sequential([nn.Dense(3), make(), nn.Dense(3), make()])
    params = model.init(jax.random.key(0), jnp.ones((1, 2)))["params"]
    assert "negative_slope" in params["layers_1"]
    assert "negative_slope" in params["layers_3"]
    a, b = N.get("prelu")(), N.get("prelu")()
    assert a is not b and a.negative_slope is not b.negative_slope


def test_registry_initializers_and_mask_need_only_jax():
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import importlib.abc, sys

        class _Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("flax", "optax", "equinox"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, _Block())
        import jax, jax.numpy as jnp
        import leakyjax as lj
        from leakyjax import initializers as li

        assert lj.get("leaky_relu:0.2")(jnp.array([-1.0])).tolist() == [
            jnp.float32(-0.2).item()
        ]
        assert abs(lj.gain("relu") - 2 ** 0.5) < 1e-12
        li.he_normal(negative_slope=0.2)(jax.random.key(0), (4, 4))
        assert lj.decay_mask({"negative_slope": 1.0}) == {"negative_slope": False}
        for mod, extra in [
            ("leakyjax.linen", "flax"),
            ("leakyjax.nnx", "flax"),
            ("leakyjax.equinox", "equinox"),
        ]:
            try:
                __import__(mod)
            except ImportError as e:
                assert f'pip install "leakyjax[{extra}]"' in str(e), e
            else:
                raise AssertionError(mod + " imported without flax")
        print("ok")
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


@pytest.mark.parametrize("spec", [["relu"], {"relu": 1}, 0.2, None, b"relu"])
def test_get_of_a_non_string_names_get_and_the_fix(spec):
    with pytest.raises(TypeError, match=r"^leakyjax\.get: spec must be a string "):
        lj.get(spec)
