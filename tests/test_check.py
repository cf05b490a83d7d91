"""`check` compares what FAISS holds with the stored embeddings, for every index type."""

from __future__ import annotations

import hashlib
import importlib
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from searchkit import Index, Metric
from searchkit.metrics import prepare
from searchkit.segments.policy import Policy
from searchkit.service import check
from searchkit.service.compaction import compact
from searchkit.store import Store
from searchkit.vectors import VectorIndex

from .conftest import TinyEmbedder

check_module = importlib.import_module("searchkit.service.check")  # the package exports the function
DIM = 16
DIFFER = "vector(s) differ from the stored embeddings"
# (kind, metric, items, options): enough items for IVF and PQ to train (PQ: 256 x 39),
# few lists and small codes to keep training fast; one metric each, every metric used.
TYPES = {
    "flat": (Metric.COSINE, 300, None),
    "hnsw": (Metric.MANHATTAN, 600, {"m": 8}),
    "ivf": (Metric.EUCLIDEAN, 1200, {"nlist": 8}),
    "ivf-pq": (Metric.DOT, 9_990, {"nlist": 8, "pq_m": 8}),
    "sq8": (Metric.COSINE, 600, None),
    "hnsw-sq8": (Metric.EUCLIDEAN, 600, {"m": 8}),
}
# Deleted and updated after the build, then merged: HNSW and IVF keep them as dead id-map entries.
DELETED = ["item 3", "item 10", "item 11"]


def items(n: int) -> list[dict[str, str]]:
    return [{"id": f"item {i}", "text": f"text {i}"} for i in range(n)]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An honest index of each type, with deletes and an update behind it."""
    folders = {}
    for kind, (metric, n, options) in TYPES.items():
        folder = tmp_path_factory.mktemp("built") / kind
        with Index.create(
            folder, embedder=TinyEmbedder(DIM), metric=metric, index_type=kind, index_options=options
        ) as index:
            index.add(items(n))
            index.rebuild()  # one segment of the type, however few the items
            index.delete(DELETED)
            index.add([{"id": "item 20", "text": "text 20, changed"}])
            # Merged into that segment, as compaction merges: the dead versions marked in it.
            compact(index, policy=Policy(index_at=0, seal_at=1))
            assert index.manifest.layout.kind == kind
            (segment,) = index.vectors.parts
            assert segment.vectors.layout.kind == kind and not len(segment.dead)
            assert segment.vectors.dead == (0 if kind in ("flat", "sq8") else len(DELETED) + 1)
        folders[kind] = folder
    return folders


@pytest.fixture(params=sorted(TYPES))
def honest(request: pytest.FixtureRequest, built: dict[str, Path], tmp_path: Path) -> tuple[str, Path]:
    folder = tmp_path / request.param
    shutil.copytree(built[request.param], folder)
    return request.param, folder


def vectors_file(folder: Path) -> Path:
    (path,) = folder.glob("segment-*.faiss")
    return path


def stored_vectors(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) as the index was given them: the store's embeddings, metric-prepared."""
    metric = TYPES[folder.name][0]
    store = Store(folder / "index.db")
    try:
        batches = list(store.iter_embeddings())
    finally:
        store.close()
    ids = np.concatenate([i for i, _ in batches])
    return ids, prepare(np.concatenate([v for _, v in batches]), metric)


def swap_ids(folder: Path, a: int, b: int) -> None:
    """Exchange two live entries of the id map: each id now names the other's vector."""
    import faiss

    path = vectors_file(folder)
    index = faiss.read_index(str(path))
    id_map = faiss.vector_to_array(index.id_map)
    (pa,), (pb,) = np.flatnonzero(id_map == a), np.flatnonzero(id_map == b)
    id_map[pa], id_map[pb] = b, a
    faiss.copy_array_to_vector(id_map, index.id_map)
    index.construct_rev_map()
    faiss.write_index(index, str(path))


def rewrite_with(folder: Path, change: Callable[[np.ndarray, np.ndarray], None]) -> None:
    """Write the vector file again with FAISS itself, trained as before, from the stored
    vectors after `change(ids, vectors)`: a file FAISS finds well-formed."""
    import faiss

    path = vectors_file(folder)
    ids, vectors = stored_vectors(folder)
    change(ids, vectors)
    index = faiss.read_index(str(path))
    index.reset()  # keeps what was trained: centroids, codebooks, quantiser ranges
    index.add_with_ids(np.ascontiguousarray(vectors), ids)
    faiss.write_index(index, str(path))


def perturb(row: int) -> Callable[[np.ndarray, np.ndarray], None]:
    def change(ids: np.ndarray, vectors: np.ndarray) -> None:
        noise = np.random.default_rng(row).standard_normal(DIM).astype(np.float32)
        vectors[row] += 0.3 * np.linalg.norm(vectors[row]) * noise / np.linalg.norm(noise)

    return change


