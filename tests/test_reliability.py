"""Issue 13: the CLI and its store under bad input and faults.

Every reproducer gives one line on stderr and the documented exit status:
2 for a usage error (a bad flag, an unusable --out), 1 for a runtime failure
(a failed write, --out in use), 0 (with one warning per bad line) for a damaged
results.jsonl, whose bad runs are trained again.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("flax")
pytest.importorskip("optax")

from leakyjax._src import io
from leakyjax._src.cli import main
from leakyjax._src.study.studies import STUDIES
from leakyjax._src.train.compare import _unique_activations, canonical

TINY = [
    "compare",
    "--acts",
    "relu",
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


def _run(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse errors
        code = e.code
    cap = capsys.readouterr()
    return code, cap.err


def _one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny compare (relu, seeds 0 and 1)."""
    out = tmp_path_factory.mktemp("finished")
    assert main([*TINY, "--out", str(out)]) == 0
    return out


@pytest.fixture
def out(finished, tmp_path):
    d = tmp_path / "out"
    shutil.copytree(finished, d)
    for f in d.glob(".leakyjax.lock"):
        f.unlink()
    return d


def _lines(out):
    return (out / "results.jsonl").read_bytes().splitlines()


# ---------------------------------------------------------------- damaged store


@pytest.mark.parametrize(
    "extra, reason",
    [
        (b"\xff\xfe garbage", "not UTF-8: byte 0xff"),
        (b"garbage", "not JSON"),
        (None, "duplicate of line 1"),  # None: a copy of line 1
    ],
)
def test_appended_bad_lines_warn_with_file_and_line(capsys, out, extra, reason):
    before = _lines(out)
    with (out / "results.jsonl").open("ab") as f:
        f.write((before[0] if extra is None else extra) + b"\n")
    code, err = _run(capsys, [*TINY, "--out", str(out)])
    assert code == 0
    warn = [x for x in err.splitlines() if "warning" in x]
    assert warn == [
        f"leakyjax compare: warning: {out / 'results.jsonl'}:3: skipped ({reason}"
        + warn[0].split(reason, 1)[1]
    ]
    assert len(_lines(out)) == 3  # nothing retrained, nothing deleted


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda r: r.pop("activation"), "missing field 'activation'"),
        (
            lambda r: r.update(final_test_acc="high"),
            "field 'final_test_acc' is a string",
        ),
        (lambda r: r.update(seed="0"), "field 'seed' is a string"),
        (lambda r: r["history"].update(test_acc=[1]), "history fields have different"),
        # item 3: ranges, and the config against the key
        (
            lambda r: r.update(final_test_acc=5.0),
            "field 'final_test_acc' is 5.0, outside [0, 1] for metric 'accuracy'",
        ),
        (lambda r: r.update(best_test_acc=-0.5), "field 'best_test_acc' is -0.5"),
        (
            lambda r: r.update(final_test_loss=-1.0),
            "field 'final_test_loss' is -1.0, outside [0, inf]",
        ),
        (
            lambda r: r.update(best_step=99),
            "field 'best_step' is 99, outside [0, 6] (steps run)",
        ),
        (
            lambda r: r.update(steps=7),
            "field 'steps' is 7, outside [0, 6] (config steps)",
        ),
        (
            lambda r: r["history"]["test_acc"].__setitem__(-1, 1.5),
            "history 'test_acc' is 1.5, outside [0, 1]",
        ),
        (
            lambda r: r.update(dead_fraction=[0.0, 2.0]),
            "field 'dead_fraction' is 2.0, outside [0, 1]",
        ),
        (lambda r: r.update(wall_time=-3.0), "field 'wall_time' is -3.0"),
        (lambda r: r.update(metric="top5"), "field 'metric' is 'top5'"),
        (lambda r: r.update(num_devices=0), "field 'num_devices' is 0, expected >= 1"),
        (
            lambda r: r["config"].update(width=64),
            "config does not match its key: width is 64 in config, 8 in key",
        ),
        (
            lambda r: r["config"].update(steps=600),
            "config does not match its key: steps is 600 in config, 6 in key",
        ),
        (
            lambda r: r.update(data_fingerprint="0000"),
            "config does not match its key: data_fingerprint is '0000' in config",
        ),
        (
            lambda r: r.update(activation="elu"),
            "activation is 'elu' but its config says 'relu'",
        ),
        (lambda r: r.update(key="[1]"), "key is not a configuration"),
    ],
)
def test_invalid_record_is_skipped_and_its_run_retrained(capsys, out, damage, reason):
    lines = _lines(out)
    rec = json.loads(lines[0])
    damage(rec)
    bad = json.dumps(rec).encode()
    (out / "results.jsonl").write_bytes(b"\n".join([bad, lines[1]]) + b"\n")
    code, err = _run(capsys, [*TINY, "--out", str(out)])
    assert code == 0, err
    assert f"results.jsonl:1: skipped ({reason}" in err and "redone" in err
    now = _lines(out)
    assert now[:2] == [bad, lines[1]]  # the user's line is kept as it was
    assert len(now) == 3
    assert json.loads(now[2])["seed"] == json.loads(lines[0])["seed"]  # retrained


