"""segments/view.py: a search over several segments, each graph with a beam to its size,
the parts searched side by side."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from searchkit import Index, Metric
from searchkit.segments import view as view_module
from searchkit.segments.policy import Policy
from searchkit.segments.view import Part, SegmentView
from searchkit.service.compaction import compact
from searchkit.vectors import VectorIndex

from .conftest import TinyEmbedder

DIM = 16


@dataclass
class Graph:
    """What `_beam` reads of a segment's vectors."""

    beam: int | None
    ntotal: int


@pytest.mark.parametrize(
    ("own", "live", "largest", "expected"),
    [
        (128, 9_000, 1_000_000, math.ceil(128 * (math.log(9_000) / math.log(1_000_000)) ** 3)),
        (128, 90_000, 1_000_000, math.ceil(128 * (math.log(90_000) / math.log(1_000_000)) ** 3)),
        (256, 9_000, 100_000, math.ceil(256 * (math.log(9_000) / math.log(100_000)) ** 3)),
        (128, 1_000_000, 1_000_000, None),  # the largest graph keeps its own
        (None, 9_000, 1_000_000, None),  # not a graph (flat, IVF)
    ],
)
def test_a_graph_beside_a_larger_one_gets_a_smaller_beam(
    own: int | None, live: int, largest: int, expected: int | None
) -> None:
    assert view_module._beam(Graph(own, live), largest) == expected  # type: ignore[arg-type]


def test_the_beams_at_a_million_are_the_documented_ones() -> None:
    beams = [view_module._beam(Graph(128, n), 1_000_000) for n in (90_000, 9_000)]  # type: ignore[arg-type]
    assert beams == [73, 37]


def test_a_search_with_a_beam_is_faiss_at_that_efsearch_and_leaves_the_graph_as_it_was() -> None:
    rng = np.random.default_rng(3)
    dim = 64  # random 64-dimensional points: hard enough that a narrow beam misses some
    vectors = rng.standard_normal((3000, dim)).astype(np.float32)
    queries = rng.standard_normal((20, dim)).astype(np.float32)
    graph = VectorIndex.create(dim, Metric.EUCLIDEAN, "hnsw")
    graph.add(np.arange(3000, dtype=np.int64), vectors)
    assert graph.is_graph and graph.beam == 128
    narrow = graph.search(queries, 10, beam=12)
    assert graph.beam == 128  # a per-search parameter: concurrent searches share the graph
    inner = faiss.downcast_index(graph.index.index)
    inner.hnsw.efSearch = 12
    assert all(np.array_equal(a, b) for a, b in zip(narrow, graph.search(queries, 10), strict=True))
    inner.hnsw.efSearch = 128
    assert not np.array_equal(narrow[1], graph.search(queries, 10)[1])  # the beam did change it
    # A beam under k still returns k: FAISS is given at least k.
    _, ids = graph.search(queries, 50, beam=4)
    assert ids.shape == (20, 50) and (ids >= 0).all()
    flat = VectorIndex.create(dim, Metric.EUCLIDEAN, "flat")
    flat.add(np.arange(3000, dtype=np.int64), vectors)
    assert not flat.is_graph and flat.beam is None
    assert np.array_equal(flat.search(queries, 10, beam=12)[1], flat.search(queries, 10)[1])


def many_graphs(folder: Path) -> Index:
    """Three HNSW segments of different sizes, dead versions in two, and a tail."""
    index = Index.create(folder, embedder=TinyEmbedder(DIM), index_type="hnsw")
    never_merge = Policy(seal_at=100, floor=100, per_tier=100, index_at=100)
    for start, stop in ((0, 2400), (2400, 2900), (2900, 3100)):
        index.add([{"id": f"k{i}", "text": f"text number {i}", "n": i} for i in range(start, stop)])
        compact(index, policy=never_merge)
    index.delete([f"k{i}" for i in range(0, 3100, 9)])
    index.add([{"id": f"t{i}", "text": f"tail {i}"} for i in range(40)])
    view = index.vectors
    assert [p.vectors.layout.kind for p in view.parts] == ["hnsw"] * 3 and len(view.tail.ids) == 40
    assert [beam is None for _, beam in view._searched()] == [True, False, False]
    return index


