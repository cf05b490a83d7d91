"""The Index facade: exact search for every metric, upserts, deletes, recovery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from searchkit import (
    CorruptIndexError,
    Index,
    InputError,
    Metric,
    ModelMismatchError,
    UsageError,
)
from searchkit.service import build, check

# Queries written for these tests; none of them is in data/corpus.jsonl.
QUERIES = [
    "Will I need an umbrella this afternoon?",
    "Which team scored the winning goal?",
    "recommend me a scary film",
    "cheap flights to Europe",
    "how do computers store data",
    "something warm to eat on a cold evening",
]


_doc_vectors: dict[int, Any] = {}


def brute_force(st_model: Any, corpus: list[dict[str, Any]], query: str, metric: Metric, k: int):
    """The reference: rank every item by model.similarity with that similarity_fn_name."""
    if id(corpus) not in _doc_vectors:
        _doc_vectors[id(corpus)] = st_model.encode([c["text"] for c in corpus])
    docs = _doc_vectors[id(corpus)]
    q = st_model.encode([query])
    previous = st_model.similarity_fn_name
    try:
        st_model.similarity_fn_name = metric.st_name
        scores = st_model.similarity(q, docs).numpy()[0]
    finally:
        st_model.similarity_fn_name = previous
    order = np.argsort(-scores, kind="stable")[:k]
    return [(corpus[i]["id"], float(scores[i])) for i in order]


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory, corpus: list[dict[str, Any]], model: Any):
    built = {}
    for metric in Metric:
        folder = tmp_path_factory.mktemp("idx") / metric.value
        index = Index.create(folder, metric=metric)
        index.add(corpus)
        built[metric] = index
    yield built
    for index in built.values():
        index.close()


@pytest.mark.parametrize("metric", list(Metric))
def test_search_equals_brute_force_for_every_metric(
    metric: Metric, indexes: dict[Metric, Index], st_model: Any, corpus: list[dict[str, Any]]
) -> None:
    index = indexes[metric]
    for query, hits in zip(QUERIES, index.search_many(QUERIES, k=10), strict=True):
        expected = brute_force(st_model, corpus, query, metric, 10)
        assert [h.id for h in hits] == [e[0] for e in expected], query
        np.testing.assert_allclose([h.score for h in hits], [e[1] for e in expected], atol=1e-4)
        assert [h.rank for h in hits] == list(range(1, 11))


def test_hits_carry_text_and_metadata(indexes: dict[Metric, Index], corpus: list[dict[str, Any]]) -> None:
    by_id = {c["id"]: c for c in corpus}
    for hit in indexes[Metric.COSINE].search("a day at the beach", k=5):
        assert hit.text == by_id[hit.id]["text"]
        assert hit.metadata == {"topic": by_id[hit.id]["topic"]}


def test_search_many_equals_search(indexes: dict[Metric, Index]) -> None:
    index = indexes[Metric.EUCLIDEAN]
    batched = index.search_many(QUERIES[:3], k=4)
    single = [index.search(q, k=4) for q in QUERIES[:3]]
    # Batched encoding pads to the longest query, which moves floats in the last digits.
    assert [[h.id for h in hits] for hits in batched] == [[h.id for h in hits] for hits in single]
    np.testing.assert_allclose(
        [[h.score for h in hits] for hits in batched],
        [[h.score for h in hits] for hits in single],
        atol=1e-5,
    )


def test_k_larger_than_the_index(tmp_path: Path, model: Any) -> None:
    index = Index.create(tmp_path / "small")
    index.add([{"id": "a", "text": "one"}, {"id": "b", "text": "two"}])
    assert [h.id for h in index.search("one", k=50)] == ["a", "b"]


@pytest.mark.parametrize("k", [0, -1, True, 1.5])
def test_bad_k(indexes: dict[Metric, Index], k: Any) -> None:
    with pytest.raises(UsageError, match="k must be a positive integer"):
        indexes[Metric.COSINE].search("x", k=k)


def test_reindexing_unchanged_items_embeds_nothing(tmp_path: Path, tiny: Any) -> None:
    items = [{"id": str(i), "text": f"item number {i}"} for i in range(50)]
    index = Index.create(tmp_path / "i", embedder=tiny)
    first = index.add(items)
    assert (first.added, first.embedded) == (50, 50)
    before = tiny.texts_embedded
    again = index.add(items)
    assert (again.added, again.updated, again.unchanged, again.embedded) == (0, 0, 50, 0)
    assert tiny.texts_embedded == before


def test_changed_text_is_reembedded_and_keeps_its_id(tmp_path: Path, tiny: Any) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add([{"id": "a", "text": "first version"}, {"id": "b", "text": "other"}])
    row_id = index.store.db.execute("SELECT id FROM items WHERE key = 'a'").fetchone()[0]
    report = index.add([{"id": "a", "text": "second version"}])
    assert (report.updated, report.embedded, report.added) == (1, 1, 0)
    assert index.store.db.execute("SELECT id FROM items WHERE key = 'a'").fetchone()[0] == row_id
    assert index.search("second version", k=1)[0].id == "a"
    assert index.search("second version", k=1)[0].text == "second version"
    assert len(index) == 2 and index.vectors.ntotal == 2


def test_duplicate_ids_in_one_input_last_wins(tmp_path: Path, tiny: Any) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    report = index.add([{"id": "a", "text": "old"}, {"id": "b", "text": "b"}, {"id": "a", "text": "new"}])
    assert (report.added, report.duplicates) == (2, 1)
    assert {i["id"]: i["text"] for i in index.export()} == {"a": "new", "b": "b"}


def test_same_text_under_a_new_id_reuses_the_embedding(tmp_path: Path, tiny: Any) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add([{"id": "a", "text": "shared text"}])
    report = index.add([{"id": "b", "text": "shared text"}])
    assert (report.added, report.embedded) == (1, 0)


def test_delete_removes_items_from_results(tmp_path: Path, tiny: Any) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add([{"id": str(i), "text": f"text {i}"} for i in range(10)])
    report = index.delete(["3", "4", "missing"])
    assert report.deleted == 2 and report.notes == ["1 id(s) were not in the index"]
    ids = {h.id for h in index.search("text 3", k=10)}
    assert ids == {str(i) for i in range(10)} - {"3", "4"}
    assert index.vectors.ntotal == 8


def test_another_models_index_is_refused(tmp_path: Path, tiny: Any, model: Any) -> None:
    Index.create(tmp_path / "i", embedder=tiny).add([{"id": "a", "text": "x"}])
    with pytest.raises(ModelMismatchError) as caught:
        Index.open(tmp_path / "i", model="all-MiniLM-L6-v2")
    assert "was built with tiny" in str(caught.value) and "all-MiniLM-L6-v2" in str(caught.value)
    with pytest.raises(ModelMismatchError):
        Index.open(tmp_path / "i", embedder=model)


class Died(BaseException):
    """Stands for the process dying at a given step of a write."""


def test_death_before_the_commit_leaves_the_old_state(
    tmp_path: Path, tiny: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from searchkit.store import Store

    folder = tmp_path / "i"
    Index.create(folder, embedder=tiny).add([{"id": "a", "text": "alpha"}])
    files = sorted(p.name for p in folder.iterdir())
    original = Store.apply

    def apply_then_die(self: Store, run: str) -> Any:
        original(self, run)  # the rows are in items, inside the write's transaction ...
        raise Died  # ... which never commits

    monkeypatch.setattr(Store, "apply", apply_then_die)
    with pytest.raises(Died):
        Index.open(folder, embedder=tiny).add([{"id": "b", "text": "beta"}])
    monkeypatch.undo()
    reopened = Index.open(folder, embedder=tiny)
    assert [i["id"] for i in reopened.export()] == ["a"] and reopened.vectors.ntotal == 1
    assert sorted(p.name for p in folder.iterdir()) == files and check(folder).ok
    reopened.add([{"id": "b", "text": "beta"}])
    assert check(folder).notes == [] and reopened.vectors.ntotal == 2


def test_death_after_the_commit_is_finished_on_open(
    tmp_path: Path, tiny: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "i"
    Index.create(folder, embedder=tiny).add([{"id": "a", "text": "alpha"}])

    def die(self: Index) -> None:
        raise Died  # committed; the manifest and the old vector file are not yet updated

    monkeypatch.setattr(Index, "_after_commit", die)
    with pytest.raises(Died):
        Index.open(folder, embedder=tiny).add([{"id": "b", "text": "beta"}])
    monkeypatch.undo()
    reopened = Index.open(folder, embedder=tiny)
    assert reopened.search("beta", k=1)[0].id == "b" and reopened.vectors.ntotal == 2
    assert reopened.manifest.generation == reopened.store.generation
    assert reopened.manifest.items == 2 and check(folder).ok and check(folder).notes == []


def test_a_missing_segment_file_is_an_error_until_repaired(tmp_path: Path, tiny: Any) -> None:
    folder = tmp_path / "i"
    index = Index.create(folder, embedder=tiny)
    index.add([{"id": "a", "text": "alpha"}, {"id": "b", "text": "beta"}])
    index.compact()
    index.close()
    next(folder.glob("segment-*.faiss")).unlink()
    with pytest.raises(
        CorruptIndexError, match=r"segment-\d+-[0-9a-f]+\.faiss is missing; run searchkit check --repair"
    ):
        Index.open(folder, embedder=tiny)
    report = check(folder, repair=True)
    assert report.ok and report.repaired
    assert Index.open(folder, embedder=tiny).vectors.ntotal == 2


def test_a_reader_overtaken_between_its_snapshot_and_its_load_takes_a_new_snapshot(
    tmp_path: Path, tiny: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compaction may commit and remove a segment file after a reader's snapshot named
    it and before the reader maps it (seen in the service's load test)."""
    from searchkit.service import protocol

    folder = tmp_path / "i"
    Index.create(folder, embedder=tiny).add([{"id": "a", "text": "alpha"}])
    reader, writer = Index.open(folder, embedder=tiny), Index.open(folder, embedder=tiny, load=False)
    writer.add([{"id": "b", "text": "beta"}])
    writer.compact()  # the reader is now behind, and must map the new segment
    load = protocol.VectorIndex.load
    overtaken: list[Path] = []

    def overtaking_load(path: Path, *args: Any, **kwargs: Any) -> Any:
        if not overtaken:  # a compaction gets in between, once
            overtaken.append(path)
            writer.add([{"id": "c", "text": "gamma"}])
            writer.compact()
        return load(path, *args, **kwargs)

    monkeypatch.setattr(protocol.VectorIndex, "load", overtaking_load)
    assert {h.id for h in reader.search("alpha", k=10)} == {"a", "b", "c"}
    assert overtaken and not overtaken[0].exists()


