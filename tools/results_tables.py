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


table("compare_demo", COMPARE_DEMO)(lambda d: _compare_table(d, timing=False))
table("compare_demo_timed", COMPARE_DEMO)(lambda d: _compare_table(d, timing=True))
table("compare_mnist1d_paper", COMPARE_PAPER)(lambda d: _compare_table(d, timing=False))


# --------------------------------------------------------------------------- #
# leakyjax study NAME (each writes its JSON record into --out)
# --------------------------------------------------------------------------- #

for _study in ("born-dead", "init-depth", "slope-sweep", "prelu-profile", "dead-vs-lr"):
    _mod = _study.replace("-", "_")
    source(
        Source(
            f"study_{_mod}",
            f"docs/results/study_{_mod}.json",
            f"{{python}} -m leakyjax study {_study} --no-progress --out {{out}}",
            (
                *_TRAIN,
                f"leakyjax/_src/study/{_mod}.py",
                "leakyjax/_src/study/studies.py",
            ),
            collect=lambda out, _m=_mod: json.loads(
                next(p for p in sorted(out.glob("*.json"))).read_text()
            ),
        )
    )
