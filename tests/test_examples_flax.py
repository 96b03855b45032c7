"""The Flax examples run end to end in quick mode and learn something."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("flax")
pytest.importorskip("optax")
pytest.importorskip("sklearn")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    """Imports ``examples/<name>.py`` (registered in sys.modules, as linen's
    dataclasses need)."""
    mod_name = f"_leakyjax_example_{name}"
    spec = importlib.util.spec_from_file_location(mod_name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["flax_linen_mlp", "flax_nnx_mlp"])
def test_example_quick(name, capsys):
    result = _load(name).main(["--quick"])
    out = capsys.readouterr().out
    assert result["steps"] == 30
    # 10 classes: chance is 10%; 30 adamw steps reach ~95% (seed 0), 300 ~98%.
    assert result["accuracy"] > 0.5, out
    assert "test accuracy" in out
    assert "learned PReLU slopes" in out


@pytest.mark.parametrize("name", ["flax_linen_mlp", "flax_nnx_mlp"])
def test_example_rejects_bad_activation(name):
    with pytest.raises(ValueError, match="Did you mean 'leaky_relu'"):
        _load(name).main(["--quick", "--activation", "leaky_rellu"])
