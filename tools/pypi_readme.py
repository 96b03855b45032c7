"""Write docs/PYPI.md, the package index page: for someone who runs `pip install`.

It is README.md's introduction, its install section and its first example, with every
relative link made absolute (an index page cannot resolve them: docs pages go to the docs
site, other files to the repository) and no image, followed by the links of
``[project.urls]`` in pyproject.toml. Nothing on it needs a clone of the repository.

    python -m tools.pypi_readme            # rewrite docs/PYPI.md
    python -m tools.pypi_readme --check    # exit 1 if it is out of date (tests run this)
"""

from __future__ import annotations

import posixpath
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "PYPI.md"
#: README sections that go on the page, in order (the first example ends it)
SECTIONS = ("## Install", "## The functions")


def urls() -> dict[str, str]:
    """``[project.urls]`` of pyproject.toml."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]["urls"]


def absolute(target: str) -> str:
    """A README link as the index page needs it."""
    if re.match(r"^[a-z][a-z0-9+.-]*:|^#", target):
        return target
    u = urls()
    path, sep, anchor = target.partition("#")
    path = posixpath.normpath(path)
    if path == "README.md":
        page = ""
    elif path.startswith("docs/") and path.endswith(".md"):
        page = path[len("docs/") : -len(".md")] + "/"
    elif path == "benchmarks/README.md":
        page = "benchmarks/"
    elif path in ("CONTRIBUTING.md", "CHANGELOG.md"):
        page = path[: -len(".md")] + "/"
    else:
        return f"{u['Source']}/blob/main/{path}{sep}{anchor}"
    return u["Documentation"].rstrip("/") + "/en/latest/" + page + sep + anchor


def _section(text: str, heading: str) -> str:
    start = text.index(heading + "\n")
    nxt = text.find("\n## ", start + len(heading))
    return text[start : nxt if nxt >= 0 else len(text)].rstrip() + "\n"


def render() -> str:
    text = (ROOT / "README.md").read_text()
    title, rest = text.split("\n", 1)
    intro = rest[: rest.index("\n```")].strip()  # up to the repository's own commands
    body = "\n\n".join([title, intro, *(_section(text, h).strip() for h in SECTIONS)])
    body = re.sub(r"^!\[[^\]]*\]\([^)]*\)\n?", "", body, flags=re.M)  # images
    body = re.sub(
        r"(\[[^\]]+\]\()([^)\s]+)(\))", lambda m: m[1] + absolute(m[2]) + m[3], body
    )
    links = "\n".join(f"- {name}: {url}" for name, url in urls().items())
    header = "<!-- generated from README.md by `python -m tools.pypi_readme`: do not edit -->\n"
    return f"{header}{body}\n\n## Links\n\n{links}\n\nLicense: Apache-2.0.\n"


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
