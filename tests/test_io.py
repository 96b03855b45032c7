"""leakyjax._src.io: output directories, the lock, atomic files, the record store."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
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
        assert io.os.path.realpath(tmp_path / io.LOCK_NAME) in io._HELD
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
    io.append_records(p, [_rec(1)])
    recs, msgs = _read(p)
    assert [r["seed"] for r in recs] == [0, 1] and ":2: skipped" in msgs[0]


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
