"""The registry of results files (sources) and the tables rendered from them.

One source per committed results file; one ``@table`` function per marked block. See
tools/results.py for the mechanism and CONTRIBUTING.md for how to add one.
"""

from __future__ import annotations

import json
from pathlib import Path

from tools.results import Source, md_table, source, table

# Code that every training-based result depends on (git pathspecs; globs allowed).
_CORE = (
    "leakyjax/_src/activations.py",
    "leakyjax/_src/_*.py",  # the activations' helpers (inputs, rules, bits, platform)
    "leakyjax/_src/initializers.py",
    "leakyjax/_src/registry.py",
    "leakyjax/_src/table.py",  # the registry's entries
)
_TRAIN = (
    *_CORE,
    "leakyjax/_src/linen.py",
    "leakyjax/_src/modules.py",  # the linen modules' common base
    "leakyjax/_src/names.py",
    "leakyjax/_src/optim.py",
    "leakyjax/_src/train",
)
# The zoo runs the functions in linen, nnx and equinox models.
_ZOO_CODE = (
    *_CORE,
    "leakyjax/_src/linen.py",
    "leakyjax/_src/modules.py",
    "leakyjax/_src/nnx.py",
    "leakyjax/_src/equinox.py",
)


# --------------------------------------------------------------------------- #
# Timing benchmarks (slow: rerun on a quiet machine with `make results-slow`)
# --------------------------------------------------------------------------- #

_BENCH = (*_CORE, "benchmarks/common.py", "benchmarks/report.py")

ACTIVATIONS_SPEED = source(
    Source(
        "activations_speed",
        "benchmarks/results/activations_speed_cpu.json",
        "{python} -m benchmarks.bench_activations --sizes 20 --dtypes float32,bfloat16 "
        "--functions relu,leaky_relu,relu6,elu --passes fwd+bwd,dx "
        "--outputs fresh,donated --torch off --rounds 15 --out {out}/results.json"
        # it exits 1 when a check fails: the measurement is still the result
        " || test -f {out}/results.json",
        (*_BENCH, "benchmarks/bench_activations.py"),
        slow=True,
    )
)

ACTIVATIONS_SPEED_2D = source(
    Source(
        "activations_speed_2d",
        "benchmarks/results/activations_speed_2d_cpu.json",
        "{python} -m benchmarks.bench_activations --shape 1024,1024 "
        "--dtypes float32,bfloat16 --functions relu,leaky_relu --passes fwd+bwd,dx "
        "--outputs fresh,donated --torch off --rounds 15 --out {out}/results.json"
        " || test -f {out}/results.json",
        (*_BENCH, "benchmarks/bench_activations.py"),
        slow=True,
    )
)

ACTIVATIONS_EAGER = source(
    Source(
        "activations_eager",
        "benchmarks/results/activations_eager_cpu.json",
        "{python} -m benchmarks.bench_activations --eager --out {out}/results.json"
        " || test -f {out}/results.json",
        (*_BENCH, "benchmarks/bench_activations.py"),
        slow=True,
    )
)

TRAIN_STEP = source(
    Source(
        "train_step",
        "benchmarks/results/train_step_cpu.json",
        "{python} -m benchmarks.bench_train_step --anchors-rounds 0 --no-train-stack "
        "--rounds 7 --out {out}/results.json",
        (*_BENCH, "benchmarks/bench_train_step.py"),
        slow=True,  # times too; memory alone is deterministic
    )
)

#: The revision `make demo` is measured against: the training stack before issue 17.
DEMO_BEFORE = "682144b"

TRAIN_STACK = source(
    Source(
        "train_stack",
        "benchmarks/results/train_stack_cpu.json",
        "{python} -m benchmarks.train_stack --parts loop,demo,seeds "
        f"--before {DEMO_BEFORE} --loop-steps 20,220 --loop-rounds 3 --steps 1000 "
        "--out {out}/results.json",
        (
            *_TRAIN,
            "leakyjax/_src/cli.py",
            "leakyjax/_src/diagnostics",
            "benchmarks/train_stack.py",
            "benchmarks/count_compiles.py",
        ),
        slow=True,
        behaviour=True,
    )
)