def test_reads_map_the_segments_and_writes_load_no_vectors(tmp_path: Path, tiny: Any) -> None:
    """A mapped index aborts the process if FAISS is asked to change it: segments are only
    ever read, mapped; a write changes rows alone, so a writer needs no vectors at all."""
    folder = tmp_path / "i"
    index = Index.create(folder, embedder=tiny)
    index.add([{"id": "a", "text": "alpha"}, {"id": "b", "text": "beta"}])
    index.compact()
    index = Index.open(folder, embedder=tiny)
    assert index.search("alpha", k=1)[0].id == "a"
    assert index.vectors.parts and all(p.vectors.mapped for p in index.vectors.parts)
    writer = Index.open(folder, embedder=tiny, load=False)
    files = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.faiss")}
    writer.add([{"id": "c", "text": "gamma"}])
    writer.delete(["a"])
    assert writer.generation == -1  # it never loaded a vector
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.faiss")} == files
    assert {h.id for h in index.search("alpha", k=5)} == {"b", "c"} and len(index) == 2
    writer.rebuild(metric="dot")
    assert {h.id for h in index.search("alpha", k=5)} == {"b", "c"} and check(folder).ok


def test_build_refuses_another_metric_for_an_existing_index(tmp_path: Path, tiny: Any) -> None:
    Index.create(tmp_path / "i", embedder=tiny, metric="dot").close()
    with pytest.raises(UsageError, match="uses the dot metric, not euclidean"):
        build(tmp_path / "i", iter([]), metric="euclidean")


