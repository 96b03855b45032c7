"""The docs' numbers are rendered from committed results files, and say when they are stale."""

from __future__ import annotations

import json
import subprocess

import pytest

from tools import results as R
from tools.results_tables import DYING_RELU

R.load_tables()

pytestmark = pytest.mark.skipif(
    subprocess.run(["git", "rev-parse"], cwd=R.ROOT, capture_output=True).returncode
    != 0,
    reason="needs the git history (not in an sdist)",
)


def test_rendered_blocks_match_their_results_files():
    # Fails when a table was edited by hand, its results file changed, or the code it
    # measures changed without the block saying so. Fix: python -m tools.render_results
    # (marks stale blocks) or make results (remeasures).
    assert R.render_all(check=True) == []


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
