"""``check`` and ``check --repair``: do the manifest, the FAISS file and SQLite agree?

SQLite is the source of truth. Repair never invents items: it rebuilds the vectors
from the stored embeddings (re-embedding only rows whose stored vector is damaged),
the keyword index from the stored texts and the field indexes from the stored metadata,
rewrites the manifest from the store's config, and clears leftovers of crashed writes.
A damaged database cannot be repaired from the other files; check says so.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import numpy as np

from searchkit import embedder as embedding
from searchkit.errors import CorruptIndexError, IndexFileError, IndexNotFoundError
from searchkit.lock import WriteLock
from searchkit.manifest import MANIFEST, Manifest
from searchkit.metrics import prepare
from searchkit.segments.build import layout_for
from searchkit.service.model_check import load_model
from searchkit.service.protocol import (
    DB_FILE,
    WriteProtocol,
    finish_first_commit,
    is_vector_file,
    storage_errors,
)
from searchkit.store import Store, writable
from searchkit.stored_vectors import StoredVectors
from searchkit.types import CheckReport, Metric
from searchkit.vectors import VectorIndex

__all__ = ["check"]

_KEYWORD = "keyword index"
_FIELDS = "field index"
_COUNTERS = "database: the counters"
# IVF-PQ codes checked per check, at random: re-encoding one means a search of every list's
# centroid, 0.5 s for 10,000 at 384 dimensions and 4,000 lists (1M items), so all of 1M would
# take a minute. Every other type is compared in full: at 50k x 384 a check takes 0.6-0.9 s
# whatever the type (flat's took 0.9 s when only flat indexes were compared).
_PQ_SAMPLE = 10_000


def check(
    path: str | Path,
    repair: bool = False,
    embedder: embedding.Embedder | None = None,
    lock_timeout: float = 60.0,
) -> CheckReport:
    """Compare manifest, FAISS ids and SQLite rows; with `repair`, restore consistency."""
    folder = Path(path)
    if not (folder / MANIFEST).exists() and not (folder / DB_FILE).exists():
        raise IndexNotFoundError(f"{folder}: not a searchkit index (no {MANIFEST}, no {DB_FILE})")
    report = CheckReport(str(folder))
    # A folder no one can write needs no lock to be read still (nor can one be taken in it);
    # a repair needs write access, and says so through storage_errors.
    read_only = not repair and not writable(folder / DB_FILE)
    lock = contextlib.nullcontext() if read_only else WriteLock(folder, lock_timeout)
    with storage_errors(folder), lock:
        try:
            store = Store(folder / DB_FILE)
        except CorruptIndexError as exc:
            report.problems.append(f"database: {exc}")
            return report
        try:
            if not read_only:
                _finish_interrupted_write(folder, store, report)
            _inspect(folder, store, report)
            if repair and (report.problems or report.notes):
                _repair(folder, store, report, embedder)
                after = CheckReport(str(folder))
                _inspect(folder, store, after)
                report.problems = after.problems
                report.notes = after.notes
        except CorruptIndexError as exc:  # the store found its file damaged mid-way
            report.problems.append(f"database: {exc}")
        finally:
            store.close()
    return report


def _finish_interrupted_write(folder: Path, store: Store, report: CheckReport) -> None:
    """Do what any open does after a crash between commit and files: finish the write."""
    if not store.config or store.integrity() != "ok":
        return
    if not (folder / MANIFEST).exists():
        if finish_first_commit(folder, store) is not None:
            report.notes.append("finished an interrupted first ingest (its manifest was not written)")
        return
    if not _readable(folder):
        return
    manifest = Manifest.read(folder)
    if manifest.generation == store.generation:
        return
    index = WriteProtocol(folder, manifest.with_config(store.config), store)
    index._after_commit()
    index._remove_unlisted()
    report.notes.append(
        f"finished an interrupted write (generation {manifest.generation} -> {store.generation})"
    )


def _inspect(folder: Path, store: Store, report: CheckReport) -> None:
    integrity = store.integrity()
    if integrity != "ok":
        report.problems.append(f"database: SQLite integrity check failed ({integrity}); restore a backup")
        return
    config = store.config
    if not config:
        report.problems.append("database: no index configuration recorded; rebuild the index from its data")
        return
    try:
        manifest: Manifest | None = Manifest.read(folder)
    except IndexFileError as exc:
        report.problems.append(f"manifest: {exc}")
        manifest = None
    expected = Manifest.from_config(config)
    counted = store.counted()
    count = counted["items"]
    kept = store.counters()
    if kept != counted:
        report.problems.append(
            f"{_COUNTERS} say {kept['items']} items ({kept['truncated']} truncated), "
            f"the rows are {count} ({counted['truncated']} truncated)"
        )
    if manifest is not None:
        for name, value in config.items():
            if manifest.config()[name] != value:
                report.problems.append(f"manifest: {name} disagrees with the database")
        if manifest.generation != store.generation:
            report.problems.append(
                f"manifest: at generation {manifest.generation}, the database at {store.generation} "
                "(a write was interrupted)"
            )
        if manifest.items != count:
            report.problems.append(f"manifest: counts {manifest.items} items, the database holds {count}")
    malformed = store.malformed_embeddings()
    if malformed:
        report.problems.append(f"database: {len(malformed)} stored embedding(s) missing or of the wrong size")
    _inspect_vectors(folder, store, expected, report, skip=set(malformed))
    if store.read_only:
        report.notes.append(f"{_KEYWORD} not checked: FTS5's check writes, and the folder is read-only")
    elif problem := store.fulltext_problem():
        report.problems.append(f"{_KEYWORD}: {problem}")
    _inspect_fields(store, report)
    pending = store.pending_total()
    if pending:
        report.notes.append(f"{pending} staged row(s) of an interrupted ingest (reused by the next one)")
    leftovers = _leftovers(folder, store)
    if leftovers:
        report.notes.append("leftover temporary files: " + ", ".join(p.name for p in leftovers))


def _inspect_vectors(
    folder: Path, store: Store, expected: Manifest, report: CheckReport, skip: set[int]
) -> None:
    """Each segment against the store: its file there and readable, of its type, its live
    versions (tombstoned ones left out) the stored embeddings; together with the tail,
    every item once."""
    held = [store.tail_ids()]
    for record in store.segments():
        path = folder / record.name
        if not path.exists():
            report.problems.append(f"vectors: segment {record.name} is missing")
            continue
        layout = layout_for(record.kind, expected.layout)
        try:
            vectors = VectorIndex.load(path, expected.metric, layout, expected.model.dimension, mapped=True)
        except CorruptIndexError as exc:
            report.problems.append(f"vectors: {exc}")
            continue
        ids = vectors.ids()
        unique = np.unique(ids)
        if len(unique) != len(ids):
            report.problems.append(f"vectors: {record.name}: {len(ids) - len(unique)} duplicated id(s)")
        dead = store.dead_between(record.first, record.last)
        unknown = np.setdiff1d(dead, unique)
        if len(unknown):
            report.problems.append(
                f"vectors: {record.name}: {len(unknown)} tombstone(s) of ids it does not hold"
            )
        live = np.setdiff1d(unique, dead)
        held.append(live)
        try:
            stored = vectors.stored()
        except CorruptIndexError as exc:
            report.problems.append(f"vectors: {record.name}: {exc}")
            continue
        if stored.kind != record.kind:
            report.problems.append(
                f"vectors: {record.name} holds a {stored.kind} index, the database says {record.kind}"
            )
            continue
        _compare_vectors(store, stored, expected.metric, report, skip, live)
    unknown_dead = store.unknown_tombstones()
    if unknown_dead:
        report.problems.append(f"vectors: {unknown_dead} tombstone(s) of versions no segment holds")
    everything = np.concatenate(held)
    unique = np.unique(everything)
    if len(unique) != len(everything):
        report.problems.append(
            f"vectors: {len(everything) - len(unique)} item(s) held twice (in two segments)"
        )
    row_ids = store.ids()
    orphans = np.setdiff1d(unique, row_ids)
    missing = np.setdiff1d(row_ids, unique)
    if len(orphans):
        report.problems.append(f"vectors: {len(orphans)} vector(s) with no item (orphans)")
    if len(missing):
        report.problems.append(f"vectors: {len(missing)} item(s) with no vector")


def _compare_vectors(
    store: Store, stored: StoredVectors, metric: Metric, report: CheckReport, skip: set[int], live: np.ndarray
) -> None:
    """A segment's `live` ids' stored embeddings against what FAISS holds for them; for
    IVF-PQ, whose codec searches every centroid and codebook, a random sample of `_PQ_SAMPLE`."""
    ids = np.setdiff1d(live, np.fromiter(skip, dtype=np.int64, count=len(skip)))
    sampled = stored.costly and len(ids) > _PQ_SAMPLE
    if sampled:
        ids = np.sort(np.random.default_rng().choice(ids, _PQ_SAMPLE, replace=False))
    wrong = 0
    for batch_ids, batch in store.iter_embeddings(ids):
        wrong += len(stored.differing(batch_ids, prepare(batch, metric)))
    if wrong:
        within = f" (in a sample of {_PQ_SAMPLE} of {store.count()})" if sampled else ""
        report.problems.append(f"vectors: {wrong} vector(s) differ from the stored embeddings{within}")


def _inspect_fields(store: Store, report: CheckReport) -> None:
    """The field indexes against the items' metadata (a scan: as long as the vectors' check)."""
    problem = store.field_index_problem()
    if problem:
        report.problems.append(f"{_FIELDS}: {problem}")


def _repair(folder: Path, store: Store, report: CheckReport, embedder: embedding.Embedder | None) -> None:
    config = store.config
    if not config or store.integrity() != "ok":
        return  # nothing trustworthy to repair from; the problems say so
    manifest = Manifest.from_config(config)
    with_counts = Manifest.read(folder) if _readable(folder) else manifest
    index = WriteProtocol(folder, with_counts.with_config(config), store)
    malformed = store.malformed_embeddings()
    if malformed:
        rows = store.db.execute(
            f"SELECT id, text FROM items WHERE id IN ({','.join('?' * len(malformed))})", malformed
        ).fetchall()
        model = embedder or load_model(folder, manifest.model)
        vectors = model.encode([text for _, text in rows])
        store.replace_embeddings(
            {id_: v.astype("<f4").tobytes() for (id_, _), v in zip(rows, vectors, strict=True)}
        )
        report.repaired.append(f"re-embedded {len(rows)} item(s) whose stored vector was damaged")
    if any(p.startswith(_COUNTERS) for p in report.problems):
        store.recount()
        report.repaired.append("recounted the items")
    if store.pending_total():
        store.clear_pending()
        report.repaired.append("cleared the staged rows of an interrupted ingest")
    for leftover in _leftovers(folder, store):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        report.repaired.append(f"removed {leftover.name}")
    if any(p.startswith(_KEYWORD) for p in report.problems):
        store.rebuild_fulltext()
        report.repaired.append("rebuilt the keyword index (items_fts) from the items")
    if any(p.startswith(_FIELDS) for p in report.problems):
        store.rebuild_field_index()
        report.repaired.append(
            f"rebuilt the field index ({', '.join(store.indexed_fields())}) from the items"
        )
    if any(not p.startswith((_KEYWORD, _COUNTERS, _FIELDS)) for p in report.problems):
        with store.transaction():
            index._rebuild_vectors()
        index._after_commit()
        index._remove_unlisted()
        report.repaired.append(
            f"rebuilt the vectors as one segment ({store.count()} vectors) and {MANIFEST} from the database"
        )


def _readable(folder: Path) -> bool:
    try:
        Manifest.read(folder)
    except IndexFileError:
        return False
    return True


def _leftovers(folder: Path, store: Store) -> list[Path]:
    listed = {record.name for record in store.segments()}
    inside = [
        p
        for p in folder.iterdir()
        if p.name.endswith(".tmp") or (is_vector_file(p.name) and p.name not in listed)
    ]
    beside = list(folder.parent.glob(f".{folder.name}.creating-*"))
    return sorted(inside + beside)
