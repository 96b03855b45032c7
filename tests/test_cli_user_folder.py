"""The documented own-model recipe, word for word, from a user's folder.

``leakyjax compare --model mymodels:f --data mymodels:g`` run by the console
script (not ``python -m``) in a folder holding ``mymodels.py``, for a linen and
an nnx model; a module that is not there gets an error that says what to do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("flax")
pytest.importorskip("optax")

SCRIPT = shutil.which("leakyjax", path=str(Path(sys.executable).parent))
pytestmark = pytest.mark.skipif(
    SCRIPT is None, reason="the leakyjax console script is not installed"
)

MYMODELS = """
import numpy as np
import flax.linen as nn
from flax import nnx


def my_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 5)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
    return x[:60], y[:60], x[60:], y[60:]


def linen_mlp(act):
    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = act()(nn.Dense(8)(x))
            return nn.Dense(2)(x)

    return MLP()


class _NNX(nnx.Module):
    def __init__(self, act, rngs):
        self.l1 = nnx.Linear(5, 8, rngs=rngs)
        self.act = act(rngs=rngs)
        self.l2 = nnx.Linear(8, 2, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.act(self.l1(x)))


def nnx_mlp(act, *, rngs):
    return _NNX(act, rngs)
"""


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, LEAKYJAX_NO_COMPILE_CACHE="1")
    env.pop("PYTHONPATH", None)  # only what the console script itself sees
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


TINY = ("--acts", "relu,leaky_relu:0.2", "--seeds", "2", "--steps", "4")
TINY += ("--eval-every", "2", "--batch-size", "10", "--no-plots")


@pytest.mark.parametrize("factory", ["linen_mlp", "nnx_mlp"])
def test_console_script_finds_the_users_module(tmp_path, factory):
    (tmp_path / "mymodels.py").write_text(MYMODELS)
    proc = _run(
        tmp_path, "compare", "--model", f"mymodels:{factory}",
        "--data", "mymodels:my_data", *TINY, "--out", "run",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (tmp_path / "run" / "report.md").read_text()
    assert f"mymodels:{factory}" in report
    assert "54 training examples, 6 held out for validation, 30 test" in report
    assert "| depth | n/a |" in report
    assert "\r" not in proc.stderr  # not a terminal: no progress bar


def test_a_module_that_is_not_there_says_what_to_do(tmp_path):
    proc = _run(
        tmp_path, "compare", "--model", "mymodelz:linen_mlp", *TINY, "--out", "run"
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    err = proc.stderr
    assert "no module 'mymodelz'" in err and "folder that holds mymodelz.py" in err
    assert "PYTHONPATH" in err and len(err.strip().splitlines()) == 1


def test_a_module_whose_own_import_fails_names_the_missing_package(tmp_path):
    (tmp_path / "mymods.py").write_text("import not_a_package_xyz\n")
    proc = _run(tmp_path, "compare", "--model", "mymods:f", *TINY, "--out", "run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "importing 'mymods' failed: it imports 'not_a_package_xyz'" in proc.stderr
