"""What a reader searches: the loaded segments of one generation and its unsealed tail.

A `SegmentView` is immutable once made, so any number of threads search it at once with
no lock around FAISS: a reader that catches up with a newer generation makes a new view
from the old one (the segments it still has are shared, mapped once) and swaps it in.

- `Part`: one segment file, memory-mapped, and the ids whose version in it has died (its
  tombstones), skipped through a FAISS ID selector built once per view;
- `Tail`: the embeddings newer than every segment, in memory, searched exactly (FAISS flat);
  bounded by the merge policy's ``seal_at``.

A search asks every part and the tail for its best candidates, and keeps the best overall
by FAISS's own scores; the caller re-scores them exactly from SQLite, as it always has.

Two things keep a search of many parts close to a search of one (measured at 1M HNSW
vectors in parts of 1,000,000, 90,000 and 9,000 and a tail of 999, one query):

- **A beam to each graph's size.** HNSW's efSearch is the beam a search keeps; the beam a
  graph needs for a given recall grows with its size, and at the index's 128 a 9,000-vector
  graph is searched almost exhaustively (recall@20 of its own best 0.997, against 0.937 for
  the 90,000 one and 0.712 for the million one, on bench.py's hard synthetic data), for as
  long as the million-vector graph takes. So a smaller graph beside the largest gets
  ``ef * (log n / log largest)**3`` (`_beam`): 73 and 37 there, where its own recall@20 is
  still about 0.89 and 0.98. recall@10 of the whole search: 0.7400 against the compacted index's
  0.7405 (at 100k with 90,000 and 9,000 beside it: 0.979 either way).
- **Parts searched side by side**, as Lucene's IndexSearcher searches its segments on an
  executor: the largest part on the caller's thread, the other parts and the tail on
  `_helpers` (FAISS releases the GIL), each on one OpenMP thread. A helper that has not
  started a job by the time the caller is done with its own hands it back (the caller runs
  it), so a busy pool (the service's concurrent searches) never makes a search wait in its
  queue. Searched one after the other, the parts above cost about 0.7 ms a query more than
  the compacted index; side by side, about 0.45 ms more (`Index.search` with the query
  vectors given, p50, two runs minutes apart).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from searchkit.devices import cpu_cores
from searchkit.metrics import Matrix
from searchkit.types import Metric
from searchkit.vectors import FEW_QUERIES, IdArray, VectorIndex, _faiss, _faiss_metric, one_thread

__all__ = ["Part", "SegmentView", "Tail"]

Scores = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Part:
    """A loaded segment: the versions written in generations `first`..`last`."""

    name: str
    first: int
    last: int
    vectors: VectorIndex
    dead: IdArray  # sorted: ids whose version here has died
    _sorted_ids: list[IdArray] = field(default_factory=list, compare=False, repr=False)
    _skip: list[Any] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._skip.append(_skip_selector(self.dead, self.vectors.dead > 0))

    @property
    def live(self) -> int:
        return self.vectors.ntotal - len(self.dead)

    def with_dead(self, more: IdArray) -> Part:
        """This segment with more of its versions dead (a new view's; this one unchanged)."""
        dead = np.union1d(self.dead, more)
        return replace(self, dead=dead, _sorted_ids=self._sorted_ids, _skip=[])

    def holds(self, ids: IdArray) -> IdArray:
        """Which of `ids` have their live version here."""
        if not self._sorted_ids:  # once per segment (shared by the views that keep it)
            self._sorted_ids.append(np.sort(self.vectors.ids()))
        held = self._sorted_ids[0]
        if not len(held):
            return ids[:0]
        at = np.minimum(np.searchsorted(held, ids), len(held) - 1)
        found: IdArray = ids[held[at] == ids]  # O(len(ids) log n): not np.isin, which sorts all n
        if len(self.dead):
            at = np.minimum(np.searchsorted(self.dead, found), len(self.dead) - 1)
            found = found[self.dead[at] != found]
        return found

    def search(
        self, queries: Matrix, k: int, allowed: IdArray | None, beam: int | None = None
    ) -> tuple[Scores, IdArray]:
        skip, _keep = self._skip[0]
        if allowed is not None and len(self.dead):
            allowed = allowed[~np.isin(allowed, self.dead)]
        return self.vectors.search(queries, k, allowed=allowed, skip=skip, beam=beam)


def _skip_selector(dead: IdArray, marked: bool) -> tuple[Any, list[Any]]:
    """A FAISS selector of the ids to skip (`dead`, and -1 where the file marks removed
    entries), and the objects it points into (kept alive with it); None: skip nothing."""
    if not len(dead) and not marked:
        return None, []
    faiss = _faiss()
    keep: list[Any] = []
    selectors = []
    if len(dead):
        # A bitmap: one bit per id up to the largest dead one, O(1) a test.
        bits = np.zeros(int(dead[-1]) + 1, dtype=bool)
        bits[dead] = True
        bitmap = np.packbits(bits, bitorder="little")
        keep.append(bitmap)
        selectors.append(faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap)))
    if marked:  # before the bitmap: -1 would index before its start
        selectors.insert(0, faiss.IDSelectorBatch(np.array([-1], dtype=np.int64)))
    keep += selectors
    either = selectors[0]
    for other in selectors[1:]:
        either = faiss.IDSelectorOr(either, other)
        keep.append(either)
    return either, keep