def test_info_reports_counts_and_files(indexes: dict[Metric, Index]) -> None:
    info = indexes[Metric.MANHATTAN].info()
    assert info["metric"] == "manhattan"
    assert info["counts"]["items"] == info["counts"]["vectors"] > 300
    files = {segment["name"] for segment in info["segments"][:-1]}
    assert {"manifest.json", "index.db", *files} <= set(info["sizes"])
    assert (
        sum(segment["vectors"] - segment["dead"] for segment in info["segments"]) == info["counts"]["items"]
    )
    assert info["segments"][-1]["name"] == "tail"
    assert info["model"]["sha256"] and info["index"]["faiss"] == "IDMap2,Flat"


def test_truncated_texts_are_counted(tmp_path: Path, model: Any) -> None:
    index = Index.create(tmp_path / "i")
    report = index.add([{"id": "long", "text": "many words " * 300}, {"id": "short", "text": "hi"}])
    assert report.truncated == 1
    assert index.info()["counts"]["truncated"] == 1


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"id": "a"}, "item 1: 'text' must be a non-empty string"),
        ({"text": "   "}, "item 1: 'text' must be a non-empty string"),
        ({"text": "x", "id": True}, "item 1: 'id' must be a string or an integer"),
        ({"text": "x", "metadata": [1]}, "item 1: 'metadata' must be an object"),
        ({"text": "x", "when": object()}, "item 1: metadata must be plain JSON"),
        ({"text": "x", "score": float("nan")}, "item 1: metadata must be plain JSON"),
        ({"text": "half \ud800 pair"}, "item 1: holds a lone surrogate"),
        ("just a string", "item 1: expected a dict with 'text', not str"),
    ],
)
def test_bad_items_through_the_api_change_nothing(tmp_path: Path, tiny: Any, item: Any, message: str) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add([{"id": "keep", "text": "kept"}])
    with pytest.raises(UsageError) as caught:
        index.add([item])
    assert str(caught.value).startswith(message)
    assert [i["id"] for i in index.export()] == ["keep"] and index.vectors.ntotal == 1


