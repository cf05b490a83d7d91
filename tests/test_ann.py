"""Approximate index types: what each metric allows, recall, deletes, training, auto."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from searchkit import Index, Metric, UsageError
from searchkit import layout as layout_module
from searchkit.metrics import prepare
from searchkit.service import check
from searchkit.vectors import INDEX_TYPES, Layout, VectorIndex, plan

DIM = 32
REFUSED = {("ivf-pq", Metric.MANHATTAN), ("sq8", Metric.MANHATTAN), ("hnsw-sq8", Metric.MANHATTAN)}


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """Vectors around 40 centres: structure like sentence embeddings have, unlike pure noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, DIM)).astype(np.float32)
    points = centres[rng.integers(0, 40, n)] + 0.35 * rng.standard_normal((n, DIM)).astype(np.float32)
    return points.astype(np.float32)


@pytest.mark.parametrize("kind", INDEX_TYPES[1:])
@pytest.mark.parametrize("metric", list(Metric))
def test_every_combination_is_allowed_or_refused_up_front(kind: str, metric: Metric) -> None:
    if (kind, metric) in REFUSED:
        message = f"index type {kind} cannot use the {metric.value} metric"
        with pytest.raises(UsageError, match=f"^{re.escape(message)}"):
            plan(kind, metric, 100_000, DIM)
        return
    layout = plan(kind, metric, 100_000, DIM)
    assert layout.kind == kind
    index = VectorIndex.create(DIM, metric, layout)  # would abort the process if FAISS could not
    import faiss

    wanted = {Metric.EUCLIDEAN: faiss.METRIC_L2, Metric.MANHATTAN: faiss.METRIC_L1}
    assert index.index.metric_type == wanted.get(metric, faiss.METRIC_INNER_PRODUCT)
    assert faiss.downcast_index(index.index.index).metric_type == index.index.metric_type


@pytest.mark.parametrize(
    ("kind", "metric", "minimum"),
    [
        ("hnsw", Metric.COSINE, 0.95),
        ("hnsw", Metric.MANHATTAN, 0.95),
        ("ivf", Metric.EUCLIDEAN, 0.9),
        ("ivf", Metric.MANHATTAN, 0.9),
        ("ivf-pq", Metric.DOT, 0.1),  # raw codes; the service re-scores (below)
        ("sq8", Metric.COSINE, 0.9),
        ("hnsw-sq8", Metric.EUCLIDEAN, 0.9),
    ],
)
def test_default_settings_recall_against_exact_search(kind: str, metric: Metric, minimum: float) -> None:
    n = 12_000 if kind == "ivf-pq" else 3000
    data, queries = prepare(clustered(n), metric), prepare(clustered(200, seed=1), metric)
    ids = np.arange(1000, 1000 + n, dtype=np.int64)
    exact = VectorIndex.create(DIM, metric, "flat")
    exact.add(ids, data)
    _, truth = exact.search(queries, 10)
    index = VectorIndex.create(DIM, metric, plan(kind, metric, n, DIM))
    if index.needs_training:
        index.train(data)
    index.add(ids, data)
    _, found = index.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)])
    assert recall >= minimum, recall


@pytest.mark.parametrize("kind", ["hnsw", "hnsw-sq8"])
def test_hnsw_removes_by_marking_entries_dead(kind: str) -> None:
    data = clustered(500)
    ids = np.arange(500, dtype=np.int64)
    index = VectorIndex.create(DIM, Metric.EUCLIDEAN, plan(kind, Metric.EUCLIDEAN, 500, DIM))
    index.train(data)
    index.add(ids, data)
    assert not index.supports_remove
    assert index.remove(np.array([3, 4, 999], dtype=np.int64)) == 2
    assert index.ntotal == 498 and not {3, 4} & set(index.ids().tolist())
    _, found = index.search(data[[3, 10]], 1)
    assert found[0][0] != 3 and found[1][0] == 10
    index.add(np.array([10], dtype=np.int64), data[[20]])  # an update: replaced, not duplicated
    assert index.ntotal == 498 and index.ids().tolist().count(10) == 1
    assert index.dead == 3  # 3, 4 and the old 10: still in the graph, skipped by every search


def test_deletes_and_updates_on_hnsw_leave_a_consistent_index(tmp_path: Path) -> None:
    folder = tmp_path / "i"
    index = Index.create(folder, embedder=Embed(), index_type="hnsw")
    index.add(items(0, 2000))
    index.rebuild()  # one HNSW segment (sealing alone keeps segments this small flat)
    index.delete([str(i) for i in range(0, 200, 2)])
    # An update: item 1's text now embeds as item 1999's vector.
    index.add([{"id": "1", "text": "item 1999"}])
    (segment,) = index.vectors.parts
    assert segment.vectors.layout.kind == "hnsw" and len(segment.dead) == 101  # tombstones
    assert index.vectors.ntotal == len(index) == 1900 and len(index.vectors.tail.ids) == 1
    assert check(folder).ok and index.info()["counts"]["vectors"] == 1900
    reopened = Index.open(folder, embedder=Embed())
    assert len(reopened.vectors.parts[0].dead) == 101  # the tombstones are in SQLite
    assert {h.id for h in reopened.search("item 1999", k=2)} == {"1", "1999"}
    assert all(int(h.id) % 2 or int(h.id) >= 200 for h in reopened.search("item 100", k=50))
    reopened.delete([str(i) for i in range(1000, 1600)])
    reopened.compact()  # the dead vacuumed, the tail merged in
    (segment,) = reopened.vectors.parts
    # 1,300 vectors are below the policy's index_at: the merged segment is flat (exact).
    assert not len(segment.dead) and segment.vectors.dead == 0 and segment.vectors.layout.kind == "flat"
    assert reopened.vectors.ntotal == len(reopened) == 1300
    assert check(folder).ok


