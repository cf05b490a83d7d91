"""The `Index` facade: the one place that joins ids, vectors and rows.

An index is a folder::

    INDEX/
      manifest.json   what the index is (manifest.py), written last
      index.db        SQLite, the source of truth (store.py)
      vectors.faiss   the FAISS index over row ids (vectors.py)
      lock            the write lock (lock.py)

The order of every write, under the lock:

1. Embedded rows are committed to ``pending`` batch by batch. A crash here
   leaves ``items`` untouched; the next ingest reuses those embeddings.
2. One SQLite transaction changes ``items`` (or ``config``, for a rebuild) and
   bumps ``generation``. This commit is the moment the write happens.
3. The FAISS index is written to a temp file, fsynced and renamed over
   ``vectors.faiss``.
4. The manifest, with the generation that file reflects, likewise.

On open, a manifest generation that differs from the store's means a crash
between 2 and 4 (or a writer at work): the vectors are rebuilt from the stored
embeddings under the store's config, never read from a file that may be ahead of
the manifest. So a reader sees the index before or after a write, never a mix.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from searchkit import embedder as embedding
from searchkit.errors import CorruptIndexError, ModelMismatchError, StorageError, UsageError
from searchkit.lock import WriteLock
from searchkit.manifest import MANIFEST, Manifest
from searchkit.metrics import pairwise, prepare
from searchkit.store import Store
from searchkit.types import Fingerprint, Hit, Metric, Record, WriteReport
from searchkit.vectors import VectorIndex, describe

__all__ = ["DB_FILE", "MAX_K", "VECTORS_FILE", "Index", "storage_errors"]

DB_FILE = "index.db"
VECTORS_FILE = "vectors.faiss"
MAX_K = 10_000
_OPEN_ATTEMPTS = 3


class Index:
    """A searchkit index folder, opened for reading and writing.

    >>> index = Index.create("my-index", metric="cosine")
    >>> index.add([{"id": "a", "text": "The weather is lovely today."}])
    >>> index.search("Is it sunny?", k=3)
    """

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        store: Store,
        vectors: VectorIndex,
        embedder: embedding.Embedder | None = None,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.store = store
        self.vectors = vectors
        self._embedder = embedder

    # --- opening -------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | Path,
        model: str | None = None,
        metric: str | Metric = Metric.COSINE,
        index_type: str = "auto",
        backend: str = "torch",
        embedder: embedding.Embedder | None = None,
    ) -> Index:
        """Create an empty index folder at `path` (which must not hold an index yet)."""
        folder = Path(path)
        metric = Metric.parse(metric)
        faiss_description = describe(index_type)
        if (folder / MANIFEST).exists():
            raise UsageError(f"{folder}: an index already exists here; open it, or pick another path")
        if folder.exists() and (not folder.is_dir() or _has_files(folder)):
            raise UsageError(f"{folder}: exists and is not an empty folder; pick another path")
        embedder = embedder or embedding.load(model, backend)
        with storage_errors(folder):
            folder.mkdir(parents=True, exist_ok=True)
            store = Store(folder / DB_FILE, embedder.fingerprint.dimension, create=True)
            manifest = Manifest(
                model=embedder.fingerprint,
                metric=metric,
                index_type="flat" if index_type == "auto" else index_type,
                faiss=faiss_description,
            )
            store.set_config(manifest.config())
            index = cls(folder, manifest, store, _empty_vectors(manifest), embedder)
            index._commit_files()
        return index

    @classmethod
    def open(
        cls,
        path: str | Path,
        model: str | None = None,
        backend: str | None = None,
        embedder: embedding.Embedder | None = None,
    ) -> Index:
        """Open an existing index. `model`, when given, must be the index's own model."""
        folder = Path(path)
        for attempt in range(_OPEN_ATTEMPTS):
            manifest = Manifest.read(folder)
            if attempt == 0:
                _check_asked_model(folder, manifest.model, model, backend, embedder)
            store = Store(folder / DB_FILE, manifest.model.dimension)
            if manifest.generation != store.generation:
                index = cls(folder, manifest, store, _empty_vectors(manifest), embedder)
                index._recover()
                return index
            try:
                vectors = VectorIndex.load(
                    folder / VECTORS_FILE, manifest.metric, manifest.faiss, manifest.model.dimension
                )
            except CorruptIndexError:
                store.close()
                # A writer may have replaced the file since we read the manifest: try again.
                if attempt + 1 < _OPEN_ATTEMPTS and Manifest.read(folder).generation != manifest.generation:
                    continue
                raise
            return cls(folder, manifest, store, vectors, embedder)
        raise CorruptIndexError(f"{folder}: the index keeps changing under this reader; try again")

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def metric(self) -> Metric:
        return self.manifest.metric

    @property
    def embedder(self) -> embedding.Embedder:
        """The index's own model, loaded on first use."""
        if self._embedder is None:
            fp = self.manifest.model
            source = fp.source.removeprefix("local:") if fp.source.startswith("local:") else fp.name
            loaded = embedding.load(source, fp.backend)
            check_model(self.path, fp, loaded.fingerprint)
            self._embedder = loaded
        return self._embedder

    # --- reading -------------------------------------------------------------

    def __len__(self) -> int:
        return self.store.count()

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """The `k` items most similar to `query`, best first."""
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        """Search several queries with one embedding call and one FAISS call."""
        k = _check_k(k)
        queries = _check_queries(queries)
        if self.vectors.ntotal == 0:
            return [[] for _ in queries]
        query_vectors = self.embedder.encode(queries)
        _, ids = self.vectors.search(prepare(query_vectors, self.metric), k)
        rows = self.store.items_by_ids(sorted({int(i) for i in ids.ravel() if i >= 0}))
        results: list[list[Hit]] = []
        for vector, row_ids in zip(query_vectors, ids, strict=True):
            found = [rows[int(i)] for i in row_ids if int(i) in rows]
            if not found:
                results.append([])
                continue
            # Exact scores from the stored embeddings: FAISS's L2 path works on the
            # squared expansion, whose rounding shows near zero distance.
            scores = pairwise(vector[None, :], np.stack([r.embedding for r in found]), self.metric)[0]
            order = np.argsort(-scores, kind="stable")
            results.append(
                [
                    Hit(rank, found[j].key, float(scores[j]), found[j].text, found[j].metadata)
                    for rank, j in enumerate(order, start=1)
                ]
            )
        return results

    def info(self) -> dict[str, Any]:
        """The manifest, the live counts and the size of each file."""
        data = self.manifest.to_json()
        data["path"] = str(self.path)
        data["counts"] = {
            "items": self.store.count(),
            "vectors": self.vectors.ntotal,
            "truncated": self.store.truncated_count(),
        }
        data["sizes"] = {p.name: p.stat().st_size for p in sorted(self.path.iterdir()) if p.is_file()}
        return data

    def export(self, vectors: bool = False) -> Iterator[dict[str, Any]]:
        """Every item as ``{"id", "text", "metadata"[, "embedding"]}``, in id order."""
        for key, text, metadata, blob in self.store.iter_items():
            item: dict[str, Any] = {"id": key, "text": text, "metadata": metadata}
            if vectors:
                item["embedding"] = np.frombuffer(blob, dtype="<f4").tolist()
            yield item

    # --- writing -------------------------------------------------------------

    def add(
        self,
        items: Iterable[Record | dict[str, Any]],
        batch_size: int = 32,
        lock_timeout: float = 60.0,
        on_lock_wait: Callable[[], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> WriteReport:
        """Upsert items by id: new ids are added, changed texts re-embedded, the rest left alone.

        `items` are `Record`s or dicts with ``text`` and optionally ``id``, ``metadata``
        and other fields (kept as metadata).
        """
        from searchkit.service import ingest

        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise UsageError(f"batch size must be a positive integer, not {batch_size!r}")
        started = time.perf_counter()
        report = WriteReport()
        with self._writing(lock_timeout, on_lock_wait):
            run = ingest.new_run()
            records = (ingest.as_record(item, n) for n, item in enumerate(items, start=1))
            chunk = max(256, batch_size * 8)
            while batch := list(islice(records, chunk)):
                ingest.stage(self, run, batch, batch_size, report)
                if on_progress is not None:
                    on_progress(len(batch))
            if self.store.pending_count(run):
                changed = self.store.apply(run)
                for ids, vectors in self.store.iter_embeddings(changed):
                    self.vectors.add(ids, prepare(vectors, self.metric))
                self._commit_files()
        report.seconds = time.perf_counter() - started
        return report

    def delete(self, ids: Sequence[str], lock_timeout: float = 60.0) -> WriteReport:
        """Delete items by their ids; unknown ids are reported, not an error."""
        started = time.perf_counter()
        report = WriteReport()
        keys = list(dict.fromkeys(str(i) for i in ids))
        with self._writing(lock_timeout):
            removed = self.store.delete(keys)
            if removed:
                self.vectors.remove(np.asarray(removed, dtype=np.int64))
                self._commit_files()
        report.deleted = len(removed)
        if len(removed) < len(keys):
            report.notes.append(f"{len(keys) - len(removed)} id(s) were not in the index")
        report.seconds = time.perf_counter() - started
        return report

    def rebuild(
        self, metric: str | Metric | None = None, index_type: str | None = None, lock_timeout: float = 60.0
    ) -> WriteReport:
        """Rebuild the vectors from the stored embeddings, optionally under another metric
        or index type. Embeds nothing."""
        started = time.perf_counter()
        new_metric = Metric.parse(metric) if metric is not None else None
        new_type = index_type if index_type is not None else None
        faiss_description = describe(new_type) if new_type is not None else None
        with self._writing(lock_timeout):
            manifest = self.manifest
            if new_metric is not None or new_type is not None:
                manifest = manifest.with_config(
                    {
                        **manifest.config(),
                        "metric": (new_metric or manifest.metric).value,
                        "index_type": manifest.index_type
                        if new_type is None
                        else ("flat" if new_type == "auto" else new_type),
                        "faiss": faiss_description or manifest.faiss,
                    }
                )
            self.store.set_config(manifest.config())  # the commit point
            self.manifest = manifest
            self._rebuild_vectors()
            self._commit_files()
        report = WriteReport(unchanged=self.store.count())
        report.seconds = time.perf_counter() - started
        return report

    def check(self, repair: bool = False) -> Any:
        """Compare manifest, FAISS ids and SQLite rows; with `repair`, restore them from SQLite."""
        from searchkit.service.check import check

        return check(self.path, repair=repair, embedder=self._embedder)

    # --- the write protocol ----------------------------------------------------

    @contextlib.contextmanager
    def _writing(self, lock_timeout: float, on_lock_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold the write lock, start from the latest committed state, map disk failures."""
        with storage_errors(self.path), WriteLock(self.path, lock_timeout, on_lock_wait):
            self._refresh()
            try:
                yield
            except BaseException:
                if self.manifest.generation != self.store.generation:
                    # Interrupted between the commit and the files: realign the
                    # in-memory vectors with the store; the next open writes them.
                    self._reload_after_failure()
                raise

    def _commit_files(self) -> None:
        """Steps 3 and 4 of a write: the FAISS file, then the manifest."""
        self.vectors.save(self.path / VECTORS_FILE)
        self.manifest = self.manifest.advance(
            self.store.generation, self.store.count(), self.store.truncated_count()
        )
        self.manifest.write(self.path)

    def _refresh(self) -> None:
        """Under the lock: pick up writes made by other processes since we opened."""
        manifest = Manifest.read(self.path)
        if manifest.generation == self.manifest.generation == self.store.generation:
            return
        if manifest.generation != self.store.generation:
            self.manifest = manifest.with_config(self.store.config)
            self._rebuild_vectors()
            return
        self.manifest = manifest
        self.vectors = VectorIndex.load(
            self.path / VECTORS_FILE, manifest.metric, manifest.faiss, manifest.model.dimension
        )

    def _reload_after_failure(self) -> None:
        with contextlib.suppress(Exception):
            self.manifest = self.manifest.with_config(self.store.config)
            self._rebuild_vectors()

    def _recover(self) -> None:
        """Finish an interrupted write: rebuild the vectors from the store, the source of truth."""
        self.manifest = self.manifest.with_config(self.store.config)
        self._rebuild_vectors()
        lock = WriteLock(self.path)
        # A live writer will write the files itself; a read-only folder keeps them in memory.
        with contextlib.suppress(OSError, sqlite3.Error, RuntimeError):
            if lock.try_acquire():
                try:
                    if Manifest.read(self.path).generation != self.store.generation:
                        self._commit_files()
                finally:
                    lock.release()

    def _rebuild_vectors(self) -> None:
        vectors = _empty_vectors(self.manifest)
        for ids, batch in self.store.iter_embeddings():
            vectors.add(ids, prepare(batch, self.metric))
        self.vectors = vectors


@contextlib.contextmanager
def storage_errors(folder: Path) -> Iterator[None]:
    """Turn a full disk, a read-only folder or an I/O error into one StorageError line."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise StorageError(f"cannot write to {folder}: {exc}; {_REMEDY}") from exc
    except OSError as exc:
        raise StorageError(f"cannot write to {folder}: {exc.strerror or exc}; {_REMEDY}") from exc
    except StorageError as exc:  # from the FAISS writer, which knows only its file
        raise StorageError(f"cannot write to {folder}: {exc}; {_REMEDY}") from exc


_REMEDY = "free disk space or fix permissions, then re-run (committed items are kept)"


def _has_files(folder: Path) -> bool:
    # A staging folder (ingest.build) holds only its owner's lock file.
    return any(p.name != "creating.lock" for p in folder.iterdir())


def _empty_vectors(manifest: Manifest) -> VectorIndex:
    return VectorIndex.create(manifest.model.dimension, manifest.metric, manifest.index_type)


def check_model(folder: Path, have: Fingerprint, asked: Fingerprint) -> None:
    if have.identity() != asked.identity():
        raise ModelMismatchError(
            f"{folder} was built with {have.describe()}, not {asked.describe()}; "
            "query it with its own model, or build a new index"
        )


def _check_asked_model(
    folder: Path,
    have: Fingerprint,
    model: str | None,
    backend: str | None,
    embedder: embedding.Embedder | None,
) -> None:
    if embedder is not None:
        check_model(folder, have, embedder.fingerprint)
    elif model is not None or backend is not None:
        # Compare weights before loading torch: the sha256 needs only the files.
        source = embedding.resolve(model or have.name)
        asked_backend = backend or have.backend
        if (embedding.weights_sha256(source), asked_backend) != (have.sha256, have.backend):
            raise ModelMismatchError(
                f"{folder} was built with {have.describe()}, not {source.name} "
                f"({asked_backend}); query it with its own model, or build a new index"
            )


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise UsageError(f"k must be a positive integer, not {k!r}")
    if k > MAX_K:
        raise UsageError(f"k must be at most {MAX_K}, not {k}")
    return k


def _check_queries(queries: Sequence[str]) -> list[str]:
    if isinstance(queries, str):
        queries = [queries]
    queries = list(queries)
    if not queries:
        raise UsageError("no query given; pass a query text or --input FILE")
    for query in queries:
        if not isinstance(query, str) or not query.strip():
            raise UsageError("queries must be non-empty strings")
    return queries
