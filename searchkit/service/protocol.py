"""The write protocol: how an index folder's rows, vectors and manifest change together.

An index is a folder::

    INDEX/
      manifest.json       what the index is (manifest.py), rewritten after each write
      index.db            SQLite, the source of truth (store/)
      vectors-<G>.faiss   the FAISS index over row ids, as of store generation G
      lock                the write lock (lock.py)

The order of every write, under the lock (a first ingest takes it before it makes the
folder's files, creation.py):

1. Embedded rows are committed to ``pending`` batch by batch. A crash here
   leaves ``items`` untouched; the next ingest reuses those embeddings.
2. One SQLite transaction changes ``items`` (or ``config``) and bumps the
   generation to G. Inside it, before it commits, the vectors for G are written
   to ``vectors-G.faiss`` (temp file, fsync, rename).
3. The transaction commits: this is the moment the write happens. A crash
   before it leaves the old state and, at worst, an orphan ``vectors-G.faiss``
   that the next write overwrites or removes.
4. The manifest is rewritten and older vector files are removed.

Each step has a named fault point (faults.py) where a crash test kills the process.

A vector file never changes once written, and a reader takes the generation, the
config and the rows from one SQLite snapshot and loads ``vectors-G.faiss`` for
that generation: it sees the index before or after a write, never a mix.

`WriteProtocol` implements this order for the `Index` facade (index.py), its base class.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from searchkit import faults
from searchkit.errors import CorruptIndexError, StorageError
from searchkit.lock import WriteLock
from searchkit.manifest import Manifest
from searchkit.metrics import prepare
from searchkit.service.model_check import record_pipeline
from searchkit.store import Store
from searchkit.types import WriteReport
from searchkit.vectors import Layout, VectorIndex, plan

__all__ = ["DB_FILE", "WriteProtocol", "empty_vectors", "storage_errors", "vectors_file"]

DB_FILE = "index.db"
# A write that takes the count this many times past (or below) the count the layout was
# planned for plans it again: IVF's nlist grows with the square root of the count, and
# lists trained on 78 items are far too few for 6,000. Each retrain is O(n); at 4x they
# cost O(1) per item added.
REPLAN_FACTOR = 4
# Snapshots a busy writer may overtake before a read gives up (each write takes one).
_SNAPSHOT_ATTEMPTS = 20
T = TypeVar("T")


def vectors_file(generation: int) -> str:
    return f"vectors-{generation}.faiss"


class WriteProtocol:
    """The order of writes and the consistent reads of an open index (see above).

    The base of `Index`, which owns these attributes; the rest of the service calls
    these methods on an `Index` (ingest, check, search).
    """

    path: Path
    manifest: Manifest
    store: Store
    vectors: VectorIndex
    generation: int  # of the vectors in memory; -1: none loaded yet
    _snapshot_lock: threading.RLock
    _writer: bool  # inside _writing: load vectors unmapped, to change them
    _held_lock: WriteLock | None  # taken by the caller (a first ingest holds it from the start)

    @contextlib.contextmanager
    def _writing(self, lock_timeout: float, on_lock_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold the write lock, start from the latest committed state, map disk failures."""
        with self._locked(lock_timeout, on_lock_wait):
            self._writer = True
            try:
                if self.generation >= 0 and self.vectors.mapped:
                    self.generation = -1  # read-only in memory: load them again, to change them
                self._synced(lambda: None)
                yield
            except BaseException:
                self.generation = -1  # the vectors in memory may hold an uncommitted change
                raise
            finally:
                self._writer = False

    @contextlib.contextmanager
    def _locked(self, lock_timeout: float, on_lock_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold the write lock (unless the caller holds it already) and map disk failures:
        for a write of rows alone, which changes no vectors (field indexes)."""
        held = self._held_lock is not None
        lock = contextlib.nullcontext() if held else WriteLock(self.path, lock_timeout, on_lock_wait)
        with storage_errors(self.path), lock:
            yield

    def _commit_run(self, run: str, stale: list[str], report: WriteReport) -> None:
        """Steps 2-4 of a write: the staged rows (and the `stale` keys' deletion) in one commit."""
        with self.store.transaction():
            record_pipeline(self)  # an index older than pipeline digests gets its model's
            changed = self.store.apply(run)
            removed = np.asarray(self.store.delete(stale), dtype=np.int64)
            report.deleted = len(removed)
            if self._needs_new_layout(self.store.count()) or self.vectors.needs_training:
                report.notes.append(self._rebuild_vectors())
            else:
                # Once, not once a batch: each call is O(n).
                self.vectors.remove(np.concatenate([changed, removed]))
                for ids, vectors in self.store.iter_embeddings(changed):
                    self.vectors.add(ids, prepare(vectors, self.manifest.metric), replace=False)
            self._save_vectors()
        self._after_commit()

    def _save_vectors(self) -> None:
        """Inside the write's transaction: the vectors of the generation about to commit."""
        self.vectors.save(self.path / vectors_file(self.store.generation))
        self.generation = self.store.generation
        faults.reach("in-commit")

    def _after_commit(self) -> None:
        """Step 4: the manifest, then the vector files of older generations."""
        faults.reach("after-commit")
        self.manifest = self.manifest.advance(
            self.store.generation, self.store.count(), self.store.truncated_count()
        )
        self.manifest.write(self.path)
        faults.reach("after-manifest")
        current = vectors_file(self.store.generation)
        for old in self.path.glob("vectors-*.faiss"):
            if old.name != current:
                old.unlink(missing_ok=True)
        self.store.reclaim()

    def _synced(self, read: Callable[[], T]) -> T:
        """Run `read` in one SQLite snapshot, with the vectors of that snapshot's generation.

        A writer removes the vector file of the generation before its own, so a
        snapshot that was just overtaken may find its file gone: take a new one.
        Safe to call from several threads at once; writes are not (one writer per Index).
        """
        missing = -1
        for _ in range(_SNAPSHOT_ATTEMPTS):
            with self._snapshot_lock, self.store.transaction():
                generation = self.store.generation
                if self._sync():
                    return read()
            if generation == missing:
                break  # the same generation's file gone twice: no writer overtook us, it is lost
            missing = generation
        raise CorruptIndexError(
            f"{self.path}: {vectors_file(missing)} is missing; run searchkit check --repair"
        )

    def _sync(self) -> bool:
        """Inside a snapshot: load the vectors of the store's generation; False if their file is gone."""
        generation = self.store.generation
        if generation == self.generation:
            return True
        path = self.path / vectors_file(generation)
        manifest = self.manifest.with_config(self.store.config)
        dimension = manifest.model.dimension
        try:
            # Reads map the file (fast to load, shared page cache); a writer needs its own copy.
            self.vectors = VectorIndex.load(
                path, manifest.metric, manifest.layout, dimension, mapped=not self._writer
            )
        except CorruptIndexError:
            if path.exists():
                raise
            return False  # removed by a writer that committed after this snapshot began
        self.manifest = manifest
        self.generation = generation
        return True

    def _finish_interrupted_write(self) -> None:
        """A write committed but did not rewrite the manifest: do it, if no writer is at work."""
        lock = WriteLock(self.path, timeout=0)
        with contextlib.suppress(OSError, sqlite3.Error):
            if lock.try_acquire():
                try:
                    self._synced(lambda: None)
                    self._after_commit()
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
        """Inside a write's transaction: all vectors again from the store, the layout
        planned for today's count (IVF and PQ trained on a sample of it). Says what it built."""
        count = self.store.count()
        layout = self._layout_for(count)
        if layout != self.manifest.layout or count != self.manifest.trained_at:
            self.manifest = replace(self.manifest, layout=layout, trained_at=count)
            self.store.set_config(self.manifest.config())
        vectors = empty_vectors(self.manifest)
        if vectors.needs_training and count:
            vectors.train(prepare(self.store.sample_embeddings(layout.training_size), self.manifest.metric))
        for ids, batch in self.store.iter_embeddings():
            vectors.add(ids, prepare(batch, self.manifest.metric), replace=False)
        self.vectors = vectors
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


def empty_vectors(manifest: Manifest) -> VectorIndex:
    return VectorIndex.create(manifest.model.dimension, manifest.metric, manifest.layout)