@dataclass(frozen=True)
class Tail:
    """The unsealed embeddings (as the index stores them: normalised for cosine), by id."""

    ids: IdArray
    vectors: Matrix
    _flat: list[Any] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def empty(cls, dimension: int) -> Tail:
        return cls(np.zeros(0, dtype=np.int64), np.zeros((0, dimension), dtype=np.float32))

    def changed(self, dead: IdArray, ids: IdArray, vectors: Matrix) -> Tail:
        """Without `dead` and with (`ids`, `vectors`) added (replacing any same id)."""
        drop = np.concatenate([dead, ids])
        keep = ~np.isin(self.ids, drop) if len(drop) and len(self.ids) else np.ones(len(self.ids), dtype=bool)
        if len(ids) == 0 and keep.all():
            return self
        return Tail(
            np.concatenate([self.ids[keep], ids]),
            np.concatenate([self.vectors[keep], np.asarray(vectors, dtype=np.float32)]),
        )

    def search(
        self, queries: Matrix, k: int, metric: Metric, allowed: IdArray | None
    ) -> tuple[Scores, IdArray]:
        """Exact (a FAISS flat scan, on the caller's thread): the k best per query, as
        higher-is-better scores. NumPy's product went through OpenBLAS, whose spinning
        threads made one search in a hundred 20 ms slower."""
        ids, vectors = self.ids, self.vectors
        if allowed is not None:
            mask = np.isin(ids, allowed)
            ids, vectors = ids[mask], vectors[mask]
        if not len(ids):
            return np.zeros((len(queries), 0), dtype=np.float32), np.zeros((len(queries), 0), dtype=np.int64)
        if allowed is None:
            if not self._flat:  # once per tail (shared by the searches of its view)
                self._flat.append(_flat_index(vectors, metric))
            flat = self._flat[0]
        else:
            flat = _flat_index(vectors, metric)
        distances, positions = flat.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(ids)))
        return _higher_is_better(distances, metric), ids[positions]


def _flat_index(vectors: Matrix, metric: Metric) -> Any:
    index = _faiss().IndexFlat(vectors.shape[1], _faiss_metric(metric))
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


@dataclass(frozen=True)
class SegmentView:
    """The segments and tail of one generation: what a snapshot searches."""

    metric: Metric
    parts: tuple[Part, ...]
    tail: Tail
    generation: int  # -1: nothing loaded yet
    sealed: int  # the last generation the parts hold; the tail is newer
    _plan: list[tuple[tuple[Part, int | None], ...]] = field(default_factory=list, compare=False, repr=False)

    @property
    def exact(self) -> bool:
        """Whether a search finds exactly the best (every part flat; the tail is exact)."""
        return all(p.vectors.layout.kind == "flat" for p in self.parts)

    @property
    def ntotal(self) -> int:
        """The live vectors."""
        return sum(p.live for p in self.parts) + len(self.tail.ids)

    def ids(self) -> IdArray:
        """Every live id, sorted."""
        held = [np.setdiff1d(p.vectors.ids(), p.dead) for p in self.parts] + [self.tail.ids]
        return np.sort(np.concatenate(held))

    def search(self, queries: Matrix, k: int, allowed: IdArray | None = None) -> tuple[Scores, IdArray]:
        """The best `k` candidates per (prepared) query over every part and the tail, as
        (higher-is-better scores, ids); ids are -1 where fewer exist."""
        jobs: list[Callable[[], tuple[Scores, IdArray]]] = [
            partial(_scored, part, queries, k, allowed, beam, self.metric) for part, beam in self._searched()
        ]
        if len(self.tail.ids):
            jobs.append(partial(self.tail.search, queries, k, self.metric, allowed))
        pool = _helpers() if len(jobs) > 1 and len(queries) <= FEW_QUERIES else None
        with one_thread(len(queries)):
            found = _side_by_side(jobs, pool)
        if not found:
            return np.zeros((len(queries), 0), dtype=np.float32), np.full(
                (len(queries), 0), -1, dtype=np.int64
            )
        if len(found) == 1:
            return found[0]
        scores = np.concatenate([s for s, _ in found], axis=1)
        ids = np.concatenate([i for _, i in found], axis=1)
        scores = np.where(ids >= 0, scores, -np.inf).astype(np.float32)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)

    def _searched(self) -> tuple[tuple[Part, int | None], ...]:
        """The parts with live vectors, largest first, each with its beam (None: its own)."""
        if not self._plan:  # once per view
            parts = sorted((p for p in self.parts if p.live > 0), key=lambda p: -p.live)
            largest = parts[0].live if parts else 0
            self._plan.append(tuple((p, _beam(p.vectors, largest)) for p in parts))
        return self._plan[0]

    def exact_vectors(self, ids: IdArray) -> Matrix | None:
        """The vectors of `ids` as stored (in `ids`' order), where every part stores them
        exactly (flat, HNSW); else None."""
        if not len(ids) or any(p.vectors.layout.kind not in ("flat", "hnsw") for p in self.parts):
            return None
        held_here: list[tuple[IdArray, Matrix | None]] = []
        for part in self.parts:
            held = part.holds(ids)
            if len(held):
                held_here.append((held, part.vectors.exact_vectors(held)))
        if len(self.tail.ids):
            mask = np.isin(self.tail.ids, ids)
            held_here.append((self.tail.ids[mask], self.tail.vectors[mask]))
        if len(held_here) == 1 and np.array_equal(held_here[0][0], ids):
            return held_here[0][1]  # one part holds them all, in their order (the usual case)
        out = np.empty((len(ids), self.tail.vectors.shape[1]), dtype=np.float32)
        filled = np.zeros(len(ids), dtype=bool)
        order = np.argsort(ids, kind="stable")
        for held, vectors in held_here:
            if vectors is None:
                return None
            rows = order[np.searchsorted(ids, held, sorter=order)]  # where each held id sits in `ids`
            out[rows] = vectors
            filled[rows] = True
        return out if filled.all() else None


