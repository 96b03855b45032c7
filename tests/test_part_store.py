"""The study part store (``out/parts/<study>/*.json``) under damage.

A damaged part is skipped with one warning naming its file and computed again;
the study's numbers equal those of an undamaged run; nothing stops the study.
"""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest

from leakyjax._src import io
from leakyjax._src.study import studies as S


def _toy_study(calls: list) -> S.Study:
    def parts(cfg, seed):
        def part(i):
            calls.append(i)
            return {"x": np.float32(i * cfg["scale"] + seed), "c": [i, i + 1]}

        return {f"p{i}": (lambda i=i: part(i)) for i in range(cfg["n"])}

    def summarise(cfg, values):
        total = sum(v["x"] + v["c"][1] for v in values.values())
        return {"total": total, "lines": []}, {"values": values}

    def plot(path, cfg, values):
        return io.write_bytes(path, b"png")

    return S.Study(
        "toy",
        lambda quick, seed: {"n": 3, "scale": 10},
        parts,
        summarise,
        plot,
        lambda res: "",
    )


def _run(out, calls):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = S.execute(_toy_study(calls), out, seed=1, progress=False)
    msgs = [str(x.message) for x in w if issubclass(x.category, io.RecordWarning)]
    return r, msgs


@pytest.fixture
def done(tmp_path):
    """A finished toy study in tmp_path/out, and its result."""
    out = tmp_path / "out"
    calls: list = []
    r, msgs = _run(out, calls)
    assert calls == [0, 1, 2] and not msgs
    return out, r


def _edit(path, **fields):
    blob = json.loads(path.read_text())
    blob.update(fields)
    path.write_text(json.dumps(blob))


DAMAGE = {
    "0xff byte": lambda p: p.write_bytes(b"\xff" + p.read_bytes()[1:]),
    "a JSON list": lambda p: p.write_text("[1, 2]"),
    "value garbage": lambda p: _edit(p, value="garbage"),
    "value {}": lambda p: _edit(p, value={}),
    "value number changed": lambda p: _edit(p, value={"x": 1e9, "c": [1, 2]}),
    "torn": lambda p: p.write_bytes(p.read_bytes()[:40]),
    "empty": lambda p: p.write_bytes(b""),
    "another part's key": lambda p: _edit(p, key="p0"),
    "NaN": lambda p: p.write_text(
        p.read_text().replace('"seconds":', '"x": NaN, "s":')
    ),
}
REASONS = {
    "0xff byte": "not UTF-8: byte 0xff at offset 0",
    "a JSON list": "not a JSON object but list",
    "value garbage": "its value does not match its checksum: edited or damaged",
    "value {}": "its value does not match its checksum: edited or damaged",
    "value number changed": "its value does not match its checksum",
    "torn": "an unfinished file (a killed write)",
    "empty": "an unfinished file (a killed write)",
    "another part's key": "it holds part 'p0', not 'p1'",
    "NaN": "non-finite number NaN",
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_part_is_skipped_with_one_warning_and_recomputed(done, damage):
    out, want = done
    part = out / "parts" / "toy" / "p1.json"
    DAMAGE[damage](part)
    calls: list = []
    got, msgs = _run(out, calls)
    assert len(msgs) == 1, msgs
    assert msgs[0].startswith(f"{part}: skipped ({REASONS[damage]}"), msgs
    assert msgs[0].endswith("); the part is computed again")
    assert calls == [1]  # only the damaged part
    assert got.summary == want.summary
    assert json.loads(part.read_text())["value"] == {"x": 11.0, "c": [1, 2]}
    _, msgs = _run(out, calls)  # repaired: silent, nothing computed
    assert msgs == [] and calls == [1]


@pytest.mark.parametrize("value", ["garbage", {}, [1], None])
def test_part_without_checksum_that_does_not_fit_is_recomputed(done, value):
    """A part file of an older leakyjax (no checksum) with a value the study
    cannot use: the summary fails, the parts read back are computed again."""
    out, want = done
    for p in (out / "parts" / "toy").iterdir():
        blob = json.loads(p.read_text())
        del blob["digest"]
        p.write_text(json.dumps(blob))
    legacy = out / "parts" / "toy" / "p2.json"
    blob = json.loads(legacy.read_text())
    blob["value"] = value
    legacy.write_text(json.dumps(blob))
    calls: list = []
    got, msgs = _run(out, calls)
    assert got.summary == want.summary
    if value is None:  # a part without a value is simply computed again
        assert msgs == [] and calls == [2]
        return
    assert len(msgs) == 1, msgs
    assert msgs[0].startswith(f"{out / 'parts' / 'toy'}: 3 stored part(s) do not fit")
    assert msgs[0].endswith("they are computed again")
    assert calls == [0, 1, 2]
    record = json.loads(got.results.read_text())
    assert (record["parts_reused"], record["parts_computed"]) == (0, 3)


def test_other_config_is_recomputed_silently(done):
    out, _ = done
    _edit(out / "parts" / "toy" / "p0.json", config={"n": 3, "scale": 1})
    calls: list = []
    _, msgs = _run(out, calls)
    assert msgs == [] and calls == [0]


def test_part_that_is_a_directory_names_the_part(done):
    out, _ = done
    part = out / "parts" / "toy" / "p1.json"
    part.unlink()
    part.mkdir()
    with pytest.raises(OSError) as e:
        _run(out, [])
    msg = io.describe(e.value)
    assert msg.startswith(f"cannot read '{part}': Is a directory"), msg
    assert "remove or rename that directory" in msg and ".tmp" not in msg


def test_summary_errors_without_stored_parts_are_not_hidden(tmp_path):
    study = _toy_study([])
    broken = study._replace(summarise=lambda cfg, values: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        S.execute(broken, tmp_path, progress=False)


def test_stale_temporaries_under_parts_are_swept_by_run_study(done, monkeypatch):
    out, _ = done
    stale = out / "parts" / "toy" / ".p1.json.0a1b2c3d.tmp"
    stale.write_text("{half")
    calls: list = []
    monkeypatch.setitem(S.STUDIES, "toy", ("unused", "toy"))
    monkeypatch.setattr(S, "load", lambda name: _toy_study(calls))
    S.run_study("toy", out=out, seed=1, progress=False)
    assert not stale.exists() and calls == []
    assert sorted(p.name for p in (out / "parts" / "toy").iterdir()) == [
        "p0.json",
        "p1.json",
        "p2.json",
    ]


@pytest.mark.slow
def test_cli_study_with_damaged_parts_exits_0_with_one_warning(tmp_path, capsys):
    """The issue's reproducers on a real study: each damage, then the CLI."""
    pytest.importorskip("matplotlib")
    from leakyjax._src.cli import main

    ref = tmp_path / "ref"
    args = ["study", "born-dead", "--quick", "--no-progress", "--out"]
    assert main([*args, str(ref)]) == 0
    want = json.loads((ref / "born_dead.json").read_text())["summary"]
    capsys.readouterr()
    for i, damage in enumerate(
        ["0xff byte", "a JSON list", "value garbage", "value {}"]
    ):
        out = tmp_path / f"o{i}"
        shutil.copytree(ref, out)
        part = out / "parts" / "born-dead" / "relu_zero_N2.json"
        DAMAGE[damage](part)
        assert main([*args, str(out)]) == 0, damage
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"leakyjax study: warning: {part}: skipped ({REASONS[damage]}); "
            "the part is computed again"
        ], damage
        got = json.loads((out / "born_dead.json").read_text())
        assert got["summary"] == want and got["parts_computed"] == 1, damage