def replace_by(row: int, other: int) -> Callable[[np.ndarray, np.ndarray], None]:
    def change(ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors[row] = vectors[other]

    return change


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_an_honest_index_checks_clean_and_check_changes_no_file(honest: tuple[str, Path]) -> None:
    _, folder = honest
    before = digest(folder)
    report = check(folder)
    assert report.ok and report.problems == [] and report.notes == [], report
    assert digest(folder) == before


TAMPERING = {
    "ids swapped": (lambda f, ids: swap_ids(f, int(ids[5]), int(ids[250])), 2),
    "one replaced by another": (lambda f, ids: rewrite_with(f, replace_by(7, 250)), 1),
    "one perturbed": (lambda f, ids: rewrite_with(f, perturb(9)), 1),
}


@pytest.mark.parametrize("tampering", sorted(TAMPERING))
def test_a_tampered_vector_is_found_and_repaired(honest: tuple[str, Path], tampering: str) -> None:
    kind, folder = honest
    harm, wrong = TAMPERING[tampering]
    harm(folder, stored_vectors(folder)[0])
    found = check(folder)
    assert found.problems == [f"vectors: {wrong} {DIFFER}"], found
    repaired = check(folder, repair=True, embedder=TinyEmbedder(DIM))
    assert repaired.ok and any(
        r.startswith("rebuilt the vectors as one segment") for r in repaired.repaired
    ), repaired
    assert check(folder).ok
    with Index.open(folder, embedder=TinyEmbedder(DIM)) as index:
        assert index.manifest.layout.kind == kind
        assert index.search("text 250", k=1)[0].id == "item 250"


def test_a_file_of_another_index_type_is_reported_and_repaired(
    built: dict[str, Path], tmp_path: Path
) -> None:
    """Right ids and right vectors, but a flat index where the manifest says HNSW."""
    import faiss

    folder = tmp_path / "hnsw"
    shutil.copytree(built["hnsw"], folder)
    ids, vectors = stored_vectors(folder)
    flat = faiss.index_factory(DIM, "IDMap2,Flat", faiss.METRIC_L1)
    flat.add_with_ids(vectors, ids)
    faiss.write_index(flat, str(vectors_file(folder)))
    name = vectors_file(folder).name
    assert check(folder).problems == [f"vectors: {name} holds a flat index, the database says hnsw"]
    assert check(folder, repair=True, embedder=TinyEmbedder(DIM)).ok and check(folder).ok


def test_a_file_of_a_type_searchkit_never_writes_is_reported(built: dict[str, Path], tmp_path: Path) -> None:
    import faiss

    folder = tmp_path / "flat"
    shutil.copytree(built["flat"], folder)
    ids, vectors = stored_vectors(folder)
    other = faiss.index_factory(DIM, "IDMap2,PQ4x4np", faiss.METRIC_INNER_PRODUCT)
    other.train(vectors)
    other.add_with_ids(vectors, ids)
    faiss.write_index(other, str(vectors_file(folder)))
    name = vectors_file(folder).name
    assert check(folder).problems == [
        f"vectors: {name}: holds a FAISS IndexPQ, a type searchkit never writes; run searchkit check --repair"
    ]
    assert check(folder, repair=True, embedder=TinyEmbedder(DIM)).ok and check(folder).ok


def test_ivf_pq_checks_a_sample(
    built: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `_PQ_SAMPLE` items IVF-PQ is checked on a random sample: a tenth of the vectors
    replaced is found (a sample of 500 misses all of them with odds 0.9^500)."""
    folder = tmp_path / "ivf-pq"
    shutil.copytree(built["ivf-pq"], folder)
    monkeypatch.setattr(check_module, "_PQ_SAMPLE", 500)
    assert check(folder).ok

    def replace_a_tenth(ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors[::10] = vectors[5::10][: len(vectors[::10])]

    rewrite_with(folder, replace_a_tenth)
    (problem,) = check(folder).problems
    count = int(problem.split()[1])
    assert problem == f"vectors: {count} {DIFFER} (in a sample of 500 of {len(stored_vectors(folder)[0])})"
    assert 10 <= count <= 100  # about 50 of the 500 sampled


def test_an_ivf_pq_code_filed_in_another_list_is_found(built: dict[str, Path], tmp_path: Path) -> None:
    """A code is its list and its residual's PQ code: one encoded honestly for a list that
    is not its nearest decodes close to the vector, and search never probes there."""
    import faiss

    folder = tmp_path / "ivf-pq"
    shutil.copytree(built["ivf-pq"], folder)
    path = vectors_file(folder)
    ids, vectors = stored_vectors(folder)
    index = faiss.read_index(str(path))
    index.reset()
    ivf = faiss.extract_index_ivf(index.index)
    _, lists = ivf.quantizer.search(vectors, 2)
    assign = np.ascontiguousarray(lists[:, 0])
    assign[7] = lists[7, 1]  # the second nearest list
    ivf.add_core(len(vectors), faiss.swig_ptr(vectors), None, faiss.swig_ptr(assign))
    faiss.copy_array_to_vector(ids, index.id_map)
    index.ntotal = ivf.ntotal
    index.construct_rev_map()
    faiss.write_index(index, str(path))
    assert check(folder).problems == [f"vectors: 1 {DIFFER}"]


@pytest.mark.parametrize("mapped", [False, True], ids=["copied", "mapped"])
def test_stored_vectors_read_any_load_and_change_nothing(honest: tuple[str, Path], mapped: bool) -> None:
    """A mapped index aborts the process if FAISS is asked to change it: looking up what it
    holds must not, and finds an honest index's vectors as added, ids it lacks left out."""
    kind, folder = honest
    ids, vectors = stored_vectors(folder)
    with Index.open(folder, embedder=TinyEmbedder(DIM)) as index:
        manifest = index.manifest
    loaded = VectorIndex.load(vectors_file(folder), manifest.metric, manifest.layout, DIM, mapped=mapped)
    count = int(loaded.index.ntotal)
    stored = loaded.stored()
    assert stored.differing(ids, vectors).tolist() == []
    absent = np.array([10**9, -1], dtype=np.int64)  # never given, and the mark of a dead entry
    assert stored.differing(absent, vectors[:2]).tolist() == []
    assert stored.differing(ids[[1, 2]], vectors[[2, 1]]).tolist() == ids[[1, 2]].tolist()
    assert int(loaded.index.ntotal) == count
    expected_exact = kind in ("flat", "hnsw", "ivf")
    assert stored.exact is expected_exact and stored.costly is (kind == "ivf-pq")
