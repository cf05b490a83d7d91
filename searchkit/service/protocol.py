"""The write protocol: how an index folder's rows, vectors and manifest change together.

An index is a folder::

    INDEX/
      manifest.json           what the index is (manifest.py), rewritten after each write
      index.db                SQLite, the source of truth and the log of writes (store/)
      segment-<G>-<id>.faiss  immutable FAISS segments, listed in index.db (segments/)
      lock, compact-lock      the write lock and the compaction lock (lock.py)

A write changes SQLite alone, under the write lock (a first ingest takes it before it
makes the folder's files, creation.py), so it costs what it changes:

1. Embedded rows are committed to ``pending`` batch by batch. A crash here
   leaves ``items`` untouched; the next ingest reuses those embeddings.
2. One SQLite transaction changes ``items``, ``embeddings`` (each with the generation
   it is written in) and bumps the generation to G; triggers write the tombstones of the
   versions it replaced or deleted, and keep the counters.
3. The transaction commits: this is the moment the write happens.
4. The manifest is rewritten (an O(1) summary; the store wins where they disagree).

Each step has a named fault point (faults.py) where a crash test kills the process.

No write touches a vector file. A reader (`_synced`) takes the generation, the segment
list and the rows from one SQLite snapshot: it maps the segments it has not loaded yet,
adds the tombstones and embeddings written since its own generation (both indexed by
generation) to its tail and dead sets, and searches that view: before or after a write,
never a mix. Sealing the tail into segment files and merging them is compaction
(compaction.py), which commits a new segment list the same way; a rebuild (another
metric or type, IVF retrained) writes one new segment of everything inside its write.

`WriteProtocol` implements this order for the `Index` facade (index.py), its base class.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from searchkit import faults
from searchkit.errors import CorruptIndexError, StorageError
from searchkit.lock import WriteLock
from searchkit.manifest import Manifest
from searchkit.metrics import prepare
from searchkit.segments.build import layout_for
from searchkit.segments.view import Part, SegmentView, Tail
from searchkit.service.model_check import with_pipeline
from searchkit.store import Store
from searchkit.store.catalog import SegmentRecord
from searchkit.types import Metric, WriteReport
from searchkit.vectors import Layout, VectorIndex, plan

__all__ = [
    "DB_FILE",
    "Snapshot",
    "WriteProtocol",
    "empty_view",
    "finish_first_commit",
    "is_vector_file",
    "segment_file",
    "storage_errors",
]

DB_FILE = "index.db"
# A write that takes the count this many times past (or below) the count the layout was
# planned for plans it again: IVF's nlist grows with the square root of the count, and
# lists trained on 78 items are far too few for 6,000. Each retrain is O(n); at 4x they
# cost O(1) per item added.
REPLAN_FACTOR = 4
# Snapshots a busy writer may overtake before a read gives up (each write takes one).
_SNAPSHOT_ATTEMPTS = 20
T = TypeVar("T")


def segment_file(generation: int) -> str:
    """A new segment's file name: never one handed out before (the generation it was
    built as of, and a random part: a crashed build's orphan is never overwritten)."""
    return f"segment-{generation:06d}-{uuid.uuid4().hex[:8]}.faiss"


def is_vector_file(name: str) -> bool:
    """A segment file (or the single vector file of an index made before segments)."""
    return name.endswith(".faiss") and name.startswith(("segment-", "vectors-"))


@dataclass(frozen=True)
class Snapshot:
    """What one read sees: the store inside this thread's SQLite snapshot, and the vectors
    and manifest of that snapshot's generation. Search, check and quality take one."""

    store: Store
    vectors: SegmentView
    manifest: Manifest

    @property
    def metric(self) -> Metric:
        return self.manifest.metric


