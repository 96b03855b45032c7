"""Renders the zoo memory table from a results JSON of ``benchmarks.zoo``.

Writes it between the ``<!-- zoo-memory:begin -->`` / ``<!-- zoo-memory:end -->``
markers of README.md and benchmarks/README.md (``--write``), or prints it.

Usage::

    python -m benchmarks.zoo_report benchmarks/results/zoo_cpu_<date>.json --write
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- zoo-memory:begin -->", "<!-- zoo-memory:end -->"
TARGETS = (ROOT / "README.md", ROOT / "benchmarks" / "README.md")
#: (column, leakyjax label); the cell is "counterpart / leakyjax" in MiB.
COLUMNS = [
    ("relu", "leakyjax.relu"),
    ("leaky_relu", "leakyjax.leaky_relu"),
    ("rrelu (key)", "leakyjax.rrelu"),
    ("relu6", "leakyjax.relu6"),
    ("hard_tanh", "leakyjax.hard_tanh"),
    ("hard_sigmoid", "leakyjax.hard_sigmoid"),
    ("elu", "leakyjax.elu"),
    ("celu", "leakyjax.celu"),
    ("selu", "leakyjax.selu"),
    ("prelu (learnable)", "leakyjax.prelu"),
]


def _mib(b: int) -> str:
    return f"{b / 2**20:.2f}"


def render(result: dict) -> str:
    rows = result["results"]
    by = {(r["model"], r["dtype"], r["act"]): r for r in rows}
    keys = []
    for r in rows:
        if (r["model"], r["dtype"]) not in keys:
            keys.append((r["model"], r["dtype"]))
    env, cfg = result["environment"], result["config"]
    head = (
        "| model | dtype | identity | 1-bit bound | "
        + " | ".join(c for c, _ in COLUMNS)
        + " |\n|"
        + "---|" * (4 + len(COLUMNS))
    )
    lines = [
        f"Compiled train-step temp memory, MiB (`memory_analysis()`, "
        f"{env['backend']}, jax {result['versions']['jax']}, commit "
        f"{(result.get('git_commit') or '?')[:7]}; `{cfg['command'].strip()}`). "
        "Cells: jax.nn counterpart / leakyjax (rrelu: the plain-autodiff formula; "
        "prelu: flax.linen.PReLU). 1-bit bound: identity + n/8 bytes per "
        "activation of n elements. **Bold**: above its counterpart or (the "
        "piecewise-linear family) above the bound by more than 1%.",
        "",
        head,
    ]
    for model, dtype in keys:
        ident = by.get((model, dtype, "identity"))
        if ident is None:
            continue
        bound = ident["temp_bytes"] + ident["act_elements"] // 8
        cells = []
        for _, label in COLUMNS:
            r = by.get((model, dtype, label))
            if r is None:
                cells.append("—")
                continue
            ref = by.get((model, dtype, r["ref"]))
            ours = _mib(r["temp_bytes"])
            over = ref is not None and r["temp_bytes"] > ref["temp_bytes"]
            if label not in ("leakyjax.elu", "leakyjax.celu", "leakyjax.selu"):
                over = over or (
                    label != "leakyjax.prelu" and r["temp_bytes"] > bound * 1.01
                )
            ours = f"**{ours}**" if over else ours
            cells.append(f"{_mib(ref['temp_bytes']) if ref else '—'} / {ours}")
        lines.append(
            f"| {model} | {dtype} | {_mib(ident['temp_bytes'])} | {_mib(bound)} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


def write(table: str, targets=TARGETS) -> None:
    for path in targets:
        text = path.read_text()
        if BEGIN not in text or END not in text:
            raise SystemExit(f"{path}: add the markers {BEGIN} ... {END} first")
        a, b = text.index(BEGIN) + len(BEGIN), text.index(END)
        path.write_text(text[:a] + "\n" + table + text[b:])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.zoo_report")
    p.add_argument("json")
    p.add_argument("--write", action="store_true", help="update the READMEs")
    args = p.parse_args(argv)
    table = render(json.loads(Path(args.json).read_text()))
    if args.write:
        write(table)
    print(table)


if __name__ == "__main__":
    main()
