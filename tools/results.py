"""The results registry: render the docs' tables from committed results files, and rerun those files.

Every number in README.md, docs/*.md and benchmarks/README.md sits between markers::

    <!-- results:NAME -->
    ...rendered by the table function registered as NAME...
    <!-- /results:NAME -->

and is rendered from a committed results file (JSON) that records the command that made it,
the git commit, the package versions and the machine (its ``provenance``). Commands::

    python -m tools.render_results              # re-render every marked block in place
    python -m tools.render_results --check      # exit 1 if a block differs (tests run this)
    python -m tools.render_results --run [NAME ...]   # rerun sources (= make results), render
    python -m tools.render_results --list       # sources, tables, freshness

A results file is *stale* when the code that produced its numbers changed in behaviour
(tools/fingerprint.py). Each file records, when it is made:

- ``code_ast``: a digest of the code it depends on (``Source.code``) with docstrings and
  comments left out, so a docstring or comment edit never makes results stale;
- for results made by training (``Source.behaviour``): ``behaviour``, the numeric
  fingerprint of what the activations, modules and initialisers compute (outputs and
  gradients on fixed inputs). The core files (``fingerprint.BEHAVIOUR_CODE``) are then
  judged by that fingerprint alone: a refactor that computes the same numbers leaves
  the results fresh.

Files made before these were recorded are judged by their raw code digest or commit.
A stale table is still rendered, with a line saying so. ``--check`` fails on a stale
block, except a timing block (``Source.slow``): timings are redone on a quiet machine,
so a stale timing block is reported as a warning (tests/test_results.py) and rendered
without the line until it is rerun.

Adding a table is one small function (see CONTRIBUTING.md)::

    @table("dying_relu", DYING_RELU)
    def _dying_relu(data: dict) -> str:
        return md_table(["activation", ...], [[r["activation"], ...] for r in data["runs"]])
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from tools import fingerprint

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/*.md", "benchmarks/README.md")
SCRATCH = Path("runs") / "results"

# --------------------------------------------------------------------------- #
# Registry
# --------------------------------------------------------------------------- #


class Source(NamedTuple):
    """A committed results file and the command that remakes it.

    Attributes:
        name: short name (``--run NAME``).
        results: the committed JSON file, relative to the repository root.
        command: shell command, run from the repository root with ``{out}`` replaced by a
            scratch folder under ``runs/results/NAME``; None: made by hand-run benchmarks.
        code: files or folders whose change makes the results stale.
        collect: ``collect(out) -> dict``: the data to commit, read from the scratch
            folder; default: ``out/results.json``.
        figures: ``((file in out, path in the repository), ...)`` copied after a run.
        slow: timings: not rerun by a plain ``make results`` (use a quiet machine);
            stale, they warn rather than fail the check.
        behaviour: made by training: the core files (``fingerprint.BEHAVIOUR_CODE``)
            are judged by the numeric fingerprint of what they compute, not their text.
    """

    name: str
    results: str
    command: str | None
    code: tuple[str, ...]
    collect: Callable[[Path], dict] | None = None
    figures: tuple[tuple[str, str], ...] = ()
    slow: bool = False
    behaviour: bool = False


class Table(NamedTuple):
    """A marked block: ``render(data, *more_data)`` from ``source`` (and ``more``)."""

    name: str
    source: Source
    render: Callable[..., str]
    more: tuple[Source, ...] = ()


SOURCES: dict[str, Source] = {}
TABLES: dict[str, Table] = {}


def source(src: Source) -> Source:
    """Register a `Source`; returns it."""
    if src.name in SOURCES:
        raise ValueError(f"source {src.name!r} registered twice")
    SOURCES[src.name] = src
    return src


def table(name: str, src: Source, *more: Source) -> Callable[[Callable], Callable]:
    """Decorator: register ``fn(data, *more_data) -> markdown`` as ``results:NAME``.

    ``more``: further sources a table reads (their data follow ``data``, in order).
    """

    def register(fn: Callable[..., str]) -> Callable[..., str]:
        if name in TABLES:
            raise ValueError(f"table {name!r} registered twice")
        TABLES[name] = Table(name, src, fn, more)
        return fn

    return register


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table."""
    out = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(out)


# --------------------------------------------------------------------------- #
# Provenance and freshness
# --------------------------------------------------------------------------- #