def test_one_index_read_from_many_threads_while_another_writes(tmp_path: Path, tiny: Any) -> None:
    """Reads share one Index across threads; a writer (its own Index) never shows them half a write.

    The writer is held inside each write, its rows changed and its transaction not yet
    committed, until readers have run searches that began and ended within that window:
    the test proves the overlap instead of hoping for it.
    """
    import threading

    folder = tmp_path / "idx"
    with Index.create(folder, embedder=tiny) as writer:
        writer.add({"id": f"r{i}", "text": f"resident {i}"} for i in range(200))
    reader = Index.open(folder, embedder=tiny)
    errors: list[BaseException] = []
    sizes: set[int] = set()
    done = threading.Event()
    phase = [0]  # odd while the writer is held inside a write (the n-th write: phase 2n+1)
    inside: dict[int, list[int]] = {}  # phase -> what each read that overlapped it saw
    enough = threading.Condition()
    wanted = 3  # reads per held write

    def read() -> None:
        try:
            while not done.is_set():
                began = phase[0]
                hits = reader.search_many(["resident 3", "batch 2 item 5"], k=5)
                seen = len(reader)
                assert [len(h) for h in hits] == [5, 5]
                sizes.add(seen)
                if began % 2 and phase[0] == began:
                    with enough:
                        inside.setdefault(began, []).append(seen)
                        enough.notify_all()
        except BaseException as exc:
            errors.append(exc)

    def apply_and_hold(apply: Any) -> Any:
        def held(run: str) -> Any:
            changed = apply(run)  # the new rows are in items, uncommitted
            with enough:
                phase[0] += 1
                enough.wait_for(lambda: len(inside.get(phase[0], [])) >= wanted or bool(errors), 30)
                phase[0] += 1
            return changed

        return held

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        with Index.open(folder, embedder=tiny) as writer:
            writer.store.apply = apply_and_hold(writer.store.apply)  # type: ignore[method-assign]
            for batch in range(5):
                writer.add({"id": f"b{batch}-{i}", "text": f"batch {batch} item {i}"} for i in range(50))
    finally:
        done.set()  # the readers stop, whatever happened
    for thread in threads:
        thread.join(timeout=60)
    reader.close()
    assert not errors, errors[0]
    assert sizes <= {200 + 50 * n for n in range(6)}
    # Each of the five writes had reads inside it, and they saw the index before it.
    assert {p: set(v) for p, v in inside.items()} == {2 * n + 1: {200 + 50 * n} for n in range(5)}
    assert all(len(v) >= wanted for v in inside.values())


