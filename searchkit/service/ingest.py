"""Ingest: records in, batches staged with their embeddings, committed by the writer.

Works on a writer's store under its write lock (see protocol.py for the order of
writes), with its model loaded only when a text needs embedding. An embedding is made
only for a text the index has never seen: a changed item is re-embedded, an unchanged
one skipped, and a text already stored under another id (or staged by an interrupted
ingest) reuses its vector.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np

from searchkit import faults
from searchkit.errors import InputError, UsageError
from searchkit.readers.fields import EMBEDDING_FIELD, numbers
from searchkit.split import split
from searchkit.store import PendingRow, RowState, Store, dump_metadata
from searchkit.types import Record, WriteReport

if TYPE_CHECKING:
    from searchkit.embedder import Embedder
    from searchkit.readers import SourceSync
    from searchkit.service.index import Index
    from searchkit.service.remote import RayIngest

__all__ = [
    "COMMIT_EVERY",
    "SPLIT_FIELDS",
    "as_record",
    "content_hash",
    "new_run",
    "pieces",
    "stage",
    "wholes",
    "write",
]

# The metadata that --split gives each piece: its parent's id, its place, its offsets.
SPLIT_FIELDS = ("parent", "position", "start", "end")
# A bulk ingest commits (and seals into a segment) every this many items: its cost per
# chunk stays flat, and an interrupted one keeps what it committed.
COMMIT_EVERY = 50_000


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def given_hash(text: str, vector: bytes) -> str:
    """The content hash of a text that came with its own vector: of both, so that a new
    vector for the same text is a change, and the model's vector for it is never reused."""
    return hashlib.sha256(b"vector:" + vector + text.encode("utf-8")).hexdigest()


def new_run() -> str:
    return uuid.uuid4().hex


def write(
    index: Index,
    records: Iterator[Record],
    stale: list[str],
    report: WriteReport,
    batch_size: int,
    on_progress: Callable[[int], None] | None,
    sync: SourceSync | None = None,
    remote: RayIngest | None = None,
) -> None:
    """Under `index`'s write lock: stage `records` chunk by chunk (a window of texts at a
    time for a cluster) and commit them, every COMMIT_EVERY items and at the end, with the
    deletion of the `stale` keys and of what `sync` says the files read no longer hold."""
    store = index.store
    run = new_run()
    if sync is not None:
        store.forget_seen()
    model: Callable[[], Any] = (lambda: remote.model) if remote else (lambda: index.embedder)
    chunk = COMMIT_EVERY if remote else max(256, batch_size * 8)
    staged, committed, dimension = 0, 0, index.manifest.model.dimension
    try:
        while batch := list(islice(records, chunk)):
            stage(store, model, dimension, run, batch, batch_size, report)
            if sync is not None:
                store.note_seen([r.key for r in batch if r.origin is not None])
            staged += len(batch)
            if on_progress is not None:
                on_progress(len(batch))
            if staged >= COMMIT_EVERY:  # a bulk ingest, in bounded steps
                index._commit_run(run, [], report)
                index._seal()
                run, staged, committed = new_run(), 0, committed + staged
    except (InputError, UsageError) as bad:  # a bad record (a file's; a dict's)
        if not committed:
            raise  # nothing committed: the index is as it was
        raise type(bad)(
            f"{bad}; the {committed:,} items before it were committed (a bulk ingest commits every "
            f"{COMMIT_EVERY:,}): fix the input and run it again, they are not embedded again"
        ) from None
    if sync is not None:
        stale += store.stale_keys(sync.files, sync.folders, sync.kept)
    if store.pending_count(run) or stale:
        index._commit_run(run, stale, report)


def stage(
    store: Store,
    model: Callable[[], Embedder],
    dimension: int,
    run: str,
    batch: list[Record],
    batch_size: int,
    report: WriteReport,
) -> None:
    """Embed what `batch` needs (`model` loads the index's model, when a text needs it) and
    commit it to ``pending``; count what it does.

    An item whose text, metadata and source are all as stored is unchanged; one whose text
    alone is as stored is updated with the stored embedding (``metadata only``)."""
    latest: dict[str, Record] = {}
    for record in batch:
        if record.key in latest:
            report.duplicates += 1
        latest[record.key] = record
    seen_in_run = store.pending_keys(run, list(latest))
    report.duplicates += len(seen_in_run)
    given = {key: _given(r, dimension) for key, r in latest.items() if r.embedding is not None}
    hashes = {
        key: given_hash(r.text, given[key]) if key in given else content_hash(r.text)
        for key, r in latest.items()
    }
    stored = store.states_for_keys(list(latest))
    todo = []
    for key, record in latest.items():
        state = stored.get(key)
        same_text = state is not None and state.content_hash == hashes[key]
        if same_text and key not in seen_in_run and _same_row(state, record):
            report.unchanged += 1
            continue
        todo.append(record)
        if key not in seen_in_run:
            report.added += state is None
            report.updated += state is not None
            report.metadata_only += same_text
    if not todo:
        return
    known = store.embeddings_for_hashes([hashes[r.key] for r in todo])
    known.update({hashes[key]: vector for key, vector in given.items()})
    missing = list(dict.fromkeys(r.text for r in todo if hashes[r.key] not in known))
    if missing:
        vectors = model().encode(missing, batch_size=batch_size)
        if vectors.ndim != 2 or vectors.shape != (len(missing), dimension):
            raise UsageError(
                f"the model gave vectors of shape {vectors.shape}, expected ({len(missing)}, {dimension})"
            )
        for text, vector in zip(missing, vectors, strict=True):
            known[content_hash(text)] = vector.astype("<f4").tobytes()
        report.embedded += len(missing)
    flags = _truncated(model, todo, hashes, stored)
    report.truncated += sum(flags)
    store.stage(
        run,
        [
            PendingRow(
                r.key, r.text, r.metadata, hashes[r.key], r.source, flag, known[hashes[r.key]], r.origin
            )
            for r, flag in zip(todo, flags, strict=True)
        ],
    )
    faults.reach("after-stage")


