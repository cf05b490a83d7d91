"""Segmented vectors (issue 12): writes touch SQLite alone, readers catch up with what is
new, searches over segments and tail are what one index would give, compaction keeps it so."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from searchkit import Index, Metric
from searchkit.metrics import pairwise
from searchkit.segments.policy import Policy
from searchkit.service import check
from searchkit.service import protocol as protocol_module
from searchkit.service.compaction import compact

from .conftest import TinyEmbedder

DIM = 16


def items(start: int, stop: int, word: str = "text") -> list[dict[str, Any]]:
    return [{"id": f"k{i}", "text": f"{word} number {i}", "n": i} for i in range(start, stop)]


def vector_files(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if ".faiss" in p.name}


def brute_force(index: Index, tiny: TinyEmbedder, query: str, k: int) -> list[str]:
    rows = list(index.export(vectors=True))
    stored = np.asarray([r["embedding"] for r in rows], dtype=np.float32)
    scores = pairwise(tiny.encode([query]), stored, index.metric)[0]
    order = np.lexsort((np.arange(len(rows)), -scores))[:k]
    return [rows[i]["id"] for i in order]


def test_a_small_write_changes_no_vector_file(tmp_path: Path) -> None:
    folder = tmp_path / "i"
    index = Index.create(folder, embedder=TinyEmbedder(DIM), index_type="hnsw")
    index.add(items(0, 3000))
    index.compact()
    before = vector_files(folder)
    assert before and all(name.startswith("segment-") for name in before)
    index.add([{"id": "k5", "text": "changed five"}, {"id": "new", "text": "brand new"}])
    index.delete(["k7"])
    index.add([{"id": "k9", "text": "text number 9", "tag": "metadata only"}])
    assert vector_files(folder) == before  # no file written, none rewritten, none removed
    assert {h.id for h in index.search("changed five", k=1)} == {"k5"}
    assert "k7" not in {h.id for h in index.search("text number 7", k=20)}
    assert check(folder).ok


@pytest.mark.parametrize("metric", list(Metric))
def test_segments_and_tail_search_as_one_flat_index(tmp_path: Path, metric: Metric) -> None:
    """Several flat segments (sealed at 100), tombstones in them, a tail, a replaced vector
    in each: every query's hits are the brute-force best over the live items."""
    tiny = TinyEmbedder(DIM)
    index = Index.create(tmp_path / "i", embedder=tiny, metric=metric)
    small = Policy(seal_at=100, floor=100, per_tier=100)  # seal often, never merge
    for start in range(0, 500, 100):
        index.add(items(start, start + 100))
        compact(index, policy=small)
    index.delete([f"k{i}" for i in range(0, 500, 7)])
    index.add([{"id": f"k{i}", "text": f"moved {i}"} for i in range(3, 500, 50)])
    index.add(items(500, 540))  # the tail
    parts = index.vectors.parts
    assert len(parts) == 5 and all(len(p.dead) for p in parts) and len(index.vectors.tail.ids) > 40
    for query in ["text number 12", "moved 103", "text number 520", "number"]:
        hits = index.search(query, k=10)
        assert hits.exact and [h.id for h in hits] == brute_force(index, tiny, query, 10)
    # Matches in two segments (ids 90-109) and the tail (520-529): ranked from FAISS's memory.
    where = {"$or": [{"n": {"$gte": 90, "$lt": 110}}, {"n": {"$gte": 520, "$lt": 530}}]}
    chosen = [
        r
        for r in index.export(vectors=True)
        if r["id"] in {h.id for h in index.search("x", k=500, where=where)}
    ]
    # Less the deleted (multiples of 7 below 500) and 103, moved with no metadata.
    assert {int(r["id"][1:]) for r in chosen} == {*range(90, 110), *range(520, 530)} - {91, 98, 103, 105}
    for query in ["text number 95", "text number 524"]:
        hits = index.search(query, k=8, where=where)
        stored = np.asarray([r["embedding"] for r in chosen], dtype=np.float32)
        scores = pairwise(tiny.encode([query]), stored, index.metric)[0]
        order = np.lexsort((np.arange(len(chosen)), -scores))[:8]
        assert hits.exact and [h.id for h in hits] == [chosen[i]["id"] for i in order]
    assert check(tmp_path / "i").ok


