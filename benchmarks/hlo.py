"""The kernels of one zoo train step, read from its optimized HLO.

The kernel tables of docs/MEMORY.md count the fusions and custom calls of each
compiled train step (`benchmarks/zoo.py`); this prints them for one cell, in
the order the program runs them, so a statement about the HLO (where the
one-bit pack sits, what it reads, whether it is fused with its producer) can be
checked on any machine:

    python -m benchmarks.hlo mlp float32 leakyjax.relu          # XLA:CPU
    python -m benchmarks.targets run h100 -- -m benchmarks.hlo mlp float32 \\
        leakyjax.rrelu --target h100                            # H100, no device

Each line is one kernel of the entry computation: its name, its result shape
and its operands (metadata dropped). `--grep TEXT` keeps the lines that contain
`TEXT` (`u8[` shows the packs and what reads them); `--full` prints the whole
optimized HLO instead. `--bench-shape` compiles at the zoo's bench shapes (the
memory tables' shapes) rather than its test shapes.
"""

from __future__ import annotations

import argparse
import re
import sys

from benchmarks.common import ZOO_BY_NAME, kernel_count, zoo_activations
from benchmarks.targets import TARGETS, compile_step
from benchmarks.zoo import DTYPES, _force_host_devices

_META = re.compile(r",? (metadata|backend_config|frontend_attributes)=.*$")


def entry_kernels(hlo_text: str) -> list[str]:
    """The fusions and custom calls of the entry computation, in program order,
    without their metadata."""
    lines, inside = [], False
    for line in hlo_text.splitlines():
        if line.startswith("ENTRY "):
            inside = True
        elif inside and line.startswith("}"):
            break
        elif inside and re.search(r"\b(fusion|custom-call)\(", line):
            lines.append(_META.sub("", line.strip()))
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.hlo", description=__doc__)
    p.add_argument("model", choices=sorted(ZOO_BY_NAME))
    p.add_argument("dtype", choices=sorted(DTYPES))
    p.add_argument("act", help="a zoo label (leakyjax.relu)")
    p.add_argument("--target", default="cpu", choices=sorted(TARGETS))
    p.add_argument("--bench-shape", action="store_true")
    p.add_argument("--grep", default=None, help="keep the lines containing this")
    p.add_argument("--full", action="store_true", help="the whole optimized HLO")
    args = p.parse_args(argv)
    model = ZOO_BY_NAME[args.model]
    _force_host_devices(argparse.Namespace(models=[args.model], target=args.target))
    acts = {a.label: a for a, _ in zoo_activations()}  # starts jax's backend
    if args.act not in acts:
        p.error(f"act: unknown {args.act!r}; choose from {sorted(acts)}")
    shape = model.bench_shape if args.bench_shape else model.test_shape
    step, params, x, y, _ = model.build(acts[args.act], DTYPES[args.dtype], **shape)
    text = compile_step(step, params, x, y, args.target, n=model.devices).as_text()
    if args.full:
        print(text)
        return 0
    counts = kernel_count(text)
    print(
        f"# {args.model} {args.dtype} {args.act}, {args.target}, {shape}: "
        f"{counts['fusions']} fusions, {counts['custom_calls']} custom calls "
        "(all computations; the entry's kernels below)"
    )
    for line in entry_kernels(text):
        if args.grep is None or args.grep in line:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
