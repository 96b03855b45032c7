"""The docs' numbers are rendered from committed results files, and say when they are stale."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import warnings

import jax.numpy as jnp
import pytest

from tools import fingerprint as F
from tools import results as R
from tools.results_tables import ACTIVATIONS_SPEED, DYING_RELU, ZOO

R.load_tables()

pytestmark = pytest.mark.skipif(
    subprocess.run(["git", "rev-parse"], cwd=R.ROOT, capture_output=True).returncode
    != 0,
    reason="needs the git history (not in an sdist)",
)


def test_rendered_blocks_match_their_results_files():
    # Fails when a table was edited by hand, its results file changed, or the code that
    # produced it changed behaviour without the block saying so. Fix:
    # python -m tools.render_results (marks stale blocks) or make results (remeasures).
    # A stale timing block is a warning here, not a failure.
    assert R.render_all(check=True) == []
    for name in sorted(R.used_tables()):
        for src in (R.TABLES[name].source, *R.TABLES[name].more):
            why = R.staleness(src, R.load(src)) if src.slow else None
            if why:
                warnings.warn(
                    f"results:{name}: stale timings ({why}); rerun on a quiet machine: "
                    f"python -m tools.render_results --run {src.name}",
                    stacklevel=1,
                )


def test_committed_results_carry_the_freshness_digests():
    # Every results file records what tools.results.staleness compares (run_source
    # writes them; python -m tools.render_results --stamp adds them to a file made by an
    # older tools/results.py from this code).
    for src in R.SOURCES.values():
        if (R.ROOT / src.results).is_file():
            prov = R.prov_of(R.load(src))
            assert "code_ast" in prov, src.results
            assert ("behaviour" in prov) == src.behaviour, src.results


def test_a_docstring_or_comment_edit_keeps_the_code_digest(tmp_path):
    code = 'def f(x):\n    """Old words."""\n    return x + 1  # add\n'
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text(code)
    b.write_text(code.replace("Old words.", "New, longer words.").replace("# add", ""))
    c.write_text(code.replace("x + 1", "x + 2"))
    assert F.source_form(a) == F.source_form(b)
    assert F.source_form(a) != F.source_form(c)
    # a module, class or function left with only its docstring is still code
    d = tmp_path / "d.py"
    d.write_text('class C:\n    """Doc."""\n')
    assert b"ClassDef" in F.source_form(d)


def test_the_behaviour_fingerprint_sees_a_changed_derivative(monkeypatch):
    from leakyjax._src import table as T

    before = F.behaviour_items("leaky_relu[")
    assert before and not any(v.startswith("raises") for v in before.values())
    (e,) = [e for e in T.TABLE if e.name == "leaky_relu"]

    def reworded(x, negative_slope=0.01):
        """The same function under a new docstring."""
        return e.function(x, negative_slope)

    def torch_kink(x, negative_slope=0.01):  # slope, not 1, as the derivative at 0
        return jnp.where(x > 0, x, x * jnp.asarray(negative_slope, x.dtype))

    table = list(T.TABLE)
    i = table.index(e)
    for fn, same in ((reworded, True), (torch_kink, False)):
        table[i] = dataclasses.replace(e, function=fn)
        monkeypatch.setattr(T, "TABLE", tuple(table))
        after = F.behaviour_items("leaky_relu[")
        assert (after == before) is same, fn.__name__


def test_staleness_follows_behaviour_not_text():
    fresh = {"provenance": {"git_commit": None, **R.freshness_stamp(DYING_RELU)}}
    assert R.staleness(DYING_RELU, fresh) is None
    moved = {"provenance": {**fresh["provenance"], "behaviour": "0" * 16}}
    assert "compute changed" in (R.staleness(DYING_RELU, moved) or "")
    old_probe = {"provenance": {**fresh["provenance"], "probe_version": -1}}
    assert "probe" in (R.staleness(DYING_RELU, old_probe) or "")
    # the core files are judged by behaviour for training results, by text for the zoo
    assert "leakyjax/_src/activations.py" not in R.text_code(DYING_RELU)
    assert "leakyjax/_src/activations.py" in R.text_code(ZOO)
    assert "leakyjax/_src/_*.py" in R.text_code(ZOO)
    edited = {"provenance": {**R.freshness_stamp(ZOO), "code_ast": "0" * 16}}
    assert "changed" in (R.staleness(ZOO, edited) or "")


def test_a_stale_timing_block_is_rendered_without_failing():
    src = ACTIVATIONS_SPEED
    assert src.slow
    stale = {"provenance": {**R.freshness_stamp(src), "code_ast": "0" * 16}}
    assert R.staleness(src, stale) is not None
    assert "**Stale:**" not in R.provenance_line(src, stale)
    slow_zoo = ZOO._replace(slow=False)
    stale = {"provenance": {**R.freshness_stamp(ZOO), "code_ast": "0" * 16}}
    assert "**Stale:**" in R.provenance_line(slow_zoo, stale)


def test_every_block_has_a_table_and_a_results_file():
    used = R.used_tables()
    assert used, "no results blocks found in the docs"
    assert used <= set(R.TABLES), sorted(used - set(R.TABLES))
    for name in used:
        src = R.TABLES[name].source
        assert (R.ROOT / src.results).is_file(), (
            f"results:{name}: {src.results} is missing; run "
            f"python -m tools.render_results --run {src.name}"
        )
        data = R.load(src)
        prov = R.prov_of(data)
        assert prov.get("command"), f"{src.results}: no command recorded"


def test_a_hand_edited_block_is_detected():
    name = next(iter(sorted(R.used_tables())))
    text = f"<!-- results:{name} -->\n| typed | 1.0 |\n<!-- /results:{name} -->\n"
    new, changed = R.render_text(text)
    assert changed == [name]
    assert R.render_text(new)[1] == []


def test_stale_results_say_so():
    src = DYING_RELU
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=R.ROOT, capture_output=True, text=True
    ).stdout.strip()
    fresh = {"provenance": {"git_commit": head, "code_digest": R.code_digest(src.code)}}
    assert R.staleness(src, fresh) is None
    # the first commit predates all code: every code change since is listed
    first = subprocess.run(
        ["git", "rev-list", "--max-parents=0", "HEAD"],
        cwd=R.ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()[0]
    old = {"provenance": {"git_commit": first, "code_digest": "0" * 16}}
    why = R.staleness(src, old)
    assert why is not None and "changed since" in why
    assert "**Stale:**" in R.provenance_line(src, old)
    assert R.staleness(src, {"environment": {}}) == "no git commit recorded"


def test_results_files_are_json_with_provenance():
    for src in R.SOURCES.values():
        path = R.ROOT / src.results
        if path.exists():
            data = json.loads(path.read_text())
            assert isinstance(data, dict)


def test_a_code_path_added_to_a_source_later_is_checked_by_commit():
    src = DYING_RELU
    added = "examples/dying_relu.py"
    old_code = [p for p in src.code if p != added]
    git = lambda *a: subprocess.run(
        ["git", *a], cwd=R.ROOT, capture_output=True, text=True
    ).stdout.strip()
    first = git("rev-list", "--max-parents=0", "HEAD").split()[0]
    last_change = git("log", "-1", "--format=%H", "--", added)

    def prov(commit):
        return {
            "provenance": {
                "git_commit": commit,
                "code": old_code,
                "code_digest": R.code_digest(old_code),
            }
        }

    # the example changed after the first commit: results made then are stale
    assert "changed since" in (R.staleness(src, prov(first)) or "")
    # made at or after its last change (and the tree clean there): fresh
    if not git("status", "--porcelain", "--", added):
        assert R.staleness(src, prov(last_change)) is None
