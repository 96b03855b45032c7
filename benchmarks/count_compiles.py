"""Run the ``leakyjax`` CLI in this process and count XLA compilations.

``python -m benchmarks.count_compiles OUT.json -- compare --quick ...`` runs
``leakyjax compare --quick ...`` and writes ``{"compiles", "cache_hits",
"compile_s", "wall_s", "rc"}`` to ``OUT.json``. A compilation is a backend
compile request (jax's ``/jax/core/compile/backend_compile_duration`` event)
that the persistent compilation cache did not answer
(``/jax/compilation_cache/cache_hits``).

``extract_revision`` gives the benchmarks that compare with an earlier revision
(``train_stack --before``, ``compile_share --before``) that revision's files.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def extract_revision(repo: Path, rev: str, dest: Path) -> Path:
    """The files of git revision ``rev`` of ``repo`` in a new folder ``dest``."""
    dest.mkdir()
    tar = subprocess.run(
        ["git", "-C", str(repo), "archive", rev], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
    return dest


def main(argv: list[str]) -> int:
    out, sep, *rest = argv
    assert sep == "--", "usage: python -m benchmarks.count_compiles OUT.json -- ARGS"
    import jax

    counts = {"requests": 0, "cache_hits": 0, "compile_s": 0.0}

    def on_duration(event: str, secs: float, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            counts["requests"] += 1
            counts["compile_s"] += secs

    def on_event(event: str, **_):
        if event == "/jax/compilation_cache/cache_hits":
            counts["cache_hits"] += 1

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
    from leakyjax._src.cli import main as cli

    t0 = time.perf_counter()
    rc = cli(rest)
    wall = time.perf_counter() - t0
    blob = {
        "args": rest,
        "rc": rc,
        "wall_s": wall,
        "compiles": counts["requests"] - counts["cache_hits"],
        "cache_hits": counts["cache_hits"],
        "compile_s": counts["compile_s"],
    }
    with open(out, "w") as f:
        json.dump(blob, f)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
