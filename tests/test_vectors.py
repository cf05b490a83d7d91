"""searchkit.vectors: FAISS holds the store's ids, finds the nearest first, saves and loads."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from searchkit.errors import CorruptIndexError, StorageError, UsageError
from searchkit.metrics import prepare
from searchkit.types import Metric
from searchkit.vectors import INDEX_TYPES, Layout, VectorIndex, plan

FLAT = Layout("flat", {})

DIM = 8
IDS = np.array([7, 10, 500, 2**40, 3, 99_999], dtype=np.int64)
FAISS_METRIC_TYPE = {  # faiss.METRIC_INNER_PRODUCT, METRIC_L2, METRIC_L1
    Metric.COSINE: 0,
    Metric.DOT: 0,
    Metric.EUCLIDEAN: 1,
    Metric.MANHATTAN: 2,
}


def random_vectors(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def reference(queries: np.ndarray, vectors: np.ndarray, metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    """(FAISS distances, best-first order) by brute force in numpy (float64)."""
    q = queries.astype(np.float64)
    x = vectors.astype(np.float64)
    diff = q[:, None, :] - x[None, :, :]
    if metric in (Metric.COSINE, Metric.DOT):
        distances = q @ x.T  # inner product: higher is nearer
        order = np.argsort(-distances, axis=1, kind="stable")
    elif metric is Metric.EUCLIDEAN:
        distances = (diff**2).sum(axis=2)  # FAISS reports squared L2
        order = np.argsort(distances, axis=1, kind="stable")
    else:
        distances = np.abs(diff).sum(axis=2)
        order = np.argsort(distances, axis=1, kind="stable")
    return np.take_along_axis(distances, order, axis=1), order


def filled(metric: Metric, ids: np.ndarray = IDS, seed: int = 0) -> tuple[VectorIndex, np.ndarray]:
    index = VectorIndex.create(DIM, metric, "flat")
    vectors = prepare(random_vectors(len(ids), seed), metric)
    index.add(ids, vectors)
    return index, vectors


@pytest.fixture(params=list(Metric), ids=[m.value for m in Metric])
def metric(request: pytest.FixtureRequest) -> Metric:
    return Metric(request.param)


# --- create and describe ---------------------------------------------------------


@pytest.mark.parametrize("index_type", ["auto", "flat"])
def test_create(metric: Metric, index_type: str) -> None:
    index = VectorIndex.create(DIM, metric, index_type)
    assert index.ntotal == 0
    assert index.metric is metric
    assert index.layout == FLAT and index.layout.factory(DIM) == "IDMap2,Flat"
    assert index.index.d == DIM
    assert index.index.metric_type == FAISS_METRIC_TYPE[metric]
    assert index.ids().tolist() == []


@pytest.mark.parametrize("index_type", ["HNSW", "IVF", "Flat", "", "IDMap2,Flat", "pq"])
def test_unknown_index_type_is_a_usage_error(index_type: str) -> None:
    message = f"unknown index type {index_type!r}: choose one of {', '.join(INDEX_TYPES)}"
    with pytest.raises(UsageError, match=f"^{re.escape(message)}$"):
        plan(index_type, Metric.COSINE, 0, DIM)
    with pytest.raises(UsageError, match=f"^{re.escape(message)}$"):
        VectorIndex.create(DIM, Metric.COSINE, index_type)


# --- add and search --------------------------------------------------------------


def test_search_returns_ids_not_positions_nearest_first(metric: Metric) -> None:
    index, vectors = filled(metric)
    assert index.ntotal == len(IDS)
    assert sorted(index.ids().tolist()) == sorted(IDS.tolist())
    queries = prepare(random_vectors(5, seed=1), metric)
    distances, found = index.search(queries, 4)
    want_distances, order = reference(queries, vectors, metric)
    assert found.dtype == np.int64
    assert found.tolist() == IDS[order[:, :4]].tolist()
    np.testing.assert_allclose(distances, want_distances[:, :4], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("own", [Metric.COSINE, Metric.EUCLIDEAN, Metric.MANHATTAN])
def test_each_vector_finds_itself_first(own: Metric) -> None:
    index, vectors = filled(own)
    _, found = index.search(vectors, 1)
    assert found[:, 0].tolist() == IDS.tolist()


def test_dot_prefers_the_larger_inner_product_over_the_same_direction() -> None:
    index = VectorIndex.create(2, Metric.DOT)
    index.add(np.array([1, 2], dtype=np.int64), np.array([[1, 0], [3, 0]], dtype=np.float32))
    distances, found = index.search(np.array([[1, 0]], dtype=np.float32), 2)
    assert found.tolist() == [[2, 1]]
    assert distances.tolist() == [[3.0, 1.0]]


def test_search_on_l1_returns_l1_distances() -> None:
    index, vectors = filled(Metric.MANHATTAN)
    queries = random_vectors(3, seed=5)
    distances, found = index.search(queries, len(IDS))
    l1 = np.abs(queries[:, None, :].astype(np.float64) - vectors[None, :, :]).sum(axis=2)
    position = {int(i): p for p, i in enumerate(IDS)}
    for q in range(len(queries)):
        expected = [l1[q, position[int(i)]] for i in found[q]]
        np.testing.assert_allclose(distances[q], expected, rtol=1e-5)
        np.testing.assert_allclose(distances[q], np.sort(l1[q]), rtol=1e-5)
    # L1 is not L2: the check above would fail if FAISS had silently used squared L2
    l2 = ((queries[:, None, :].astype(np.float64) - vectors[None, :, :]) ** 2).sum(axis=2)
    assert not np.allclose(np.sort(l1, axis=1), np.sort(l2, axis=1), rtol=1e-3)


def test_k_larger_than_ntotal_returns_every_vector(metric: Metric) -> None:
    index, vectors = filled(metric, IDS[:3])
    distances, found = index.search(vectors[:2], 100)
    assert found.shape == distances.shape == (2, 3)
    assert (found >= 0).all()
    assert sorted(found[0].tolist()) == sorted(IDS[:3].tolist())


def test_search_on_an_empty_index_gives_minus_one(metric: Metric) -> None:
    index = VectorIndex.create(DIM, metric)
    _, found = index.search(random_vectors(2), 5)
    assert found.tolist() == [[-1], [-1]]


def test_add_accepts_strided_float64_vectors(metric: Metric) -> None:
    base = random_vectors(12, seed=3).astype(np.float64)
    vectors = base[::2]  # every other row: not contiguous
    assert not vectors.flags["C_CONTIGUOUS"]
    ids = np.array([11, 33, 55, 77, 99, 1000], dtype=np.int64)
    index = VectorIndex.create(DIM, metric)
    index.add(ids, vectors)
    queries = vectors.astype(np.float32)
    _, found = index.search(queries, len(ids))
    _, order = reference(queries, vectors.astype(np.float32), metric)
    assert found.tolist() == ids[order].tolist()


def test_add_nothing_is_a_no_op(metric: Metric) -> None:
    index, _ = filled(metric)
    index.add(np.array([], dtype=np.int64), np.empty((0, DIM), dtype=np.float32))
    assert index.ntotal == len(IDS)


# --- remove and replace ----------------------------------------------------------


def test_remove(metric: Metric) -> None:
    index, vectors = filled(metric)
    assert index.remove(np.array([500, 123456, 7], dtype=np.int64)) == 2
    assert index.ntotal == len(IDS) - 2
    assert sorted(index.ids().tolist()) == sorted(set(IDS.tolist()) - {500, 7})
    _, found = index.search(vectors, len(IDS))
    assert not np.isin(found, [500, 7]).any()
    assert index.remove(np.array([500], dtype=np.int64)) == 0
    assert index.remove(np.array([], dtype=np.int64)) == 0


def test_remove_from_an_empty_index(metric: Metric) -> None:
    assert VectorIndex.create(DIM, metric).remove(np.array([1, 2], dtype=np.int64)) == 0


def test_re_adding_an_id_replaces_its_vector(metric: Metric) -> None:
    index, vectors = filled(metric)
    new = prepare(random_vectors(1, seed=42), metric)
    index.add(np.array([500], dtype=np.int64), new)
    assert index.ntotal == len(IDS)
    assert sorted(index.ids().tolist()) == sorted(IDS.tolist())
    now = vectors.copy()
    now[list(IDS).index(500)] = new[0]
    queries = np.concatenate([new, prepare(random_vectors(4, seed=9), metric)])
    distances, found = index.search(queries, len(IDS))
    want_distances, order = reference(queries, now, metric)
    assert found.tolist() == IDS[order].tolist()
    np.testing.assert_allclose(distances, want_distances, rtol=1e-5, atol=1e-5)
    assert index.index.reconstruct(500).tolist() == new[0].tolist()


def test_re_adding_several_ids_at_once_keeps_no_duplicates(metric: Metric) -> None:
    index, _ = filled(metric)
    again = np.array([3, 10, 2**40, 8], dtype=np.int64)
    index.add(again, prepare(random_vectors(4, seed=11), metric))
    ids = index.ids().tolist()
    assert len(ids) == len(set(ids)) == len(IDS) + 1
    assert set(ids) == set(IDS.tolist()) | {8}


# --- save and load ---------------------------------------------------------------


def test_save_load_round_trip(tmp_path: Path, metric: Metric) -> None:
    index, _ = filled(metric)
    index.remove(np.array([10], dtype=np.int64))
    path = tmp_path / "vectors.faiss"
    index.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors.faiss"]  # no temp file left
    loaded = VectorIndex.load(path, metric, index.layout, DIM)
    assert loaded.metric is metric
    assert loaded.layout == FLAT
    assert loaded.ntotal == index.ntotal
    assert loaded.ids().tolist() == index.ids().tolist()
    queries = prepare(random_vectors(4, seed=2), metric)
    before, after = index.search(queries, 3), loaded.search(queries, 3)
    assert after[1].tolist() == before[1].tolist()
    np.testing.assert_array_equal(after[0], before[0])
    loaded.add(np.array([10], dtype=np.int64), queries[:1])  # a loaded index is writable
    assert loaded.ntotal == index.ntotal + 1


def test_save_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "vectors.faiss"
    big, _ = filled(Metric.EUCLIDEAN)
    big.save(path)
    small = VectorIndex.create(DIM, Metric.EUCLIDEAN)
    small.add(np.array([1], dtype=np.int64), random_vectors(1))
    small.save(path)
    assert VectorIndex.load(path, Metric.EUCLIDEAN, FLAT, DIM).ids().tolist() == [1]


def test_save_into_a_missing_folder_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "gone" / "vectors.faiss"
    index, _ = filled(Metric.DOT)
    with pytest.raises(StorageError) as info:
        index.save(path)
    assert str(info.value).startswith("writing vectors.faiss failed (")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "gone").exists()


def test_stored_vectors_are_the_added_vectors(metric: Metric) -> None:
    index, vectors = filled(metric)
    index.remove(np.array([500], dtype=np.int64))
    stored = index.stored()
    assert stored.exact and not stored.costly
    live = IDS != 500
    assert stored.differing(IDS[live], vectors[live]).tolist() == []
    assert stored.differing(IDS, vectors).tolist() == []  # 500 is no longer held: left out
    changed = vectors.copy()
    changed[0, 3] += 1e-3  # one component of id 7, a thousandth off
    changed[3] = changed[4]  # 2**40 given 3's vector
    assert stored.differing(IDS, changed).tolist() == [7, 2**40]


def damaged_message(path: Path) -> re.Pattern[str]:
    return re.compile(
        f"^{re.escape(f'{path}: the FAISS file is damaged (')}[^\n]+"
        f"{re.escape('); run searchkit check --repair')}$"
    )


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: b"not a faiss index at all" * 20, id="garbage"),
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:10], id="header-only"),
        pytest.param(lambda data: b"", id="empty"),
    ],
)
def test_load_of_a_damaged_file_is_corrupt(tmp_path: Path, damage: Callable[[bytes], bytes]) -> None:
    path = tmp_path / "vectors.faiss"
    index, _ = filled(Metric.EUCLIDEAN)
    index.save(path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CorruptIndexError) as info:
        VectorIndex.load(path, Metric.EUCLIDEAN, FLAT, DIM)
    assert damaged_message(path).match(str(info.value)), str(info.value)


def test_load_of_a_missing_file_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "absent.faiss"
    with pytest.raises(CorruptIndexError) as info:
        VectorIndex.load(path, Metric.DOT, FLAT, DIM)
    assert str(info.value) == f"{path}: the FAISS file is missing; run searchkit check --repair"


def test_load_with_the_wrong_dimension_is_corrupt(tmp_path: Path, metric: Metric) -> None:
    path = tmp_path / "vectors.faiss"
    filled(metric)[0].save(path)
    with pytest.raises(CorruptIndexError) as info:
        VectorIndex.load(path, metric, FLAT, DIM * 2)
    assert str(info.value) == (
        f"{path}: the FAISS file does not match the manifest (dimension {DIM}, "
        f"metric type {FAISS_METRIC_TYPE[metric]}); run searchkit check --repair"
    )


@pytest.mark.parametrize(
    ("saved", "asked"),
    [
        (Metric.EUCLIDEAN, Metric.MANHATTAN),
        (Metric.EUCLIDEAN, Metric.COSINE),
        (Metric.MANHATTAN, Metric.EUCLIDEAN),
        (Metric.DOT, Metric.EUCLIDEAN),
        (Metric.COSINE, Metric.MANHATTAN),
    ],
)
def test_load_with_the_wrong_metric_is_corrupt(tmp_path: Path, saved: Metric, asked: Metric) -> None:
    path = tmp_path / "vectors.faiss"
    filled(saved)[0].save(path)
    with pytest.raises(CorruptIndexError) as info:
        VectorIndex.load(path, asked, FLAT, DIM)
    assert str(info.value) == (
        f"{path}: the FAISS file does not match the manifest (dimension {DIM}, "
        f"metric type {FAISS_METRIC_TYPE[saved]}); run searchkit check --repair"
    )


def test_load_of_a_file_without_an_id_map_is_corrupt(tmp_path: Path) -> None:
    import faiss

    path = tmp_path / "vectors.faiss"
    plain = faiss.IndexFlatL2(DIM)
    plain.add(random_vectors(3))
    faiss.write_index(plain, str(path))
    with pytest.raises(CorruptIndexError):
        VectorIndex.load(path, Metric.EUCLIDEAN, FLAT, DIM)


# --- types that cannot remove in place: dead marks, then compaction -----------------

MARKING = ["hnsw", "hnsw-sq8", "ivf", "ivf-pq"]


def _graph_or_ivf(kind: str) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    metric = Metric.COSINE
    n = 10_000 if kind == "ivf-pq" else 4000  # below its training floor ivf-pq stays flat
    dim = 16
    vectors = prepare(random_vectors(n, seed=5, dim=dim), metric)
    # Exact-leaning settings, so that results can be compared with brute force.
    options = {"hnsw": {"ef_search": 400}, "hnsw-sq8": {"ef_search": 400}, "ivf": {"nprobe": 64}}
    layout = plan(kind, metric, n, dim, {**options.get(kind, {})})
    assert layout.kind == kind
    index = VectorIndex.create(dim, metric, layout)
    index.train(vectors)
    ids = np.arange(n, dtype=np.int64) * 5 + 3
    index.add(ids, vectors, replace=False)
    return index, ids, vectors


@pytest.mark.parametrize("kind", MARKING)
def test_a_remove_marks_entries_dead_and_searches_skip_them(kind: str, tmp_path: Path) -> None:
    index, ids, vectors = _graph_or_ivf(kind)
    gone = ids[::10]
    assert index.remove(np.concatenate([gone, [999_999_999]])) == len(gone)
    assert index.dead == len(gone) and index.index.ntotal == len(ids)  # nothing rebuilt
    assert index.ntotal == len(ids) - len(gone)
    assert sorted(index.ids().tolist()) == sorted(set(ids.tolist()) - set(gone.tolist()))
    assert index.remove(gone[:3]) == 0  # already dead
    _, found = index.search(vectors[:50], 10)
    assert not np.isin(found, gone).any() and (found >= 0).all()  # k live hits, none removed
    allowed = ids[:40]
    _, within = index.search(vectors[:5], 10, allowed=allowed)
    assert np.isin(within[within >= 0], np.setdiff1d(allowed, gone)).all()
    # The marks are in the file: a loaded index skips the same entries.
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss", index.metric, index.layout, 16)
    assert loaded.dead == index.dead and loaded.ntotal == index.ntotal
    assert np.array_equal(loaded.search(vectors[:50], 10)[1], found)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_a_replaced_vector_is_found_as_the_new_one(kind: str) -> None:
    index, ids, vectors = _graph_or_ivf(kind)
    target = int(ids[7])
    new = prepare(random_vectors(1, seed=77, dim=16), Metric.COSINE)
    index.add(np.array([target], dtype=np.int64), new)
    assert index.dead == 1 and index.ntotal == len(ids)
    assert sorted(index.ids().tolist()) == sorted(ids.tolist())
    assert index.search(new, 1)[1][0, 0] == target  # found by its new vector
    _, near_old = index.search(vectors[7:8], 3)
    assert target not in near_old[0].tolist()  # not by the old one (random 16-d vectors are far apart)


@pytest.mark.parametrize("kind", MARKING)
def test_past_a_quarter_dead_the_index_is_compacted(kind: str) -> None:
    index, ids, vectors = _graph_or_ivf(kind)
    index.remove(ids[: len(ids) // 5])
    assert index.dead == len(ids) // 5
    index.remove(ids[len(ids) // 5 : len(ids) // 3])
    assert index.dead == 0 and index.index.ntotal == index.ntotal == len(ids) - len(ids) // 3
    assert sorted(index.ids().tolist()) == sorted(ids[len(ids) // 3 :].tolist())
    if kind != "ivf-pq":  # product-quantised codes are too coarse for this at 16 dimensions
        _, found = index.search(vectors[-20:], 1)
        assert found[:, 0].tolist() == ids[-20:].tolist()  # each live vector still finds itself


# --- memory-mapped reads ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivf-pq", "sq8", "hnsw-sq8"])
def test_a_mapped_load_searches_alike_and_refuses_every_change(kind: str, tmp_path: Path) -> None:
    """FAISS aborts the process when a mapped index is changed: each change must raise first."""
    n, dim = 10_000, 16
    vectors = prepare(random_vectors(n, seed=3, dim=dim), Metric.EUCLIDEAN)
    index = VectorIndex.create(dim, Metric.EUCLIDEAN, plan(kind, Metric.EUCLIDEAN, n, dim))
    index.train(vectors)
    index.add(np.arange(n, dtype=np.int64), vectors, replace=False)
    path = tmp_path / "v.faiss"
    index.save(path)
    copied = VectorIndex.load(path, Metric.EUCLIDEAN, index.layout, dim)
    mapped = VectorIndex.load(path, Metric.EUCLIDEAN, index.layout, dim, mapped=True)
    assert mapped.mapped and not copied.mapped
    a, b = copied.search(vectors[:20], 10), mapped.search(vectors[:20], 10)
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[0], b[0])
    changes = [
        lambda: mapped.add(np.array([n], dtype=np.int64), vectors[:1]),
        lambda: mapped.remove(np.array([1], dtype=np.int64)),
        lambda: mapped.train(vectors),
    ]
    for change in changes:
        with pytest.raises(RuntimeError, match="memory-mapped"):
            change()
    assert mapped.ntotal == n and mapped.search(vectors[:20], 10)[1].tolist() == b[1].tolist()
