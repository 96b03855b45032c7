"""The core imports with jax alone; extras fail with an error naming the extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCK_EXTRAS = textwrap.dedent(
    """
    import importlib.abc, sys

    class _Block(importlib.abc.MetaPathFinder):
        BLOCKED = ("flax", "optax", "matplotlib", "sklearn", "mnist1d", "tqdm", "chex")

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, _Block())
    """
)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_EXTRAS + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_core_imports_with_jax_only():
    r = _run(
        """
        import jax.numpy as jnp
        import leakyjax
        for name in leakyjax.__all__:
            getattr(leakyjax, name)
        y = leakyjax.leaky_relu(jnp.array([-1.0, 2.0]), 0.5)
        assert y.tolist() == [-0.5, 2.0], y
        assert isinstance(leakyjax.__version__, str)
        print("ok")
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("ok")
