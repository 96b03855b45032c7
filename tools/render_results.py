"""``python -m tools.render_results``: render the docs' results blocks; see tools/results.py."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tools.results import (
    ROOT,
    SOURCES,
    TABLES,
    load,
    load_tables,
    render_all,
    run_source,
    staleness,
    stamp,
)


def _fresh(src) -> bool:
    return (ROOT / src.results).exists() and staleness(src, load(src)) is None


def main(argv: Sequence[str] | None = None) -> int:
    load_tables()
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument(
        "--check", action="store_true", help="fail if a block is out of date"
    )
    p.add_argument(
        "--run", nargs="*", metavar="NAME", help="rerun sources (all if none)"
    )
    p.add_argument(
        "--collect",
        nargs="+",
        metavar="NAME",
        help="collect runs/results/NAME as it is",
    )
    p.add_argument(
        "--slow", action="store_true", help="with --run: include slow sources"
    )
    p.add_argument(
        "--stale",
        action="store_true",
        help="with --run and no names: only sources that are missing or stale",
    )
    p.add_argument("--list", action="store_true", help="list sources and tables")
    p.add_argument(
        "--stamp",
        action="store_true",
        help="record the freshness digests in results files made before they existed "
        "(only those fresh by their recorded code digest or commit)",
    )
    args = p.parse_args(argv)
    if args.list:
        for s in SOURCES.values():
            stale = staleness(s, load(s)) if (ROOT / s.results).exists() else "missing"
            print(f"{s.name:24} {s.results:60} {stale or 'fresh'}")
            for t in TABLES.values():
                if t.source is s:
                    print(f"    table {t.name}")
        return 0
    if args.stamp:
        for s in SOURCES.values():
            if (ROOT / s.results).exists() and stamp(s):
                print(f"stamped {s.results}")
    if args.run is not None:
        names = args.run or [
            s.name
            for s in SOURCES.values()
            if s.command
            and (args.slow or not s.slow)
            and not (args.stale and _fresh(s))
        ]
        for n in names:
            if n not in SOURCES:
                p.error(f"--run: unknown source {n!r}; known: {', '.join(SOURCES)}")
            run_source(SOURCES[n])
    for n in args.collect or ():
        run_source(SOURCES[n], rerun=False)
    diffs = render_all(check=args.check)
    if args.check and diffs:
        print(
            "Rendered results blocks out of date (run `python -m tools.render_results`, "
            "or `make results` to remeasure):\n  " + "\n  ".join(diffs),
            file=sys.stderr,
        )
        return 1
    for d in diffs:
        print(f"rendered {d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