# --- upserts that change only metadata (issue 11) -------------------------------------


def test_a_metadata_only_upsert_updates_the_row_without_embedding(tmp_path: Path, tiny: Any) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add([{"id": "a", "text": "hello world", "tag": "x"}, {"id": "b", "text": "other", "tag": "x"}])
    before = tiny.texts_embedded
    vectors = index.vectors.ids().tolist()
    report = index.add(
        [{"id": "a", "text": "hello world", "tag": "y"}, {"id": "b", "text": "other", "tag": "x"}]
    )
    assert (report.updated, report.metadata_only, report.unchanged, report.embedded) == (1, 1, 1, 0)
    assert tiny.texts_embedded == before
    assert {e["id"]: e["metadata"] for e in index.export()} == {"a": {"tag": "y"}, "b": {"tag": "x"}}
    assert [h.id for h in index.search("hello world", k=5, where={"tag": "y"})] == ["a"]
    assert [h.id for h in index.search("hello", k=5, mode="keyword", where={"tag": "y"})] == ["a"]
    assert index.search("hello world", k=5, where={"tag": "x"})[0].id == "b"
    assert index.vectors.ids().tolist() == vectors and check(index.path).ok
    assert index.store.died_since(-1) == []  # no vector replaced: no tombstone


def test_a_changed_source_or_a_changed_json_type_is_an_update(tmp_path: Path, tiny: Any) -> None:
    from searchkit.types import Record

    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add([Record("alpha", "a", {"n": 1}, "one.txt:1")])
    moved = index.add([Record("alpha", "a", {"n": 1}, "two.txt:1")])
    assert (moved.updated, moved.metadata_only, moved.embedded) == (1, 1, 0)
    assert index.store.states_for_keys(["a"])["a"].source == "two.txt:1"
    typed = index.add([Record("alpha", "a", {"n": True}, "two.txt:1")])  # JSON true is not 1
    assert (typed.updated, typed.metadata_only) == (1, 1)
    assert next(index.export())["metadata"] == {"n": True}
    same = index.add([Record("alpha", "a", {"n": True}, "two.txt:1")])
    assert (same.updated, same.unchanged) == (0, 1)


# --- deleting a document indexed with split ---------------------------------------------


def test_deleting_a_split_document_deletes_its_pieces(tmp_path: Path, tiny: Any) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    text = "First sentence here. Second one follows. And a third."
    index.add([{"id": "doc", "text": text}, {"id": "doc2", "text": "Kept. Also kept."}], split="sentences")
    index.add([{"id": "whole", "text": "indexed whole"}])
    assert len(index) == 6
    report = index.delete(["doc", "whole", "missing"])
    assert report.deleted == 4
    assert report.notes == [
        "3 of them piece(s) of 1 document(s) indexed with --split",
        "1 id(s) were not in the index",
    ]
    assert sorted(e["id"] for e in index.export()) == ["doc2#0", "doc2#1"]
    assert all(h.metadata["parent"] == "doc2" for h in index.search("First sentence here.", k=10))
    assert index.delete(["doc2#1"]).deleted == 1  # one piece alone still goes by its own id
    assert check(index.path).ok


# --- IVF plans its lists from today's count -----------------------------------------------


