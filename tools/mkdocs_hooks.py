"""mkdocs hooks: add the repository's own markdown files to the site, unchanged on disk.

README.md becomes the site's home page; benchmarks/README.md with the results files it
links, CONTRIBUTING.md and CHANGELOG.md are added as they are. Their relative links are
written for the repository (GitHub shows them): each is rewritten to the page's place on
the site, or, for a file the site does not have (LICENSE, an example script), to the file
on GitHub.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
REPO_URL = "https://github.com/leakyjax/leakyjax"
#: repository path -> site path of the pages added here
PAGES = {
    "README.md": "index.md",
    "benchmarks/README.md": "benchmarks/README.md",
    "CONTRIBUTING.md": "CONTRIBUTING.md",
    "CHANGELOG.md": "CHANGELOG.md",
}
LINK = re.compile(r"(\]\()([^)\s]+)(\))")


def site_path(repo_path: str) -> str | None:
    """Where a repository file is on the site, or None when the site does not have it."""
    if repo_path in PAGES:
        return PAGES[repo_path]
    if repo_path.startswith("docs/"):
        return repo_path[len("docs/") :]
    if repo_path.startswith("benchmarks/results/"):
        return repo_path
    return None


def rewrite_links(text: str, repo_path: str) -> str:
    """``text`` of the repository file ``repo_path`` with its relative links pointing
    where they lead on the site."""
    here = posixpath.dirname(repo_path)
    page = PAGES.get(repo_path, repo_path)

    def repl(m: re.Match) -> str:
        target = m[2]
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):
            return m[0]
        path, sep, anchor = target.partition("#")
        full = posixpath.normpath(posixpath.join(here, path))
        on_site = site_path(full)
        if on_site is None:
            new = f"{REPO_URL}/blob/main/{full}"
        else:
            new = posixpath.relpath(on_site, posixpath.dirname(page) or ".")
        return m[1] + new + sep + anchor + m[3]

    return LINK.sub(repl, text)


def on_files(files: Files, config) -> Files:
    for repo_path, uri in PAGES.items():
        content = rewrite_links((ROOT / repo_path).read_text(), repo_path)
        files.append(File.generated(config, uri, content=content))
    for path in sorted((ROOT / "benchmarks" / "results").glob("*")):
        uri = f"benchmarks/results/{path.name}"
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
