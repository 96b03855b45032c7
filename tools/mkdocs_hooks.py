"""mkdocs hooks: add the repository's own markdown files to the site, unchanged on disk.

README.md becomes the guide's home page (its ``docs/`` links rewritten to the site's
layout); benchmarks/README.md with the files it links, CONTRIBUTING.md and CHANGELOG.md are
added as they are.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]


def _readme() -> str:
    text = (ROOT / "README.md").read_text()
    # links and images into docs/ are relative to the site root there
    return re.sub(r"\]\(docs/", "](", text)


def on_files(files: Files, config) -> Files:
    pages = {
        "index.md": _readme(),
        "benchmarks/README.md": (ROOT / "benchmarks" / "README.md").read_text(),
        "CONTRIBUTING.md": (ROOT / "CONTRIBUTING.md").read_text(),
        "CHANGELOG.md": (ROOT / "CHANGELOG.md").read_text(),
    }
    for uri, content in pages.items():
        files.append(File.generated(config, uri, content=content))
    for path in sorted((ROOT / "benchmarks" / "results").glob("*")):
        uri = f"benchmarks/results/{path.name}"
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
