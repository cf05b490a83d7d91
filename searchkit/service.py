"""The `Index` facade: the one place that joins ids, vectors and rows.

An index is a folder::

    INDEX/
      manifest.json   what the index is (manifest.py), written last
      index.db        SQLite, the source of truth (store.py)
      vectors.faiss   the FAISS index over row ids (vectors.py)
      lock            the write lock (lock.py)

Order of a write, under the lock:

1. Embedded rows are committed to ``pending`` batch by batch (a crash here
   leaves ``items`` untouched; the next ingest reuses those embeddings).
2. One SQLite transaction moves them into ``items`` and bumps ``generation``:
   this commit is the moment the write happens.
3. The FAISS index is updated and written to a temp file, fsynced, renamed.
4. The manifest, with the generation the FAISS file reflects, likewise.

On open, a manifest generation that differs from the store's means a crash
between 2 and 4: the vectors are rebuilt from the stored embeddings (and saved,
when no writer holds the lock). So every reader sees the index before or after
a write, never a mix.
"""

from __future__ import annotations

import hashlib
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from searchkit import embedder as embedding
from searchkit.errors import InputError, ModelMismatchError, UsageError
from searchkit.lock import WriteLock
from searchkit.manifest import MANIFEST, Manifest
from searchkit.metrics import Matrix, pairwise, prepare
from searchkit.store import PendingRow, Store
from searchkit.types import Fingerprint, Hit, Metric, Record, WriteReport
from searchkit.vectors import VectorIndex, describe

__all__ = ["Index", "build", "content_hash"]

