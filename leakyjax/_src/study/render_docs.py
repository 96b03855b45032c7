"""Renders the generated blocks of docs/STUDY.md and README.md from results JSON.

``python -m leakyjax._src.study.render_docs`` rewrites every block

    <!-- BEGIN generated: NAME -->
    ...
    <!-- END generated: NAME -->

with ``BLOCKS[NAME](json)`` from the committed results in ``docs/results/``;
``--check`` only reports blocks that differ (the test suite runs it). So no
number in these blocks is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
RESULTS = ROOT / "docs" / "results"


def _rai(res: dict) -> str:
    from leakyjax._src.study import rai

    return rai.render_markdown(res)


def _redo(res: dict) -> str:
    from leakyjax._src.study import redo

    return redo.render_markdown(res)


def _cure(rai_res: dict, redo_res: dict) -> str:
    """README: the measured comparison, leaky slope vs RAI vs recycling."""
    rows = {(r["task"], r["variant"]): r for r in redo_res["summary"]["table"]}
    bd = {(r["scheme"], r["width"], r["depth"]): r for r in rai_res["born_dead"]}
    w, d = 2, 20
    out = [
        "| remedy | born dead (ReLU, N=2, L=20) | permuted labels: mean acc / dormant |"
        " lr 0.3: final acc / dead |",
        "|---|---|---|---|",
    ]
    names = {
        "relu": ("none (ReLU, He)", "he"),
        "leaky_relu": ("leaky slope 0.01", None),
        "relu+rai": ("RAI initialisation", "rai_kernel"),
        "relu+redo": ("ReDo recycling (τ = 0.1)", None),
    }
    for v, (label, scheme) in names.items():
        p = rows[("permuted", v)]
        h = rows[("high_lr", v)]
        born = f"{bd[(scheme, w, d)]['p_constant']:.3f}" if scheme else "—"
        out.append(
            f"| {label} | {born} | {p['mean_acc']:.3f} / "
            f"{p['dormant_last_quarter']:.3f} | {h['final_acc']:.3f} / "
            f"{h['dead_last_quarter']:.3f} |"
        )
    return "\n".join(out)


def _load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


BLOCKS: dict[str, tuple[str, Callable[[], str]]] = {
    "rai": ("docs/STUDY.md", lambda: _rai(_load("rai"))),
    "redo": ("docs/STUDY.md", lambda: _redo(_load("redo"))),
    "cure": ("README.md", lambda: _cure(_load("rai"), _load("redo"))),
}


def _pattern(name: str) -> re.Pattern:
    return re.compile(
        rf"(<!-- BEGIN generated: {re.escape(name)} -->\n)(.*?)(<!-- END generated: "
        rf"{re.escape(name)} -->)",
        re.S,
    )


def render(*, check: bool = False) -> list[str]:
    """Rewrites (or with ``check``, compares) every block; returns stale names."""
    stale = []
    for name, (rel, make) in BLOCKS.items():
        path = ROOT / rel
        text = path.read_text()
        pat = _pattern(name)
        if not pat.search(text):
            stale.append(f"{name} (no block in {rel})")
            continue
        m = pat.search(text)
        new = text[: m.start(2)] + make() + "\n" + text[m.end(2) :]
        if new != text:
            stale.append(name)
            if not check:
                path.write_text(new)
    return stale


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--check", action="store_true", help="only report stale blocks")
    args = p.parse_args(argv)
    stale = render(check=args.check)
    for s in stale:
        print(f"{'stale' if args.check else 'updated'}: {s}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
