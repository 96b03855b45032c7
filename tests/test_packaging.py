"""The core imports with jax alone; extras fail with an error naming the extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

BLOCK_EXTRAS = textwrap.dedent(
    """
    import importlib.abc, sys

    class _Block(importlib.abc.MetaPathFinder):
        BLOCKED = (
            "flax", "optax", "matplotlib", "sklearn", "scipy", "mnist1d", "tqdm", "chex",
            "equinox",
        )

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


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_package_description_is_generated_and_has_no_relative_links():
    # docs/PYPI.md is what the package index shows: generated from README.md, no images,
    # no relative links (an index page cannot resolve them).
    import re

    if not (ROOT / "tools" / "pypi_readme.py").exists():
        import pytest

        pytest.skip("tools/ not present")
    sys.path.insert(0, str(ROOT))
    try:
        from tools import pypi_readme
    finally:
        sys.path.remove(str(ROOT))
    text = (ROOT / "docs" / "PYPI.md").read_text()
    assert text == pypi_readme.render(), "run: python -m tools.pypi_readme"
    assert "![" not in text
    assert not re.findall(r"\]\((?!https?://)", text)
    # a pip user has no clone: no repository command, no repository file
    for needs_a_clone in (
        "make ",
        ".ci/run",
        "source distribution",
        "examples/",
        "tools.",
    ):
        assert needs_a_clone not in text.split("-->", 1)[1], needs_a_clone
    assert "pip install leakyjax" in text and "```python" in text


def test_project_urls_name_the_docs_source_changelog_and_issues():
    import tomllib

    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    urls = project["urls"]
    assert set(urls) == {"Documentation", "Source", "Changelog", "Issues"}
    assert all(u.startswith("https://") for u in urls.values())
    assert urls["Issues"].startswith(urls["Source"])


@pytest.mark.slow  # builds the sdist and the wheel
def test_sdist_and_wheel_hold_license_and_what_the_tests_need(tmp_path):
    import tarfile
    import zipfile

    import pytest

    if not _have("build") or not (ROOT / ".git").exists():
        pytest.skip("needs the `build` package and a git checkout")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--sdist",
            "--wheel",
            "--outdir",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (sdist,) = tmp_path.glob("*.tar.gz")
    (wheel,) = tmp_path.glob("*.whl")
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for need in (
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "tests/test_activations.py",
        "examples/flax_linen_mlp.py",
        "examples/dying_relu.py",
        "benchmarks/bench_activations.py",
        "benchmarks/common.py",
        "tools/results.py",
        "docs/PYPI.md",
        "leakyjax/py.typed",
    ):
        assert need in names, need
    with zipfile.ZipFile(wheel) as z:
        wnames = z.namelist()
        (meta,) = [n for n in wnames if n.endswith(".dist-info/METADATA")]
        metadata = z.read(meta).decode()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wnames), wnames
    assert "leakyjax/py.typed" in wnames
    assert "License-Expression: Apache-2.0" in metadata
    assert "Requires-Python: >=3.11" in metadata
    assert "![" not in metadata.split("\n\n", 1)[1]
