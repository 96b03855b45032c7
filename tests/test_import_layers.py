"""No arrow up between the CLI, the studies and the training stack.

Every ``import`` in a module counts, the ones inside functions too: the CLI sits
above the studies (``cli`` -> ``study.studies``, never back), and the training loop
above its models and recycling (``train.loop`` -> ``train.models`` ->
``train.recycling``, never back to the loop).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(module: str) -> set[str]:
    """The ``leakyjax`` modules that ``module``'s source imports, anywhere in it."""
    path = ROOT / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = ROOT / module.replace(".", "/") / "__init__.py"
    if not path.exists():
        return set()
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from leakyjax._src.train import recycling`` is an arrow to the
            # submodule (its package's __init__ is a parent, not an arrow)
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if _exists(sub) else node.module)
    return {m for m in out if m.startswith("leakyjax.") and _exists(m)}


def _exists(module: str) -> bool:
    base = ROOT / module.replace(".", "/")
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _reaches(start: str, goal: str) -> list[str] | None:
    """An import path from ``start`` to ``goal``, or None."""
    seen, todo = {start: [start]}, [start]
    while todo:
        m = todo.pop()
        for n in sorted(_imports(m)):
            if n not in seen:
                seen[n] = [*seen[m], n]
                if n == goal:
                    return seen[n]
                todo.append(n)
    return None


@pytest.mark.parametrize(
    "low, high",
    [
        ("leakyjax._src.study.studies", "leakyjax._src.cli"),
        ("leakyjax._src._cli_common", "leakyjax._src.cli"),
        ("leakyjax._src.train.recycling", "leakyjax._src.train.loop"),
        ("leakyjax._src.train.models", "leakyjax._src.train.loop"),
        ("leakyjax._src.train.report", "leakyjax._src.train.compare"),
    ],
)
def test_no_arrow_up(low, high):
    assert _reaches(high, low) is not None  # the arrow down is real
    assert _reaches(low, high) is None, " -> ".join(_reaches(low, high) or [])


def test_the_training_stack_imports_no_study():
    """`compare` and its report live in `train/`: nothing there reaches up
    into the studies or the CLI."""
    train = ROOT / "leakyjax/_src/train"
    for path in sorted(train.glob("*.py")):
        module = f"leakyjax._src.train.{path.stem}".removesuffix(".__init__")
        for high in ("leakyjax._src.study.studies", "leakyjax._src.cli"):
            assert _reaches(module, high) is None, " -> ".join(_reaches(module, high))