def test_unknown_and_bad_options_are_refused() -> None:
    with pytest.raises(UsageError, match="unknown option\\(s\\) nprobe for hnsw: it takes ef_construction"):
        plan("hnsw", Metric.COSINE, 10, DIM, {"nprobe": 4})
    with pytest.raises(UsageError, match="index option ef_search must be a positive integer, not 0"):
        plan("hnsw", Metric.COSINE, 10, DIM, {"ef_search": 0})
    with pytest.raises(UsageError, match="pq_m must divide the dimension 32; 5 does not"):
        plan("ivf-pq", Metric.COSINE, 100_000, DIM, {"pq_m": 5})
    assert plan("hnsw", Metric.COSINE, 10, DIM, {"ef_search": 300}).params["ef_search"] == 300


class Embed:
    """Deterministic vectors with cluster structure, keyed by the text's number."""

    def __init__(self) -> None:
        from .conftest import TinyEmbedder

        self.fingerprint = TinyEmbedder(DIM, "ann").fingerprint
        self.pool = clustered(20_000, seed=5)

    @property
    def dimension(self) -> int:
        return DIM

    def encode(self, texts: Any, batch_size: int = 32) -> np.ndarray:
        return self.pool[[int(t.split()[-1]) for t in texts]]

    def truncated_flags(self, texts: Any) -> list[bool]:
        return [False] * len(texts)


def items(start: int, stop: int) -> list[dict[str, str]]:
    return [{"id": str(i), "text": f"item {i}"} for i in range(start, stop)]


def test_ivf_stays_exact_until_it_can_be_trained(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "i", embedder=Embed(), index_type="ivf")
    index.add(items(0, 50))
    assert index.manifest.layout == Layout("flat", {})
    report = index.add(items(50, 3000))
    assert index.manifest.layout.kind == "ivf"
    (segment,) = index.vectors.parts
    assert segment.vectors.layout.kind == "ivf" and not segment.vectors.needs_training
    assert any("index type ivf for 3000 items" in note for note in report.notes)
    index.add(items(3000, 3100))  # incremental: trained centroids reused
    index.delete(["7", "3050"])
    assert index.vectors.ntotal == 3098 and check(tmp_path / "i").ok
    reopened = Index.open(tmp_path / "i", embedder=Embed())
    assert reopened.info()["index"]["resolved"] == "ivf"
    assert reopened.search("item 42", k=1)[0].id == "42"


def test_auto_switches_to_hnsw_past_the_threshold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout_module, "AUTO_ANN_THRESHOLD", 1000)
    index = Index.create(tmp_path / "i", embedder=Embed())
    index.add(items(0, 900))
    assert index.manifest.index_type == "auto" and index.manifest.layout.kind == "flat"
    report = index.add(items(900, 1500))
    assert index.manifest.layout.kind == "hnsw"
    assert any(n.startswith("index type hnsw (asked: auto) for 1500 items") for n in report.notes)
    index.delete(["5"])
    assert index.vectors.ntotal == 1499 and check(tmp_path / "i").ok
    assert index.search("item 1200", k=1)[0].id == "1200"


def test_rebuild_changes_type_and_options_without_embedding(tmp_path: Path) -> None:
    embed = Embed()
    index = Index.create(tmp_path / "i", embedder=embed, metric="manhattan")
    index.add(items(0, 2000))
    report = index.rebuild(index_type="hnsw", index_options={"ef_search": 40})
    assert index.manifest.layout.params["ef_search"] == 40 and report.embedded == 0
    with pytest.raises(UsageError, match="index type sq8 cannot use the manhattan metric"):
        index.rebuild(index_type="sq8")
    assert index.manifest.layout.kind == "hnsw"  # the refused rebuild changed nothing
    reopened = Index.open(tmp_path / "i", embedder=embed)
    import faiss

    (segment,) = reopened.vectors.parts
    assert faiss.downcast_index(segment.vectors.index.index).hnsw.efSearch == 40
    assert reopened.search("item 77", k=1)[0].id == "77" and check(tmp_path / "i").ok


@pytest.mark.parametrize(
    ("kind", "metric"), [("ivf-pq", Metric.DOT), ("sq8", Metric.EUCLIDEAN), ("hnsw", Metric.MANHATTAN)]
)
def test_search_rescoring_wins_back_what_codes_lose(tmp_path: Path, kind: str, metric: Metric) -> None:
    embed = Embed()
    exact = Index.create(tmp_path / "exact", embedder=embed, metric=metric)
    # 32 dimensions are few: two per PQ code keeps the codes informative (384-d gets 8 per code).
    options = {"pq_m": 16} if kind == "ivf-pq" else None
    approx = Index.create(
        tmp_path / "approx", embedder=embed, metric=metric, index_type=kind, index_options=options
    )
    n = 12_000 if kind == "ivf-pq" else 3000  # PQ trains only past 9,984 vectors
    for index in (exact, approx):
        index.add(items(0, n))
    assert approx.manifest.layout.kind == kind
    queries = [f"item {i}" for i in range(n, n + 200)]  # not in the index
    truth = exact.search_many(queries, k=10)
    found = approx.search_many(queries, k=10)
    recall = np.mean(
        [len({h.id for h in a} & {h.id for h in b}) / 10 for a, b in zip(found, truth, strict=True)]
    )
    assert recall >= 0.9, recall
    for a, b in zip(found, truth, strict=True):  # scores are exact wherever the same item comes back
        common = {h.id: h.score for h in b}
        assert all(abs(h.score - common[h.id]) < 1e-5 for h in a if h.id in common)
