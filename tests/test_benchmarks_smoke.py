"""Smoke test of the benchmark scripts: they run and write the expected JSON.

Tiny sizes and one or two rounds; nothing about speed is asserted (CI machines
are shared and noisy). The published runs live in benchmarks/results/.
"""

from __future__ import annotations

import json

import pytest

from benchmarks import bench_activations, bench_train_step, report

ACT_KEYS = {
    "fn",
    "lib",
    "name",
    "pass",
    "outputs",
    "n",
    "dtype",
    "bytes",
    "min_us",
    "median_us",
    "gbps",
    "pct_roofline",
    "ratio_relu_min",
    "ratio_ref_min",
    "compile_s",
    "rounds",
}


def _bench_activations(out, args: str) -> dict:
    """A short run of bench_activations: ``args`` plus short batches, no torch."""
    return bench_activations.main(
        [*args.split(), "--target-ms", "0.5", "--torch", "off", "--out", str(out)]
    )


def test_bench_activations_smoke(tmp_path):
    out = tmp_path / "act.json"
    result = _bench_activations(
        out,
        "--sizes 10 --dtypes float32,bfloat16 --functions leaky_relu,elu --rounds 2",
    )
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(result))
    assert {"backend", "device", "jax", "jaxlib", "date"} <= set(data["environment"])
    fns = {r["fn"] for r in data["results"]}
    assert fns == {
        "copy.x*2",
        "jax.nn.relu",
        "jax.nn.leaky_relu",
        "jax.nn.elu",
        "leakyjax.leaky_relu",
        "leakyjax.elu",
    }
    # every function x 2 dtypes x 2 passes x 2 output modes
    assert len(data["results"]) == len(fns) * 2 * 2 * 2
    for r in data["results"]:
        assert ACT_KEYS <= set(r), sorted(ACT_KEYS - set(r))
        assert r["n"] == 2**10 and r["rounds"] == 2
        assert 0 < r["min_us"] <= r["median_us"]
        assert r["bytes"] == (2 if r["pass"] == "fwd" else 4) * 2**10 * (
            4 if r["dtype"] == "float32" else 2
        )
        if r["fn"] == "copy.x*2":
            assert r["pct_roofline"] == pytest.approx(100.0)
        if r["fn"] == "jax.nn.relu":
            assert r["ratio_relu_min"] == pytest.approx(1.0)
    # the CPU checks of issue 3 are only evaluated at n = 2^20
    assert data["checks"] == []
    written = report.report(out, tmp_path / "report")
    names = {p.name for p in written}
    assert names == {"act.md", "act_gbps_fresh.png", "act_gbps_donated.png"}
    md = (tmp_path / "report" / "act.md").read_text()
    assert "leakyjax.leaky_relu" in md and "n = 2^10" in md


def test_bench_activations_shape(tmp_path):
    # --shape times arrays of that shape; the checks at n = 2^20 name it
    out = tmp_path / "act2d.json"
    _bench_activations(
        out,
        "--shape 1024,1024 --dtypes bfloat16 --functions leaky_relu --passes dx "
        "--outputs fresh --rounds 1",
    )
    data = json.loads(out.read_text())
    assert data["config"]["shape"] == [1024, 1024]
    assert {tuple(r["shape"]) for r in data["results"]} == {(1024, 1024)}
    assert {r["n"] for r in data["results"]} == {2**20}
    assert [c["check"] for c in data["checks"]] == [
        "leakyjax.leaky_relu / jax.nn.relu, dx, n=2^20 as (1024, 1024), bfloat16, "
        "fresh outputs"
    ]


def test_bench_train_step_smoke(tmp_path):
    out = tmp_path / "train.json"
    bench_train_step.main(
        [
            "--shape",
            "32,64,2",
            "--dtypes",
            "float32",
            "--acts",
            "leakyjax.leaky_relu,leakyjax.prelu",
            "--rounds",
            "1",
            "--target-ms",
            "1",
            "--out",
            str(out),
        ]
    )
    data = json.loads(out.read_text())
    acts = [r["act"] for r in data["results"]]
    assert acts == [
        "identity",
        "jax.nn.relu",
        "leakyjax.leaky_relu",
        "leakyjax.prelu",
    ]
    for r in data["results"]:
        assert r["temp_bytes"] >= 0 and r["argument_bytes"] > 0
        assert r["min_ms"] > 0 and r["compile_s"] > 0
        assert r["ratio_relu_min"] is not None
    by = {r["act"]: r for r in data["results"]}
    # compiled memory is deterministic: the output-only residual rule
    assert by["leakyjax.leaky_relu"]["temp_bytes"] <= by["jax.nn.relu"]["temp_bytes"]
    checks = {c["check"]: c for c in data["checks"]}
    assert checks["leakyjax.leaky_relu temp bytes <= jax.nn.relu's, custom float32"][
        "passed"
    ]
    written = report.report(out, tmp_path)
    assert {p.name for p in written} == {"train.md", "train_memory.png"}
    assert "leakyjax.prelu" in (tmp_path / "train.md").read_text()


def test_bad_arguments_name_the_flag(capsys):
    with pytest.raises(SystemExit):
        bench_activations.main(["--dtypes", "float64"])
    assert "--dtypes" in capsys.readouterr().err
    for bad in ("3,3", "8,x", "0,4"):
        with pytest.raises(SystemExit):
            bench_activations.main(["--shape", bad])
        assert "--shape" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_train_step.main(["--shape", "1,2"])
    assert "--shape" in capsys.readouterr().err


def test_compile_share_user_folder_and_before_rows(tmp_path):
    """The custom case runs from a user's folder; a ``--before`` run is a row."""
    import subprocess
    import sys

    from benchmarks import compile_share

    pytest.importorskip("sklearn")
    folder = compile_share._user_folder(tmp_path)
    probe = (
        "import winemodels as w; xs = w.wine_data(); "
        "print([len(a) for a in xs], type(w.wine_mlp(None)).__name__)"
    )
    got = subprocess.run(
        [sys.executable, "-c", probe], cwd=folder, capture_output=True, text=True
    )
    assert got.stdout.split() == ["[130,", "130,", "48,", "48]", "MLP"], got.stderr
    blob = {"wall_s": 10.0, "compile_s": 4.0, "compiles": 7, "compile_share": 0.4}
    data = {
        "runs": [
            {"case": "custom", "before_revision": "4ed4e39abc", "before": blob,
             "cold": dict(blob, compile_share=0.2)},
        ]
    }  # fmt: skip
    rows = compile_share.markdown(data).splitlines()
    assert (
        rows[2] == "| custom, before (`4ed4e39`), empty cache | 10.0 | 4.0 | 40% | 7 |"
    )
    assert rows[3].startswith("| custom, cold cache | 10.0 | 4.0 | 20% |")


def test_hlo_prints_the_packs_of_a_cell(capsys):
    """`benchmarks/hlo.py` lists a step's kernels; on XLA:CPU the one-bit rule
    packs each hidden layer's signs in a u8 fusion of its own."""
    from benchmarks import hlo

    assert hlo.main(["mlp", "float32", "leakyjax.relu", "--grep", "= u8["]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# mlp float32 leakyjax.relu, cpu")
    packs = [line for line in out[1:] if "reduce_fusion" in line]
    assert len(packs) == 4 and all(" = u8[8,256]" in line for line in packs)