def searched_alone(view: SegmentView, queries: np.ndarray, k: int, allowed: Any = None) -> Any:
    """The view's search with every part on the caller's thread."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(view_module, "_helpers", lambda: None)
        return view.search(queries, k, allowed)


def test_parts_are_searched_beside_the_callers_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = many_graphs(tmp_path / "i")
    view = index.vectors
    queries = TinyEmbedder(DIM).encode(["text number 5", "tail 3"])
    allowed = np.arange(1, 3200, 2, dtype=np.int64)
    expected = [searched_alone(view, queries, 20), searched_alone(view, queries, 20, allowed)]

    helper = ThreadPoolExecutor(1, thread_name_prefix="helper")
    monkeypatch.setattr(view_module, "_helpers", lambda: helper)
    largest = view._searched()[0][0]
    helped = threading.Event()
    searched_by: list[tuple[Part, str]] = []  # every part's search, with the thread that ran it
    search = Part.search

    def recorded(self: Part, *args: Any) -> Any:
        searched_by.append((self, threading.current_thread().name))
        if self is largest:
            assert helped.wait(30)  # the largest waits until a helper has searched a part
        elif threading.current_thread().name.startswith("helper"):
            helped.set()
        return search(self, *args)

    monkeypatch.setattr(Part, "search", recorded)
    try:
        got = [view.search(queries, 20), view.search(queries, 20, allowed)]
    finally:
        helper.shutdown()
    for (scores, ids), (want_scores, want_ids) in zip(got, expected, strict=True):
        assert np.array_equal(ids, want_ids) and np.allclose(scores, want_scores)
    assert {name for part, name in searched_by if part is largest} == {threading.current_thread().name}
    assert any(part is not largest and name.startswith("helper") for part, name in searched_by)
    assert len(searched_by) == 2 * len(view.parts)  # each part searched once per search


def test_a_busy_helper_never_keeps_a_search_waiting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the helper held by another search's part, the caller searches every part
    itself (it takes back what no helper has started) and returns."""
    index = many_graphs(tmp_path / "i")
    view = index.vectors
    queries = TinyEmbedder(DIM).encode(["text number 77"])
    expected = searched_alone(view, queries, 10)
    helper = ThreadPoolExecutor(1)
    release = threading.Event()
    busy = helper.submit(release.wait, 60)
    monkeypatch.setattr(view_module, "_helpers", lambda: helper)
    done: list[Any] = []
    caller = threading.Thread(target=lambda: done.append(view.search(queries, 10)))
    caller.start()
    caller.join(timeout=30)
    finished = not caller.is_alive()
    release.set()
    busy.result(timeout=30)
    helper.shutdown()
    assert finished, "the search waited for the busy helper"
    scores, ids = done[0]
    assert np.array_equal(ids, expected[1]) and np.allclose(scores, expected[0])


def test_searches_from_many_threads_with_helpers_match_the_search_alone(tmp_path: Path) -> None:
    index = many_graphs(tmp_path / "i")
    view = index.vectors
    tiny = TinyEmbedder(DIM)
    queries = [tiny.encode([f"text number {n}"]) for n in range(0, 3000, 97)]
    expected = [searched_alone(view, q, 10)[1] for q in queries]
    results: dict[int, Any] = {}

    def worker(n: int) -> None:
        for _ in range(5):
            results[n] = view.search(queries[n], 10)[1]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(len(queries))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(np.array_equal(results[n], expected[n]) for n in range(len(queries)))


def test_side_by_side_runs_each_job_once_and_an_error_leaves_the_queued_ones_unrun() -> None:
    helper = ThreadPoolExecutor(1)
    release = threading.Event()
    busy = helper.submit(release.wait, 30)  # the helper is held: the caller takes back every job
    ran: list[int] = []

    def job(n: int) -> int:
        ran.append(n)
        return n * 10

    try:
        assert view_module._side_by_side([partial(job, n) for n in range(4)], helper) == [0, 10, 20, 30]
        assert ran == [0, 3, 2, 1]  # its own first, then the last queued first

        def failing() -> int:
            raise ValueError("a part's search failed")

        with pytest.raises(ValueError, match="failed"):
            view_module._side_by_side([failing, partial(job, 7)], helper)
    finally:
        release.set()
        busy.result(timeout=30)
        helper.shutdown()
    assert 7 not in ran  # cancelled while queued: never run after the error
