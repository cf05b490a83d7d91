"""The FAISS vector index: integer ids in, nearest ids out. Knows FAISS, not SQL.

Every index is wrapped in an ID map, so FAISS holds the store's row ids, never
positions: deletes and updates can't make ids drift from rows. Files are written
to a temporary name, fsynced and renamed, so a reader sees the old file or the
new one, never half of either.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from searchkit.errors import CorruptIndexError, StorageError, UsageError
from searchkit.metrics import Matrix
from searchkit.types import Metric

__all__ = ["INDEX_TYPES", "VectorIndex", "describe"]

INDEX_TYPES = ("auto", "flat")

IdArray = npt.NDArray[np.int64]


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


def describe(index_type: str) -> str:
    """The FAISS factory string of `index_type`, validated before FAISS sees it."""
    if index_type not in INDEX_TYPES:
        raise UsageError(f"unknown index type {index_type!r}: choose one of {', '.join(INDEX_TYPES)}")
    return "IDMap2,Flat"


@dataclass
class VectorIndex:
    """A FAISS index over (id, vector) pairs for one metric."""

    index: Any
    metric: Metric
    description: str

    @classmethod
    def create(cls, dimension: int, metric: Metric, index_type: str = "flat") -> VectorIndex:
        description = describe(index_type)
        index = _faiss().index_factory(dimension, description, _faiss_metric(metric))
        return cls(index, metric, description)

    @classmethod
    def load(cls, path: Path, metric: Metric, description: str, dimension: int) -> VectorIndex:
        if not path.exists():
            raise CorruptIndexError(f"{path}: the FAISS file is missing; run searchkit check --repair")
        try:
            index = _faiss().read_index(str(path))
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
        return cls(index, metric, description)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> IdArray:
        return np.asarray(_faiss().vector_to_array(self.index.id_map), dtype=np.int64)

    def flat_vectors(self) -> tuple[IdArray, Matrix] | None:
        """(ids, vectors) exactly as stored, for flat indexes; None for lossy ones."""
        faiss = _faiss()
        inner = faiss.downcast_index(self.index.index)
        if not isinstance(inner, faiss.IndexFlat):
            return None
        vectors = faiss.vector_to_array(inner.codes).view(np.float32).reshape(self.ntotal, self.index.d)
        return self.ids(), vectors

    def add(self, ids: IdArray, vectors: Matrix) -> None:
        """Add vectors under `ids`, replacing any vector those ids already have."""
        if len(ids) == 0:
            return
        self.remove(ids)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))

    def remove(self, ids: IdArray) -> int:
        if len(ids) == 0 or self.ntotal == 0:
            return 0
        return int(self.index.remove_ids(np.asarray(ids, dtype=np.int64)))

    def search(self, queries: Matrix, k: int) -> tuple[npt.NDArray[np.float32], IdArray]:
        """Raw FAISS (distances, ids) for each query; ids are -1 where fewer than k exist."""
        k = max(1, min(k, self.ntotal))
        distances, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return distances, ids

    def save(self, path: Path) -> None:
        """Write atomically: temp file, fsync, rename, fsync the folder."""
        tmp = path.with_name(path.name + ".tmp")
        try:
            _faiss().write_index(self.index, str(tmp))
        except RuntimeError as exc:  # FAISS reports a failed write (disk full, EFBIG) this way
            tmp.unlink(missing_ok=True)
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "write failed"
            raise StorageError(f"writing {path.name} failed ({reason})") from None
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