class WriteProtocol:
    """The order of writes and the consistent reads of an open index (see above).

    The base of `Index`; on its own, the writer that check's repair and compaction use
    (no model, no search).
    """

    path: Path
    manifest: Manifest
    store: Store
    # What reads search: the segments and tail of one generation, and the manifest (config)
    # of that generation; swapped as one.
    _current: tuple[SegmentView, Manifest]
    _snapshot_lock: threading.RLock
    _held_lock: WriteLock | None  # taken by the caller (a first ingest holds it from the start)
    _holding: int  # how deep in _locked this object is (a compaction inside a write)

    def __init__(self, path: Path, manifest: Manifest, store: Store) -> None:
        self.path = path
        self.manifest = manifest
        self.store = store
        self._current = (empty_view(manifest), manifest)
        self._held_lock = None
        self._holding = 0
        # Reads may come from several threads (the HTTP service shares one Index among
        # them); only catching the view up with a new generation is serialized.
        self._snapshot_lock = threading.RLock()

    @property
    def generation(self) -> int:
        """The generation of the vectors in memory; -1: none loaded yet."""
        return self._current[0].generation

    @contextlib.contextmanager
    def _locked(self, lock_timeout: float, on_lock_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold the write lock (unless the caller holds it already) and map disk failures.
        A write changes rows only: it loads no vectors."""
        held = self._held_lock is not None or self._holding > 0
        lock = contextlib.nullcontext() if held else WriteLock(self.path, lock_timeout, on_lock_wait)
        with storage_errors(self.path), lock:
            self._holding += 1
            try:
                yield
            finally:
                self._holding -= 1

    def _commit_run(self, run: str, stale: list[str], report: WriteReport) -> None:
        """Steps 2-4 of a write: the staged rows (and the `stale` keys' deletion) in one commit."""
        with self.store.transaction():
            recorded = with_pipeline(self.manifest)  # an index older than pipeline digests gets its model's
            if recorded is not self.manifest:
                self.manifest = recorded
                self.store.set_config(recorded.config())
            self.store.apply(run)
            report.deleted = len(self.store.delete(stale))
            if self._needs_new_layout(self.store.count()) or self._untrained():
                report.notes.append(self._rebuild_vectors())
            faults.reach("in-commit")
        self._after_commit()

    def _untrained(self) -> bool:
        """An IVF, PQ or SQ layout no segment has been trained for yet (its first items)."""
        kind = self.manifest.layout.kind
        return self.manifest.layout.trained and all(r.kind != kind for r in self.store.segments())

    def _after_commit(self) -> None:
        """Step 4: the manifest, then the vector files no committed segment lists."""
        faults.reach("after-commit")
        self.manifest = self.manifest.advance(
            self.store.generation, self.store.count(), self.store.truncated_count()
        )
        self.manifest.write(self.path)
        faults.reach("after-manifest")
        self.store.reclaim()

    def _remove_unlisted(self) -> None:
        """Under the write lock: remove the segment files the committed set no longer lists
        (a reader that mapped one keeps it until it lets go; one that wanted it reads again)."""
        listed = {record.name for record in self.store.segments()}
        for path in self.path.iterdir():
            if is_vector_file(path.name) and path.name not in listed:
                path.unlink(missing_ok=True)

    def _synced(self, read: Callable[[Snapshot], T]) -> T:
        """Run `read` on one `Snapshot`: this thread's SQLite snapshot and the vectors of its
        generation. Safe from several threads at once: each has its own connection, and
        only catching the view up with a new generation takes a lock, not the search.

        A compaction removes the segment files it merged, so a snapshot that was just
        overtaken may find one gone: take a new one.
        """
        missing = ""
        for _ in range(_SNAPSHOT_ATTEMPTS):
            with self.store.transaction():
                generation = self.store.generation
                view, manifest = self._current
                gone = None
                if view.generation < generation:
                    with self._snapshot_lock:
                        view, manifest = self._current
                        if view.generation < generation:
                            gone = self._sync()
                            view, manifest = self._current
                if gone is None and view.generation == generation:
                    return read(Snapshot(self.store, view, manifest))
            if gone is not None:
                if gone == missing:
                    break  # the same file gone twice: no compaction overtook us, it is lost
                missing = gone
            # else a newer view than this snapshot was swapped in meanwhile: a newer snapshot
        raise CorruptIndexError(
            f"{self.path}: {missing or 'a segment file'} is missing; run searchkit check --repair"
        )

    def _sync(self) -> str | None:
        """Inside a snapshot, under the snapshot lock: catch the view up with the store's
        generation; the name of a segment file that is gone, if one is (removed by a
        compaction after the snapshot began)."""
        generation = self.store.generation
        view, _ = self._current
        config = self.store.config
        manifest = self.manifest.with_config(config) if config else self.manifest
        metric, dimension = manifest.metric, manifest.model.dimension
        if manifest.config() != self._current[1].config():
            view = empty_view(manifest)  # another metric or layout: nothing carries over
        died = self.store.died_since(view.generation) if view.generation >= 0 else []
        parts, known = [], {p.name: p for p in view.parts}
        for record in self.store.segments():
            part = known.get(record.name)
            if part is None:
                try:
                    layout = layout_for(record.kind, manifest.layout)
                    loaded = VectorIndex.load(self.path / record.name, metric, layout, dimension, mapped=True)
                except CorruptIndexError:
                    if (self.path / record.name).exists():
                        raise
                    return record.name
                dead = self.store.dead_between(record.first, record.last)
                part = Part(record.name, record.first, record.last, loaded, dead)
            elif died:
                more = [i for i, old in died if record.first <= old <= record.last]
                if more:
                    part = part.with_dead(np.asarray(more, dtype=np.int64))
            parts.append(part)
        sealed = max((p.last for p in parts), default=-1)
        if view.generation < 0 or sealed != view.sealed:
            tail, since = Tail.empty(dimension), sealed
        else:
            dead = np.asarray([i for i, old in died if old > sealed], dtype=np.int64)
            tail, since = (
                view.tail.changed(dead, dead[:0], np.zeros((0, dimension), np.float32)),
                view.generation,
            )
        for ids, vectors in self.store.written_since(since):
            tail = tail.changed(ids[:0], ids, prepare(vectors, metric))
        self.manifest = manifest
        self._current = (SegmentView(metric, tuple(parts), tail, generation, sealed), manifest)
        return None

    def _finish_interrupted_write(self) -> None:
        """A write committed but did not rewrite the manifest: do it, if no writer is at work."""
        lock = WriteLock(self.path, timeout=0)
        with contextlib.suppress(OSError, sqlite3.Error):
            if lock.try_acquire():
                try:
                    self._after_commit()
                    self._remove_unlisted()
                finally:
                    lock.release()

    def _layout_for(self, count: int) -> Layout:
        m = self.manifest
        return plan(m.index_type, m.metric, count, m.model.dimension, m.index_options)

    def _needs_new_layout(self, count: int) -> bool:
        """Whether a write that leaves `count` items must rebuild the vectors: another type
        (auto's flat to hnsw, or IVF's first training), or IVF's lists planned for a count
        `REPLAN_FACTOR` times away from today's."""
        planned, layout = self._layout_for(count), self.manifest.layout
        if planned.kind != layout.kind:
            return True
        if planned == layout:
            return False
        trained_at = max(1, self.manifest.trained_at)
        return count >= REPLAN_FACTOR * trained_at or count * REPLAN_FACTOR <= trained_at

    def _rebuild_vectors(self) -> str:
        """Inside a write's transaction: all vectors again from the store as one segment,
        the layout planned for today's count (IVF and PQ trained on a sample of it), in
        place of every segment. Says what it built."""
        count = self.store.count()
        layout = self._layout_for(count)
        if layout != self.manifest.layout or count != self.manifest.trained_at:
            self.manifest = replace(self.manifest, layout=layout, trained_at=count)
            self.store.set_config(self.manifest.config())
        vectors = VectorIndex.create(self.manifest.model.dimension, self.manifest.metric, layout)
        if vectors.needs_training and count:
            vectors.train(prepare(self.store.sample_embeddings(layout.training_size), self.manifest.metric))
        for ids, batch in self.store.iter_embeddings():
            vectors.add(ids, prepare(batch, self.manifest.metric), replace=False)
        generation = self.store.generation
        name = segment_file(generation)
        vectors.save(self.path / name)
        self.store.clear_segments()
        record = SegmentRecord(name, 0, generation, int(vectors.index.ntotal), layout.kind)
        self.store.replace_segments([], [record], as_of=generation)
        asked = f" (asked: {self.manifest.index_type})" if self.manifest.index_type != layout.kind else ""
        return f"index type {layout.kind}{asked} for {count} items, FAISS {self.manifest.faiss}"


@contextlib.contextmanager
def storage_errors(folder: Path) -> Iterator[None]:
    """Turn a full disk, a read-only folder or an I/O error into one StorageError line."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "readonly" in str(exc):
            raise StorageError(f"cannot write to {folder}: {exc}; {_READ_ONLY}") from exc
        raise StorageError(f"cannot write to {folder}: {exc}; {_REMEDY}") from exc
    except OSError as exc:
        remedy = _READ_ONLY if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else _REMEDY
        raise StorageError(f"cannot write to {folder}: {exc.strerror or exc}; {remedy}") from exc
    except StorageError as exc:  # from the FAISS writer, which knows only its file
        raise StorageError(f"cannot write to {folder}: {exc}; {_REMEDY}") from exc


_REMEDY = "free disk space or fix permissions, then re-run (committed items are kept)"
_READ_ONLY = "the folder is read-only to this user; searches still work, writes need write access"


def finish_first_commit(folder: Path, store: Store) -> Manifest | None:
    """Under the write lock, in a folder with no manifest: write the one a first commit did
    not live to write; None if nothing was committed."""
    config = store.config
    if not config or not store.count():
        return None
    writer = WriteProtocol(folder, Manifest.from_config(config), store)
    with storage_errors(folder):
        writer._after_commit()
    return writer.manifest


def empty_view(manifest: Manifest) -> SegmentView:
    """No vectors loaded yet (generation -1: the first read loads them)."""
    return SegmentView(manifest.metric, (), Tail.empty(manifest.model.dimension), -1, -1)