@table("activations_speed", ACTIVATIONS_SPEED)
@table("activations_speed_2d", ACTIVATIONS_SPEED_2D)
def _activations_speed(data: dict) -> str:
    """The checks, then one table: a column per (pass, dtype, outputs), at one n."""
    from benchmarks.report import ACT_LEGEND, _cell, _fn_order, activation_checks_md

    rows = data["results"]
    cols = list(dict.fromkeys((r["pass"], r["dtype"], r["outputs"]) for r in rows))
    idx = {(r["fn"], r["pass"], r["dtype"], r["outputs"]): r for r in rows}
    short = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}
    body = [
        [fn, *(_cell(idx.get((fn, *c))) for c in cols)]
        for fn in _fn_order({r["fn"] for r in rows})
    ]
    header = ["function", *(f"{p} {short.get(d, d)} {o}" for p, d, o in cols)]
    sizes = ", ".join(str(n) for n in sorted({r["n"] for r in rows}))
    shape = data["config"].get("shape")
    where = f"Shape {tuple(shape)}, n = {sizes}" if shape else f"n = {sizes} (1-D)"
    return (
        "Checks (paired ratio: the median over rounds of the per-round time ratio):"
        "\n\n" + activation_checks_md(data) + "\n\n"
        f"{where}. {ACT_LEGEND}\n\n" + md_table(header, body)
    )


ACTIVATIONS_SWEEP = source(
    Source(
        "activations_sweep",
        "benchmarks/results/activations_sweep_cpu.json",
        "{python} -m benchmarks.bench_activations --sizes 10,12,14,16,18,20,22,24,26 "
        "--dtypes float32,bfloat16 --functions relu,leaky_relu --passes fwd+bwd,dx "
        "--outputs fresh --torch off --rounds 9 --out {out}/results.json"
        " || test -f {out}/results.json",
        (*_BENCH, "benchmarks/bench_activations.py"),
        slow=True,
    )
)


# The small sizes again with the process pinned to one core: what is left of a
# small array's ratio when no kernel can be handed to another thread.
ACTIVATIONS_SWEEP_1CORE = source(
    Source(
        "activations_sweep_1core",
        "benchmarks/results/activations_sweep_1core_cpu.json",
        "taskset -c 0 {python} -m benchmarks.bench_activations "
        "--sizes 10,11,12,13,14,15,16,17,18 --dtypes float32,bfloat16 "
        "--functions relu,leaky_relu --passes fwd+bwd,dx --outputs fresh --torch off "
        "--rounds 9 --out {out}/results.json || test -f {out}/results.json",
        (*_BENCH, "benchmarks/bench_activations.py"),
        slow=True,
    )
)


@table("activations_sweep", ACTIVATIONS_SWEEP)
@table("activations_sweep_1core", ACTIVATIONS_SWEEP_1CORE)
def _activations_sweep(data: dict) -> str:
    """Per size: leakyjax / its jax.nn counterpart (and / jax.nn.relu), paired."""
    rows = [r for r in data["results"] if r.get("lib") == "leakyjax"]
    cols = list(dict.fromkeys((r["fn"], r["pass"], r["dtype"]) for r in rows))
    idx = {(r["fn"], r["pass"], r["dtype"], r["log2n"]): r for r in data["results"]}
    sizes = sorted({r["log2n"] for r in rows})
    short = {"float32": "f32", "bfloat16": "bf16"}
    limit = {"fwd+bwd": 1.10, "dx": 1.15}
    body, above = [], 0
    for lg in sizes:
        cells = []
        for fn, ps, dt in cols:
            r = idx.get((fn, ps, dt, lg))
            if r is None or r.get("ratio_ref_paired") is None:
                cells.append("—")
                continue
            over = r["ratio_ref_paired"] > limit[ps]
            above += over
            cell = f"{r['ratio_ref_paired']:.2f}×"
            if fn != "leakyjax.relu":
                cell += f" ({r['ratio_relu_paired']:.2f}×)"
            cells.append(f"**{cell}**" if over else cell)
        body.append([f"2^{lg}", *cells])
    header = [
        "n (1-D)",
        *(
            f"{fn.removeprefix('leakyjax.')} {ps} {short.get(dt, dt)}"
            for fn, ps, dt in cols
        ),
    ]
    text = (
        "leakyjax / its jax.nn counterpart, paired within each round (the median of "
        "the per-round ratio); in parentheses, / jax.nn.relu. **Bold**: above 1.10× "
        f"(fwd+bwd) or 1.15× (dx): {above} cells.\n\n" + md_table(header, body)
    )
    if all(r.get("kernels") is None for r in rows):
        return text
    kbody = []
    for lg in sizes:
        cells = []
        for fn, ps, dt in cols:
            r = idx.get((fn, ps, dt, lg))
            ref = idx.get((f"jax.nn.{r['ref']}", ps, dt, lg)) if r else None
            known = r and ref and None not in (r.get("kernels"), ref.get("kernels"))
            cells.append(f"{ref['kernels']} / {r['kernels']}" if known else "—")
        kbody.append([f"2^{lg}", *cells])
    return (
        text + "\n\nKernels of the same compiled programs, counterpart / leakyjax: the "
        "fusions and library calls of the optimized HLO as written (from 2^16 the "
        "two identical branches of the row view's conditional both count; one "
        "runs). The one-bit rule's pack is a pass of its own, and at small sizes "
        "each kernel's fixed cost is most of the time.\n\n" + md_table(header, kbody)
    )


