"""Benchmark JSON -> markdown tables and PNG plots.

Usage::

    python -m benchmarks.report benchmarks/results/activations_speed_cpu.json
    python -m benchmarks.report benchmarks/results/*.json --out-dir /tmp/report

For every JSON it writes ``<stem>.md`` (all tables) next to it (or into
``--out-dir``) and PNG plots: for ``bench_activations`` one
``<stem>_gbps_<outputs>.png`` per output mode (GB/s vs n per function, one panel
per pass and dtype, the copy roofline in black); for ``bench_train_step``
``<stem>_memory.png`` (compiled temp memory per activation).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from leakyjax._src.io import save_figure, write_text

LIB_ORDER = ["copy", "jax.nn", "leakyjax", "flax.linen", "torch", "torch.compile"]
DTYPE_SHORT = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}


def _fmt_us(v: float) -> str:
    if v >= 1e4:
        return f"{v / 1e3:.1f} ms"
    if v >= 100:
        return f"{v:.0f} µs"
    return f"{v:.1f} µs"


def _mib(b: int) -> str:
    return f"{b / 2**20:.1f}"


def environment_line(env: dict, config: dict) -> str:
    dev = env.get("device", "?")
    cpu = env.get("cpu_model") or env.get("processor") or "?"
    parts = [
        f"**{env.get('backend', '?')}** ({dev}"
        + (f"; host CPU {cpu}, {env.get('cpu_count', '?')} cores" if cpu else "")
        + ")",
        f"jax {env.get('jax')}, jaxlib {env.get('jaxlib')}",
        f"python {env.get('python')}",
        f"date {env.get('date')}",
    ]
    if config.get("torch_version"):
        parts.append(f"torch {config['torch_version']}")
    line = " · ".join(parts)
    if config.get("command"):
        line += f"\n\nCommand: `{config['command'].strip()}`"
    if config.get("wall_s") is not None:
        line += f" ({config['wall_s']:.0f} s)"
    return line


# --------------------------------------------------------------------------- #
# Activations
# --------------------------------------------------------------------------- #
def _fn_order(fns: set[str]) -> list[str]:
    def key(fn: str):
        lib = next(
            (
                lib
                for lib in sorted(LIB_ORDER, key=len, reverse=True)
                if fn.startswith(lib + ".")
            ),
            fn,
        )
        name = fn[len(lib) + 1 :]
        return (LIB_ORDER.index(lib) if lib in LIB_ORDER else 99, name)

    return sorted(fns, key=key)


def _cell(r: dict) -> str:
    if r is None:
        return "—"
    ratio = r["ratio_relu_min"] if r["lib"] == "jax.nn" else r.get("ratio_ref_min")
    parts = [f"{_fmt_us(r['min_us'])} ({_fmt_us(r['median_us'])})"]
    if r.get("pct_roofline") is not None:
        parts.append(f"{r['pct_roofline']:.0f}%")
    if ratio is not None and r["lib"] != "copy":
        parts.append(f"×{ratio:.2f}")
    return " · ".join(parts)


def activation_checks_md(data: dict) -> str:
    checks = data.get("checks") or []
    if not checks:
        return ""
    lines = ["| check | value | limit | result |", "|---|---|---|---|"]
    for c in checks:
        if c.get("ratio_paired") is not None:
            value = (
                f"**{c['ratio_paired']:.2f}×** paired (min {c['ratio_min']:.2f}×, "
                f"median {c['ratio_median']:.2f}×)"
            )
            if c.get("reference_ratio_paired") is not None:
                value += f"; jax.nn.leaky_relu: {c['reference_ratio_paired']:.2f}×"
        elif "ratio_min" in c:
            value = f"{c['ratio_min']:.2f}× (median {c['ratio_median']:.2f}×)"
        else:
            value = f"{c['pct_roofline']:.1f}%"
        lines.append(
            f"| {c['check']} | {value} | {c['limit']} | "
            f"{'pass' if c['passed'] else '**FAIL**'} |"
        )
    return "\n".join(lines)


def activation_tables_md(
    data: dict, passes=None, outputs=None, dtypes=None
) -> list[tuple[str, str]]:
    """``[(title, table)]``, one per (pass, outputs, dtype)."""
    rows = data["results"]
    cfg = data["config"]
    passes = passes or cfg["passes"]
    outputs = outputs or sorted({r["outputs"] for r in rows}, reverse=True)
    dtypes = dtypes or cfg["dtypes"]
    sizes = sorted({r["n"] for r in rows})
    idx = {(r["fn"], r["n"], r["dtype"], r["pass"], r["outputs"]): r for r in rows}
    out = []
    for p in passes:
        for o in outputs:
            for d in dtypes:
                fns = _fn_order(
                    {
                        r["fn"]
                        for r in rows
                        if r["pass"] == p and r["outputs"] == o and r["dtype"] == d
                    }
                )
                if not fns:
                    continue
                head = "| function | " + " | ".join(
                    f"n = 2^{int(math.log2(n))}" for n in sizes
                )
                lines = [head + " |", "|---" * (len(sizes) + 1) + "|"]
                for fn in fns:
                    cells = [_cell(idx.get((fn, n, d, p, o))) for n in sizes]
                    lines.append(f"| {fn} | " + " | ".join(cells) + " |")
                out.append((f"{p}, {o} outputs, {d}", "\n".join(lines)))
    return out


ACT_LEGEND = (
    "Cells: min (median) time per call · % of the copy roofline (copy time / "
    "time, same pass, output mode, n and dtype) · time ratio (min) to jax.nn: "
    "for jax.nn rows to jax.nn.relu, for the others to the jax.nn function of the "
    "same name (prelu, rrelu and flax.linen.PReLU to jax.nn.leaky_relu). fwd "
    "moves 2n elements, fwd+bwd 4n (reads x and the cotangent, writes y and dx). "
    "torch rows use fresh outputs and are compared with the jax fresh copy."
)


def activations_md(data: dict) -> str:
    parts = [
        "## Elementwise activations",
        environment_line(data["environment"], data["config"]),
        f"Rounds: {data['config']['rounds']}, each a batch of synchronous calls "
        f"of about {data['config']['target_ms']} ms; variants interleaved in a "
        "shuffled order every round.",
    ]
    checks = activation_checks_md(data)
    if checks:
        parts += ["### Checks", checks]
    parts.append(ACT_LEGEND)
    for title, table in activation_tables_md(data):
        parts += [f"### {title}", table]
    return "\n\n".join(parts) + "\n"


def plot_activations(data: dict, path_stem: Path) -> list[Path]:
    from leakyjax._src.io import pyplot

    plt = pyplot()

    rows = data["results"]
    passes = data["config"]["passes"]
    dtypes = data["config"]["dtypes"]
    env = data["environment"]
    written = []
    styles = {
        "jax.nn": "-",
        "leakyjax": "--",
        "flax.linen": ":",
        "torch": "-.",
        "torch.compile": (0, (1, 1)),
    }
    names = sorted({r["name"] for r in rows if r["lib"] != "copy"})
    cmap = plt.get_cmap("tab10")
    colors = {n: cmap(i % 10) for i, n in enumerate(names)}
    for outputs in sorted({r["outputs"] for r in rows}):
        fig, axes = plt.subplots(
            len(passes),
            len(dtypes),
            figsize=(4.2 * len(dtypes), 3.4 * len(passes)),
            squeeze=False,
            sharex=True,
        )
        for i, p in enumerate(passes):
            for j, d in enumerate(dtypes):
                ax = axes[i][j]
                sel = [
                    r
                    for r in rows
                    if r["pass"] == p and r["dtype"] == d and r["outputs"] == outputs
                ]
                for fn in _fn_order({r["fn"] for r in sel}):
                    pts = sorted((r["n"], r["gbps"]) for r in sel if r["fn"] == fn)
                    lib = next(r["lib"] for r in sel if r["fn"] == fn)
                    name = next(r["name"] for r in sel if r["fn"] == fn)
                    xs = [math.log2(n) for n, _ in pts]
                    ys = [g for _, g in pts]
                    if lib == "copy":
                        ax.plot(xs, ys, color="black", lw=2.5, label="copy x*2")
                    else:
                        ax.plot(
                            xs,
                            ys,
                            linestyle=styles.get(lib, "-"),
                            color=colors[name],
                            marker="o",
                            ms=3,
                            lw=1.2,
                            label=fn,
                        )
                ax.set_title(f"{p}, {DTYPE_SHORT.get(d, d)}", fontsize=10)
                ax.set_xlabel("log2 n")
                ax.set_ylabel("GB/s (min time)")
                ax.set_yscale("log")
                ax.grid(alpha=0.3, which="both")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="center right", fontsize=7, frameon=False)
        fig.suptitle(
            f"{env.get('backend')} ({env.get('cpu_model') or env.get('device')}), "
            f"jax {env.get('jax')}, {outputs} outputs, {env.get('date')}",
            fontsize=10,
        )
        fig.tight_layout(rect=(0, 0, 0.80, 0.96))
        path = Path(f"{path_stem}_gbps_{outputs}.png")
        save_figure(fig, path, dpi=110)
        written.append(path)
    return written


# --------------------------------------------------------------------------- #
# Train step
# --------------------------------------------------------------------------- #
def _ratio(v) -> str:
    return "—" if v is None else f"{v:.2f}"


def train_memory_md(data: dict, shape: str) -> str:
    rows = [r for r in data["results"] if r["shape"] == shape]
    dtypes = data["config"]["dtypes"]
    acts = list(dict.fromkeys(r["act"] for r in rows))
    by = {(r["act"], r["dtype"]): r for r in rows}
    head = "| activation | " + " | ".join(
        f"{DTYPE_SHORT.get(d, d)} temp MiB (× relu)" for d in dtypes
    )
    head += " | " + " | ".join(
        f"{DTYPE_SHORT.get(d, d)} args / out MiB" for d in dtypes
    )
    lines = [head + " |", "|---" * (1 + 2 * len(dtypes)) + "|"]
    for a in acts:
        cells = []
        for d in dtypes:
            r = by.get((a, d))
            cells.append(
                "—"
                if r is None
                else f"{_mib(r['temp_bytes'])} ({_ratio(r['temp_vs_relu'])})"
            )
        for d in dtypes:
            r = by.get((a, d))
            cells.append(
                "—"
                if r is None
                else f"{_mib(r['argument_bytes'])} / {_mib(r['output_bytes'])}"
            )
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def train_time_md(rows: list[dict], dtypes: list[str]) -> str:
    acts = list(dict.fromkeys(r["act"] for r in rows))
    by = {(r["act"], r["dtype"]): r for r in rows}
    head = "| activation | " + " | ".join(
        f"{DTYPE_SHORT.get(d, d)} step min (median) ms | × identity | × relu | "
        f"compile s"
        for d in dtypes
    )
    lines = [head + " |", "|---" * (1 + 4 * len(dtypes)) + "|"]
    for a in acts:
        cells = []
        for d in dtypes:
            r = by.get((a, d))
            if r is None or r.get("min_ms") is None:
                cells += ["—", "—", "—", "—" if r is None else f"{r['compile_s']:.2f}"]
                continue
            cells += [
                f"{r['min_ms']:.2f} ({r['median_ms']:.2f})",
                f"{_ratio(r['ratio_identity_min'])} ({_ratio(r['ratio_identity_median'])})",
                f"{_ratio(r['ratio_relu_min'])} ({_ratio(r['ratio_relu_median'])})",
                f"{r['compile_s']:.2f}",
            ]
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def train_stack_md(ts: dict | None) -> list[str]:
    """Markdown parts for the CNN step and the seeds speedup (either may be absent)."""
    parts: list[str] = []
    if not ts:
        return parts
    cnn = ts.get("cnn")
    if cnn:
        parts += [
            f"### mnist1d CNN train step (batch {cnn[0]['batch']}, AdamW, float32; "
            "`make_model('cnn', spec, 10)`)",
            "Ratios to the identity and to the `relu` spec (leakyjax.relu); "
            "temp MiB in the last column.",
            train_time_md(cnn, ["float32"]).replace(" |\n", " |\n", 1),
            "| spec | temp MiB | args / out MiB |\n|---|---|---|\n"
            + "\n".join(
                f"| {r['act']} | {_mib(r['temp_bytes'])} | "
                f"{_mib(r['argument_bytes'])} / {_mib(r['output_bytes'])} |"
                for r in cnn
            ),
        ]
    s = ts.get("seeds")
    if not s:
        return parts
    c = s["config"]
    parts += [
        "### Seeds in one program (`leakyjax compare`)",
        f"`train(TrainConfig(activation={c['activation']!r}, steps={c['steps']}), "
        f"seeds=range({s['num_seeds']}))` on {c['dataset']} {c['model']}: "
        f"**{s['together_wall_s']:.1f} s** in one program "
        f"(compile {s['together_compile_s']:.1f} s) vs "
        f"**{s['separate_wall_s']:.1f} s** for {s['num_seeds']} separate calls "
        f"(compile {s['separate_compile_s']:.1f} s in all): "
        f"**{s['speedup']:.2f}× faster** "
        f"({s['speedup_excluding_compile']:.2f}× excluding compilation)"
        + (
            f"; fastest of {s['repeats']} alternating repeats after a warm-up; "
            f"largest per-seed final test accuracy difference "
            f"{s['max_abs_diff_final_test_acc']:.4f}."
            if "repeats" in s
            else f". Same per-seed results: {s.get('same_results')}."
        )
        + (f" {s['note']}" if s.get("note") else ""),
    ]
    return parts


def train_step_md(data: dict, *, environment: bool = True) -> str:
    """The standalone report; ``environment=False`` leaves out the machine and
    command line (a docs block carries them in its provenance line)."""
    cfg = data["config"]
    parts = ["## Train step"]
    if environment:
        parts.append(environment_line(data["environment"], cfg))
    for shape, dims in cfg["shapes"].items():
        rows = [r for r in data["results"] if r["shape"] == shape]
        desc = f"B={dims['batch']}, W={dims['width']}, depth {dims['depth']}"
        parts += [
            f"### MLP, {shape} shape ({desc}): compiled memory",
            "Temp bytes from `compiled.memory_analysis()` (× relu: ratio to "
            "jax.nn.relu's temp bytes); arguments include the donated params.",
            train_memory_md(data, shape),
        ]
        if any(r.get("min_ms") is not None for r in rows):
            parts += [
                f"### MLP, {shape} shape ({desc}): step time, "
                f"{cfg['rounds'][shape]} interleaved rounds",
                "Ratios: min-based, median-based in parentheses.",
                train_time_md(rows, cfg["dtypes"]),
            ]
    parts += train_stack_md(data.get("train_stack"))
    checks = data.get("checks") or []
    if checks:
        lines = ["| check | value | limit | result |", "|---|---|---|---|"]
        for c in checks:
            if "temp bytes" in c["check"]:
                value, limit = _mib(c["value"]) + " MiB", _mib(c["limit"]) + " MiB"
            else:
                value = f"{c['value']:.2f}× (median {c['median']:.2f}×)"
                limit = f"{c['limit']}×"
            result = "pass" if c["passed"] else "**FAIL**"
            if not c.get("judged", True):
                result += " (GPU criterion; not judged on CPU)"
            lines.append(f"| {c['check']} | {value} | {limit} | {result} |")
        parts += ["### Checks", "\n".join(lines)]
    return "\n\n".join(parts) + "\n"


def plot_train_memory(data: dict, path_stem: Path) -> list[Path]:
    from leakyjax._src.io import pyplot

    plt = pyplot()

    cfg = data["config"]
    shapes = list(cfg["shapes"])
    fig, axes = plt.subplots(
        1, len(shapes), figsize=(6.5 * len(shapes), 4.2), squeeze=False
    )
    for ax, shape in zip(axes[0], shapes):
        rows = [r for r in data["results"] if r["shape"] == shape]
        acts = list(dict.fromkeys(r["act"] for r in rows))
        width = 0.8 / len(cfg["dtypes"])
        for k, d in enumerate(cfg["dtypes"]):
            by = {r["act"]: r for r in rows if r["dtype"] == d}
            ax.bar(
                [i + k * width for i in range(len(acts))],
                [by[a]["temp_bytes"] / 2**20 if a in by else 0 for a in acts],
                width,
                label=d,
            )
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(acts))])
        ax.set_xticklabels(acts, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("compiled temp MiB")
        dims = cfg["shapes"][shape]
        ax.set_title(
            f"MLP train step, {shape}: B={dims['batch']} W={dims['width']}", fontsize=10
        )
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    env = data["environment"]
    fig.suptitle(
        f"{env.get('backend')} ({env.get('cpu_model') or env.get('device')}), "
        f"jax {env.get('jax')}, {env.get('date')}",
        fontsize=10,
    )
    fig.tight_layout()
    path = Path(f"{path_stem}_memory.png")
    save_figure(fig, path, dpi=110)
    return [path]


# --------------------------------------------------------------------------- #
def render(data: dict) -> str:
    kind = data.get("benchmark")
    if kind == "activations":
        return activations_md(data)
    if kind == "train_step":
        return train_step_md(data)
    if kind == "train_stack":
        parts = [
            "## Train stack",
            environment_line(data["environment"], {"command": data.get("command")}),
            *train_stack_md(data),
        ]
        return "\n\n".join(parts) + "\n"
    raise ValueError(
        f"report: unknown benchmark kind {kind!r}; expected the JSON of "
        "bench_activations, bench_train_step or train_stack"
    )


def report(path: str | Path, out_dir: str | Path | None = None, plots: bool = True):
    """Writes ``<stem>.md`` and the PNGs; returns the written paths."""
    path = Path(path)
    data = json.loads(path.read_text())
    out_dir = Path(out_dir) if out_dir is not None else path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / path.stem
    md = Path(f"{stem}.md")
    write_text(md, render(data))
    written = [md]
    if plots:
        if data["benchmark"] == "activations":
            written += plot_activations(data, stem)
        elif data["benchmark"] == "train_step":
            written += plot_train_memory(data, stem)
    return written


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("json", nargs="+", help="benchmark result JSON files")
    p.add_argument("--out-dir", default=None, help="default: next to each JSON")
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args(argv)
    for j in args.json:
        if not Path(j).is_file():
            p.error(f"no such JSON file: {j}")
        for w in report(j, args.out_dir, plots=not args.no_plots):
            print(f"wrote {w}")


if __name__ == "__main__":
    main()
