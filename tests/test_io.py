"""leakyjax._src.io: output directories, the lock, atomic files, the record store."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

from leakyjax._src import io

SCHEMA = {"key": str, "seed": int, "acc": (float, None), "ok": bool}


def _rec(seed, acc=0.5, key="k"):
    return {"key": key, "seed": seed, "acc": acc, "ok": True}


def _read(path, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        recs = io.read_records(
            path, SCHEMA, identity=lambda r: (r["key"], r["seed"]), **kw
        )
    msgs = [str(x.message) for x in w if issubclass(x.category, io.RecordWarning)]
    return recs, msgs


# ---------------------------------------------------------------- output_dir


def test_output_dir_creates_nested(tmp_path):
    p = io.output_dir(tmp_path / "a" / "b", files=("results.jsonl",))
    assert p.is_dir()
    assert os.listdir(p) == []  # the write probe leaves nothing


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda t: (t / "f").write_text("x") and t / "f", ["is a file"]),
        (
            lambda t: (t / "f").write_text("x") and t / "f" / "sub",
            ["a part of the path is a file", "/f'"],
        ),
        (
            lambda t: (t / "d" / "report.md").mkdir(parents=True) or t / "d",
            ["report.md", "is a directory"],
        ),
    ],
)
def test_output_dir_rejects_with_one_line(tmp_path, make, words):
    target = make(tmp_path)
    with pytest.raises(ValueError) as e:
        io.output_dir(target, files=("report.md", "results.jsonl"))
    msg = str(e.value)
    assert "\n" not in msg and "choose another directory" in msg
    for w in words:
        assert w in msg, msg


def test_output_dir_under_proc_is_a_value_error():
    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc")
    with pytest.raises(ValueError, match=r"cannot (create|write in) '/proc/"):
        io.output_dir("/proc/leakyjax-test/out")


def test_output_dir_not_writable(tmp_path, monkeypatch):
    # root ignores chmod, so inject the refusal the kernel gives everyone else
    def refuse(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(io.tempfile, "mkstemp", refuse)
    with pytest.raises(ValueError, match=r"cannot write in .*Permission denied"):
        io.output_dir(tmp_path)


# ---------------------------------------------------------------- lock


def test_lock_is_reentrant_and_released(tmp_path):
    with io.lock(tmp_path):
        with io.lock(tmp_path):
            pass
        me = (io.os.path.realpath(tmp_path / io.LOCK_NAME), io.threading.get_ident())
        assert io._HELD == {me: 1}
    assert not io._HELD
    with io.lock(tmp_path):  # released: can take it again
        pass


_HOLD = textwrap.dedent(
    """
    import sys, time
    from leakyjax._src import io
    with io.lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
        open(sys.argv[1] + "/released", "w").close()
    """
)


def test_lock_second_process_fails_at_once_or_waits(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path), "1.5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(io.Locked) as e:
            with io.lock(tmp_path):
                pass
        msg = str(e.value)
        assert str(tmp_path) in msg and f"pid {holder.pid}" in msg and "--wait" in msg
        with io.lock(tmp_path, wait=True, poll=0.05):  # blocks until it exits
            assert (tmp_path / "released").exists()
    finally:
        holder.kill()
        holder.wait()


def test_lock_removes_temporaries_of_killed_writes(tmp_path):
    stale = tmp_path / ".report.md.ab12_xyz.tmp"
    stale.write_text("half")
    keep = tmp_path / "notes.tmp"
    keep.write_text("mine")
    with io.lock(tmp_path):
        pass
    assert not stale.exists() and keep.exists()


def test_lock_sweep_recurses_into_parts_but_not_other_stores(tmp_path):
    parts = tmp_path / "parts" / "born-dead"
    parts.mkdir(parents=True)
    stale = parts / ".cell_1.json.3f9a01bc.tmp"
    stale.write_text("half")
    other = tmp_path / "other"  # another output directory, locked on its own
    other.mkdir()
    (other / io.LOCK_NAME).touch()
    busy = other / ".report.md.3f9a01bc.tmp"
    busy.write_text("being written")
    (tmp_path / "link").symlink_to(other)
    with io.lock(tmp_path):
        pass
    assert not stale.exists()
    assert busy.exists()


def _two_threads(d, *, wait, hold=0.4):
    """Two threads each ``with io.lock(d, wait=wait): time.sleep(hold)``: their
    (start, end) inside the lock and what they raised."""
    spans, errors = [], []
    start = threading.Barrier(2)

    def work():
        start.wait()
        try:
            with io.lock(d, wait=wait, poll=0.02):
                t0 = time.monotonic()
                time.sleep(hold)
                spans.append((t0, time.monotonic()))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return spans, errors


def test_lock_second_thread_fails_at_once(tmp_path):
    spans, errors = _two_threads(tmp_path, wait=False)
    assert len(spans) == 1 and len(errors) == 1, (spans, errors)
    assert isinstance(errors[0], io.Locked)
    msg = str(errors[0])
    assert f"another thread of this process (pid {os.getpid()})" in msg, msg
    assert not io._HELD  # the thread that left did not take the other's entry


def test_lock_second_thread_waits_and_never_overlaps(tmp_path):
    spans, errors = _two_threads(tmp_path, wait=True)
    assert not errors and len(spans) == 2
    (_, a1), (b0, _) = sorted(spans)
    assert a1 <= b0, "both threads were inside the lock at once"
    assert not io._HELD


def test_lock_held_by_a_thread_keeps_other_processes_out(tmp_path):
    """After the first of two threads leaves, the flock is still held for the
    second: another process cannot enter."""
    inside = threading.Event()
    leave = threading.Event()

    def second():
        with io.lock(tmp_path, wait=True, poll=0.02):
            inside.set()
            leave.wait(30)

    with io.lock(tmp_path):
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.1)
        assert not inside.is_set()
    assert inside.wait(10)
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _HOLD, str(tmp_path), "0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.returncode == 1 and "Locked" in probe.stderr, probe.stderr
    finally:
        leave.set()
        t.join(30)


def test_lock_released_by_sigkill(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path), "60"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait()
    with io.lock(tmp_path):
        pass


# ---------------------------------------------------------------- atomic files


def test_atomic_writes_replace_and_leave_no_temp(tmp_path):
    p = tmp_path / "report.md"
    io.write_text(p, "old")
    io.write_text(p, "new ü")
    assert p.read_text(encoding="utf-8") == "new ü"
    io.write_json(tmp_path / "r.json", {"a": np.float32(0.25), "b": float("inf")})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": 0.25, "b": None}
    assert sorted(os.listdir(tmp_path)) == ["r.json", "report.md"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "report.md"
    io.write_text(p, "old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", full)
    with pytest.raises(OSError) as e:
        io.write_text(p, "new")
    assert e.value.filename == str(p)
    assert "disk full" in io.describe(e.value)
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.md"]  # temp removed


def test_atomic_write_onto_a_directory_names_it(tmp_path):
    (tmp_path / "report.md").mkdir()
    with pytest.raises(OSError) as e:
        io.write_text(tmp_path / "report.md", "x")
    assert "report.md" in io.describe(e.value)
    assert os.listdir(tmp_path) == ["report.md"]


def test_save_figure_atomic_png(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    p = io.save_figure(fig, tmp_path / "f.png", dpi=50)
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(tmp_path) == ["f.png"]


# ---------------------------------------------------------------- record store


def test_unreadable_store_names_the_path(tmp_path):
    (tmp_path / "r.jsonl").mkdir()
    with pytest.raises(OSError) as e:
        io.read_records(tmp_path / "r.jsonl", SCHEMA)
    assert io.describe(e.value).startswith(f"cannot read {str(tmp_path / 'r.jsonl')!r}")


def test_append_and_read_roundtrip(tmp_path):
    p = tmp_path / "r.jsonl"
    io.append_records(p, [_rec(0), _rec(1, None)])
    io.append_records(p, [_rec(2)])
    recs, msgs = _read(p)
    assert [r["seed"] for r in recs] == [0, 1, 2] and not msgs
    assert io.read_records(tmp_path / "missing.jsonl", SCHEMA) == []


@pytest.mark.parametrize(
    "line, reason",
    [
        (b"\xff\xfe garbage", "not UTF-8: byte 0xff at column 1"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"key": "k", "seed": 5}', "missing field 'acc'"),
        (
            b'{"key": "k", "seed": 5, "acc": "high", "ok": true}',
            "field 'acc' is a string",
        ),
        (b'{"key": "k", "seed": true, "acc": 1, "ok": true}', "field 'seed' is a bool"),
        (b'{"key": "k", "seed": 5, "acc": NaN, "ok": true}', "non-finite"),
        (json.dumps(_rec(0)).encode(), "duplicate of line 1"),
    ],
)
def test_bad_lines_are_skipped_with_file_and_line(tmp_path, line, reason):
    p = tmp_path / "r.jsonl"
    io.append_records(p, [_rec(0)])
    with p.open("ab") as f:
        f.write(line + b"\n")
    io.append_records(p, [_rec(1)])
    before = p.read_bytes()
    recs, msgs = _read(p)
    assert [r["seed"] for r in recs] == [0, 1]
    assert len(msgs) == 1 and msgs[0].startswith(f"{p}:2: skipped (")
    assert reason in msgs[0], msgs[0]
    assert p.read_bytes() == before  # nothing the user wrote is deleted


def test_torn_last_line_is_kept_apart(tmp_path):
    p = tmp_path / "r.jsonl"
    io.append_records(p, [_rec(0)])
    with p.open("ab") as f:
        f.write(b'{"key": "k", "se')  # a killed write
    recs, msgs = _read(p)
    assert len(recs) == 1 and "unfinished last line" in msgs[0]
    io.append_records(p, [_rec(1)])  # the run after the kill
    recs, msgs = _read(p)
    # the torn line is old news now: later runs wrote after it; not reported again
    assert [r["seed"] for r in recs] == [0, 1] and msgs == []
    assert p.read_bytes().split(b"\n")[1] == b'{"key": "k", "se'  # kept as it was


@pytest.mark.parametrize(
    "torn", [b'{"key": "k", "seed": 1, "ac', b'{"key": "k", "seed": 1, "acc": 0.', b"{"]
)
def test_torn_line_mid_file_is_not_reported_again(tmp_path, torn):
    p = tmp_path / "r.jsonl"
    p.write_bytes(json.dumps(_rec(0)).encode() + b"\n" + torn + b"\n")
    io.append_records(p, [_rec(1)])
    recs, msgs = _read(p)
    assert [r["seed"] for r in recs] == [0, 1] and msgs == []


def test_superseded_bad_record_is_not_reported_but_a_pending_one_is(tmp_path):
    p = tmp_path / "r.jsonl"
    io.append_records(p, [_rec(0), _rec(1)])
    check = lambda r: "acc > 1" if (r["acc"] or 0) > 1 else None
    p.write_bytes(p.read_bytes() + json.dumps(_rec(2, acc=5.0)).encode() + b"\n")
    recs, msgs = _read(p, check=check)
    assert [r["seed"] for r in recs] == [0, 1]
    assert msgs == [f"{p}:3: skipped (acc > 1); its run will be redone"]
    io.append_records(p, [_rec(2)])  # redone
    recs, msgs = _read(p, check=check)
    assert [r["seed"] for r in recs] == [0, 1, 2] and msgs == []


def test_garbage_warnings_are_capped_with_a_summary(tmp_path):
    p = tmp_path / "r.jsonl"
    io.append_records(p, [_rec(0)])
    rng = np.random.default_rng(0)
    garbage = bytes(rng.integers(32, 127, 200_000, dtype=np.uint8)).replace(b"{", b"(")
    p.write_bytes(
        p.read_bytes()
        + b"\n".join(garbage[i : i + 250] for i in range(0, len(garbage), 250))
        + b"\n"
    )
    io.append_records(p, [_rec(1)])
    recs, msgs = _read(p)
    assert [r["seed"] for r in recs] == [0, 1]
    assert len(msgs) == io.MAX_WARNINGS + 1
    assert all(f"{p}:{i + 2}: skipped (not JSON" in m for i, m in enumerate(msgs[:-1]))
    assert msgs[-1] == (
        f"{p}: 790 more bad line(s) skipped, from line 12 on (not shown one by "
        "one); remove them to silence these warnings"
    )
    _, msgs = _read(p, max_warnings=0)
    assert msgs == [
        f"{p}: 800 more bad line(s) skipped, from line 2 on (not shown one by "
        "one); remove them to silence these warnings"
    ]


def test_full_disk_loses_no_finished_record(tmp_path, monkeypatch):
    p = tmp_path / "r.jsonl"
    io.append_records(p, [_rec(0), _rec(1)])
    before = p.read_bytes()
    real_write = os.write

    def half_then_full(fd, data):  # the disk fills up in the middle of a write
        real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "write", half_then_full)
    with pytest.raises(OSError) as e:
        io.append_records(p, [_rec(2), _rec(3)])
    monkeypatch.undo()
    assert e.value.filename == str(p) and e.value.errno == errno.ENOSPC
    assert io.describe(e.value) == (
        f"cannot write {str(p)!r}: No space left on device (disk full?)"
    )
    assert p.read_bytes() == before  # the partial tail was cut off
    recs, msgs = _read(p)
    assert [r["seed"] for r in recs] == [0, 1] and not msgs


def test_one_write_per_append(tmp_path, monkeypatch):
    calls = []
    real_write = os.write
    monkeypatch.setattr(
        io.os, "write", lambda fd, b: calls.append(len(b)) or real_write(fd, b)
    )
    io.append_records(
        tmp_path / "r.jsonl", [_rec(i, key="x" * 100_000) for i in range(3)]
    )
    assert len(calls) == 1 and calls[0] > 300_000


_WRITER = textwrap.dedent(
    """
    import sys
    from leakyjax._src import io
    tag = sys.argv[2]
    for i in range(40):
        io.append_records(sys.argv[1], [{"key": tag * 50_000, "seed": i, "acc": 1.0, "ok": True}])
    """
)


def test_concurrent_appends_do_not_interleave(tmp_path):
    p = tmp_path / "r.jsonl"
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(p), tag]) for tag in "ab"
    ]
    for q in procs:
        assert q.wait(timeout=120) == 0
    recs, msgs = _read(p)
    assert not msgs and len(recs) == 80
    assert all(set(r["key"]) in ({"a"}, {"b"}) for r in recs)


def test_progress_disabled_is_silent(capsys):
    bar = io.progress(total=3, enable=False)
    bar.update(2)
    bar.set_description("x")
    bar.close()
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------- modes, signals


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield 0o640
    finally:
        os.umask(old)


def test_outputs_get_the_umask_mode(tmp_path, umask_027):
    pytest.importorskip("matplotlib")
    plt = io.pyplot()
    written = [
        io.write_text(tmp_path / "report.md", "# r\n"),
        io.write_json(tmp_path / "study.json", {"a": 1}),
        io.write_bytes(tmp_path / "b.bin", b"x"),
        io.save_figure(plt.figure(), tmp_path / "f.png"),
        io.append_records(tmp_path / "results.jsonl", [_rec(0)]),
    ]
    io.write_text(tmp_path / "report.md", "# again\n")  # a replaced file too
    for p in written:
        assert oct(p.stat().st_mode & 0o777) == oct(umask_027), p.name
    with io.lock(tmp_path):
        pass
    assert oct((tmp_path / io.LOCK_NAME).stat().st_mode & 0o777) == oct(umask_027)


def test_atomic_write_onto_a_directory_names_the_target(tmp_path):
    (tmp_path / "cell.json").mkdir()
    with pytest.raises(OSError) as e:
        io.write_json(tmp_path / "cell.json", {"value": 1})
    msg = io.describe(e.value)
    assert msg.startswith(f"cannot write '{tmp_path / 'cell.json'}': Is a directory")
    assert ".tmp" not in msg and "remove or rename that directory" in msg
    assert [p.name for p in tmp_path.iterdir()] == ["cell.json"]


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers live in the main thread",
)
def test_sigterm_is_an_interrupt_inside_and_default_after():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with io.terminate_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler interrupts this
    assert signal.getsignal(signal.SIGTERM) is before


_FULL_FROM_THE_START = textwrap.dedent(
    """
    import errno, os, sys
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    from leakyjax._src import io
    io.os.pwrite = full
    io.os.ftruncate = full
    io.os.write = full
    with io.lock(sys.argv[1]):
        io.append_records(sys.argv[1] + "/results.jsonl", [{"seed": 0}])
    """
)


def test_full_disk_from_the_start_names_the_file(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", _FULL_FROM_THE_START, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        f"OSError: [Errno 28] No space left on device: '{tmp_path / 'results.jsonl'}'"
    ), proc.stderr