@table("activations_speed_checks", ACTIVATIONS_SPEED)
@table("activations_speed_2d_checks", ACTIVATIONS_SPEED_2D)
def _activations_speed_checks(data: dict) -> str:
    from benchmarks.report import activation_checks_md

    return activation_checks_md(data)


@table("activations_eager", ACTIVATIONS_EAGER)
def _activations_eager(data: dict) -> str:
    """Eager (un-jitted) calls: leakyjax vs jax.nn, paired ratio, limit 2x."""
    rows = [
        [
            r["name"],
            r["n"],
            f"{r['leakyjax_min_us']:.1f}",
            f"{r['jax_nn_min_us']:.1f}",
            f"{r['ratio_paired']:.2f}×",
            f"{r.get('limit', 2.0):g}×",
            "pass" if r["passed"] else "**FAIL**",
        ]
        for r in data["results"]
    ]
    return md_table(
        [
            "function",
            "n",
            "leakyjax µs (min)",
            "jax.nn µs (min)",
            "paired ratio",
            "limit",
            "",
        ],
        rows,
    )


@table("train_step", TRAIN_STEP)
def _train_step(data: dict) -> str:
    from benchmarks.report import train_step_md

    text = train_step_md(data, environment=False)
    # the section headings of the standalone report become bold lines here
    return "\n".join(
        f"**{line.lstrip('#').strip()}**" if line.startswith("#") else line
        for line in text.splitlines()
    )


def _ms(v: float) -> str:
    return f"{v:.2f}"


@table("train_stack_loop", TRAIN_STACK)
def _train_stack_loop(data: dict) -> str:
    """Per-step time inside `train` vs the same vmapped step jitted alone."""
    rows = [
        [
            f"{r['model']} on {r['dataset']}, {r['seeds']} seed(s), batch {r['batch']}",
            r["auto_chunking"],
            _ms(r["alone_ms"]),
            _ms(r["in_loop_auto_ms"]),
            f"**{r['ratio_auto']:.2f}×**",
            _ms(r["in_loop_scan_ms"]),
            f"{r['ratio_scan']:.2f}×",
        ]
        for r in data["loop"]
    ]
    return md_table(
        [
            "model",
            "chunking chosen",
            "alone ms/step",
            "in train() ms/step",
            "ratio",
            "forced scan ms/step",
            "scan ratio",
        ],
        rows,
    )


@table("train_stack_demo", TRAIN_STACK)
def _train_stack_demo(data: dict) -> str:
    """`make demo` (`leakyjax compare`) at DEMO_BEFORE vs this tree, cold and warm."""
    d = data["demo"]
    labels = {
        "before": f"before (`{d['revision']}`)",
        "after_cold": "now, empty compilation cache",
        "after_warm": "now, rerun (persistent cache warm)",
    }
    rows = [
        [
            label,
            f"{d[k]['wall_s']:.1f}",
            d[k]["compiles"],
            f"{d[k]['compile_s']:.1f}",
        ]
        for k, label in labels.items()
        if k in d
    ]
    return md_table(["`leakyjax compare`", "wall s", "XLA compiles", "compile s"], rows)


@table("train_stack_seeds", TRAIN_STACK)
def _train_stack_seeds(data: dict) -> str:
    from benchmarks.report import train_stack_md

    return "\n\n".join(
        p for p in train_stack_md({"seeds": data["seeds"]}) if not p.startswith("#")
    )


# --------------------------------------------------------------------------- #
# examples/dying_relu.py
# --------------------------------------------------------------------------- #

DYING_RELU = source(
    Source(
        "dying_relu",
        "docs/results/dying_relu.json",
        "{python} examples/dying_relu.py --no-progress --out {out}",
        (
            *_CORE,
            "leakyjax/_src/diagnostics",
            "examples/dying_relu.py",
        ),
        figures=(("dying_relu.png", "docs/dying_relu.png"),),
        behaviour=True,
    )
)


@table("dying_relu", DYING_RELU)
def _dying_relu(data: dict) -> str:
    return md_table(
        [
            "activation",
            "hidden units never positive",
            "hidden-layer gradients exactly 0",
            "train accuracy",
        ],
        [
            [
                r["activation"],
                f"{100 * r['never_positive_fraction']:.1f}%",
                f"{100 * r['zero_gradient_fraction']:.1f}%",
                f"{r['train_accuracy']:.3f}",
            ]
            for r in data["runs"]
        ],
    )