def test_a_redone_run_is_not_reported_again(capsys, out):
    """Item 4: a bad line whose run was redone (or a torn line of an old kill)
    is reported on the run that redoes it, and not on later runs."""
    lines = _lines(out)
    rec = json.loads(lines[0])
    rec["final_test_acc"] = 5.0
    torn = lines[1][: len(lines[1]) // 2]  # seed 1, killed half-way through
    (out / "results.jsonl").write_bytes(json.dumps(rec).encode() + b"\n" + torn)
    code, err = _run(capsys, [*TINY, "--out", str(out)])
    assert code == 0, err
    warn = [x for x in err.splitlines() if "warning" in x]
    assert len(warn) == 2, err
    assert "results.jsonl:1: skipped (field 'final_test_acc' is 5.0" in warn[0]
    assert "results.jsonl:2: skipped (an unfinished last line" in warn[1]
    assert all(w.endswith("its run will be redone") for w in warn)
    assert len(_lines(out)) == 4  # both redone, nothing deleted
    code, err = _run(capsys, [*TINY, "--out", str(out)])
    assert code == 0 and "warning" not in err, err  # superseded: not again
    assert len(_lines(out)) == 4


def test_warnings_about_garbage_are_capped(capsys, out):
    garbage = b"\n".join(b"x" * 250 for _ in range(800))  # 200 kB
    with (out / "results.jsonl").open("ab") as f:
        f.write(garbage + b"\n")
    code, err = _run(capsys, [*TINY, "--out", str(out)])
    assert code == 0, err
    warn = [x for x in err.splitlines() if "warning" in x]
    assert len(warn) == io.MAX_WARNINGS + 1, len(warn)
    assert warn[-1] == (
        f"leakyjax compare: warning: {out / 'results.jsonl'}: 790 more bad line(s) "
        "skipped, from line 13 on (not shown one by one); remove them to silence "
        "these warnings"
    )


def test_results_jsonl_or_report_md_a_directory_is_a_usage_error(capsys, tmp_path):
    for name in ("results.jsonl", "report.md"):
        d = tmp_path / name.split(".")[0]
        (d / name).mkdir(parents=True)
        code, err = _run(capsys, [*TINY, "--out", str(d)])
        assert code == 2
        line = _one_line(err)
        assert line.startswith("leakyjax compare: error: --out: ")
        assert f"{d / name}' is a directory" in line


# ---------------------------------------------------------------- --out


@pytest.mark.parametrize(
    "where, words",
    [
        ("file", ["is a file, not a directory"]),
        ("file/sub", ["a part of the path is a file", "file' is a file"]),
        ("/proc/leakyjax/out", ["cannot create '/proc/leakyjax/out'"]),
    ],
)
def test_unusable_out_is_one_line_exit_2(capsys, tmp_path, where, words):
    (tmp_path / "file").write_text("x")
    target = where if where.startswith("/") else str(tmp_path / where)
    code, err = _run(capsys, [*TINY, "--out", target])
    assert code == 2
    line = _one_line(err)
    assert line.startswith("leakyjax compare: error: --out: ")
    for w in words:
        assert w in line, line


def test_out_not_writable_is_exit_2(capsys, tmp_path, monkeypatch):
    def refuse(*a, **k):  # what a read-only directory does (root ignores chmod)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(io.tempfile, "mkstemp", refuse)
    code, err = _run(capsys, [*TINY, "--out", str(tmp_path)])
    assert code == 2
    assert "cannot write in" in _one_line(err) and "Permission denied" in err


@pytest.mark.parametrize(
    "err_no, words",
    [
        (errno.ENOSPC, ["No space left on device (disk full?)"]),
        (errno.EACCES, ["Permission denied"]),
    ],
)
def test_failed_append_is_exit_1_and_keeps_finished_runs(
    capsys, out, monkeypatch, err_no, words
):
    before = (out / "results.jsonl").read_bytes()
    real = os.write

    def fail(fd, data):
        real(fd, data[:10])  # part of it got out before the failure
        raise OSError(err_no, os.strerror(err_no))

    monkeypatch.setattr(io.os, "write", fail)
    code, err = _run(capsys, [*TINY, "--seeds", "3", "--out", str(out)])
    assert code == 1
    line = _one_line(err)
    assert line.startswith(
        f"leakyjax compare: error: cannot write '{out / 'results.jsonl'}'"
    )
    assert "finished runs are kept" in line
    for w in words:
        assert w in line
    assert (out / "results.jsonl").read_bytes() == before


_FULL_DISK = textwrap.dedent(
    """
    import errno, os, sys
    real = os.write
    def write(fd, data):
        if fd > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)
    os.write = write
    from leakyjax._src.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def test_full_disk_in_a_subprocess(out):
    before = (out / "results.jsonl").read_bytes()
    proc = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, *TINY, "--seeds", "3", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "No space left on device (disk full?)" in _one_line(proc.stderr)
    assert (out / "results.jsonl").read_bytes() == before


_SIGTERM_SECOND_TRAIN = textwrap.dedent(
    """
    import os, signal, sys, time
    from leakyjax._src.train import compare
    real, calls = compare.train, []
    def train(*a, **k):  # a job scheduler stops the job during the second one
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
        return real(*a, **k)
    compare.train = train
    from leakyjax._src.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    argv = [*TINY, "--acts", "relu,elu", "--out", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, "-c", _SIGTERM_SECOND_TRAIN, *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 130, proc.stderr
    assert _one_line(proc.stderr) == (
        "leakyjax compare: interrupted; finished runs are kept."
    )
    assert [json.loads(x)["activation"] for x in _lines(tmp_path)] == ["relu"] * 2


_FULL_FROM_THE_START = textwrap.dedent(
    """
    import errno, os, sys
    def full(real):
        def call(fd, *a):
            if fd > 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd, *a)
        return call
    os.write, os.pwrite, os.ftruncate = map(full, (os.write, os.pwrite, os.ftruncate))
    from leakyjax._src.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def test_disk_full_from_the_start_names_the_file(tmp_path):
    """Item 6: the lock's pid is the first write; it must not be the error."""
    proc = subprocess.run(
        [sys.executable, "-c", _FULL_FROM_THE_START, *TINY, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert _one_line(proc.stderr) == (
        f"leakyjax compare: error: cannot write '{tmp_path / 'results.jsonl'}': No "
        "space left on device (disk full?); finished runs are kept."
    )


# ---------------------------------------------------------------- numeric flags

_BAD_NUMBERS = [
    (flag, value)
    for flag in (
        "--lr",
        "--weight-decay",
        "--clip",
        "--dropout",
        "--val-fraction",
        "--recycle-tau",
    )
    for value in ("nan", "inf", "-inf")
] + [
    ("--lr", "0"),
    ("--lr", "-1"),
    ("--weight-decay", "-1e-4"),
    ("--clip", "-1"),
    ("--dropout", "1"),
    ("--val-fraction", "1"),
    ("--steps", "0"),
    ("--steps", "1.5"),
    ("--batch-size", "0"),
    ("--eval-every", "0"),
    ("--warmup", "-1"),
    ("--patience", "-1"),
    ("--depth", "0"),
    ("--width", "0"),
    ("--num-train", "0"),
    ("--num-test", "0"),
    ("--recycle", "-1"),
    ("--recycle-tau", "-0.1"),
    ("--init", "xavier"),
    ("--seeds", "0"),
    ("--seeds", "1,1"),
    ("--seeds", "2,-1"),
]


@pytest.mark.parametrize("flag, value", _BAD_NUMBERS)
def test_every_numeric_flag_is_checked(capsys, tmp_path, flag, value):
    code, err = _run(capsys, [*TINY, f"{flag}={value}", "--out", str(tmp_path)])
    assert code == 2
    line = _one_line(err)
    assert flag in line and "error" in line, line
    assert not (tmp_path / "results.jsonl").exists()


def test_num_train_1_is_a_usage_error(capsys, tmp_path):
    code, err = _run(capsys, [*TINY, "--num-train", "1", "--out", str(tmp_path)])
    assert code == 2
    line = _one_line(err)
    assert "--num-train 1 leaves no training example" in line


# ---------------------------------------------------------------- the lock

_HOLD = textwrap.dedent(
    """
    import sys, time
    from leakyjax._src import io
    with io.lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def _holder(d, seconds):
    p = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(d), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout.readline().strip() == "locked"
    return p


def test_second_process_exits_at_once_or_waits(capsys, out):
    holder = _holder(out, 2)
    try:
        code, err = _run(capsys, [*TINY, "--out", str(out)])
        assert code == 1
        line = _one_line(err)
        assert (
            f"'{out}' is in use by another leakyjax process (pid {holder.pid})" in line
        )
        assert "--wait" in line
        code, err = _run(capsys, [*TINY, "--out", str(out), "--wait"])
        assert code == 0, err
    finally:
        holder.kill()
        holder.wait()
    assert len(_lines(out)) == 2


# ---------------------------------------------------------------- canonical specs


def test_specs_are_deduplicated_in_canonical_form(capsys, out):
    assert _unique_activations(
        ["elu", "ELU", " elu:1.0", "leaky_relu", "leaky_relu:0.01", "leaky_relu:0.2"]
    ) == ["elu", "leaky_relu", "leaky_relu:0.2"]
    assert canonical("Leaky-ReLU") == canonical("leaky_relu:negative_slope=0.01")
    # relu, RELU and Relu are one activation, read back from the finished runs
    argv = [*TINY, "--out", str(out)]
    argv[argv.index("relu")] = "RELU,relu,Relu"
    code, _ = _run(capsys, argv)
    assert code == 0 and len(_lines(out)) == 2


# ---------------------------------------------------------------- study


@pytest.mark.parametrize("name", list(STUDIES))
def test_every_study_rejects_bad_inputs(capsys, tmp_path, name):
    (tmp_path / "file").write_text("x")
    cases = [
        (["--seed", "-1", "--out", str(tmp_path / "o")], 2, ["--seed", "-1"]),
        (["--seed", "x", "--out", str(tmp_path / "o")], 2, ["--seed", "'x'"]),
        (["--out", str(tmp_path / "file")], 2, ["--out", "is a file"]),
        (["--out", str(tmp_path / "file" / "o")], 2, ["--out", "a part of the path"]),
        (["--out", "/proc/leakyjax/o"], 2, ["--out", "/proc/leakyjax/o"]),
        ([], 2, ["--out"]),
    ]
    for extra, want, words in cases:
        code, err = _run(capsys, ["study", name, "--quick", *extra])
        assert code == want, (extra, err)
        line = _one_line(err)
        assert line.startswith("leakyjax study: error:"), line
        for w in words:
            assert w in line, (w, line)


def test_study_unknown_name_and_locked_out(capsys, tmp_path):
    code, err = _run(capsys, ["study", "born-deaf", "--out", str(tmp_path)])
    assert code == 2 and "'born-deaf'" in _one_line(err) and "born-dead" in err
    holder = _holder(tmp_path, 30)
    try:
        code, err = _run(
            capsys, ["study", "born-dead", "--quick", "--out", str(tmp_path)]
        )
        assert code == 1 and "in use by another leakyjax process" in _one_line(err)
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------- help


def _all_parsers():
    from leakyjax._src.cli import build_parser

    root = build_parser()
    sub = next(a for a in root._actions if a.__class__.__name__ == "_SubParsersAction")
    return root, dict(sub.choices)


def test_every_flag_has_help_and_its_default(capsys):
    _, parsers = _all_parsers()
    for name, p in parsers.items():
        text = p.format_help()
        assert "exit status: 0 success; 2 usage error" in " ".join(text.split())
        for action in p._actions:
            if not action.option_strings or action.dest == "help":
                continue
            assert action.help, (name, action.option_strings)
            d = action.default
            if d is None or d is False or action.required:
                continue
            shown = p._get_formatter()._get_help_string(action)
            assert "default" in shown, (name, action.option_strings, shown)
    text = " ".join(parsers["compare"].format_help().split())
    assert "hidden layers (default: mlp 2, cnn 3)" in text
    assert "per layer (default: mlp 100, cnn " in text
    assert "None" not in text
