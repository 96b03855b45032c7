"""Every ```python block of the README and the docs runs on its own.

Each block runs in a fresh namespace (no state from earlier blocks). A block that is not
meant to run (pseudo-code, needs a GPU, minutes of training) is preceded by the line
``<!-- no-run -->``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "benchmarks" / "README.md",
]
FENCE = re.compile(r"(?P<mark><!-- no-run -->\n)?```python\n(?P<code>.*?)\n```", re.S)


def blocks():
    for page in PAGES:
        if not page.exists():
            continue
        text = page.read_text()
        for m in FENCE.finditer(text):
            line = text[: m.start("code")].count("\n") + 1
            yield pytest.param(
                m["code"],
                id=f"{page.relative_to(ROOT)}:{line}",
                marks=[pytest.mark.skip(reason="marked no-run")] if m["mark"] else [],
            )


@pytest.mark.parametrize("code", list(blocks()))
def test_block_runs(code, tmp_path, monkeypatch):
    pytest.importorskip("flax")
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    exec(compile(code, "<doc block>", "exec"), {"__name__": "__doc_block__"})


def test_blocks_found():
    assert len(list(blocks())) >= 3