def _git(*args: str) -> str | None:
    try:
        r = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def code_digest(paths: Sequence[str]) -> str:
    """sha256 over the tracked files under ``paths`` as they are in the working tree."""
    files = (_git("ls-files", "-z", "--", *paths) or "").split("\0")
    h = hashlib.sha256()
    for f in sorted(x for x in files if x):
        p = ROOT / f
        h.update(f.encode() + b"\0")
        h.update(p.read_bytes() if p.is_file() else b"<deleted>")
        h.update(b"\0")
    return h.hexdigest()[:16]


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("jax", "jaxlib", "flax", "optax", "numpy", "leakyjax"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_isa() -> str | None:
    """The widest x86 vector extension XLA:CPU can use here (AVX-512, AVX2, SSE),
    or None: results of a run are the same bits on hosts of the same class
    (benchmarks/reproducibility.py)."""
    from benchmarks.reproducibility import native_isa

    isa = native_isa()
    return None if isa == "unknown" else isa


def text_code(src: Source) -> tuple[str, ...]:
    """The code paths of ``src`` judged by their text (without docstrings)."""
    if not src.behaviour:
        return src.code
    return tuple(p for p in src.code if p not in fingerprint.BEHAVIOUR_CODE)


def freshness_stamp(src: Source) -> dict:
    """The digests `staleness` compares, for the code as it is now."""
    out: dict[str, Any] = {
        "code": list(src.code),
        "code_ast": fingerprint.code_digest_ast(text_code(src)),
    }
    if src.behaviour:
        out["behaviour"] = fingerprint.behaviour()
        out["probe_version"] = fingerprint.PROBE_VERSION
    return out


def provenance(command: str, src: Source) -> dict:
    """What a results file records about how it was made."""
    code = src.code
    return {
        "command": command,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--", *code)),
        "code_digest": code_digest(code),
        **freshness_stamp(src),
        "versions": _versions(),
        "machine": {
            "cpu": _cpu_model(),
            "isa": _cpu_isa(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
        },
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def load(src: Source) -> dict:
    return json.loads((ROOT / src.results).read_text())


def prov_of(data: dict) -> dict:
    """The provenance of a results file, also for files made before it was recorded."""
    if "provenance" in data:
        return data["provenance"]
    env = data.get("environment", {})
    cfg = data.get("config", {})
    return {
        "command": data.get("command") or cfg.get("command"),
        "git_commit": env.get("git_commit") or data.get("git_commit"),
        "versions": {k: env[k] for k in ("python", "jax", "jaxlib") if k in env},
        "machine": {"cpu": env.get("cpu_model"), "cpu_count": env.get("cpu_count")},
        "date": env.get("date"),
    }


def staleness(src: Source, data: dict) -> str | None:
    """None when fresh, else why the results may not match the code.

    The answer does not depend on whether the change is committed yet, so a block rendered
    before a commit stays right after it.
    """
    prov = prov_of(data)
    if "code_ast" in prov:
        return _staleness_by_behaviour(src, prov)
    return _staleness_by_text(src, prov)


def _staleness_by_behaviour(src: Source, prov: dict) -> str | None:
    commit = prov.get("git_commit")
    since = f" since {commit[:8]}" if commit else ""
    recorded = tuple(prov.get("code") or src.code)
    now = src._replace(code=recorded)
    if prov["code_ast"] != fingerprint.code_digest_ast(text_code(now)):
        return f"the code it depends on changed{since}"
    if src.behaviour:
        if prov.get("probe_version") != fingerprint.PROBE_VERSION:
            return "recorded with another version of the behaviour probe"
        if prov.get("behaviour") != fingerprint.behaviour():
            return (
                f"what the activations, modules or initialisers compute changed{since}"
            )
    later = [p for p in text_code(src) if p not in recorded]
    return _changed_since(commit, later) if later else None


def stamp(src: Source) -> bool:
    """Record the freshness digests in a results file made before they existed.

    Only a file that is fresh by its recorded code digest or commit (made from the
    code as it is) is stamped; returns whether it was.
    """
    data = load(src)
    prov = data.get("provenance")
    if prov is None or "code_ast" in prov or _staleness_by_text(src, prov):
        return False
    prov.update(freshness_stamp(src))
    (ROOT / src.results).write_text(json.dumps(data, indent=1) + "\n")
    return True


def _staleness_by_text(src: Source, prov: dict) -> str | None:
    digest, commit = prov.get("code_digest"), prov.get("git_commit")
    since = f"the code it measures changed since {commit[:8]}" if commit else None
    # The digest covers the code paths recorded with the results; a path added to
    # ``Source.code`` later is checked by commit, like files made before digests.
    recorded = tuple(prov.get("code") or src.code) if digest is not None else ()
    if digest is not None and digest != code_digest(recorded):
        return since or "the code changed"
    later = [p for p in src.code if p not in recorded]
    return _changed_since(commit, later) if later else None


def _changed_since(commit: str | None, paths: Sequence[str]) -> str | None:
    """Whether a commit after ``commit`` (or the working tree) touched ``paths``."""
    if not commit:
        return "no git commit recorded"
    if _git("cat-file", "-e", f"{commit}^{{commit}}") is None:
        return f"commit {commit[:8]} is not in this history"
    changed = _git("log", "-1", "--format=%h", f"{commit}..HEAD", "--", *paths)
    dirty = _git("status", "--porcelain", "--", *paths)
    return (
        f"the code it measures changed since {commit[:8]}" if changed or dirty else None
    )


def provenance_line(src: Source, data: dict, *, mark_stale: bool = True) -> str:
    prov = prov_of(data)
    v = prov.get("versions", {})
    m = prov.get("machine", {})
    parts = [f"`{src.results}`"]
    if prov.get("command"):
        parts.append(f"`{prov['command']}`")
    commit = prov.get("git_commit")
    parts.append(f"commit {commit[:8]}" if commit else "commit not recorded")
    parts.append(", ".join(f"{k} {v[k]}" for k in ("jax", "flax", "optax") if k in v))
    if m.get("cpu"):
        isa = f" ({m['isa']})" if m.get("isa") else ""
        parts.append(f"{m['cpu']}{isa}, {m.get('cpu_count')} cores")
    if prov.get("date"):
        parts.append(str(prov["date"]))
    line = "<sub>Source: " + "; ".join(p for p in parts if p) + ".</sub>"
    stale = staleness(src, data) if mark_stale and not src.slow else None
    if stale:
        line += (
            f"\n\n> **Stale:** measured before the code changed ({stale}); "
            f"rerun: `python -m tools.render_results --run {src.name}`."
        )
    return line


def render_block(name: str) -> str:
    t = TABLES[name]
    sources = (t.source, *t.more)
    missing = [src for src in sources if not (ROOT / src.results).is_file()]
    if missing:  # tests/test_results.py fails on this; the docs say what to run
        return "\n\n".join(
            f"> **Not measured yet:** `{src.results}` is missing; run "
            f"`python -m tools.render_results --run {src.name}`."
            for src in missing
        )
    data = [load(src) for src in sources]
    lines = [provenance_line(src, d) for src, d in zip(sources, data)]
    return t.render(*data).rstrip() + "\n\n" + "\n\n".join(lines)


# --------------------------------------------------------------------------- #
# Markers
# --------------------------------------------------------------------------- #

BLOCK = re.compile(
    r"(<!-- results:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(\n?<!-- /results:(?P=name) -->)",
    re.S,
)


def doc_files() -> list[Path]:
    out: list[Path] = []
    for pattern in DOCS:
        out += sorted(ROOT.glob(pattern))
    return out


def render_text(text: str, where: str = "") -> tuple[str, list[str]]:
    """``text`` with every block re-rendered; and the names of blocks that changed."""
    changed: list[str] = []

    def repl(m: re.Match) -> str:
        name = m["name"]
        if name not in TABLES:
            raise KeyError(f"{where}: no table registered as results:{name}")
        body = render_block(name) + "\n"
        if body != m["body"] + "\n" and body != m["body"]:
            changed.append(name)
        return m[1] + body + "<!-- /results:" + name + " -->"

    return BLOCK.sub(repl, text), changed


def render_all(*, check: bool = False) -> list[str]:
    """Re-render all docs (or, with check, only report); returns 'file: block' that differ."""
    diffs = []
    for path in doc_files():
        text = path.read_text()
        new, changed = render_text(text, str(path.relative_to(ROOT)))
        diffs += [f"{path.relative_to(ROOT)}: results:{n}" for n in changed]
        if changed and not check:
            path.write_text(new)
    return diffs


def used_tables() -> set[str]:
    return {m["name"] for p in doc_files() for m in BLOCK.finditer(p.read_text())}


# --------------------------------------------------------------------------- #
# Rerunning
# --------------------------------------------------------------------------- #


def run_source(
    src: Source, *, python: str = sys.executable, rerun: bool = True
) -> None:
    """Run a source's command into a scratch folder and commit its results file.

    With ``rerun=False`` the scratch folder of an earlier run of the same command (at the
    same commit) is collected as it is.
    """
    if src.command is None:
        raise ValueError(f"{src.name}: no command (see its results file's command)")
    out = ROOT / SCRATCH / src.name
    if rerun:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        command = src.command.format(
            out=shlex.quote(str(out)), python=shlex.quote(python)
        )
        print(f"[results] {src.name}: {command}", flush=True)
        subprocess.run(command, shell=True, check=True, cwd=ROOT)
    data = (
        src.collect(out)
        if src.collect
        else json.loads((out / "results.json").read_text())
    )
    data = {
        "provenance": provenance(src.command.format(out="OUT", python="python"), src),
        **data,
    }
    dest = ROOT / src.results
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    for name, target in src.figures:
        shutil.copyfile(out / name, ROOT / target)


def load_tables() -> None:
    """Import the module that registers the tables (tools/results_tables.py)."""
    import tools.results_tables  # noqa: F401