def test_ivf_plans_again_when_the_index_grows_past_four_times_its_training(tmp_path: Path) -> None:
    from .conftest import TinyEmbedder

    index = Index.create(tmp_path / "i", embedder=TinyEmbedder(8), index_type="ivf")
    index.add([{"id": f"k{i}", "text": f"item {i}"} for i in range(100)])
    assert (index.manifest.layout.kind, index.manifest.trained_at) == ("ivf", 100)
    assert index.manifest.layout.params["nlist"] == 2  # at most one list per 39 items
    index.add([{"id": f"k{i}", "text": f"item {i}"} for i in range(100, 300)])
    assert index.manifest.trained_at == 100  # 3x: not yet
    report = index.add([{"id": f"k{i}", "text": f"item {i}"} for i in range(300, 6000)])
    assert index.manifest.trained_at == 6000 and any("index type ivf" in n for n in report.notes)
    planned = index.manifest.layout.params["nlist"]
    import faiss

    (segment,) = index.vectors.parts
    assert planned == 153 and faiss.downcast_index(segment.vectors.index.index).nlist == planned
    info = index.info()
    assert (info["index"]["trained_at"], info["counts"]["items"]) == (6000, 6000)
    assert check(index.path).ok
    reopened = Index.open(index.path, embedder=index.embedder)
    assert reopened.manifest.trained_at == 6000