# --------------------------------------------------------------------------- #
# leakyjax compare
# --------------------------------------------------------------------------- #


def _collect_compare(out: Path) -> dict:
    """The records of results.jsonl, without learning curves (the plots have them)."""
    records = [
        {k: v for k, v in json.loads(line).items() if k != "history"}
        for line in (out / "results.jsonl").read_text().splitlines()
        if line.strip()
    ]
    return {"records": records}


def _compare_source(name: str, command: str, figures: tuple = ()):
    return source(
        Source(
            name,
            f"docs/results/{name}.json",
            command,
            (*_TRAIN, "leakyjax/_src/diagnostics"),
            collect=_collect_compare,
            figures=figures,
            behaviour=True,
        )
    )


COMPARE_DEMO = _compare_source(
    "compare_demo",
    "{python} -m leakyjax compare --out {out}",
    (
        ("final_accuracy.png", "docs/compare_final_accuracy.png"),
        ("curves.png", "docs/compare_curves.png"),
        ("dead_fraction.png", "docs/compare_dead_fraction.png"),
    ),
)
COMPARE_PAPER = _compare_source(
    "compare_mnist1d_paper",
    "{python} -m leakyjax compare --acts relu,leaky_relu,leaky_relu:0.2,prelu,elu "
    "--dataset mnist1d --model mlp --depth 2 --width 100 --optimizer adam --lr 1e-2 "
    "--schedule constant --clip 0 --weight-decay 0 --warmup 0 --batch-size 100 "
    "--steps 6000 --eval-every 500 --val-fraction 0 --seeds 5 --no-progress --out {out}",
)
COMPARE_CNN = _compare_source(
    "compare_mnist1d_cnn",
    "{python} -m leakyjax compare --model cnn --dataset mnist1d "
    "--acts relu,leaky_relu:0.01,leaky_relu:0.2,prelu,rrelu,elu --optimizer adam "
    "--lr 1e-2 --schedule constant --clip 0 --weight-decay 0 --warmup 0 "
    "--val-fraction 0 --steps 6000 --batch-size 100 --eval-every 250 --seeds 5 "
    "--no-progress --out {out}",
)

#: Published ReLU test accuracy (%) of the mnist1d models (Greydanus 2020).
_PUBLISHED = {
    "compare_mnist1d_paper": "65–68% (the mnist1d README, MLP)",
    "compare_mnist1d_cnn": "92.3% in the mnist1d notebook and 94% in its README",
}


def _run_time(records: list) -> str:
    """Wall time of the whole run, summed over activations (compile and train)."""
    acts = {}
    for r in records:
        acts.setdefault(r["activation"], r)  # one record per activation holds its time
    compile_s = sum(r.get("compile_time") or 0.0 for r in acts.values())
    train_s = sum(r.get("train_time") or 0.0 for r in acts.values())
    seeds = len({r["seed"] for r in records})
    return (
        f"{len(acts)} activations × {seeds} seeds: {(compile_s + train_s) / 60:.1f} min "
        f"of training programs ({compile_s:.0f} s compiling, {train_s:.0f} s training; "
        "imports, data and plots not counted)"
    )


def _relu_check(name: str):
    def render(data: dict) -> str:
        from leakyjax._src.train.compare import summarize

        recs = sorted(
            (r for r in data["records"] if r["activation"] == "relu"),
            key=lambda r: r["seed"],
        )
        (s,) = summarize(recs, ["relu"])  # the table's mean ± std (ddof=0)
        seeds = ", ".join(f"{100 * r['final_test_acc']:.1f}" for r in recs)
        return (
            f"ReLU reaches {100 * s.final_acc_mean:.2f} ± {100 * s.final_acc_std:.2f}% "
            f"final test accuracy (seeds {recs[0]['seed']}–{recs[-1]['seed']}: {seeds}); "
            f"published: {_PUBLISHED[name]}. The run: {_run_time(data['records'])}."
        )

    return render


def _compare_table(data: dict, *, timing: bool) -> str:
    from leakyjax._src.train.compare import summarize
    from leakyjax._src.train.report import markdown_table

    records = data["records"]
    acts = list(dict.fromkeys(r["activation"] for r in records))
    metric = records[0].get("metric", "accuracy") if records else "accuracy"
    text = markdown_table(summarize(records, acts), metric=metric)
    if timing:
        return text
    # the wall time per seed is the last column: noisy, and not what the README is about
    return "\n".join("|".join(line.split("|")[:-2]) + "|" for line in text.splitlines())


