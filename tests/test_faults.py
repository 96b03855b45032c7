"""Fault injection: SIGKILL a small compare (and a study) at random moments, resume;
run compares on one output directory from several threads and processes at once.

After every kill, no finished run is lost (the valid records only grow) and no
(configuration, seed) appears twice; after the final resume the results and
the report equal those of an uninterrupted run. The kills are bounded in
number (``LEAKYJAX_FAULT_KILLS``, default 20) and in the time spent on them
(``LEAKYJAX_FAULT_BUDGET`` seconds, default 25), and the races use
``LEAKYJAX_FAULT_PROCS`` processes (default 3), so the file stays within a
couple of minutes on a quiet 2-core machine; ``python -m tests.fault_storm``
runs the same tests as a larger storm.
"""

from __future__ import annotations

import json
import os
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

from leakyjax._src.train.compare import read_results

pytestmark = pytest.mark.slow

MAX_KILLS = int(os.environ.get("LEAKYJAX_FAULT_KILLS", "20"))
BUDGET = float(os.environ.get("LEAKYJAX_FAULT_BUDGET", "25"))
PROCS = int(os.environ.get("LEAKYJAX_FAULT_PROCS", "3"))

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


_TIMED = ("ms / step", "s / seed")  # timing columns: they differ per run


def _table(report):
    """The ranked table and the paired comparisons of report.md, without the
    timing columns, the compile/train time line and the pick on step time
    (timings differ per run)."""
    text = report.read_text()
    body = text.split("## Configuration")[0]
    drop: list[int] = []
    rows = []
    for r in body.splitlines():
        cells = r.split("|")
        if any(c.strip() in _TIMED for c in cells):
            drop = [i for i, c in enumerate(cells) if c.strip() in _TIMED]
        if r.startswith("|") and drop and len(cells) > max(drop):
            cells = [c for i, c in enumerate(cells) if i not in drop]
        rows.append("|".join(cells))
    skip = ("Command:", "Time:")
    return "\n".join(r for r in rows if not r.startswith(skip) and "fastest" not in r)


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
    with warnings.catch_warnings(record=True) as w:  # the final run redid the
        warnings.simplefilter("always")  # torn lines: they are not news any more
        read_results(results)
    assert not [str(x.message) for x in w if "its run will be redone" in str(x.message)]


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
    assert not list(out.rglob("*.tmp"))  # the sweep reaches parts/<study>/


# ---------------------------------------------------------------- races


def _check_store(out, n):
    """``out/results.jsonl`` holds ``n`` runs, each once, and nothing else."""
    ids = _raw_identities(out / "results.jsonl")
    assert len(ids) == len(set(ids)) == n, ids
    assert len((out / "results.jsonl").read_bytes().splitlines()) == n


def _two_threads(fn):
    """Runs ``fn()`` in two threads at once: (results, exceptions)."""
    import threading

    results, errors = [], []
    start = threading.Barrier(2)

    def run():
        start.wait()
        try:
            results.append(fn())
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return results, errors


def test_compare_from_two_threads_on_one_out(tmp_path):
    """Item 1 of issue 31: the lock holds across threads as across processes."""
    from leakyjax._src import io
    from leakyjax.train import TrainConfig, compare

    base = TrainConfig(
        dataset="digits", steps=6, eval_every=3, num_train=120, num_test=60, width=8
    )
    kw = dict(seeds=2, out=tmp_path, base=base, progress=False, plots=False)
    # waiting: both finish; the second reads the first's runs back
    results, errors = _two_threads(lambda: compare(["relu", "elu"], wait=True, **kw))
    assert not errors and len(results) == 2, errors
    assert sorted(len(r.trained) for r in results) == [0, 2]
    assert results[0].summaries == results[1].summaries
    _check_store(tmp_path, 4)
    # not waiting: one trains, the other is told at once
    results, errors = _two_threads(lambda: compare(["tanh"], **kw))
    assert len(results) == 1 and len(errors) == 1, errors
    assert isinstance(errors[0], io.Locked)
    assert "another thread of this process" in str(errors[0])
    _check_store(tmp_path, 6)
    assert not io._HELD


def test_compare_from_several_processes_on_one_out(tmp_path):
    """``PROCS`` processes start the same compare with ``--wait`` at once: each
    run is trained once, every process succeeds, the report is whole."""
    args = [*COMPARE, "--wait"]
    procs = [
        subprocess.Popen(
            _cli(args, tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCS)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * PROCS, [e for _, e in outs]
    _check_store(tmp_path, 6)
    assert "## Configuration" in (tmp_path / "report.md").read_text()