def test_an_index_without_a_recorded_training_count_plans_again_on_its_next_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Indexes made before trained_at was recorded: IVF lists trained at 100 items stay no longer."""
    import json

    from searchkit.service import protocol

    from .conftest import TinyEmbedder

    embed = TinyEmbedder(8)
    index = Index.create(tmp_path / "i", embedder=embed, index_type="ivf")
    index.add([{"id": f"k{i}", "text": f"item {i}"} for i in range(100)])
    with monkeypatch.context() as m:  # grown as an older searchkit grew it: never planned again
        m.setattr(protocol, "REPLAN_FACTOR", 10**9)
        index.add([{"id": f"k{i}", "text": f"item {i}"} for i in range(100, 1000)])
    config = index.store.config
    del config["trained_at"]  # which it did not record
    index.store.db.execute("UPDATE state SET value = ? WHERE name = 'config'", (json.dumps(config),))
    index.close()
    index = Index.open(tmp_path / "i", embedder=embed)
    assert index.manifest.trained_at == 0 and index.manifest.layout.params["nlist"] == 2
    index.add([{"id": "new", "text": "one more"}])
    assert index.manifest.trained_at == 1001 and index.manifest.layout.params["nlist"] == 25
    assert check(index.path).ok


def test_a_small_write_reads_no_table_of_items_whole(tmp_path: Path, tiny: Any) -> None:
    """No `SCAN items` in the plan of any statement a one-document add or delete runs
    (issue 12: at 1M items, each scan cost 0.3-0.8 s of a write)."""
    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add([{"id": f"k{i}", "text": f"text {i}", "n": i} for i in range(300)])
    statements: list[str] = []
    index.store.db.conn.set_trace_callback(statements.append)
    index.add([{"id": "k1", "text": "a changed text"}, {"id": "new", "text": "a new one"}])
    index.add([{"id": "k3", "text": "text 3", "n": -3}])  # metadata only
    index.delete(["k2", "new"])
    index.store.db.conn.set_trace_callback(None)
    planned = 0
    for sql in statements:
        if sql.lstrip().split()[0].upper() in ("SELECT", "UPDATE", "DELETE", "INSERT"):
            plan = index.store.db.conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
            planned += 1
            assert not [step[3] for step in plan if step[3].startswith(WHOLE_TABLES)], sql
    assert planned > 10 and len(index) == 299


# Tables whose size is the index's: a small write, or a reader catching up with it, reads none whole.
WHOLE_TABLES = ("SCAN items", "SCAN embeddings", "SCAN tombstones")


def test_a_reader_catching_up_with_a_write_reads_no_table_whole(tmp_path: Path, tiny: Any) -> None:
    """A reader after a write reads the tombstones and embeddings written since its own
    generation, through their indexes, however many items the index holds."""
    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add([{"id": f"k{i}", "text": f"text {i}"} for i in range(1500)])  # a segment and a tail
    writer = Index.open(tmp_path / "i", embedder=tiny, load=False)
    writer.delete(["k2"])
    index.search("text 2", k=3)
    writer.add([{"id": "k1", "text": "a changed text"}, {"id": "new", "text": "a new one"}])
    writer.delete(["k7"])
    statements: list[str] = []
    index.store.db.conn.set_trace_callback(statements.append)
    assert {h.id for h in index.search("a new one", k=2)} >= {"new"}
    index.store.db.conn.set_trace_callback(None)
    reads = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
    assert any("tombstones" in sql for sql in reads) and any("FROM embeddings" in sql for sql in reads)
    for sql in reads:
        plan = [step[3] for step in index.store.db.conn.execute("EXPLAIN QUERY PLAN " + sql)]
        assert not [step for step in plan if step.startswith(WHOLE_TABLES)], sql
        if "FROM embeddings" in sql and "gen" in sql:  # by generation: along its index, not every id
            assert any("USING INDEX embeddings_gen" in step for step in plan), (sql, plan)


def test_check_compares_the_counters_with_the_rows_and_repair_recounts(tmp_path: Path, tiny: Any) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add([{"id": f"k{i}", "text": f"text {i}"} for i in range(20)])
    index.store.db.execute("UPDATE state SET value = '7' WHERE name = 'items'")
    index.close()
    report = check(tmp_path / "i")
    said = "database: the counters say 7 items (0 truncated), the rows are 20 (0 truncated)"
    assert report.problems == [said]
    repaired = check(tmp_path / "i", repair=True)
    assert repaired.ok and repaired.repaired == ["recounted the items"]
    assert len(Index.open(tmp_path / "i", embedder=tiny)) == 20


# --- bring your own vectors ----------------------------------------------------------------


def test_items_with_their_own_vectors_are_indexed_as_given(tmp_path: Path, model: Any) -> None:
    texts = ["The weather is lovely today.", "He drove to the stadium", "I like soccer"]
    vectors = model.encode(texts)
    index = Index.create(tmp_path / "i")
    given = [
        {"id": f"g{n}", "text": t, "embedding": v.tolist()}
        for n, (t, v) in enumerate(zip(texts, vectors, strict=True))
    ]
    report = index.add(given)
    assert (report.added, report.embedded) == (3, 0)
    exported = {e["id"]: e["embedding"] for e in index.export(vectors=True)}
    np.testing.assert_array_equal(np.asarray(exported["g1"], dtype=np.float32), vectors[1])
    hits = index.search("It's so sunny outside!", k=3)
    assert hits[0].id == "g0" and hits[0].score == pytest.approx(0.6660, abs=1e-4)
    assert index.add(given).unchanged == 3
    moved = index.add([{"id": "g2", "text": "I like soccer", "embedding": vectors[0].tolist()}])
    assert (moved.updated, moved.embedded) == (1, 0)  # a new vector for the same text is a change
    assert index.search("The weather is lovely today.", k=3)[0].score == pytest.approx(1.0, abs=1e-5)
    again = index.add([{"id": "g2", "text": "I like soccer"}])  # the model's own vector, not the given one
    assert (again.updated, again.embedded) == (1, 1)
    assert check(index.path).ok


@pytest.mark.parametrize(
    ("embedding", "message"),
    [
        ([0.5] * 15, "api: embedding has 15 values, and the index's model gives 16"),
        ([float("nan")] * 16, "api: embedding holds NaN or infinity"),
        ([1e39] * 16, "api: embedding holds NaN or infinity (or a float32 overflow)"),
        ("0.5, 0.5", "item 1: 'embedding' must be a non-empty array of numbers"),
        ([True] * 16, "item 1: 'embedding' must be a non-empty array of numbers"),
        ([], "item 1: 'embedding' must be a non-empty array of numbers"),
    ],
)
def test_a_bad_given_vector_is_refused_and_writes_nothing(
    embedding: Any, message: str, tmp_path: Path, tiny: Any
) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add([{"id": "a", "text": "alpha"}])
    with pytest.raises(InputError, match=f"^{message.replace('(', '[(]').replace(')', '[)]')}"):
        index.add([{"id": "b", "text": "beta", "embedding": embedding}])
    assert [e["id"] for e in index.export()] == ["a"] and check(index.path).ok


def test_a_given_vector_does_not_go_with_split(tmp_path: Path, tiny: Any) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    with pytest.raises(InputError, match="a given embedding is of the whole text, not of its pieces"):
        index.add([{"id": "a", "text": "One. Two.", "embedding": [0.0] * 16}], split="sentences")