DB_FILE = "index.db"
VECTORS_FILE = "vectors.faiss"
MAX_K = 10_000


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise UsageError(f"{folder}: exists and is not an empty folder; pick another path")
        embedder = embedder or embedding.load(model, backend)
        fingerprint = embedder.fingerprint
        folder.mkdir(parents=True, exist_ok=True)
        store = Store(folder / DB_FILE, fingerprint.dimension)
        vectors = VectorIndex.create(fingerprint.dimension, metric, index_type)
        manifest = Manifest(
            model=fingerprint,
            metric=metric,
            index_type="flat" if index_type == "auto" else index_type,
            faiss=faiss_description,
            generation=store.generation,
        )
        vectors.save(folder / VECTORS_FILE)
        manifest.write(folder)
        return cls(folder, manifest, store, vectors, embedder)

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
        manifest = Manifest.read(folder)
        if embedder is not None:
            _check_model(folder, manifest.model, embedder.fingerprint)
        elif model is not None or backend is not None:
            # Compare weights before loading torch: the sha256 needs only the files.
            source = embedding.resolve(model or manifest.model.name)
            asked_backend = backend or manifest.model.backend
            have = manifest.model
            if (embedding.weights_sha256(source), asked_backend) != (have.sha256, have.backend):
                raise ModelMismatchError(
                    f"{folder} was built with {have.describe()}, not {source.name} "
                    f"({asked_backend}); query it with its own model, or build a new index"
                )
        store = Store(folder / DB_FILE, manifest.model.dimension)
        vectors_path = folder / VECTORS_FILE
        index = cls(folder, manifest, store, _load_vectors(vectors_path, manifest), embedder)
        if not vectors_path.exists() or manifest.generation != store.generation:
            index._recover()
        return index

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
            _check_model(self.path, fp, loaded.fingerprint)
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

        `items` are `Record`s or dicts with ``text`` and optionally ``id`` and ``metadata``.
        """
        if batch_size <= 0:
            raise UsageError(f"batch size must be a positive integer, not {batch_size}")
        started = time.perf_counter()
        report = WriteReport()
        run = uuid.uuid4().hex
        with WriteLock(self.path, lock_timeout, on_lock_wait):
            self._refresh()
            records = (_as_record(item, n) for n, item in enumerate(items, start=1))
            chunk = max(256, batch_size * 8)
            while batch := list(islice(records, chunk)):
                self._stage(run, batch, batch_size, report)
                if on_progress is not None:
                    on_progress(len(batch))
            if self.store.pending_count(run):
                changed = self.store.apply(run)
                self._index_rows(changed)
                self._commit_files()
        report.seconds = time.perf_counter() - started
        return report

    def delete(self, ids: Sequence[str], lock_timeout: float = 60.0) -> WriteReport:
        """Delete items by their ids; unknown ids are reported, not an error."""
        started = time.perf_counter()
        report = WriteReport()
        keys = [str(i) for i in ids]
        with WriteLock(self.path, lock_timeout):
            self._refresh()
            removed = self.store.delete(keys)
            if removed:
                self.vectors.remove(np.asarray(removed, dtype=np.int64))
                self._commit_files()
        report.deleted = len(removed)
        if len(removed) < len(set(keys)):
            report.notes.append(f"{len(set(keys)) - len(removed)} id(s) were not in the index")
        report.seconds = time.perf_counter() - started
        return report

    def _stage(self, run: str, batch: list[Record], batch_size: int, report: WriteReport) -> None:
        latest: dict[str, Record] = {}
        for record in batch:
            if record.key in latest:
                report.duplicates += 1
            latest[record.key] = record
        seen_in_run = self.store.pending_keys(run, list(latest))
        report.duplicates += len(seen_in_run)
        hashes = {key: content_hash(r.text) for key, r in latest.items()}
        stored = self.store.hashes_for_keys(list(latest))
        todo = []
        for key, record in latest.items():
            if stored.get(key) == hashes[key] and key not in seen_in_run:
                report.unchanged += 1
                continue
            todo.append(record)
            if key not in seen_in_run:
                if key in stored:
                    report.updated += 1
                else:
                    report.added += 1
        if not todo:
            return
        known = self.store.embeddings_for_hashes([hashes[r.key] for r in todo])
        missing = list(dict.fromkeys(r.text for r in todo if hashes[r.key] not in known))
        if missing:
            vectors = self.embedder.encode(missing, batch_size=batch_size)
            _check_dimension(vectors, self.manifest.model.dimension)
            for text, vector in zip(missing, vectors, strict=True):
                known[content_hash(text)] = vector.astype("<f4").tobytes()
            report.embedded += len(missing)
        flags = self.embedder.truncated_flags([r.text for r in todo])
        report.truncated += sum(flags)
        self.store.stage(
            run,
            [
                PendingRow(r.key, r.text, r.metadata, hashes[r.key], r.source, flag, known[hashes[r.key]])
                for r, flag in zip(todo, flags, strict=True)
            ],
        )

    def _index_rows(self, ids: list[int]) -> None:
        for batch_ids, vectors in self.store.iter_embeddings(ids):
            self.vectors.add(batch_ids, prepare(vectors, self.metric))

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
        if manifest.generation != self.manifest.generation or manifest.generation != self.store.generation:
            self.manifest = manifest
            self.vectors = _load_vectors(self.path / VECTORS_FILE, manifest)
            if manifest.generation != self.store.generation:
                self._rebuild_vectors()

    def _recover(self) -> None:
        """Finish an interrupted write: rebuild the vectors from the store, the source of truth."""
        self._rebuild_vectors()
        lock = WriteLock(self.path)
        if lock.try_acquire():  # a live writer will write the files itself
            try:
                self._commit_files()
            finally:
                lock.release()

    def _rebuild_vectors(self) -> None:
        self.vectors = VectorIndex.create(
            self.manifest.model.dimension, self.metric, self.manifest.index_type
        )
        for ids, vectors in self.store.iter_embeddings():
            self.vectors.add(ids, prepare(vectors, self.metric))


def _load_vectors(path: Path, manifest: Manifest) -> VectorIndex:
    if not path.exists():
        return VectorIndex.create(manifest.model.dimension, manifest.metric, manifest.index_type)
    return VectorIndex.load(path, manifest.metric, manifest.faiss, manifest.model.dimension)


def _check_model(folder: Path, have: Fingerprint, asked: Fingerprint) -> None:
    if have.identity() != asked.identity():
        raise ModelMismatchError(
            f"{folder} was built with {have.describe()}, not {asked.describe()}; "
            "query it with its own model, or build a new index"
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


def _check_dimension(vectors: Matrix, dimension: int) -> None:
    if vectors.ndim != 2 or vectors.shape[1] != dimension:
        raise ModelMismatchError(
            f"the model gave vectors of shape {vectors.shape}, the index holds {dimension} dimensions"
        )


def _as_record(item: Record | dict[str, Any], number: int) -> Record:
    """A dict as the API takes it: ``text``, ``id``, ``metadata``, any other field as metadata."""
    if isinstance(item, Record):
        return item
    if not isinstance(item, dict):
        raise UsageError(f"item {number}: expected a dict with 'text', not {type(item).__name__}")
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"item {number}: 'text' must be a non-empty string")
    key = item.get("id")
    if key is not None and (isinstance(key, bool) or not isinstance(key, (str, int))):
        raise UsageError(f"item {number}: 'id' must be a string or an integer")
    metadata = item.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise UsageError(f"item {number}: 'metadata' must be an object")
    extra = {k: v for k, v in item.items() if k not in ("id", "text", "metadata", "source")}
    return Record(
        text=text,
        key=str(key) if key not in (None, "") else content_hash(text)[:16],
        metadata={**extra, **metadata},
        source=str(item.get("source", "api")),
    )


def build(
    path: str | Path,
    records: Iterable[Record],
    model: str | None = None,
    metric: str | Metric | None = None,
    index_type: str = "auto",
    backend: str | None = None,
    batch_size: int = 32,
    **add_options: Any,
) -> tuple[Index, WriteReport]:
    """Add `records` to the index at `path`, creating it if needed.

    A new index is built in a hidden sibling folder and renamed into place only when
    complete, so a failed first ingest leaves nothing behind.
    """
    folder = Path(path)
    if (folder / MANIFEST).exists():
        index = Index.open(folder, model=model, backend=backend)
        if metric is not None and Metric.parse(metric) is not index.metric:
            index.close()
            raise UsageError(
                f"{folder} uses the {index.metric.value} metric, not {Metric.parse(metric).value}; "
                f"change it with searchkit rebuild {folder} --metric ..."
            )
        try:
            report = _add_some(index, records, batch_size, add_options)
        except BaseException:
            index.close()
            raise
        return index, report
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"{folder}: exists and is not a searchkit index; pick another path")
    staging = folder.with_name(f".{folder.name}.creating-{uuid.uuid4().hex[:8]}")
    try:
        index = Index.create(
            staging,
            model=model,
            metric=metric or Metric.COSINE,
            index_type=index_type,
            backend=backend or "torch",
        )
        try:
            report = _add_some(index, records, batch_size, add_options)
        finally:
            index.close()
        if folder.exists():
            folder.rmdir()
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Index.open(folder, embedder=index._embedder), report


def _add_some(
    index: Index, records: Iterable[Record], batch_size: int, options: dict[str, Any]
) -> WriteReport:
    report = index.add(records, batch_size=batch_size, **options)
    if report.added + report.updated + report.unchanged == 0:
        raise InputError("nothing to index: the input holds no items (empty, or only blank lines)")
    return report
