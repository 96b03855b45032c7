"""Benchmark checks: documented misses print [expected], real failures exit 1."""

from __future__ import annotations

import pytest

pytest.importorskip("flax")

from benchmarks import bench_train_step
from benchmarks.common import report_checks


def _row(act, temp, shape="test", dtype="float32"):
    return dict(
        model="mlp",
        shape=shape,
        dtype=dtype,
        act=act,
        temp_bytes=temp,
        ratio_relu_min=None,
        ratio_relu_median=None,
    )


def _status(rows, capsys):
    checks = bench_train_step.checks(rows, "cpu")
    code = report_checks([c for c in checks if c.get("judged", True)])
    return code, capsys.readouterr().out


def test_documented_prelu_miss_is_expected_and_exits_0(capsys):
    rows = [
        _row("jax.nn.relu", 100),
        _row("leakyjax.leaky_relu", 60),
        _row("leakyjax.prelu", 144),
        _row("flax.linen.PReLU formula", 144),
    ]
    code, out = _status(rows, capsys)
    assert code == 0, out
    assert "[expected] leakyjax.prelu temp bytes <= jax.nn.relu's" in out
    assert "documented:" in out and "[FAIL]" not in out
    assert "[PASS] leakyjax.prelu temp bytes <= flax.linen.PReLU formula's" in out


@pytest.mark.parametrize(
    "rows",
    [
        [_row("jax.nn.relu", 100), _row("leakyjax.leaky_relu", 101)],
        [
            _row("jax.nn.relu", 100),
            _row("leakyjax.prelu", 150),
            _row("flax.linen.PReLU formula", 144),
        ],
    ],
)
def test_a_real_miss_fails_and_exits_1(capsys, rows):
    code, out = _status(rows, capsys)
    assert code == 1 and "[FAIL]" in out and "1 check(s) failed" in out
