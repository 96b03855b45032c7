"""Fault injection: SIGKILL a small compare (and a study) at random moments, resume.

After every kill, no finished run is lost (the valid records only grow) and no
(configuration, seed) appears twice; after the final resume the results and
the report equal those of an uninterrupted run. The kills are bounded in
number (20) and in the time spent on them (``LEAKYJAX_FAULT_BUDGET`` seconds,
default 25), so the test stays under a minute on a quiet 2-core machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("optax")

from leakyjax._src.study.compare import read_results

pytestmark = pytest.mark.slow

MAX_KILLS = 20
BUDGET = float(os.environ.get("LEAKYJAX_FAULT_BUDGET", "25"))

COMPARE = [
    "compare",
    "--acts",
    "relu,elu,tanh",
    "--dataset",
    "digits",
    "--steps",
    "6",
    "--eval-every",
    "3",
    "--num-train",
    "120",
    "--num-test",
    "60",
    "--width",
    "8",
    "--seeds",
    "2",
    "--no-plots",
    "--no-progress",
]


def _cli(args, out):
    return [sys.executable, "-m", "leakyjax", *args, "--out", str(out)]


def _run_to_end(args, out):
    t0 = time.perf_counter()
    proc = subprocess.run(_cli(args, out), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return time.perf_counter() - t0, proc


def _kill_loop(args, out, reference_seconds, check, seed):
    """Starts ``args`` again and again, SIGKILLs it after a random delay, and
    calls ``check()`` after each kill; returns the number of kills."""
    rng = np.random.default_rng(seed)
    kills, spent = 0, 0.0
    while kills < MAX_KILLS and spent < BUDGET:
        delay = float(rng.uniform(0.2, max(0.5, reference_seconds)))
        proc = subprocess.Popen(
            _cli(args, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        t0 = time.perf_counter()
        try:
            proc.wait(timeout=delay)
            finished = True
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            finished = False
        elapsed = time.perf_counter() - t0
        spent += elapsed
        if finished:
            assert proc.returncode == 0
            if kills:
                break
            # It ran faster than the reference run (a load spike slowed that
            # one): start over, with this run's time as the reference.
            shutil.rmtree(out)
            reference_seconds = min(reference_seconds, elapsed)
            continue
        kills += 1
        check()
    return kills


def _raw_identities(path):
    """(key, seed) of every line of ``path`` that is a whole JSON record."""
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a torn line of a killed write
        out.append((rec["key"], rec["seed"]))
    return out


def _table(report):
    """The ranked table and the paired comparisons of report.md, without the
    wall-time column and the compile/train time line (timings differ per run)."""
    text = report.read_text()
    body = text.split("## Configuration")[0]
    rows = [re.sub(r"\| [0-9.]+ \|$", "|", r) for r in body.splitlines()]
    return "\n".join(r for r in rows if not r.startswith(("Command:", "Time:")))


_NUMERIC = (
    "final_test_acc",
    "final_test_loss",
    "best_test_acc",
    "best_test_loss",
    "best_step",
    "steps",
    "diverged",
)


def test_compare_survives_sigkill_anywhere(tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "out"
    seconds, _ = _run_to_end(COMPARE, ref)
    results = out / "results.jsonl"
    seen: set = set()

    def check():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            now = {(r["key"], r["seed"]) for r in read_results(results)}
        assert seen <= now, "a finished run was lost"
        ids = _raw_identities(results)
        assert len(ids) == len(set(ids)), "a run was written twice"
        seen.update(now)

    t0 = time.perf_counter()
    kills = _kill_loop(COMPARE, out, seconds, check, seed=0)
    _run_to_end(COMPARE, out)
    check()
    print(f"compare: {kills} kills, {time.perf_counter() - t0:.1f} s")
    assert kills >= 1

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = {(r["key"], r["seed"]): r for r in read_results(results)}
        want = {(r["key"], r["seed"]): r for r in read_results(ref / "results.jsonl")}
    assert got.keys() == want.keys() and len(got) == 6
    for k, r in want.items():
        for f in _NUMERIC:
            np.testing.assert_allclose(got[k][f], r[f], rtol=1e-5, err_msg=f)
    assert _table(out / "report.md") == _table(ref / "report.md")
    leftovers = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers


def test_study_survives_sigkill_anywhere(tmp_path):
    pytest.importorskip("matplotlib")
    args = ["study", "born-dead", "--quick", "--no-progress"]
    ref, out = tmp_path / "ref", tmp_path / "out"
    seconds, _ = _run_to_end(args, ref)
    parts = out / "parts" / "born-dead"
    seen: set = set()

    def check():
        now = set()
        for p in parts.glob("*.json") if parts.exists() else ():
            json.loads(p.read_text())  # every part file is whole
            now.add(p.name)
        assert seen <= now, "a finished part was lost"
        seen.update(now)
        result = out / "born_dead.json"
        if result.exists():
            json.loads(result.read_text())

    t0 = time.perf_counter()
    kills = _kill_loop(args, out, seconds, check, seed=1)
    _run_to_end(args, out)
    check()
    print(f"study: {kills} kills, {time.perf_counter() - t0:.1f} s")
    assert kills >= 1

    def numbers(d):
        blob = json.loads((d / "born_dead.json").read_text())
        for k in (
            "seconds_this_call",
            "seconds_all_parts",
            "parts_reused",
            "parts_computed",
        ):
            blob.pop(k, None)
        return blob

    assert numbers(out) == numbers(ref)
    assert (out / "born_dead.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in parts.iterdir()) == sorted(
        p.name for p in (ref / "parts" / "born-dead").iterdir()
    )