def test_a_reader_catches_up_with_a_write_without_loading_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = TinyEmbedder(DIM)
    folder = tmp_path / "i"
    writer = Index.create(folder, embedder=tiny)
    writer.add(items(0, 2000))
    writer.compact()
    reader = Index.open(folder, embedder=tiny)
    assert reader.search("text number 3", k=1)[0].id == "k3"
    loads: list[Path] = []
    load = protocol_module.VectorIndex.load

    def counted(path: Path, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("mapped"):  # a reader's (a merge loads its base unmapped)
            loads.append(path)
        return load(path, *args, **kwargs)

    monkeypatch.setattr(protocol_module.VectorIndex, "load", counted)
    writer.add([{"id": "fresh", "text": "fresh words"}])
    writer.delete(["k3"])
    assert reader.search("fresh words", k=1)[0].id == "fresh"
    assert "k3" not in {h.id for h in reader.search("text number 3", k=10)}
    assert loads == []  # the tombstone and the new vector came from SQLite
    writer.compact()
    assert reader.search("fresh words", k=1)[0].id == "fresh"
    assert len(loads) == 1  # the merged segment, mapped once


def test_compaction_merges_and_vacuums_and_search_stays_the_same(tmp_path: Path) -> None:
    tiny = TinyEmbedder(DIM)
    folder = tmp_path / "i"
    index = Index.create(folder, embedder=tiny)
    for start in range(0, 3000, 500):
        index.add(items(start, start + 500))
    index.delete([f"k{i}" for i in range(0, 3000, 3)])
    queries = ["text number 10", "text number 2999", "number 5"]
    before = [[h.id for h in index.search(q, k=10)] for q in queries]
    done = index.compact()
    assert done and any("vacuum" in d or "segment(s)" in d for d in done)
    (segment,) = index.vectors.parts
    assert not len(segment.dead) and not len(index.vectors.tail.ids)
    assert [[h.id for h in index.search(q, k=10)] for q in queries] == before
    assert index.compact() == []  # nothing left to do
    assert check(folder).ok and check(folder).notes == []


def test_searches_from_many_threads_go_on_during_a_compaction(tmp_path: Path) -> None:
    """Searches run while a compaction builds and commits in another thread, and each sees
    every item exactly once (the segments before or after the swap, never both or neither)."""
    tiny = TinyEmbedder(DIM)
    folder = tmp_path / "i"
    index = Index.create(folder, embedder=tiny)
    for start in range(0, 4000, 1000):
        index.add(items(start, start + 1000))
    index.add(items(4000, 4500))  # a tail (under seal_at)
    index.delete([f"k{i}" for i in range(0, 4500, 4)])  # dead versions to vacuum
    live = len(index)
    errors: list[BaseException] = []
    done = threading.Event()
    searched = [0]

    def read() -> None:
        try:
            while not done.is_set():
                hits = index.search("text number 1234", k=3)
                assert hits[0].id == "k1234" and len(index.vectors.ids()) == live
                searched[0] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    compactor = Index.open(folder, embedder=tiny, load=False)
    try:
        steps = compactor.compact()
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors, errors[0]
    assert steps and searched[0] > 0 and len(index.vectors.parts) == 1


def test_check_reports_an_orphaned_segment_file_and_repair_removes_it(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "i"
    index = Index.create(folder, embedder=TinyEmbedder(DIM))
    index.add(items(0, 50))
    index.compact()
    (segment,) = folder.glob("segment-*.faiss")
    shutil.copy(segment, folder / "segment-999999-0000abcd.faiss")
    report = check(folder)
    assert report.ok and report.notes == ["leftover temporary files: segment-999999-0000abcd.faiss"]
    assert check(folder, repair=True).repaired == ["removed segment-999999-0000abcd.faiss"]
    assert sorted(folder.glob("segment-*.faiss")) == [segment]


def test_info_lists_the_segments_and_the_cli_compacts(tmp_path: Path, tiny_model_dir: Path) -> None:
    from typer.testing import CliRunner

    from searchkit.cli import app

    source = tmp_path / "in.txt"
    source.write_text("".join(f"line number {i}\n" for i in range(30)))
    folder = tmp_path / "i"
    runner = CliRunner()
    assert (
        runner.invoke(app, ["index", str(folder), str(source), "--model", str(tiny_model_dir)]).exit_code == 0
    )
    shown = runner.invoke(app, ["info", str(folder)])
    assert "tail: 30 vectors, 0 dead, memory (not sealed yet)" in shown.stdout
    done = runner.invoke(app, ["compact", str(folder)])
    assert done.exit_code == 0 and "1 step(s)" in done.stdout and "1 segment(s) now" in done.stdout
    shown = runner.invoke(app, ["info", str(folder)])
    assert "30 vectors, 0 dead, flat, generations" in shown.stdout
    assert "tail: 0 vectors" in shown.stdout


def test_no_lock_is_held_around_the_faiss_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One thread held inside its FAISS search does not keep another's search from
    finishing: each reads its own SQLite snapshot, and the view is immutable."""
    from searchkit.segments.view import SegmentView

    tiny = TinyEmbedder(DIM)
    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add(items(0, 2000))
    inside, release = threading.Event(), threading.Event()
    search = SegmentView.search

    def held(self: SegmentView, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "held":
            inside.set()
            assert release.wait(30)
        return search(self, *args, **kwargs)

    monkeypatch.setattr(SegmentView, "search", held)
    found: list[str] = []
    first = threading.Thread(
        target=lambda: found.append(index.search("text number 5", k=1)[0].id), name="held"
    )
    first.start()
    try:
        assert inside.wait(30)
        # The held search is inside FAISS; this one runs to the end meanwhile.
        assert index.search("text number 6", k=1)[0].id == "k6"
    finally:
        release.set()
        first.join(timeout=30)
    assert found == ["k5"]


def test_a_bulk_ingest_commits_in_chunks_and_says_so_when_bad_input_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from searchkit import UsageError
    from searchkit.service import index as index_module
    from searchkit.service import ingest as ingest_module

    monkeypatch.setattr(ingest_module, "COMMIT_EVERY", 256)  # a chunk per staged batch of 256
    index = Index.create(tmp_path / "i", embedder=TinyEmbedder(DIM))
    commits: list[int] = []
    original = index_module.Index._commit_run

    def counted(self: Any, *args: Any) -> None:
        commits.append(len(self))
        original(self, *args)

    monkeypatch.setattr(index_module.Index, "_commit_run", counted)

    def feed() -> Any:
        yield from items(0, 559)
        yield {"id": "bad"}  # no text: item 560

    with pytest.raises(UsageError, match=r"item 560: .*; the 512 items before it were committed"):
        index.add(feed())
    assert len(commits) == 2 and len(index) == 512 and check(tmp_path / "i").ok
    report = index.add(items(0, 600))  # the run again, the input fixed
    assert (report.unchanged, report.added, report.embedded) == (512, 88, 88)