def _compare_verdict(data: dict) -> str:
    """The report's lead: the decision at the default margin (1 point), as
    `leakyjax compare` prints it."""
    from leakyjax._src.train.compare import summarize
    from leakyjax._src.train.report import decide

    records = data["records"]
    acts = list(dict.fromkeys(r["activation"] for r in records))
    return decide(records, summarize(records, acts)).sentence


table("compare_demo", COMPARE_DEMO)(lambda d: _compare_table(d, timing=False))
table("compare_demo_verdict", COMPARE_DEMO)(_compare_verdict)
table("compare_mnist1d_paper", COMPARE_PAPER)(lambda d: _compare_table(d, timing=False))
table("compare_mnist1d_paper_relu", COMPARE_PAPER)(_relu_check("compare_mnist1d_paper"))
table("compare_mnist1d_paper_verdict", COMPARE_PAPER)(_compare_verdict)
table("compare_mnist1d_cnn", COMPARE_CNN)(lambda d: _compare_table(d, timing=True))
table("compare_mnist1d_cnn_relu", COMPARE_CNN)(_relu_check("compare_mnist1d_cnn"))
table("compare_mnist1d_cnn_verdict", COMPARE_CNN)(_compare_verdict)


# --------------------------------------------------------------------------- #
# The memory zoo (benchmarks/zoo.py)
# --------------------------------------------------------------------------- #

_ZOO_BENCH = (
    *_ZOO_CODE,
    "benchmarks/zoo.py",
    "benchmarks/common.py",
    "benchmarks/targets.py",
    "benchmarks/devices",
)
ZOO = source(
    Source(
        "zoo_memory",
        "benchmarks/results/zoo_cpu.json",
        "{python} -m benchmarks.zoo --out {out}/results.json",
        _ZOO_BENCH,
    )
)
# Compiled for the chip without one (benchmarks/targets.py makes the venv with its
# compiler on first use).
ZOO_H100 = source(
    Source(
        "zoo_memory_h100",
        "benchmarks/results/zoo_h100.json",
        "{python} -m benchmarks.targets run h100 -- -m benchmarks.zoo --target h100 "
        "--out {out}/results.json",
        _ZOO_BENCH,
    )
)
ZOO_TPU = source(
    Source(
        "zoo_memory_tpu",
        "benchmarks/results/zoo_tpu_v5e.json",
        "{python} -m benchmarks.targets run tpu-v5e -- -m benchmarks.zoo --target "
        "tpu-v5e --out {out}/results.json",
        _ZOO_BENCH,
    )
)

ZOO_TIME = source(
    Source(
        "zoo_time",
        "benchmarks/results/zoo_time_cpu.json",
        "{python} -m benchmarks.zoo --time --acts "
        "leakyjax.relu,leakyjax.leaky_relu,leakyjax.elu --rounds 5 "
        "--out {out}/results.json",
        (*_ZOO_CODE, "benchmarks/zoo.py", "benchmarks/common.py"),
        slow=True,
    )
)


@table("zoo_time", ZOO_TIME)
def _zoo_time(data: dict) -> str:
    """Train-step time of leakyjax / its jax.nn counterpart, paired within the run."""
    rows = [r for r in data["results"] if r.get("time_ratio_ref_paired") is not None]
    acts = list(dict.fromkeys(r["act"] for r in rows))
    by = {(r["model"], r["dtype"], r["act"]): r for r in rows}
    keys = list(dict.fromkeys((r["model"], r["dtype"]) for r in rows))
    body = []
    for model, dtype in keys:
        cells = []
        for a in acts:
            r = by.get((model, dtype, a))
            if r is None:
                cells.append("—")
                continue
            ratio = r["time_ratio_ref_paired"]
            cell = f"{ratio:.2f}× ({r['step_ms_median']:.1f} ms)"
            cells.append(f"**{cell}**" if ratio > 1.03 else cell)
        body.append([model, dtype, *cells])
    return (
        "Train-step time, leakyjax / its jax.nn counterpart (the median over rounds of "
        "the per-round ratio; leakyjax's median step time in parentheses). **Bold**: "
        "above the 1.03× target.\n\n"
        + md_table(
            ["model", "dtype", *(a.removeprefix("leakyjax.") for a in acts)], body
        )
    )


#: (column, leakyjax label); the cell is "counterpart / leakyjax" in MiB.
_ZOO_COLUMNS = (
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
)
_EXACT = ("leakyjax.elu", "leakyjax.celu", "leakyjax.selu", "leakyjax.prelu")


