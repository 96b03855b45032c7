"""The docs site: builds without a single warning, a page per public module, docstrings in
Markdown (no reST roles), no private names on the pages."""

from __future__ import annotations

import html
import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = (
    "leakyjax",
    "leakyjax.linen",
    "leakyjax.nnx",
    "leakyjax.equinox",
    "leakyjax.initializers",
    "leakyjax.diagnostics",
    "leakyjax.recycle",
    "leakyjax.train",
    "leakyjax.study",
)
#: reST that Markdown shows as it is: roles and directives
REST = re.compile(
    r":(?:func|mod|class|math|data|meth|attr|obj|exc|const|ref|doc):`"
    r"|^\s*\.\. [a-z-]+::",
    re.M,
)


def mkdocs_build(config: Path, site: Path) -> tuple[int, str]:
    """``mkdocs build --strict`` as `make docs` runs it; its exit status and output."""
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(config),
            "--site-dir",
            str(site),
        ],
        cwd=config.parent,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=900,
    )
    return r.returncode, r.stdout + r.stderr


def warnings_in(output: str) -> list[str]:
    return [line for line in output.splitlines() if "WARNING" in line]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs")
    out = tmp_path_factory.mktemp("site")
    rc, output = mkdocs_build(ROOT / "mkdocs.yml", out)
    assert rc == 0 and not warnings_in(output), output[-4000:]
    return out


def _text(page: Path) -> str:
    """The text a reader sees: tags, scripts and attributes (tooltips) dropped."""
    raw = page.read_text()
    raw = re.sub(r"<(script|style)\b.*?</\1>", "", raw, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


@pytest.mark.slow
def test_the_site_builds_in_strict_mode_without_a_warning(site):
    assert (site / "index.html").is_file()
    assert (site / "api" / "leakyjax" / "index.html").is_file()


def test_a_warning_fails_the_build(tmp_path):
    # What a fresh clone hit: a link to a file the site does not have. The build must
    # fail, and its warning must be visible (`--quiet` hid it).
    pytest.importorskip("mkdocs")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# x\n\n[license](LICENSE)\n")
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: t\nvalidation:\n  unrecognized_links: warn\n  not_found: warn\n"
    )
    rc, output = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert rc != 0 and warnings_in(output), output


def test_repository_links_point_where_the_site_has_them():
    sys.path.insert(0, str(ROOT))
    from tools.mkdocs_hooks import REPO_URL, rewrite_links

    # the two links that broke `make docs` on a fresh clone
    assert rewrite_links("[L](LICENSE)", "README.md") == (
        f"[L]({REPO_URL}/blob/main/LICENSE)"
    )
    assert rewrite_links("[c](../docs/COMPARE.md#how)", "benchmarks/README.md") == (
        "[c](../COMPARE.md#how)"
    )
    # README's own links, as the home page
    assert rewrite_links("[g](docs/GUIDE.md)", "README.md") == "[g](GUIDE.md)"
    assert rewrite_links("[b](benchmarks/README.md#x)", "README.md") == (
        "[b](benchmarks/README.md#x)"
    )
    assert rewrite_links("![p](docs/x.png)", "README.md") == "![p](x.png)"
    for kept in ("[a](https://x.org/a)", "[a](#here)", "[`f`][leakyjax.relu]"):
        assert rewrite_links(kept, "README.md") == kept


def test_every_public_module_has_a_page_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {p.stem: p.read_text() for p in (ROOT / "docs" / "api").glob("*.md")}
    for module in PUBLIC:
        stem = module.split(".")[-1]
        assert f"::: {module}" in pages.get(stem, ""), module
        assert f"api/{stem}.md" in nav, module
    assert "::: leakyjax.get" in pages["registry"]
    # the functions come first on the leakyjax page
    directives = re.findall(r"^::: (\S+)", pages["leakyjax"], re.M)
    assert directives[:3] == ["leakyjax", "leakyjax.relu", "leakyjax.leaky_relu"]
    import leakyjax

    functions = [
        n for n in leakyjax.__all__ if inspect.isfunction(getattr(leakyjax, n))
    ]
    directives += re.findall(r"^::: (\S+)", pages["registry"], re.M)
    # on the recycle page
    documented = set(directives) | {
        "leakyjax.recycle_dormant",
        "leakyjax.continual_backprop",
    }
    for name in functions:
        assert f"leakyjax.{name}" in documented, name


@pytest.mark.slow
def test_pages_show_no_private_names_and_no_raw_rest(site):
    for page in sorted(site.rglob("*.html")):
        rel = page.relative_to(site).as_posix()
        if rel.startswith(("assets/", "search/")) or rel == "404.html":
            continue
        raw = page.read_text()
        # headings, signatures, base classes: what the API reference generates
        assert "_Stateless" not in raw, rel
        assert not re.search(r'id="leakyjax\._src', raw), rel
        for sig in re.findall(r'class="doc-signature.*?</code>', raw, re.S):
            assert "_src" not in _text_of(sig), (rel, _text_of(sig)[:200])
        if not rel.startswith("api/"):  # the pages' own text (docstrings: below)
            assert not REST.search(_text(page)), rel


def _text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def _public_docstrings():
    for module_name in PUBLIC:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # pragma: no cover - an extra that is not installed
            continue
        yield module_name, module.__doc__ or ""
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                continue
            yield f"{module_name}.{name}", inspect.getdoc(obj) or ""
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") and attr not in ("__call__", "__init__"):
                        continue
                    doc = getattr(member, "__doc__", None)
                    if isinstance(doc, str) and callable(member):
                        yield f"{module_name}.{name}.{attr}", doc


def test_public_docstrings_are_markdown_and_name_no_private_module():
    # mkdocstrings renders Markdown: backticks, [name][] cross-references, $...$ maths.
    # A reST role (:func:`x`) or directive (.. math::) shows up as raw text on the site.
    pytest.importorskip("flax")
    pytest.importorskip("equinox")
    bad = []
    for where, doc in _public_docstrings():
        for m in REST.finditer(doc):
            line = doc[: m.start()].count("\n") + 1
            bad.append(f"{where} (docstring line {line}): {m[0].strip()}")
        if "leakyjax._src" in doc:
            bad.append(f"{where}: names the private leakyjax._src")
    assert not bad, "\n".join(bad)
