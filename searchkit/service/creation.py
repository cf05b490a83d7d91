"""Creating an index: the folder made, and its first ingest, under the write lock like any write.

A first ingest takes the folder's write lock before it makes anything there, so a second
first ingest of the same folder waits for it (as on an existing index) and then adds to
what it made. Until the first commit the folder holds the database (its configuration and
the batches staged so far) and no manifest: readers are told the index is being created,
and an ingest interrupted then (Ctrl-C, a bad line, kill -9) leaves its staged embeddings
for the next run to reuse. A first ingest that staged nothing leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from searchkit import embedder as embedding
from searchkit import faults
from searchkit.errors import IndexNotFoundError, InputError, SearchkitError, UsageError
from searchkit.lock import LOCK_FILE, WriteLock
from searchkit.manifest import MANIFEST, Manifest
from searchkit.service.model_check import check_model
from searchkit.service.protocol import DB_FILE, finish_first_commit, is_vector_file, storage_errors
from searchkit.store import Store
from searchkit.types import Metric, Record, WriteReport
from searchkit.vectors import plan

if TYPE_CHECKING:
    from searchkit.service.index import Index

__all__ = ["build", "create", "recover"]

# What a folder being created holds besides the manifest (anything else is the user's).
_OURS = {
    LOCK_FILE,
    "compact-lock",
    DB_FILE,
    f"{DB_FILE}-wal",
    f"{DB_FILE}-shm",
    f"{DB_FILE}-journal",
    f"{MANIFEST}.tmp",
}


def build(
    path: str | Path,
    records: Iterable[Record],
    model: str | None = None,
    metric: str | Metric | None = None,
    index_type: str = "auto",
    index_options: dict[str, int] | None = None,
    backend: str | None = None,
    batch_size: int = 32,
    device: str | None = None,
    **add_options: Any,
) -> tuple[Index, WriteReport]:
    """Add `records` to the index at `path`, creating it if needed; refuse an empty input."""
    from searchkit.service.index import Index

    folder = Path(path)
    if not (folder / MANIFEST).exists():
        made = not folder.exists()
        new = create(
            folder,
            model=model,
            metric=metric or Metric.COSINE,
            index_type=index_type,
            index_options=index_options,
            backend=backend,
            device=device,
            lock_timeout=add_options.get("lock_timeout", 60.0),
            on_lock_wait=add_options.get("on_lock_wait"),
            hold_lock=True,
        )
        if new is not None:
            return new, _first_ingest(new, records, batch_size, add_options, made)
    # A write changes rows only: no vectors to load (a million would take a second).
    index = Index.open(folder, model=model, backend=backend, load=False, device=device)
    try:
        if metric is not None and Metric.parse(metric) is not index.metric:
            raise UsageError(
                f"{folder} uses the {index.metric.value} metric, not {Metric.parse(metric).value}; "
                f"change it with searchkit rebuild {folder} --metric ..."
            )
        return index, _add_some(index, records, batch_size, add_options)
    except BaseException:
        index.close()
        raise


def create(
    folder: Path,
    model: str | None = None,
    metric: str | Metric = Metric.COSINE,
    index_type: str = "auto",
    index_options: dict[str, int] | None = None,
    backend: str | None = None,
    embedder: embedding.Embedder | None = None,
    lock_timeout: float = 60.0,
    on_lock_wait: Callable[[], None] | None = None,
    hold_lock: bool = False,
    device: str | None = None,
) -> Index | None:
    """A new index at `folder`, or None when another process created one there meanwhile.

    Without `hold_lock` the index is complete (an empty index, its manifest written); with
    it, the caller holds the write lock (``index._held_lock``) and the first commit writes
    the manifest. An interrupted creation of the same model is resumed, keeping its staged rows.
    """
    metric = Metric.parse(metric)
    options = dict(index_options or {})
    _check_folder(folder)
    # Refuse bad settings before loading a model (whose dimension pq_m must divide: checked later).
    plan(index_type, metric, 0, embedder.dimension if embedder else max(1, options.get("pq_m", 1)), options)
    made = not folder.exists()
    with storage_errors(folder):
        lock = _lock_new(folder, lock_timeout, on_lock_wait)
    try:
        if (folder / MANIFEST).exists():
            lock.release()
            return None
        _check_folder(folder)
        with storage_errors(folder):
            model_now = embedder or embedding.load(model, backend, device)
            index = _lay_out(folder, model_now, metric, index_type, options)
            faults.reach("after-create")
            if not hold_lock:
                index._after_commit()
                lock.release()
            else:
                index._held_lock = lock
        return index
    except BaseException:
        lock.release()
        _discard_if_unused(folder, made)
        raise


def recover(folder: Path, missing: IndexNotFoundError) -> Manifest:
    """The manifest of a folder that has none: a first commit's, written again if the crash
    came before it was; else the `missing` error, saying the index is being created."""
    if not (folder / DB_FILE).exists():
        raise missing
    lock = WriteLock(folder, timeout=0)
    try:
        free = lock.try_acquire()
    except OSError:  # a read-only folder: no one is creating anything in it
        raise missing from None
    if not free:
        raise IndexNotFoundError(
            f"{folder}: another process is creating this index (its first ingest is running); "
            "try again when it has finished"
        )
    try:
        store = Store(folder / DB_FILE)
        try:
            manifest = finish_first_commit(folder, store)
        finally:
            store.close()
    finally:
        lock.release()
    if manifest is None:
        raise IndexNotFoundError(
            f"{folder}: its first ingest stopped before it committed anything; run "
            f"searchkit index {folder} FILE again to finish it (the embeddings made so far are kept)"
        )
    return manifest


def _lock_new(folder: Path, timeout: float, on_wait: Callable[[], None] | None) -> WriteLock:
    """The write lock of `folder`, made if missing (again, if a failed first ingest removed it
    while this one waited)."""
    for _ in range(20):
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            return WriteLock(folder, timeout, on_wait).acquire()
    raise UsageError(f"{folder}: the folder keeps disappearing; is another program removing it?")


def _lay_out(
    folder: Path, embedder: embedding.Embedder, metric: Metric, index_type: str, options: dict[str, int]
) -> Index:
    """Under the lock: the database and the empty vectors of a new index, or of one whose
    first ingest was interrupted (its staged rows kept when they are this model's)."""
    from searchkit.service.index import Index

    fingerprint = embedder.fingerprint
    manifest = Manifest(
        model=fingerprint,
        metric=metric,
        index_type=index_type,
        layout=plan(index_type, metric, 0, fingerprint.dimension, options),
        index_options=options,
    )
    store = _resumed_store(folder, fingerprint.identity())
    if store is None:
        store = Store(folder / DB_FILE, fingerprint.dimension, create=True)
    elif store.count():
        # The first commit happened, its manifest did not: this is an index now.
        index = Index(folder, Manifest.from_config(store.config), store, embedder)
        check_model(folder, index.manifest.model, fingerprint)
        index._after_commit()
        return index
    index = Index(folder, manifest, store, embedder)
    store.set_config(manifest.config())
    return index


def _resumed_store(folder: Path, identity: tuple[Any, ...]) -> Store | None:
    """The database an interrupted first ingest left, if it was of this model; else none
    (another model's staged embeddings are of no use: its files are removed)."""
    if not (folder / DB_FILE).exists():
        return None
    store = Store(folder / DB_FILE)
    config = store.config
    if config and (store.count() or Manifest.from_config(config).model.identity() == identity):
        return store
    store.close()
    _remove_ours(folder, keep_lock=True)
    return None


def _first_ingest(
    index: Index, records: Iterable[Record], batch_size: int, options: dict[str, Any], made: bool
) -> WriteReport:
    """The first add, under the lock `create` took; a failure keeps what it staged."""
    lock = index._held_lock
    assert lock is not None
    try:
        report = _add_some(index, records, batch_size, options)
    except BaseException:
        index.close()
        _let_go(index, lock)
        _discard_if_unused(index.path, made)
        raise
    _let_go(index, lock)
    return report


def _let_go(index: Index, lock: WriteLock) -> None:
    index._held_lock = None
    lock.release()


def _add_some(
    index: Index, records: Iterable[Record], batch_size: int, options: dict[str, Any]
) -> WriteReport:
    report = index.add(records, batch_size=batch_size, **options)
    if report.added + report.updated + report.unchanged + report.deleted == 0:
        raise InputError("nothing to index: the input holds no items (empty, or only blank lines)")
    return report


def _check_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: exists and is not a folder; pick another path")
    if folder.is_dir() and not (folder / MANIFEST).exists() and any(not _ours(p) for p in folder.iterdir()):
        raise UsageError(
            f"{folder}: exists and is not an empty folder or a searchkit index; pick another path"
        )


def _ours(path: Path) -> bool:
    return path.name in _OURS or is_vector_file(path.name.removesuffix(".tmp"))


def _discard_if_unused(folder: Path, made: bool) -> None:
    """After a failed creation: remove what it made, unless it holds staged or committed rows."""
    if (folder / DB_FILE).exists():
        try:
            store = Store(folder / DB_FILE)
        except SearchkitError:
            pass  # an unreadable leftover of this very creation: removed all the same
        else:
            try:
                if store.pending_total() or store.count() or (folder / MANIFEST).exists():
                    return
            finally:
                store.close()
    if made:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        _remove_ours(folder, keep_lock=False)


def _remove_ours(folder: Path, keep_lock: bool) -> None:
    for path in folder.iterdir():
        if _ours(path) and not (keep_lock and path.name == LOCK_FILE):
            path.unlink(missing_ok=True)