def _one_bit_rule(label: str, target: str) -> bool:
    """Whether ``label`` keeps the one-bit residual on ``target`` (the bound is
    its criterion; a function that takes jax's autodiff there is held to its
    counterpart)."""
    from leakyjax._src._platform import RULES

    family = {
        "leakyjax.relu": "relu",
        "leakyjax.leaky_relu": "leaky",
        "leakyjax.rrelu": "rrelu",
        "leakyjax.relu6": "clip",
        "leakyjax.hard_tanh": "clip",
        "leakyjax.hard_sigmoid": "clip",
    }.get(label)
    platform = {"cpu": "cpu", "h100": "gpu", "tpu-v5e": "tpu"}.get(target, "cpu")
    return family is not None and getattr(RULES[family], platform) == "bits"


def _zoo_cells(data: dict):
    """Each judged leakyjax cell of a zoo run: ``(model, dtype, label, row, ref,
    over_ref, over_bound)``; ``over_bound`` only for a function that keeps one
    bit per element on the run's compiler (the bound is then its criterion)."""
    rows = data["results"]
    target_name = data.get("target", {}).get("name", "cpu")
    by = {(r["model"], r["dtype"], r["act"]): r for r in rows}
    for model, dtype in dict.fromkeys((r["model"], r["dtype"]) for r in rows):
        ident = by.get((model, dtype, "identity"))
        if ident is None:
            continue
        bound = ident["temp_bytes"] + ident["act_elements"] // 8
        for _, label in _ZOO_COLUMNS:
            r = by.get((model, dtype, label))
            if r is None:
                continue
            ref = by.get((model, dtype, r["ref"]))
            over_ref = ref is not None and r["temp_bytes"] > ref["temp_bytes"]
            over_bound = (
                label not in _EXACT
                and _one_bit_rule(label, target_name)
                and r["temp_bytes"] > bound * 1.01
            )
            yield model, dtype, label, r, ref, over_ref, over_bound


@table("zoo_memory", ZOO)
@table("zoo_memory_h100", ZOO_H100)
@table("zoo_memory_tpu", ZOO_TPU)
def _zoo_memory(data: dict) -> str:
    """Per model and dtype: identity, the one-bit bound, counterpart / leakyjax."""
    rows = data["results"]
    by = {(r["model"], r["dtype"], r["act"]): r for r in rows}
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for model, dtype, label, r, ref, over_ref, over_bound in _zoo_cells(data):
        ours = _mib(r["temp_bytes"])
        ours = f"**{ours}**" if over_ref or over_bound else ours
        theirs = _mib(ref["temp_bytes"]) if ref else "—"
        cells.setdefault((model, dtype), {})[label] = f"{theirs} / {ours}"
    body = []
    for (model, dtype), row in cells.items():
        ident = by[(model, dtype, "identity")]
        bound = ident["temp_bytes"] + ident["act_elements"] // 8
        body.append(
            [
                model,
                dtype,
                _mib(ident["temp_bytes"]),
                _mib(bound),
                *(row.get(label, "—") for _, label in _ZOO_COLUMNS),
            ]
        )
    header = [
        "model",
        "dtype",
        "identity",
        "1-bit bound",
        *(c for c, _ in _ZOO_COLUMNS),
    ]
    target = data.get("target", {}).get("description", data["environment"]["backend"])
    return (
        f"Compiled train-step temp memory, MiB (`memory_analysis()`; {target}). "
        "Cells: jax.nn counterpart / leakyjax "
        "(rrelu: the plain-autodiff formula; prelu: flax.linen.PReLU). 1-bit bound: "
        "identity + n/8 bytes per activation of n elements. **Bold**: above its "
        "counterpart, or (a function that keeps one bit per element on this "
        "compiler) above the bound by more than 1%."
        "\n\n" + md_table(header, body)
    )


def _mib(b: int) -> str:
    return f"{b / 2**20:.2f}"