def _same_row(state: RowState | None, record: Record) -> bool:
    if state is None:
        return False
    return (state.metadata, state.source, state.origin) == (
        dump_metadata(record.metadata),
        record.source,
        record.origin,
    )


def _truncated(
    model: Callable[[], Embedder], todo: list[Record], hashes: dict[str, str], stored: dict[str, RowState]
) -> list[bool]:
    """Whether each text is cut at max_seq_length: as stored for a text the row already has
    (tokenising a long text costs), else asked of the model."""
    known = {r.key: s.truncated for r in todo if (s := stored.get(r.key)) and s.content_hash == hashes[r.key]}
    # The model does not see these texts.
    known.update({r.key: False for r in todo if r.embedding is not None})
    unknown = [r.text for r in todo if r.key not in known]
    asked = iter(model().truncated_flags(unknown) if unknown else [])
    return [known[r.key] if r.key in known else next(asked) for r in todo]


def _given(record: Record, dimension: int) -> bytes:
    """A record's own vector as stored: `dimension` finite float32 values, or an InputError."""
    assert record.embedding is not None
    vector = np.asarray(record.embedding, dtype=np.float64)
    if len(vector) != dimension:
        raise InputError(
            f"{record.source}: embedding has {len(vector)} values, and the index's model gives {dimension}; "
            "pass vectors of the index's model, or leave them out to embed the text"
        )
    if not np.isfinite(vector).all() or np.abs(vector).max() > np.finfo(np.float32).max:
        raise InputError(f"{record.source}: embedding holds NaN or infinity (or a float32 overflow); fix it")
    return vector.astype("<f4").tobytes()


def pieces(records: Iterable[Record], mode: str, store: Store, stale: list[str]) -> Iterator[Record]:
    """Each record as its sentences or paragraphs, with ids ``PARENT#0``, ``PARENT#1``, ...

    Appends to `stale` the ids that a parent had before and no longer has (a text that
    got shorter, or was indexed whole): the write deletes them with the rest.
    """
    for record in records:
        if record.embedding is not None:
            raise InputError(
                f"{record.source}: a given embedding is of the whole text, not of its pieces; "
                "index it without --split, or leave the embedding out"
            )
        clash = [name for name in SPLIT_FIELDS if name in record.metadata]
        if clash:
            raise InputError(
                f"{record.source}: field {clash[0]!r} is set by --split (each piece's parent, "
                "position and offsets); rename that field, or index without --split"
            )
        spans = split(record.text, mode)
        keys = [f"{record.key}#{n}" for n in range(len(spans))]
        stale.extend(sorted(store.piece_keys(record.key) - set(keys)))
        for n, (span, key) in enumerate(zip(spans, keys, strict=True)):
            metadata = {**record.metadata, "parent": record.key, "position": n}
            metadata.update(start=span.start, end=span.end)
            yield Record(span.text, key, metadata, record.source, origin=record.origin)


def wholes(records: Iterable[Record], store: Store, stale: list[str], synced: bool) -> Iterator[Record]:
    """Each record as it is, appending to `stale` the pieces it had when it was indexed
    split (``ID#N``): going back to the whole text replaces them. A file's records, when
    `synced`, need not ask: the sync of its file removes what it no longer holds."""
    for record in records:
        if not (synced and record.origin is not None):
            stale.extend(sorted(store.piece_keys(record.key) - {record.key}))
        yield record


def as_record(item: Record | dict[str, Any], number: int) -> Record:
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
    extra = {k: v for k, v in item.items() if k not in ("id", "text", "metadata", "source", EMBEDDING_FIELD)}
    raw = item.get(EMBEDDING_FIELD)
    embedding = None if raw is None else numbers(raw, f"item {number}: {EMBEDDING_FIELD!r}")
    try:
        json.dumps([text, extra, metadata], ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"item {number}: holds a lone surrogate (half a UTF-16 pair), not text") from None
    except (TypeError, ValueError) as exc:
        raise UsageError(f"item {number}: metadata must be plain JSON ({exc})") from None
    return Record(
        text=text,
        key=str(key) if key not in (None, "") else content_hash(text)[:16],
        metadata={**extra, **metadata},
        source=str(item.get("source", "api")),
        embedding=embedding,
    )
