"""The `Index` facade: the one place that joins ids, vectors and rows.

An index is a folder of SQLite rows, FAISS vectors and a manifest; the order in
which a write changes them, and how a reader sees them whole, is protocol.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from searchkit import embedder as embedding
from searchkit import faults
from searchkit.errors import IndexNotFoundError, UsageError
from searchkit.manifest import Manifest
from searchkit.service.model_check import (
    check_asked_model,
    check_model,
    expected_model,
    load_model,
    with_pipeline,
)
from searchkit.service.protocol import DB_FILE, WriteProtocol, storage_errors
from searchkit.service.search import MAX_K
from searchkit.store import Store
from searchkit.types import Hits, Metric, Mode, Record, WriteReport

if TYPE_CHECKING:
    from searchkit.cluster import RayOptions
    from searchkit.readers import SourceSync
    from searchkit.segments.view import SegmentView
    from searchkit.service.compaction import Compactor

__all__ = ["DB_FILE", "MAX_K", "Index", "check_model", "storage_errors"]


class Index(WriteProtocol):
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
        embedder: embedding.Embedder | None = None,
        model: str | None = None,
        backend: str | None = None,
        device: str | None = None,
    ) -> None:
        super().__init__(path, manifest, store)
        self._embedder = embedder
        # Where to load the model from, with which engine, on which device, when it is first needed.
        self._model = model
        self._backend = None if backend == "auto" else backend
        self._device = device
        # serve's background compaction (compaction.Compactor); without one, a write
        # seals and merges itself once the tail is full.
        self.compactor: Compactor | None = None

    # --- opening -------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | Path,
        model: str | None = None,
        metric: str | Metric = Metric.COSINE,
        index_type: str = "auto",
        backend: str | None = None,
        embedder: embedding.Embedder | None = None,
        index_options: dict[str, int] | None = None,
        device: str | None = None,
    ) -> Index:
        """Create an empty index folder at `path` (which must not hold an index yet).

        `index_type` is ``auto`` (flat, then HNSW from 50,000 items), ``flat``, ``hnsw``,
        ``ivf``, ``ivf-pq``, ``sq8`` or ``hnsw-sq8``; `index_options` override its
        parameters (``m``, ``ef_construction``, ``ef_search``, ``nlist``, ``nprobe``, ``pq_m``).
        """
        from searchkit.service.creation import create

        folder = Path(path)
        index = create(folder, model, metric, index_type, index_options, backend, embedder, device=device)
        if index is None:
            raise UsageError(f"{folder}: an index already exists here; open it, or pick another path")
        return index

    @classmethod
    def open(
        cls,
        path: str | Path,
        model: str | None = None,
        backend: str | None = None,
        embedder: embedding.Embedder | None = None,
        load: bool = True,
        device: str | None = None,
    ) -> Index:
        """Open an existing index (`load`: its vectors now, as reads need; a writer alone,
        which changes rows only, need not load them).

        `model` (a name or a folder: the index's own model, perhaps moved), `backend` and
        `device` (``auto``, ``cpu``, ``cuda``, ``mps``) are what its model is loaded with; a
        model whose fingerprint differs is refused here, before anything loads. By default
        the model loads from where the index was built from, with the default engine of its
        backend family.
        """
        from searchkit.service.creation import recover

        folder = Path(path)
        try:
            manifest = Manifest.read(folder)
        except IndexNotFoundError as missing:
            manifest = recover(folder, missing)
        check_asked_model(folder, expected_model(manifest.model), model, backend, embedder)
        store = Store(folder / DB_FILE, manifest.model.dimension)
        index = cls(folder, manifest, store, embedder, model=model, backend=backend, device=device)
        try:
            if load:
                index._synced(lambda _: None)
            if index.manifest.generation != index.store.generation:
                index._finish_interrupted_write()
        except BaseException:
            index.close()
            raise
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
            self._embedder = load_model(
                self.path, self.manifest.model, self._model, self._backend, self._device
            )
        return self._embedder

    @property
    def note(self) -> str | None:
        """What loading the model had to say (e.g. that torch runs it), for the caller to show."""
        note: str | None = getattr(self._embedder, "note", None)  # a test's stand-in may have none
        return note

    # --- reading -------------------------------------------------------------

    def __len__(self) -> int:
        with self.store.transaction():  # this thread's own snapshot
            return self.store.count()

    @property
    def vectors(self) -> SegmentView:
        """The vectors of the latest generation: a `SegmentView` (segments/view.py)."""
        return self._synced(lambda snap: snap.vectors)

    def segments(self) -> list[dict[str, Any]]:
        """The committed segments (file, generations, entries, dead versions, type), then the tail."""
        with self.store.transaction():  # this thread's own snapshot
            return self.store.segment_listing()

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        where: Mapping[str, Any] | str | None = None,
        mode: str | Mode = Mode.DENSE,
        group_by_parent: bool = False,
    ) -> Hits:
        """The `k` items most similar to `query`, best first.

        `where` filters on metadata (Chroma's vocabulary, see filters.py) before the
        nearest-neighbour search; `mode` is ``dense``, ``keyword`` (BM25) or ``hybrid``;
        `group_by_parent` ranks the documents split with ``add(split=...)`` by their best
        piece (a hit's id is then the parent's). The result is a list of `Hit`s whose
        ``exact`` says whether it is exactly the best.
        """
        return self.search_many([query], k, where=where, mode=mode, group_by_parent=group_by_parent)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        where: Mapping[str, Any] | str | None = None,
        mode: str | Mode = Mode.DENSE,
        group_by_parent: bool = False,
    ) -> list[Hits]:
        """Search several queries with one embedding call and one FAISS call (per step)."""
        from searchkit.service.search import search

        def encode(texts: list[str]) -> Any:
            return self.embedder.encode(texts)  # loaded here, not for a keyword search

        return search(
            self._synced, encode, queries, k, where=where, mode=mode, group_by_parent=group_by_parent
        )

    def info(self) -> dict[str, Any]:
        """The manifest; from one snapshot the live counts, the fields indexed and the
        segments (and the tail); and the size of each file."""
        from searchkit.service.describe import describe

        return describe(self)

    def fields(self) -> list[str]:
        """The metadata fields with a field index (see `index_field`), by name."""
        with self.store.transaction():  # this thread's own snapshot
            return self.store.indexed_fields()

    def index_field(self, *fields: str, drop: bool = False, lock_timeout: float = 60.0) -> list[str]:
        """Index metadata fields, as Qdrant's payload indexes: a filter's equalities, ``$in``
        and ranges on them are answered from an index instead of every item's JSON (the
        results are the same); with `drop`, drop their indexes. Returns the fields that
        this changed (one already indexed, or not indexed, is left as it is).

        The index is filled from the items in one transaction and kept in step with every
        write after it. It changes no vectors and no rows, so it is no new generation:
        readers read which fields are indexed in the same snapshot as the rows.
        """
        if not fields:
            raise UsageError("name at least one metadata field")
        with self._locked(lock_timeout):
            if drop:
                return self.store.drop_fields(list(fields))
            return self.store.index_fields(list(fields))

    def export(self, vectors: bool = False) -> Iterator[dict[str, Any]]:
        """Every item as ``{"id", "text", "metadata"[, "embedding"]}``, in id order."""
        for key, text, metadata, blob in self.export_raw():
            item: dict[str, Any] = {"id": key, "text": text, "metadata": metadata}
            if vectors:
                item["embedding"] = np.frombuffer(blob, dtype="<f4").tolist()
            yield item

    def export_raw(self) -> Iterator[tuple[str, str, dict[str, Any], bytes]]:
        """Every item as ``(id, text, metadata, embedding)``, in id order, the embedding as
        stored (little-endian float32 bytes): for writers that take vectors whole (parquet.py)."""
        return self.store.iter_items()

    # --- writing -------------------------------------------------------------

    def add(
        self,
        items: Iterable[Record | dict[str, Any]],
        batch_size: int = 32,
        lock_timeout: float = 60.0,
        on_lock_wait: Callable[[], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
        split: str = "none",
        ray: str | RayOptions | None = None,
        sync: SourceSync | None = None,
    ) -> WriteReport:
        """Upsert items by id: new ids are added, changed texts re-embedded, the rest left alone.

        `items` are `Record`s or dicts with ``text`` and optionally ``id``, ``metadata``
        and other fields (kept as metadata). `split` (``sentences`` or ``paragraphs``)
        indexes each piece of a text as an item ``ID#N`` with metadata ``parent``,
        ``position``, ``start`` and ``end``; pieces a changed text no longer has are deleted.
        `ray` embeds the texts on a Ray cluster: ``"local"`` starts one here, an address
        (``"auto"``, ``HOST:PORT``, ``ray://HOST:PORT``) joins one, `RayOptions` says more;
        everything else happens here, as without it (cluster.py). `sync` (a `Reading`'s, from
        readers.py, filled as its records are read) makes the index hold what the files and
        folders read hold now: the items they no longer hold are deleted with the write.
        """
        from searchkit.service import ingest
        from searchkit.split import check_mode

        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise UsageError(f"batch size must be a positive integer, not {batch_size!r}")
        check_mode(split)
        started = time.perf_counter()
        report = WriteReport()
        with self._locked(lock_timeout, on_lock_wait):
            records: Iterator[Record] = (ingest.as_record(item, n) for n, item in enumerate(items, start=1))
            stale: list[str] = []
            if split != "none":
                records = ingest.pieces(records, split, self.store, stale)
            else:
                records = ingest.wholes(records, self.store, stale, synced=sync is not None)
            if ray is None:
                ingest.write(self, records, stale, report, batch_size, on_progress, sync)
            else:
                from searchkit.service.remote import ray_ingest

                remote = ray_ingest(self, ray, on_progress)
                try:
                    ingest.write(self, records, stale, report, batch_size, remote.staged, sync, remote)
                finally:
                    remote.close()
        self._maintain()
        report.seconds = time.perf_counter() - started
        return report

    def delete(self, ids: Sequence[str], lock_timeout: float = 60.0) -> WriteReport:
        """Delete items by their ids; a document indexed with ``split`` goes with all its
        pieces (``ID#0``, ``ID#1``, ...). Unknown ids are reported, not an error."""
        started = time.perf_counter()
        report = WriteReport()
        keys = list(dict.fromkeys(str(i) for i in ids))
        with self._locked(lock_timeout):
            with self.store.transaction():
                found = {key: self.store.piece_keys(key) for key in keys}
                doomed = sorted(set().union(*found.values()))
                removed = self.store.delete(doomed)  # the tombstones are the triggers'
                if removed:
                    faults.reach("in-commit")
            if removed:
                self._after_commit()
        self._maintain()
        report.deleted = len(removed)
        split = [key for key, pieces in found.items() if pieces - {key}]
        if split:
            count = sum(len(found[key] - {key}) for key in split)
            report.notes.append(f"{count} of them piece(s) of {len(split)} document(s) indexed with --split")
        unknown = sum(not pieces for pieces in found.values())
        if unknown:
            report.notes.append(f"{unknown} id(s) were not in the index")
        report.seconds = time.perf_counter() - started
        return report

    def rebuild(
        self,
        metric: str | Metric | None = None,
        index_type: str | None = None,
        index_options: dict[str, int] | None = None,
        lock_timeout: float = 60.0,
    ) -> WriteReport:
        """Rebuild the vectors from the stored embeddings (IVF and PQ retrained), optionally
        under another metric, index type or options. Embeds nothing."""
        started = time.perf_counter()
        # An index older than pipeline digests records its model's here too (model_check.py).
        config = with_pipeline(self.manifest).config_with(metric, index_type, index_options)
        report = WriteReport()
        with self._locked(lock_timeout):
            with self.store.transaction():
                self.store.set_config(config)
                self.manifest = self.manifest.with_config(config)
                report.notes.append(self._rebuild_vectors())
                faults.reach("in-commit")
            self._after_commit()
            self._remove_unlisted()
        report.unchanged = self.store.count()
        report.seconds = time.perf_counter() - started
        return report

    def compact(self, force: bool = True, lock_timeout: float = 60.0) -> list[str]:
        """Compact now (segments/policy.py): with `force` (``searchkit compact``), seal the
        tail and merge every segment into one, as Lucene's ``forceMerge(1)``; without it,
        run the merge policy as writes do. Says what each step did. Searches go on
        meanwhile; writes wait only for each step's commit."""
        from searchkit.service.compaction import compact

        with storage_errors(self.path):
            return compact(self, force=force, lock_timeout=lock_timeout)

    def _seal(self) -> None:
        """Under the write lock, between a bulk ingest's chunks: the chunk becomes a segment."""
        from searchkit.service.compaction import compact

        if self.compactor is None:
            compact(self, seal_only=True)

    def _maintain(self) -> None:
        """After a write: the background compaction is told, or the policy runs here."""
        from searchkit.service.compaction import maintain

        if self.compactor is not None:
            self.compactor.nudge()
            return
        with storage_errors(self.path):
            maintain(self)

    def check(self, repair: bool = False) -> Any:
        """Compare manifest, FAISS ids and SQLite rows; with `repair`, restore them from SQLite."""
        from searchkit.service.check import check

        return check(self.path, repair=repair, embedder=self._embedder)
