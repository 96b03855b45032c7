"""The fault-injection tests of ``tests/test_faults.py`` as a larger storm.

``make test`` runs them small (20 kills within 25 s per store, 3 racing
processes); this runs the same tests with more kills, a longer budget and more
processes racing on one output directory, for CI or before a release::

    python -m tests.fault_storm                       # 200 kills, 300 s, 6 processes
    python -m tests.fault_storm --kills 50 --budget 60 --procs 4

The exit status is pytest's (0: every invariant held after every kill).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fault_storm", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--kills", type=int, default=200, help="SIGKILLs per store (default 200)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=300.0,
        help="seconds of kill loop per store (default 300)",
    )
    parser.add_argument(
        "--procs",
        type=int,
        default=6,
        help="processes racing on one output directory (default 6)",
    )
    args, rest = parser.parse_known_args(argv)
    if args.kills < 1 or args.budget <= 0 or args.procs < 2:
        parser.error("--kills >= 1, --budget > 0 and --procs >= 2, please.")
    os.environ["LEAKYJAX_FAULT_KILLS"] = str(args.kills)
    os.environ["LEAKYJAX_FAULT_BUDGET"] = str(args.budget)
    os.environ["LEAKYJAX_FAULT_PROCS"] = str(args.procs)
    import pytest

    here = Path(__file__).parent
    return int(
        pytest.main(
            [
                "-q",
                "-p",
                "no:randomly",
                "-s",
                str(here / "test_faults.py"),
                str(here / "test_part_store.py"),
                *rest,
            ]
        )
    )


if __name__ == "__main__":
    sys.exit(main())
