"""kill -9 at every named fault point of a write (searchkit/faults.py): before or after, never a mix.

Each test runs a real `searchkit` process with ``SEARCHKIT_FAULT`` set, checks that it died
at that very point (SIGKILL, and the line the fault point writes), then that the index is
exactly as before the write or as after it, that `check` is clean, and that running the
write again reaches the state after it.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from searchkit import Index, IndexNotFoundError
from searchkit.faults import POINTS
from searchkit.service import check

# Where each point leaves a write that it interrupts: the old state until SQLite commits.
# The update adds 1,260 items to 300: past the policy's seal_at, so the write then seals its
# tail into a segment (a compaction), whose points come after its commit.
COMPACTION = {"in-compaction": "after", "compaction-renamed": "after", "after-compaction": "after"}
UPSERT = {
    "after-stage": "before",
    "in-commit": "before",
    "after-commit": "after",
    "in-manifest": "after",
    "after-manifest": "after",
    **COMPACTION,
}
# A first ingest commits once (its 300 items seal nothing: under seal_at).
CREATE = {
    "after-create": "absent",
    **{p: ("absent" if s == "before" else s) for p, s in UPSERT.items() if p not in COMPACTION},
}


def test_the_tables_name_every_fault_point() -> None:
    assert set(CREATE) | set(COMPACTION) == set(POINTS)
    assert set(UPSERT) == set(POINTS) - {"after-create"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, crash_harness: Any, tiny_model_dir: Path) -> Any:
    work = tmp_path_factory.mktemp("faults")
    before, after = crash_harness.make_inputs(work, base=300, new=1200, changed=60, seed=3)
    base_index = work / "base-index"
    model = str(tiny_model_dir)
    crash_harness.run_to_end("index", str(base_index), str(work / "base.jsonl"), "--model", model)
    return work, base_index, before, after


def killed_at(harness: Any, point: str, *args: str) -> None:
    done = harness.kill_at(point, *args)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert f"searchkit: fault point {point.partition('@')[0]} reached" in done.stderr


def rerun(harness: Any, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        harness.cli(*args, "--json"), env=harness.env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.mark.slow
@pytest.mark.parametrize("point", sorted(UPSERT))
def test_an_upsert_killed_at_each_fault_point(point: str, setup: Any, crash_harness: Any) -> None:
    work, base_index, before, after = setup
    folder = work / f"upsert-{point}"
    shutil.copytree(base_index, folder)
    args = ("index", str(folder), str(work / "update.jsonl"))
    killed_at(crash_harness, point, *args)
    rng = random.Random(point)
    assert crash_harness.verify(folder, [before, after], sample=10, rng=rng) == UPSERT[point]
    if point in COMPACTION:
        assert check(folder).ok  # the segments as before the compaction, or after it
    report = rerun(crash_harness, *args)
    assert crash_harness.verify(folder, [after], sample=10, rng=rng) == "after"
    if point in COMPACTION:  # the rerun embeds nothing, and seals what the kill left
        assert report["embedded"] == 0 and Index.open(folder).segments()[-1]["vectors"] == 0
    if point == "after-stage":
        # The first batch staged before the kill is embedded once, not again.
        assert 0 < report["embedded"] < len(after) - len(before) + 60
    assert check(folder).ok


@pytest.mark.slow
@pytest.mark.parametrize("point", sorted(CREATE))
def test_a_first_ingest_killed_at_each_fault_point(
    point: str, setup: Any, crash_harness: Any, tiny_model_dir: Path
) -> None:
    work, _, before, _ = setup
    folder = work / f"create-{point}"
    args = ("index", str(folder), str(work / "base.jsonl"), "--model", str(tiny_model_dir))
    killed_at(crash_harness, point, *args)
    rng = random.Random(point)
    if CREATE[point] == "absent":
        with pytest.raises(IndexNotFoundError, match="first ingest stopped before it committed anything"):
            Index.open(folder)
    else:
        assert crash_harness.verify(folder, [before], sample=10, rng=rng) == "after"
    report = rerun(crash_harness, *args)
    assert crash_harness.verify(folder, [before], sample=10, rng=rng) == "after"
    if point == "after-stage":
        assert 0 < report["embedded"] < len(before)
    if point == "in-commit":  # every batch was staged before the commit that died
        assert (report["added"], report["embedded"]) == (len(before), 0)
    if CREATE[point] == "after":
        assert report["embedded"] == 0 and report["unchanged"] == len(before)
    assert check(folder).ok


@pytest.mark.slow
@pytest.mark.parametrize("point", ["in-commit", "after-commit", "in-manifest", "after-manifest"])
def test_a_delete_killed_at_each_fault_point(point: str, setup: Any, crash_harness: Any) -> None:
    work, base_index, before, _ = setup
    folder = work / f"delete-{point}"
    shutil.copytree(base_index, folder)
    gone = sorted(before)[:25]
    killed_at(crash_harness, point, "delete", str(folder), *gone)
    rest = {k: v for k, v in before.items() if k not in gone}
    state = crash_harness.verify(folder, [before, rest], sample=10, rng=random.Random(point))
    assert state == UPSERT[point]
    crash_harness.run_to_end("delete", str(folder), *gone)
    assert crash_harness.items_of(folder) == rest and check(folder).ok


@pytest.mark.slow
@pytest.mark.parametrize(
    "point", ["after-stage", "in-commit", "after-commit", "in-manifest", "after-manifest"]
)
def test_a_folder_sync_killed_at_each_fault_point(
    point: str, tmp_path: Path, crash_harness: Any, tiny_model_dir: Path
) -> None:
    """A re-index of a folder whose files changed (a line gone, a line new, a file gone)
    deletes and adds in the one commit: killed anywhere, the index holds the folder as it
    was or as it is, never the new lines beside the ones removed."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("alpha\nbeta\ngamma\n")
    (docs / "b.txt").write_text("delta\n")
    folder = tmp_path / "index"
    crash_harness.run_to_end("index", str(folder), str(docs), "--model", str(tiny_model_dir))
    before = crash_harness.items_of(folder)
    (docs / "a.txt").write_text("beta\ngamma\nepsilon\n")
    (docs / "b.txt").unlink()
    killed_at(crash_harness, point, "index", str(folder), str(docs))
    now = crash_harness.items_of(folder)
    assert now == before or sorted(now.values()) == ["beta", "epsilon", "gamma"]
    assert (now == before) == (UPSERT[point] == "before")
    assert check(folder).ok
    crash_harness.run_to_end("index", str(folder), str(docs))
    assert sorted(crash_harness.items_of(folder).values()) == ["beta", "epsilon", "gamma"]
    assert check(folder).ok