@table("zoo_summary", ZOO, ZOO_H100, ZOO_TPU)
def _zoo_summary(*runs: dict) -> str:
    """Per compiler: the judged cells, how many are above their counterpart (each
    named, with its excess), and how many one-bit cells miss the bound."""
    body = []
    for data in runs:
        judged = above = 0
        named, bound_miss = [], 0
        for model, dtype, label, r, ref, over_ref, over_bound in _zoo_cells(data):
            if ref is None:
                continue
            judged += 1
            bound_miss += over_bound
            if over_ref:
                above += 1
                extra = r["temp_bytes"] - ref["temp_bytes"]
                size = f"{extra / 2**20:.2f} MiB" if extra >= 2**19 else f"{extra} B"
                named.append(
                    f"{model} {dtype} {label.removeprefix('leakyjax.')} (+{size})"
                )
        target = data.get("target", {}).get("description", "XLA:CPU")
        body.append(
            [
                target,
                str(judged),
                str(judged - above),
                "; ".join(named) or "none",
                str(bound_miss),
            ]
        )
    return (
        "Compiled train-step temp memory of the zoo (every model, float32 and "
        "bfloat16, every function against its jax.nn or flax counterpart), per "
        "compiler:\n\n"
        + md_table(
            [
                "compiler",
                "cells",
                "at or below the counterpart",
                "above it",
                "one-bit cells above identity + n/8 (+1%)",
            ],
            body,
        )
    )


@table("zoo_kernels", ZOO)
@table("zoo_kernels_h100", ZOO_H100)
@table("zoo_kernels_tpu", ZOO_TPU)
def _zoo_kernels(data: dict) -> str:
    """Per model and dtype: kernels a train step launches, counterpart / leakyjax."""
    rows = [r for r in data["results"] if "kernels" in r]
    if not rows:
        return "Kernel counts were not recorded in this results file: rerun it."
    by = {(r["model"], r["dtype"], r["act"]): r for r in rows}
    keys = list(dict.fromkeys((r["model"], r["dtype"]) for r in rows))

    def n(r: dict) -> int:
        return r["kernels"]["fusions"] + r["kernels"]["custom_calls"]

    body, above, cells_total = [], 0, 0
    for model, dtype in keys:
        ident = by.get((model, dtype, "identity"))
        cells = []
        for _, label in _ZOO_COLUMNS:
            r = by.get((model, dtype, label))
            ref = by.get((model, dtype, r["ref"])) if r is not None else None
            if r is None or ref is None:
                cells.append("—")
                continue
            cells_total += 1
            over = n(r) > n(ref)
            above += over
            cells.append(f"{n(ref)} / " + (f"**{n(r)}**" if over else str(n(r))))
        body.append([model, dtype, str(n(ident)) if ident else "—", *cells])
    header = ["model", "dtype", "identity", *(c for c, _ in _ZOO_COLUMNS)]
    target = data.get("target", {}).get("description", data["environment"]["backend"])
    return (
        f"Kernels a train step launches ({target}): the fusions and custom calls "
        "of its optimized HLO (`as_text()`; a loop body counted once). Cells: "
        "counterpart / leakyjax. **Bold**: more than the counterpart "
        f"({above} of {cells_total} cells)."
        "\n\n" + md_table(header, body)
    )


# --------------------------------------------------------------------------- #
# leakyjax study NAME (docs/STUDY.md), and the README's cure comparison
# --------------------------------------------------------------------------- #

_RUNNER = ("leakyjax/_src/study/studies.py", "leakyjax/_src/io.py")
_DIAG = ("leakyjax/_src/diagnostics", "leakyjax/_src/names.py")
#: study -> the code its numbers depend on, besides its module and the runner
_STUDY_CODE: dict[str, tuple[str, ...]] = {
    "born-dead": _CORE,
    "init-depth": (*_TRAIN, *_DIAG),
    "slope-sweep": (*_TRAIN, *_DIAG),
    "prelu-profile": (*_TRAIN, *_DIAG),
    "dead-vs-lr": (*_TRAIN, *_DIAG),
    "rai": (*_CORE, "leakyjax/_src/study/born_dead.py"),
    "redo": (*_TRAIN, *_DIAG, "leakyjax/_src/recycle.py"),
}


def _study_source(study: str) -> Source:
    """``docs/results/study_<stem>.json`` from ``leakyjax study <study>``, and its figure."""
    stem = study.replace("-", "_")
    return source(
        Source(
            f"study_{stem}",
            f"docs/results/study_{stem}.json",
            f"{{python}} -m leakyjax study {study} --no-progress --out {{out}}",
            (*_STUDY_CODE[study], f"leakyjax/_src/study/{stem}.py", *_RUNNER),
            collect=lambda out: json.loads((out / f"{stem}.json").read_text()),
            figures=((f"{stem}.png", f"docs/study_{stem}.png"),),
            behaviour=True,
        )
    )


def _study_markdown(data: dict) -> str:
    from leakyjax._src.study import studies

    return studies.markdown(data)


STUDY_SOURCES = {study: _study_source(study) for study in _STUDY_CODE}
for _study, _src in STUDY_SOURCES.items():
    table(_src.name, _src)(_study_markdown)
RAI = STUDY_SOURCES["rai"]
REDO = STUDY_SOURCES["redo"]


