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


def test_cli_user_model_and_npz(capsys, tmp_path):
    from tests.test_compare import user_data

    np_ = pytest.importorskip("numpy")
    path = tmp_path / "data.npz"
    np_.savez(path, **user_data())
    argv = [
        "compare", "--acts", "relu,elu", "--model", "tests.test_compare:tiny_linen",
        "--data", str(path), "--seeds", "2", "--steps", "4", "--eval-every", "2",
        "--batch-size", "20", "--val-fraction", "0", "--no-progress", "--no-plots",
        "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "elu" in out and "report:" in out
    report = (tmp_path / "run" / "report.md").read_text()
    assert "tests.test_compare:tiny_linen" in report and "data.npz" in report
    bad = [*argv[:4], "tests.test_compare:wrong_width", *argv[5:]]
    code, err = _error(capsys, bad)
    assert code == 2 and "output has shape (1, 5)" in err and len(err.splitlines()) == 1


NO_FLAX = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("flax", "optax"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from leakyjax._src.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _no_flax(*args, env=None):
    return subprocess.run(
        [sys.executable, "-c", NO_FLAX, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_help_version_without_flax():
    proc = _no_flax("--help")
    assert proc.returncode == 0 and "compare" in proc.stdout, proc.stderr
    proc = _no_flax("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("leakyjax "), proc.stderr
    proc = _no_flax("compare", "--quick")
    assert proc.returncode == 1 and "leakyjax[train]" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_compile_cache_rerun_compiles_nothing(tmp_path):
    import json
    import os

    env = dict(os.environ, LEAKYJAX_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("LEAKYJAX_NO_COMPILE_CACHE", None)
    counts = []
    for i in range(2):
        res = tmp_path / f"count{i}.json"
        cmd = [sys.executable, "-m", "benchmarks.count_compiles", str(res), "--"]
        argv = [*TINY, "--out", str(tmp_path / f"run{i}")]
        proc = subprocess.run(
            [*cmd, *argv], capture_output=True, text=True, timeout=300, env=env
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        counts.append(json.loads(res.read_text()))
    assert counts[0]["compiles"] > 0 and any((tmp_path / "cache").iterdir())
    assert counts[1]["compiles"] == 0, counts  # a rerun compiles nothing new
    # the flag turns it off
    off = tmp_path / "off.json"
    cmd = [sys.executable, "-m", "benchmarks.count_compiles", str(off), "--"]
    argv = [*TINY, "--out", str(tmp_path / "run2"), "--no-compile-cache"]
    subprocess.run([*cmd, *argv], capture_output=True, timeout=300, env=env)
    assert json.loads(off.read_text())["cache_hits"] == 0


def test_help_metadata_is_the_training_stacks():
    from leakyjax._src.cli import HELP_META, train_meta

    assert {k: list(v) for k, v in HELP_META.items()} == {
        k: list(v) for k, v in train_meta().items()
    }


VERSION_MODULES = """
import sys
import leakyjax
before = set(sys.modules)
from leakyjax._src.cli import main
for argv in (["--version"], ["--help"], ["compare", "--help"], ["study", "--help"]):
    try:
        main(argv)
    except SystemExit:
        pass
heavy = ("jax", "jaxlib", "flax", "optax", "tqdm", "matplotlib", "scipy", "sklearn")
print(sorted(m for m in set(sys.modules) - before if m.split(".")[0] in heavy))
"""


def test_version_and_help_load_nothing_heavy():
    """Beyond ``import leakyjax``: no jax module, no training stack."""
    proc = subprocess.run(
        [sys.executable, "-c", VERSION_MODULES],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout[-2000:]


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "is empty (0 bytes)"),
        (b"x_train,y_train\n1,2\n", "is not an .npz archive"),
    ],
)
def test_data_file_that_is_not_an_npz(capsys, tmp_path, content, words):
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    argv = [*TINY, "--data", str(path), "--out", str(tmp_path / "run")]
    code, err = _error(capsys, argv)
    assert code == 2 and words in err and str(path) in err and "--data" in err
    assert len(err.splitlines()) == 1


def test_batch_larger_than_the_training_split_warns_once(capsys, tmp_path):
    argv = [*TINY, "--out", str(tmp_path / "run")]
    argv[argv.index("--batch-size") + 1] = "181"  # 200 - 20 held out = 180
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("warning: train: TrainConfig.batch_size 181 is larger") == 1
    assert "(180 examples of 200 once val_fraction 0.1 holds out 20)" in err
    assert "--batch-size" in err and len(err.strip().splitlines()) == 1, err
    argv[argv.index("--batch-size") + 1] = "180"
    assert main([*argv, "--fresh"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_study_is_quiet_on_a_non_terminal(capsys, tmp_path):
    assert main(["study", "born-dead", "--quick", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "it/s" not in err, err[-500:]


def test_compare_result_renders_as_text_and_markdown(tmp_path):
    from leakyjax._src.train.compare import compare
    from leakyjax.train import TrainConfig

    base = TrainConfig(
        dataset="digits",
        steps=4,
        eval_every=2,
        num_train=100,
        num_test=50,
        width=8,
        batch_size=30,
    )
    res = compare(
        ["relu", "elu"], seeds=2, out=tmp_path, base=base, progress=False, plots=False
    )
    text, md = str(res), res._repr_markdown_()
    assert text.splitlines()[0].startswith("rank  activation")
    assert res.decision.sentence.replace("**", "") in text
    assert md.startswith(res.decision.sentence) and "| rank | activation |" in md
    assert res.report.read_text().split("\n")[2] == res.decision.sentence


def test_data_file_holding_one_array(capsys, tmp_path):
    np_ = pytest.importorskip("numpy")
    path = tmp_path / "x.npy"
    np_.save(path, np_.zeros(3))
    code, err = _error(
        capsys, [*TINY, "--data", str(path), "--out", str(tmp_path / "r")]
    )
    assert code == 2 and "holds one array (an .npy)" in err and str(path) in err
