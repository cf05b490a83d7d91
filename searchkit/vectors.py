"""The FAISS vector index: integer ids in, nearest ids out. Knows FAISS, not SQL.

Every index is wrapped in an ID map, so FAISS holds the store's row ids, never
positions: deletes and updates can't make ids drift from rows. Files are written
to a temporary name, fsynced and renamed, so a reader sees the old file or the
new one, never half of either. One `VectorIndex` is one segment's file (segments/):
written once, then only read.

FAISS cannot unlink a node from an HNSW graph, and IVF under an id map cannot remove in
place either; when a merge extends such a segment (segments/build.py), its dead versions
are marked: their id-map entry becomes -1, and every search skips -1 entries through an
ID selector. The marks are in the file, so they need no format of their own; past
`_COMPACT_FRACTION` of dead entries, the index is rebuilt without them.

Reads load a file memory-mapped (`load(..., mapped=True)`): its codes stay in the page
cache, shared with other processes, and a 100k HNSW file loads in about 0.02 s instead of
0.14 s. FAISS aborts the whole process when a mapped index is changed (even a clone of
one), so every change first checks `mapped` and raises instead; merges load unmapped.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from searchkit.errors import CorruptIndexError, StorageError
from searchkit.layout import AUTO_ANN_THRESHOLD, INDEX_TYPES, Layout, plan
from searchkit.metrics import Matrix
from searchkit.types import Metric

if TYPE_CHECKING:
    from searchkit.stored_vectors import StoredVectors

# The layouts (layout.py) are planned there and used here; importing them from here still works.
__all__ = ["AUTO_ANN_THRESHOLD", "FEW_QUERIES", "INDEX_TYPES", "Layout", "VectorIndex", "one_thread", "plan"]

IdArray = npt.NDArray[np.int64]
# The id-map entry of a removed vector that is still in the FAISS structure.
_DEAD = -1
# Searches of at most this many queries run FAISS on their own thread alone (one_thread).
FEW_QUERIES = 16
# Rebuild without the dead entries once they are this share of the structure: at most a
# third more memory and file, and each rebuild (O(n log n) for HNSW) pays for n/4 deletes.
_COMPACT_FRACTION = 0.25


def _faiss() -> Any:
    import faiss

    return faiss


def _faiss_metric(metric: Metric) -> int:
    faiss = _faiss()
    kinds: dict[Metric, int] = {
        Metric.COSINE: faiss.METRIC_INNER_PRODUCT,
        Metric.DOT: faiss.METRIC_INNER_PRODUCT,
        Metric.EUCLIDEAN: faiss.METRIC_L2,
        Metric.MANHATTAN: faiss.METRIC_L1,
    }
    return kinds[metric]


@dataclass
class VectorIndex:
    """A FAISS index over (id, vector) pairs for one metric and layout."""

    index: Any
    metric: Metric
    layout: Layout
    dead: int = field(default=0)  # id-map entries marked _DEAD (removed, not yet compacted)
    mapped: bool = field(default=False)  # codes memory-mapped from the file: read-only

    @classmethod
    def create(
        cls,
        dimension: int,
        metric: Metric,
        index_type: str | Layout = "flat",
        count: int = 0,
    ) -> VectorIndex:
        layout = index_type if isinstance(index_type, Layout) else plan(index_type, metric, count, dimension)
        index = _faiss().index_factory(dimension, layout.factory(dimension), _faiss_metric(metric))
        created = cls(index, metric, layout)
        created._apply_search_params()
        return created

    @classmethod
    def load(
        cls, path: Path, metric: Metric, layout: Layout, dimension: int, mapped: bool = False
    ) -> VectorIndex:
        """Read `path`; `mapped` maps its codes instead of copying them (for reading only)."""
        if not path.exists():
            raise CorruptIndexError(f"{path}: the FAISS file is missing; run searchkit check --repair")
        flags = getattr(_faiss(), "IO_FLAG_MMAP_IFC", 0) if mapped else 0
        try:
            index = _faiss().read_index(str(path), flags)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
            raise CorruptIndexError(
                f"{path}: the FAISS file is damaged ({first}); run searchkit check --repair"
            ) from None
        if not isinstance(index, _faiss().IndexIDMap2):
            raise CorruptIndexError(
                f"{path}: the FAISS file holds no id map (positions, not row ids); "
                "run searchkit check --repair"
            )
        if index.d != dimension or index.metric_type != _faiss_metric(metric):
            raise CorruptIndexError(
                f"{path}: the FAISS file does not match the manifest (dimension {index.d}, "
                f"metric type {index.metric_type}); run searchkit check --repair"
            )
        loaded = cls(index, metric, layout, mapped=bool(flags))
        loaded.dead = int(np.count_nonzero(loaded._id_map() == _DEAD))
        loaded._apply_search_params()
        return loaded

    def _apply_search_params(self) -> None:
        inner = _faiss().downcast_index(self.index.index)
        if "ef_search" in self.layout.params and hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = self.layout.params["ef_search"]
        if "ef_construction" in self.layout.params and hasattr(inner, "hnsw"):
            inner.hnsw.efConstruction = self.layout.params["ef_construction"]
        if "nprobe" in self.layout.params and hasattr(inner, "nprobe"):
            inner.nprobe = self.layout.params["nprobe"]

    @property
    def needs_training(self) -> bool:
        return not bool(self.index.is_trained)

    def _changing(self) -> None:
        if self.mapped:
            raise RuntimeError("a memory-mapped vector index cannot be changed; load it unmapped to write")

    def train(self, sample: Matrix) -> None:
        """Train the coarse quantiser / codebooks (IVF, PQ, SQ) on a sample of the vectors."""
        self._changing()
        if self.needs_training:
            self.index.train(np.ascontiguousarray(sample, dtype=np.float32))

    @property
    def supports_remove(self) -> bool:
        """Whether FAISS can remove in place under the id map: only for flat codes, which
        it compacts. (IVF keeps stale positions that the id map then misreads; HNSW
        cannot unlink a node at all.) The others mark removed entries dead."""
        return self.layout.kind in ("flat", "sq8")

    @property
    def ntotal(self) -> int:
        """The live vectors (dead entries not counted)."""
        return int(self.index.ntotal) - self.dead

    def ids(self) -> IdArray:
        """The ids of the live vectors, in FAISS's order."""
        ids = self._id_map()
        return ids[ids != _DEAD] if self.dead else ids

    def _id_map(self) -> IdArray:
        return np.asarray(_faiss().vector_to_array(self.index.id_map), dtype=np.int64)

    def exact_vectors(self, ids: IdArray) -> Matrix | None:
        """The vectors of `ids` (all of them held) as FAISS stores them, where it stores them
        exactly and can look them up by id (flat, and HNSW's flat storage); else None."""
        if self.layout.kind not in ("flat", "hnsw") or not len(ids):
            return None
        try:
            found: Matrix = self.index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))
        except RuntimeError:  # an id FAISS does not hold: the caller reads them elsewhere (check says why)
            return None
        return found

    def stored(self) -> StoredVectors:
        """What FAISS holds under each id, to compare with the vectors that were added."""
        from searchkit.stored_vectors import StoredVectors

        return StoredVectors(self.index)

    def add(self, ids: IdArray, vectors: Matrix, replace: bool = True) -> None:
        """Add vectors under `ids`, replacing any vector those ids already have; with
        `replace` False the caller promises the ids are new (the check is O(n) a call)."""
        if len(ids) == 0:
            return
        self._changing()
        if replace:
            self.remove(ids)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))

    def remove(self, ids: IdArray) -> int:
        if len(ids) == 0 or self.ntotal == 0:
            return 0
        self._changing()
        ids = np.asarray(ids, dtype=np.int64)
        id_map = self._id_map()
        doomed = np.isin(id_map, ids) & (id_map != _DEAD)
        removed = int(np.count_nonzero(doomed))
        if not removed:
            return 0
        if self.supports_remove:
            return int(self.index.remove_ids(ids))
        id_map[doomed] = _DEAD
        faiss = _faiss()
        faiss.copy_array_to_vector(id_map, self.index.id_map)
        self.index.construct_rev_map()
        self.dead += removed
        if self.dead > _COMPACT_FRACTION * int(self.index.ntotal):
            self.compact()
        return removed

    def compact(self) -> None:
        """Rebuild without the dead entries, keeping what was trained (centroids,
        quantiser ranges). O(n), or O(n log n) for HNSW. Quantised types give back decoded
        vectors; the service re-scores exactly anyway."""
        if not self.dead:
            return
        self._changing()
        faiss = _faiss()
        inner = faiss.downcast_index(self.index.index)
        if hasattr(inner, "make_direct_map"):
            inner.make_direct_map()  # IVF can reconstruct only through a direct map
        id_map = self._id_map()
        vectors = inner.reconstruct_n(0, len(id_map))
        live = id_map != _DEAD
        fresh = faiss.clone_index(self.index)
        fresh.reset()
        fresh.add_with_ids(np.ascontiguousarray(vectors[live]), id_map[live])
        self.index = fresh
        self.dead = 0
        self._apply_search_params()

    def search(
        self,
        queries: Matrix,
        k: int,
        allowed: IdArray | None = None,
        skip: Any = None,
        beam: int | None = None,
    ) -> tuple[npt.NDArray[np.float32], IdArray]:
        """Raw FAISS (distances, ids) for each query; ids are -1 where fewer than k exist.

        `allowed` restricts the search to those ids (a FAISS ID selector): on a flat
        index the result is then the exact best among them. `skip`, a FAISS ID selector,
        leaves out the ids it selects (a segment's dead versions: segments/view.py).
        `beam` replaces an HNSW graph's efSearch for this search (never below `k`).
        """
        k = max(1, min(k, self.ntotal))
        data = np.ascontiguousarray(queries, dtype=np.float32)
        if beam is not None and not self.is_graph:
            beam = None
        if allowed is None and skip is None and not self.dead and beam is None:
            return self.index.search(data, k)  # type: ignore[no-any-return]
        faiss = _faiss()
        keep: list[Any] = []  # what the selectors point into, alive through the search
        if skip is None and self.dead:
            skip = faiss.IDSelectorBatch(np.array([_DEAD], dtype=np.int64))
            keep.append(skip)
        selector = None
        if allowed is not None:
            # The dead entries' -1 is never among the allowed ids.
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed[allowed != _DEAD], dtype=np.int64))
            keep.append(selector)
        if skip is not None:
            unskipped = faiss.IDSelectorNot(skip)
            keep.append(unskipped)
            selector = unskipped if selector is None else faiss.IDSelectorAnd(selector, unskipped)
        params = self._params(selector, max(beam, k) if beam else None)
        distances, ids = self.index.search(data, k, params=params)
        return distances, ids

    @property
    def is_graph(self) -> bool:
        """Whether this is an HNSW graph (whose search effort is its beam, efSearch)."""
        return hasattr(_faiss().downcast_index(self.index.index), "hnsw")

    @property
    def beam(self) -> int | None:
        """The graph's own efSearch; None if it is not a graph."""
        inner = _faiss().downcast_index(self.index.index)
        return int(inner.hnsw.efSearch) if hasattr(inner, "hnsw") else None

    def _params(self, selector: Any, beam: int | None = None) -> Any:
        """Search parameters with `selector`, of the type the inner index wants: IVF refuses
        others, and its own default nprobe (1) would replace the index's."""
        faiss = _faiss()
        inner = faiss.downcast_index(self.index.index)
        if isinstance(inner, faiss.IndexIVF):
            return faiss.SearchParametersIVF(sel=selector, nprobe=inner.nprobe)
        if hasattr(inner, "hnsw"):
            return faiss.SearchParametersHNSW(sel=selector, efSearch=beam or inner.hnsw.efSearch)
        return faiss.SearchParameters(sel=selector)

    def save(self, path: Path) -> None:
        """Write atomically: temp file, fsync, rename, fsync the folder."""
        tmp = path.with_name(path.name + ".tmp")
        self.write(tmp, shown=path.name)
        os.replace(tmp, path)
        fsync_dir(path.parent)

    def write(self, path: Path, shown: str | None = None) -> None:
        """Write to `path` and fsync it (the caller renames it into place); a failure
        names `shown` (the file it is to become)."""
        try:
            _faiss().write_index(self.index, str(path))
        except RuntimeError as exc:  # FAISS reports a failed write (disk full, EFBIG) this way
            path.unlink(missing_ok=True)
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "write failed"
            raise StorageError(f"writing {shown or path.name} failed ({reason})") from None
        with open(path, "rb+") as f:
            os.fsync(f.fileno())


@contextlib.contextmanager
def one_thread(queries: int) -> Iterator[None]:
    """FAISS on this thread alone for a search of few `queries`: its OpenMP threads spin
    between calls, and a search that asks two segments in a row fought them for the
    cores (an HNSW and a flat segment, one query: 10 ms; on one thread: 0.33). FAISS
    parallelises over queries, so few gain nothing from more threads; concurrent searches
    (the service's) still use every core, one each. OpenMP's thread count is per thread."""
    if queries > FEW_QUERIES:
        yield
        return
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
