"""The ``leakyjax`` console script: help, one-line errors, a tiny compare."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("flax")
pytest.importorskip("optax")

from leakyjax._src.cli import main, split_activations

TINY = [
    "compare",
    "--acts",
    "relu,leaky_relu:0.1",
    "--dataset",
    "digits",
    "--num-train",
    "200",
    "--num-test",
    "100",
    "--width",
    "16",
    "--seeds",
    "2",
    "--steps",
    "10",
    "--eval-every",
    "5",
    "--batch-size",
    "20",
    "--no-progress",
    "--no-plots",
]


def _error(capsys, argv):
    code = None
    try:
        code = main(argv)
    except SystemExit as e:  # argparse-level errors
        code = e.code
    err = capsys.readouterr().err
    return code, err


def test_help_lists_commands_and_flags(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "compare" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["compare", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for flag in ("--acts", "--dataset", "--model", "--seeds", "--steps", "--out"):
        assert flag in out
    assert "(default: relu" in out and "(default: mnist1d)" in out  # defaults shown


@pytest.mark.parametrize(
    "argv, words",
    [
        (["compare", "--acts", "relu,relux"], ["'relux'", "relu", "leaky_relu"]),
        (["compare", "--acts", "leaky_relu:abc"], ["'abc'", "negative_slope"]),
        (["compare", "--dataset", "mnist"], ["'mnist'", "mnist1d, digits"]),
        (["compare", "--model", "rnn"], ["'rnn'", "mlp, cnn"]),
        (["compare", "--optimizer", "lamb"], ["'lamb'", "adamw"]),
        (["compare", "--steps", "ten"], ["--steps", "'ten'"]),
        (["compare", "--steps", "0"], ["--steps", ">= 1"]),
        (["compare", "--seeds", "a,b"], ["--seeds", "'a,b'"]),
        (["compare", "--lr", "-1"], ["--lr", "-1"]),
        (["compare", "--bogus"], ["--bogus"]),
        (["frobnicate"], ["'frobnicate'", "compare"]),
    ],
)
def test_errors_are_one_line_naming_the_bad_value(capsys, tmp_path, argv, words):
    code, err = _error(capsys, [*argv, "--out", str(tmp_path)])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("leakyjax")
    assert "error" in lines[0] and "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not (tmp_path / "results.jsonl").exists()


def test_python_m_leakyjax_error_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "leakyjax",
            "compare",
            "--acts",
            "foo",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "'foo'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_split_activations_keeps_multi_argument_specs():
    assert split_activations("relu, leaky_relu:0.2,rrelu:lower=0.1,upper=0.3") == [
        "relu",
        "leaky_relu:0.2",
        "rrelu:lower=0.1,upper=0.3",
    ]
    assert split_activations("elu:alpha=0.5,prelu,") == ["elu:alpha=0.5", "prelu"]


def test_tiny_compare_prints_the_table_and_resumes(capsys, tmp_path):
    argv = [*TINY, "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "rank" in out and "leaky_relu:0.1" in out and "report:" in out
    report = (tmp_path / "report.md").read_text()
    assert "leakyjax compare --acts relu,leaky_relu:0.1" in report  # exact command
    n = len((tmp_path / "results.jsonl").read_text().splitlines())
    assert n == 4
    assert main(argv) == 0  # resumes: nothing new
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == n
    assert main([*argv, "--fresh"]) == 0  # --fresh starts over
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == n