@table("cure", RAI, REDO)
def _cure(rai_res: dict, redo_res: dict) -> str:
    """README: the measured comparison, leaky slope vs RAI vs recycling."""
    rows = {(r["task"], r["variant"]): r for r in redo_res["summary"]["table"]}
    bd = {(r["scheme"], r["width"], r["depth"]): r for r in rai_res["born_dead"]}
    names = {
        "relu": ("none (ReLU, He)", "he"),
        "leaky_relu": ("leaky slope 0.01", None),
        "relu+rai": ("RAI initialisation", "rai_kernel"),
        "relu+redo": ("ReDo recycling (τ = 0.1)", None),
    }
    body = []
    for v, (label, scheme) in names.items():
        p, h = rows[("permuted", v)], rows[("high_lr", v)]
        born = f"{bd[(scheme, 2, 20)]['p_constant']:.3f}" if scheme else "—"
        body.append(
            [
                label,
                born,
                f"{p['mean_acc']:.3f} / {p['dormant_last_quarter']:.3f}",
                f"{h['final_acc']:.3f} / {h['dead_last_quarter']:.3f}",
            ]
        )
    header = [
        "remedy",
        "born dead (ReLU, N=2, L=20)",
        "permuted labels: mean acc / dormant",
        "lr 0.3: final acc / dead",
    ]
    return md_table(header, body)


# The plasticity study: loss of plasticity over re-permuted tasks, plain / ReDo / CBP.
_STUDY_CODE["plasticity"] = (*_TRAIN, *_DIAG, "leakyjax/_src/recycle.py")
STUDY_SOURCES["plasticity"] = _study_source("plasticity")
table(STUDY_SOURCES["plasticity"].name, STUDY_SOURCES["plasticity"])(_study_markdown)
PLASTICITY = STUDY_SOURCES["plasticity"]

DIAGNOSTICS_COST = source(
    Source(
        "diagnostics_cost",
        "benchmarks/results/diagnostics_cpu.json",
        "{python} -m benchmarks.bench_diagnostics --out {out}/results.json",
        (*_DIAG, "benchmarks/common.py", "benchmarks/bench_diagnostics.py"),
        slow=True,  # timings: for a quiet machine
    )
)


@table("diagnostics_cost", DIAGNOSTICS_COST)
def _diagnostics_cost(data: dict) -> str:
    """docs/DIAGNOSTICS.md: the three scores' cost inside a jitted train step."""
    body = [
        [
            r["model"],
            f"{r['batch']} × {r['width']} × {r['depth']}",
            f"{1e3 * r['min_s']['plain']:.2f} ms",
            f"{1e3 * r['min_s']['scores']:.2f} ms",
            f"{100 * r['overhead']:+.1f}%",
            f"{100 * r['overhead_median']:+.1f}%",
            f"{100 * r['flops_overhead']:+.2f}%",
            f"{100 * r['bytes_overhead']:+.1f}%",
        ]
        for r in data["rows"]
    ]
    header = [
        "model",
        "batch × width × depth",
        "train step (min)",
        "with the three scores (min)",
        "overhead (min)",
        "overhead (median)",
        "extra flops",
        "extra bytes accessed",
    ]
    return md_table(header, body)


# --------------------------------------------------------------------------- #
# Compile share of `leakyjax compare` (benchmarks/compile_share.py)
# --------------------------------------------------------------------------- #

COMPILE_SHARE = source(
    Source(
        "compile_share",
        "benchmarks/results/compile_share_cpu.json",
        "{python} -m benchmarks.compile_share --warm --before 4ed4e39 "
        "--out {out}/results.json",
        (
            *_TRAIN,
            "leakyjax/_src/cli.py",
            "leakyjax/_src/diagnostics",
            "benchmarks/compile_share.py",
            "benchmarks/count_compiles.py",
        ),
        slow=True,  # wall times
    )
)


@table("compile_share", COMPILE_SHARE)
def _compile_share(data: dict) -> str:
    from benchmarks.compile_share import markdown

    return markdown(data)


# --------------------------------------------------------------------------- #
# Reproducibility across x86-64 hosts (benchmarks/reproducibility.py)
# --------------------------------------------------------------------------- #

REPRODUCIBILITY = source(
    Source(
        "reproducibility",
        "benchmarks/results/reproducibility_cpu.json",
        "{python} -m benchmarks.reproducibility --out {out}/results.json",
        (*_CORE, "benchmarks/reproducibility.py"),
    )
)


@table("reproducibility", REPRODUCIBILITY)
def _reproducibility(data: dict) -> str:
    from benchmarks.reproducibility import markdown

    return markdown(data)
