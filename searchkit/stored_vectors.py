"""Reading back what a FAISS index holds, to tell whether it is what was added (``check``).

Knows FAISS, not SQL, like vectors.py, whose indexes it reads: an IndexIDMap2 over flat,
SQ8, HNSW (flat or SQ8 storage) or IVF (flat or PQ codes), dead id-map entries marked -1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from searchkit.errors import CorruptIndexError
from searchkit.metrics import Matrix
from searchkit.vectors import _DEAD, IdArray, _faiss

__all__ = ["StoredVectors"]


class StoredVectors:
    """The vectors or codes FAISS holds, looked up by id where they lie (the positional
    storage of flat, SQ and HNSW; IVF's inverted lists), to tell whether they are what
    was added. Reads only: the file and the index stay as they are, mapped ones too.
    Valid while the index is unchanged.

    Exact storage (flat, HNSW, IVF-flat) is compared value by value. Codes (SQ8, PQ) are
    compared with the index's own encoding of the added vector; where they differ, the
    stored code counts as the vector's only if it decodes as close to it as the codec's own
    (a float rounding may flip a code at a boundary). IVF-PQ's stored list must also be
    the vector's nearest centroid, as near as rounding allows.
    """

    def __init__(self, index: Any) -> None:
        """`index`: a FAISS IndexIDMap2, as VectorIndex keeps one."""
        faiss = _faiss()
        self._index = index  # keeps the FAISS memory behind the views below alive
        id_map = np.asarray(faiss.vector_to_array(index.id_map), dtype=np.int64)
        live = np.flatnonzero(id_map != _DEAD)  # a dead entry answers for no id
        self._order = live[np.argsort(id_map[live], kind="stable")]
        self._sorted = id_map[self._order]
        inner = faiss.downcast_index(index.index)
        self._ivf: Any = inner if isinstance(inner, faiss.IndexIVF) else None
        self._codec = faiss.downcast_index(inner.storage) if hasattr(inner, "hnsw") else inner
        self._pq = isinstance(inner, faiss.IndexIVFPQ)
        self.kind = _kind(faiss, inner, self._codec)
        if self.kind is None:
            raise CorruptIndexError(
                f"holds a FAISS {type(inner).__name__}, a type searchkit never writes; "
                "run searchkit check --repair"
            )
        self.exact = isinstance(self._codec, faiss.IndexFlat) or isinstance(inner, faiss.IndexIVFFlat)
        # IVF-PQ's codec searches every centroid and PQ codebook: checking it costs far
        # more than reading the vectors, so a check takes a sample of it.
        self.costly = self._pq
        self._dimension = int(index.d)
        if self._ivf is not None:
            self._lists, self._offsets, self._list_codes = _inverted_lists(self._ivf, len(id_map))
        else:
            size = int(self._codec.code_size)
            count = int(self._codec.ntotal)
            raw = faiss.rev_swig_ptr(self._codec.codes.data(), count * size) if count else b""
            self._codes = np.frombuffer(raw, dtype=np.uint8).reshape(count, size)

    def differing(self, ids: IdArray, vectors: Matrix) -> IdArray:
        """Those of `ids` that FAISS holds otherwise than `vectors` (as added: metric-prepared).
        Ids FAISS does not hold are left out: the caller counts those apart."""
        ids = np.asarray(ids, dtype=np.int64)
        where = np.minimum(np.searchsorted(self._sorted, ids), max(len(self._sorted) - 1, 0))
        held = (self._sorted[where] == ids) if len(self._sorted) else np.zeros(len(ids), dtype=bool)
        ids, positions = ids[held], self._order[where[held]]
        x = np.ascontiguousarray(vectors[held], dtype=np.float32)
        if not len(ids):
            return ids
        codes = self._codes[positions] if self._ivf is None else self._from_lists(positions)
        if self.exact:
            stored = codes.view(np.float32).reshape(len(ids), self._dimension)
            wrong = np.abs(stored - x).max(axis=1) > 1e-5
        elif self._pq:
            wrong = self._pq_differing(x, positions, codes)
        else:
            wrong = _worse(x, codes, self._codec.sa_encode(x), self._codec.sa_decode)
        found: IdArray = ids[wrong]
        return found

    def _from_lists(self, positions: IdArray) -> npt.NDArray[np.uint8]:
        """The codes at `positions`, gathered list by list (one slice per list, not a scan)."""
        lists = self._lists[positions]
        order = np.argsort(lists, kind="stable")
        out = np.empty((len(positions), int(self._ivf.code_size)), dtype=np.uint8)
        starts = np.flatnonzero(np.diff(lists[order], prepend=-1))
        for begin, end in zip(starts, [*starts[1:], len(order)], strict=True):
            chosen = order[begin:end]
            out[chosen] = self._list_codes[int(lists[chosen[0]])][self._offsets[positions[chosen]]]
        return out

    def _pq_differing(
        self, x: Matrix, positions: IdArray, codes: npt.NDArray[np.uint8]
    ) -> npt.NDArray[np.bool_]:
        faiss = _faiss()
        ivf = self._ivf
        lists = self._lists[positions]
        _, nearest = ivf.quantizer.search(x, 1)
        centroids = ivf.quantizer.reconstruct_batch
        far = _further(x, centroids(lists), centroids(nearest[:, 0]), int(ivf.metric_type))
        residual = x
        if ivf.by_residual:
            residual = np.empty_like(x)
            ivf.quantizer.compute_residual_n(
                len(x), faiss.swig_ptr(x), faiss.swig_ptr(residual), faiss.swig_ptr(lists)
            )
        own = ivf.pq.compute_codes(residual)
        return far | _worse(residual, codes, own, ivf.pq.decode)


def _kind(faiss: Any, inner: Any, codec: Any) -> str | None:
    """The index type (as vectors.Layout names it) of `inner`; None for one searchkit never writes."""
    prefix = "hnsw-" if hasattr(inner, "hnsw") else ""
    if isinstance(inner, faiss.IndexIVFFlat):
        return "ivf"
    if isinstance(inner, faiss.IndexIVFPQ):
        return "ivf-pq"
    if isinstance(codec, faiss.IndexFlat):
        return "hnsw" if prefix else "flat"
    if isinstance(codec, faiss.IndexScalarQuantizer):
        return prefix + "sq8"
    return None


def _inverted_lists(ivf: Any, count: int) -> tuple[IdArray, IdArray, list[npt.NDArray[np.uint8]]]:
    """Each position's list and offset in it, and a view of each list's codes (no copy)."""
    faiss = _faiss()
    lists = np.full(count, -1, dtype=np.int64)
    offsets = np.zeros(count, dtype=np.int64)
    views = []
    size = int(ivf.code_size)
    for number in range(int(ivf.nlist)):
        length = int(ivf.invlists.list_size(number))
        if not length:
            views.append(np.zeros((0, size), dtype=np.uint8))
            continue
        positions = faiss.rev_swig_ptr(ivf.invlists.get_ids(number), length)
        lists[positions] = number
        offsets[positions] = np.arange(length)
        codes = faiss.rev_swig_ptr(ivf.invlists.get_codes(number), length * size)
        views.append(np.frombuffer(codes, dtype=np.uint8).reshape(length, size))
    return lists, offsets, views


def _worse(x: Matrix, stored: Any, own: Any, decode: Any) -> npt.NDArray[np.bool_]:
    """Where the stored code is not the codec's own and decodes further from `x` than it."""
    differ = np.flatnonzero((np.asarray(stored) != np.asarray(own)).any(axis=1))
    worse = np.zeros(len(x), dtype=bool)
    if len(differ):
        target = x[differ].astype(np.float64)
        theirs = ((decode(np.ascontiguousarray(stored[differ])) - target) ** 2).sum(axis=1)
        ours = ((decode(np.ascontiguousarray(own[differ])) - target) ** 2).sum(axis=1)
        worse[differ] = theirs > ours * (1 + 1e-4) + 1e-9
    return worse


def _further(x: Matrix, stored: Matrix, nearest: Matrix, metric_type: int) -> npt.NDArray[np.bool_]:
    """Where the stored centroid is further from `x` than its nearest one, beyond rounding."""
    a, b, c = (np.asarray(m, dtype=np.float64) for m in (x, stored, nearest))
    if metric_type == _faiss().METRIC_INNER_PRODUCT:
        theirs, ours = -(a * b).sum(axis=1), -(a * c).sum(axis=1)
    else:
        theirs, ours = ((a - b) ** 2).sum(axis=1), ((a - c) ** 2).sum(axis=1)
    further: npt.NDArray[np.bool_] = theirs > ours + 1e-5 * (1 + np.abs(ours))
    return further
