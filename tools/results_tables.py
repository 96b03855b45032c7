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
    "leakyjax/_src/initializers.py",
    "leakyjax/_src/registry.py",
)
_TRAIN = (
    *_CORE,
    "leakyjax/_src/linen.py",
    "leakyjax/_src/optim.py",
    "leakyjax/_src/train",
)


# --------------------------------------------------------------------------- #
# Train-step memory (benchmarks/bench_train_step.py)
# --------------------------------------------------------------------------- #

MEMORY_AFTER_FIXES = source(
    Source(
        "train_step_memory",
        "benchmarks/results/train_step_cpu_2026-11-23_memory_after_fixes.json",
        "{python} -m benchmarks.bench_train_step --anchors-rounds 0 --no-train-stack "
        "--rounds 5 --out {out}/results.json",
        (*_CORE, "benchmarks/bench_train_step.py", "benchmarks/common.py"),
        slow=True,  # times too; memory alone is deterministic
    )
)

TRAIN_STEP = source(
    Source(
        "train_step",
        "benchmarks/results/train_step_cpu_2026-11-23.json",
        "{python} -m benchmarks.bench_train_step --out {out}/results.json",
        (*_CORE, "benchmarks/bench_train_step.py", "benchmarks/common.py"),
        slow=True,
    )
)


def _mib(b: int) -> str:
    return f"{b / 2**20:.1f}"


@table("readme_memory", MEMORY_AFTER_FIXES)
def _readme_memory(data: dict) -> str:
    """Temp MiB per activation: test shape and anchors shape, f32 and bf16."""
    rows = [r for r in data["results"] if r.get("model", "mlp") == "mlp"]
    shapes = data["config"]["shapes"]
    by = {(r["act"], r["shape"], r["dtype"]): r for r in rows}
    cols = [(s, d) for s in ("test", "anchors") for d in ("float32", "bfloat16")]
    short = {"float32": "f32", "bfloat16": "bf16"}
    header = ["activation"] + [
        f"{short[d]} B={shapes[s]['batch']} W={shapes[s]['width']}" for s, d in cols
    ]
    body = []
    for act in dict.fromkeys(r["act"] for r in rows):
        cells = [by.get((act, s, d)) for s, d in cols]
        body.append(
            [act] + ["—" if c is None else _mib(c["temp_bytes"]) for c in cells]
        )
    return "Compiled temp MiB of one train step:\n\n" + md_table(header, body)


def _bench_memory(shape: str):
    def render(data: dict) -> str:
        from benchmarks.report import train_memory_md

        return train_memory_md(data, shape)

    return render


table("bench_memory_anchors", TRAIN_STEP)(_bench_memory("anchors"))
table("bench_memory_test", TRAIN_STEP)(_bench_memory("test"))


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
            "leakyjax/_src/diagnostics*",
            "leakyjax/_src/capture.py",
            "examples/dying_relu.py",
        ),
        figures=(("dying_relu.png", "docs/dying_relu.png"),),
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
            (*_TRAIN, "leakyjax/_src/study/compare.py", "leakyjax/_src/diagnostics*"),
            collect=_collect_compare,
            figures=figures,
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
    "--schedule constant --clip 0 --batch-size 100 --steps 6000 --eval-every 500 "
    "--val-fraction 0 --seeds 5 --out {out}",
)


def _compare_table(data: dict, *, timing: bool) -> str:
    from leakyjax._src.study.compare import summarize
    from leakyjax._src.study.report import markdown_table

    records = data["records"]
    acts = list(dict.fromkeys(r["activation"] for r in records))
    metric = records[0].get("metric", "accuracy") if records else "accuracy"
    text = markdown_table(summarize(records, acts), metric=metric)
    if timing:
        return text
    # the wall time per seed is the last column: noisy, and not what the README is about
    return "\n".join("|".join(line.split("|")[:-2]) + "|" for line in text.splitlines())


def _compare_verdict(data: dict) -> str:
    """The report's recommendation sentence (paired comparisons over the seeds)."""
    from leakyjax._src.study.compare import summarize
    from leakyjax._src.study.report import verdict

    records = data["records"]
    acts = list(dict.fromkeys(r["activation"] for r in records))
    return verdict(records, summarize(records, acts)).sentence


table("compare_demo", COMPARE_DEMO)(lambda d: _compare_table(d, timing=False))
table("compare_demo_verdict", COMPARE_DEMO)(_compare_verdict)
table("compare_demo_timed", COMPARE_DEMO)(lambda d: _compare_table(d, timing=True))
table("compare_mnist1d_paper", COMPARE_PAPER)(lambda d: _compare_table(d, timing=False))


# --------------------------------------------------------------------------- #
# The memory zoo (benchmarks/zoo.py)
# --------------------------------------------------------------------------- #

ZOO = source(
    Source(
        "zoo_memory",
        "benchmarks/results/zoo_cpu_2026-12-01.json",
        "{python} -m benchmarks.zoo --out {out}/results.json",
        (*_CORE, "benchmarks/zoo.py", "benchmarks/common.py"),
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


@table("zoo_memory", ZOO)
def _zoo_memory(data: dict) -> str:
    """Per model and dtype: identity, the one-bit bound, counterpart / leakyjax."""
    rows = data["results"]
    by = {(r["model"], r["dtype"], r["act"]): r for r in rows}
    keys = list(dict.fromkeys((r["model"], r["dtype"]) for r in rows))

    def mib(b: int) -> str:
        return f"{b / 2**20:.2f}"

    body = []
    for model, dtype in keys:
        ident = by.get((model, dtype, "identity"))
        if ident is None:
            continue
        bound = ident["temp_bytes"] + ident["act_elements"] // 8
        cells = []
        for _, label in _ZOO_COLUMNS:
            r = by.get((model, dtype, label))
            if r is None:
                cells.append("—")
                continue
            ref = by.get((model, dtype, r["ref"]))
            over = ref is not None and r["temp_bytes"] > ref["temp_bytes"]
            if label not in _EXACT:
                over = over or r["temp_bytes"] > bound * 1.01
            ours = f"**{mib(r['temp_bytes'])}**" if over else mib(r["temp_bytes"])
            cells.append(f"{mib(ref['temp_bytes']) if ref else '—'} / {ours}")
        body.append([model, dtype, mib(ident["temp_bytes"]), mib(bound), *cells])
    header = [
        "model",
        "dtype",
        "identity",
        "1-bit bound",
        *(c for c, _ in _ZOO_COLUMNS),
    ]
    return (
        f"Compiled train-step temp memory, MiB (`memory_analysis()`, "
        f"{data['environment']['backend']}). Cells: jax.nn counterpart / leakyjax "
        "(rrelu: the plain-autodiff formula; prelu: flax.linen.PReLU). 1-bit bound: "
        "identity + n/8 bytes per activation of n elements. **Bold**: above its "
        "counterpart or (the piecewise-linear family) above the bound by more than 1%."
        "\n\n" + md_table(header, body)
    )


# --------------------------------------------------------------------------- #
# leakyjax study NAME (docs/STUDY.md), and the README's cure comparison
# --------------------------------------------------------------------------- #

_RUNNER = ("leakyjax/_src/study/studies.py", "leakyjax/_src/io.py")
_DIAG = ("leakyjax/_src/diagnostics*", "leakyjax/_src/capture.py")
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
