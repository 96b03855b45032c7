"""Write docs/PYPI.md, the package index description: README.md's introduction, install
notes and quick start, without images or relative links (an index page cannot resolve them).

    python -m tools.pypi_readme            # rewrite docs/PYPI.md
    python -m tools.pypi_readme --check    # exit 1 if it is out of date (tests run this)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "PYPI.md"
FOOTER = (
    "\n---\n\nThe full guide (every function, module, diagnostic, the `compare` command, "
    "studies and benchmarks, with measured numbers) is README.md and the docs site built "
    "by `make docs` from the source distribution. License: Apache-2.0.\n"
)


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    nxt = text.find("\n## ", start + len(heading))
    return text[start : nxt if nxt >= 0 else len(text)].rstrip() + "\n"


def render() -> str:
    text = (ROOT / "README.md").read_text()
    intro = text[: text.index("\n## ")].rstrip() + "\n"
    body = intro + "\n" + _section(text, "## Quick start")
    body = re.sub(r"^!\[[^\]]*\]\([^)]*\)\n?", "", body, flags=re.M)  # images
    # relative links become their text; absolute ones stay
    body = re.sub(r"\[([^\]]+)\]\((?!https?://)[^)]*\)", r"\1", body)
    header = "<!-- generated from README.md by `python -m tools.pypi_readme`: do not edit -->\n"
    return header + body + FOOTER


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    new = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != new:
            print(
                "docs/PYPI.md is out of date: python -m tools.pypi_readme",
                file=sys.stderr,
            )
            return 1
        return 0
    TARGET.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