def _beam(vectors: VectorIndex, largest: int) -> int | None:
    """The beam of a graph of `vectors` searched beside one of `largest` live vectors: its own
    efSearch scaled by the cube of their logs' ratio (see the module's docstring); None for
    the largest graph itself and for what is not a graph."""
    own, live = vectors.beam, vectors.ntotal
    if own is None or live >= largest or live < 2:
        return None
    return max(1, math.ceil(own * (math.log(live) / math.log(largest)) ** 3))


_pool: list[ThreadPoolExecutor] = []
_pool_lock = threading.Lock()


def _helpers() -> ThreadPoolExecutor | None:
    """The threads that search parts beside the caller's (one fewer than the cores; made
    on first use, shared by every view); None on one core."""
    with _pool_lock:
        if not _pool:
            cores = cpu_cores()
            if cores < 2:
                return None
            helpers = ThreadPoolExecutor(
                cores - 1, thread_name_prefix="searchkit-parts", initializer=_one_omp_thread
            )
            _pool.append(helpers)
        return _pool[0]


def _one_omp_thread() -> None:
    _faiss().omp_set_num_threads(1)  # per thread: a helper's FAISS calls stay on it


def _scored(
    part: Part, queries: Matrix, k: int, allowed: IdArray | None, beam: int | None, metric: Metric
) -> tuple[Scores, IdArray]:
    distances, ids = part.search(queries, k, allowed, beam)
    return _higher_is_better(distances, metric), ids


Result = TypeVar("Result")


def _side_by_side(jobs: Sequence[Callable[[], Result]], pool: ThreadPoolExecutor | None) -> list[Result]:
    """Every job's result, in order: the first run on this thread, the others on `pool`'s
    threads beside it; each that no helper has started by the time this thread is free is
    run here instead (the last queued first: the helpers take the first)."""
    handed: list[Future[Result] | None] = [None] * len(jobs)
    if pool is not None:
        handed[1:] = [pool.submit(job) for job in jobs[1:]]
    done: dict[int, Result] = {}
    try:
        for n in [0, *reversed(range(1, len(jobs)))] if jobs else []:
            future = handed[n]
            if future is None or future.cancel():
                done[n] = jobs[n]()
    except BaseException:
        for future in handed:
            if future is not None:
                future.cancel()  # what no helper has started: nobody waits for it now
        raise
    return [done[n] if n in done else handed[n].result() for n in range(len(jobs))]  # type: ignore[union-attr]


def _higher_is_better(distances: Scores, metric: Metric) -> Scores:
    """FAISS's distances as scores: inner products as they are, L2 (squared) and L1 negated."""
    if metric in (Metric.COSINE, Metric.DOT):
        return distances
    if metric is Metric.EUCLIDEAN:
        return -np.sqrt(np.maximum(distances, 0))
    return -distances
