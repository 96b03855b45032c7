"""Compile share of ``leakyjax compare``: how much of a run is compiling.

``python -m benchmarks.compile_share --out results.json`` runs, each in a fresh
process with an empty persistent compilation cache (``benchmarks/count_compiles.py``):

* ``demo``: ``leakyjax compare`` as ``make demo`` runs it (mnist1d MLP, 7 activations
  x 5 seeds);
* ``custom``: a small model of one's own, 4 activations x 3 seeds: a two-layer linen
  MLP (64 units) on scikit-learn's wine data (178 examples, 130 train / 48 test,
  standardised), written to a user's folder as ``winemodels.py`` and run as
  ``--model winemodels:wine_mlp --data winemodels:wine_data``.

For each it records the wall time of the command (imports excluded), the seconds
spent in backend compiles (jax's ``/jax/core/compile/backend_compile_duration``), the
number of backend compiles and their share of the wall time; ``--warm`` adds a rerun
of each against the warm cache, ``--before REV`` a cold run of the package at git
revision ``REV`` (extracted with ``git archive``). ``--steps`` overrides both runs'
step count (``--quick``: 200 steps). The goal of issue 29 is a share <= 25% for both.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.count_compiles import extract_revision

CASES = {
    "demo": ("--no-plots",),
    "custom": (
        "--model", "winemodels:wine_mlp",
        "--data", "winemodels:wine_data",
        "--acts", "relu,leaky_relu:0.2,prelu,elu", "--seeds", "3",
        "--batch-size", "32", "--eval-every", "50", "--steps", "1000", "--no-plots",
    ),
}  # fmt: skip


def wine_data():
    """scikit-learn's wine data, standardised: 130 training, 48 test examples."""
    import numpy as np
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(y))
    x, y = x[perm].astype(np.float32), y[perm].astype(np.int32)
    x = (x - x[:130].mean(0)) / x[:130].std(0)
    return x[:130], y[:130], x[130:], y[130:]


def wine_mlp(act):
    """Two hidden layers of 64 units with ``act``, three classes (linen)."""
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            for _ in range(2):
                x = act()(nn.Dense(64)(x))
            return nn.Dense(3)(x)

    return MLP()


def _with_steps(args: tuple[str, ...], steps: int | None) -> list[str]:
    args = list(args)
    if steps is None:
        return args
    if "--steps" in args:
        args[args.index("--steps") + 1] = str(steps)
    else:
        args += ["--steps", str(steps)]
    return args


def _user_folder(tmp: Path) -> Path:
    """A user's folder holding ``winemodels.py`` (the custom case's model and data)."""
    folder = tmp / "user"
    folder.mkdir()
    src = inspect.getsource(wine_data) + "\n\n" + inspect.getsource(wine_mlp)
    (folder / "winemodels.py").write_text(src)
    return folder


def measure(
    case: str,
    *,
    steps: int | None = None,
    warm: bool = False,
    before: str | None = None,
) -> dict:
    """Cold (and warm, and ``before``'s cold) runs of one case in fresh processes."""
    repo = Path(__file__).resolve().parent.parent
    counter = str(repo / "benchmarks" / "count_compiles.py")
    out: dict = {"case": case, "argv": _with_steps(CASES[case], steps)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        user = _user_folder(tmp)
        runs = [("cold", repo), ("warm", repo)] if warm else [("cold", repo)]
        if before:
            out["before_revision"] = before
            runs.insert(0, ("before", extract_revision(repo, before, tmp / "before")))
        for name, root in runs:
            cache = tmp / ("cache_before" if name == "before" else "cache")
            env = dict(
                os.environ,
                PYTHONPATH=os.pathsep.join((str(root), str(user))),
                LEAKYJAX_CACHE_DIR=str(cache),
            )
            env.pop("LEAKYJAX_NO_COMPILE_CACHE", None)
            res = tmp / f"{name}.json"
            cmd = [sys.executable, counter, str(res), "--"]
            cmd += ["compare", *out["argv"], "--out", str(tmp / f"run_{name}")]
            cmd.append("--no-progress")
            if name == "warm":
                cmd.append("--fresh")  # train again, programs from the cache
            proc = subprocess.run(
                cmd, env=env, cwd=user, capture_output=True, text=True
            )
            if proc.returncode:
                raise RuntimeError(f"{case} {name}: {proc.stderr[-2000:]}")
            blob = json.loads(res.read_text())
            blob["compile_share"] = blob["compile_s"] / blob["wall_s"]
            out[name] = blob
            print(f"compile_share {case} {name}: {blob}", file=sys.stderr)
    return out


def markdown(data: dict) -> str:
    """The results as a markdown table."""
    rows = [
        "| run | wall s | compile s | compile share | backend compiles |",
        "|---|---|---|---|---|",
    ]
    for r in data["runs"]:
        for name in ("before", "cold", "warm"):
            if name in r:
                b = r[name]
                what = (
                    f"before (`{r['before_revision'][:7]}`), empty cache"
                    if name == "before"
                    else f"{name} cache"
                )
                rows.append(
                    f"| {r['case']}, {what} | {b['wall_s']:.1f} | "
                    f"{b['compile_s']:.1f} | {100 * b['compile_share']:.0f}% | "
                    f"{b['compiles']} |"
                )
    return "\n".join(rows)


def main(argv=None) -> dict:
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks.compile_share")
    p.add_argument("--cases", default="demo,custom", help="any of demo, custom")
    p.add_argument("--steps", type=int, default=None, help="override the steps")
    p.add_argument("--quick", action="store_true", help="200 steps")
    p.add_argument("--warm", action="store_true", help="also rerun with a warm cache")
    p.add_argument(
        "--before", default=None, help="also a cold run at this git revision"
    )
    p.add_argument("--out", default=None, help="write the JSON here")
    args = p.parse_args(argv)
    steps = 200 if args.quick and args.steps is None else args.steps
    from benchmarks.common import environment

    runs = [
        measure(c, steps=steps, warm=args.warm, before=args.before)
        for c in args.cases.split(",")
    ]
    data = {"benchmark": "compile_share", "environment": environment(), "runs": runs}
    print(markdown(data))
    if args.out:
        from leakyjax._src.io import write_json

        write_json(Path(args.out), data)
    return data


if __name__ == "__main__":
    main()
