"""Hand an index to a serving engine without embedding again: ``searchkit push``.

    >>> push("my-index", "milvus:vectors.db").summary()
    'my-index: 364 items pushed to milvus:vectors.db (collection my-index, metric COSINE) in 1.0 s'

Targets: ``milvus:PATH.db`` (Milvus Lite), ``lancedb:DIR``, ``qdrant:DIR`` (qdrant-client's
local mode) and ``qdrant+http://HOST:PORT`` (a Qdrant server). Each item goes with its id,
text, metadata and the vector stored in the index, read from one snapshot of it, in
batches. The engines' client libraries are the optional extra ``searchkit[push]``, each
imported only by the module of its engine (base.py says what such a module does).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from searchkit.errors import CorruptIndexError, SearchkitError, UsageError
from searchkit.push.base import Batch, Writer
from searchkit.types import Metric

if TYPE_CHECKING:
    from searchkit.service import Index

__all__ = ["DEFAULT_BATCH", "METRICS", "PushReport", "Target", "parse_target", "push"]

DEFAULT_BATCH = 1000

# searchkit's metric -> each engine's name for it; one missing from a row is refused before
# anything is written. The vectors go as the index stores them, the model's own: each
# engine's cosine normalises them itself (Qdrant when it stores them), as searchkit does.
# Milvus' L2 and LanceDB's l2 report the squared distance (the same order).
METRICS: dict[str, dict[Metric, str]] = {
    "milvus": {Metric.COSINE: "COSINE", Metric.DOT: "IP", Metric.EUCLIDEAN: "L2"},
    "lancedb": {Metric.COSINE: "cosine", Metric.DOT: "dot", Metric.EUCLIDEAN: "l2"},
    "qdrant": {
        Metric.COSINE: "Cosine",
        Metric.DOT: "Dot",
        Metric.EUCLIDEAN: "Euclid",
        Metric.MANHATTAN: "Manhattan",
    },
}
ENGINES = {"milvus": "Milvus Lite", "lancedb": "LanceDB", "qdrant": "Qdrant"}
FORMS = "milvus:PATH.db, lancedb:DIR, qdrant:DIR or qdrant+http://HOST:PORT"


@dataclass(frozen=True)
class Target:
    """Where to push: an engine, and a local path or a server's URL."""

    engine: str  # a key of METRICS
    location: str
    text: str  # as the user wrote it


def parse_target(text: str) -> Target:
    """``milvus:PATH.db``, ``lancedb:DIR``, ``qdrant:DIR`` or ``qdrant+http(s)://HOST:PORT``."""
    scheme, sep, rest = text.partition(":")
    if scheme in ("qdrant+http", "qdrant+https") and rest.startswith("//") and len(rest) > 2:
        return Target("qdrant", f"{scheme.removeprefix('qdrant+')}:{rest}", text)
    if not sep or scheme not in METRICS:
        raise UsageError(f"unknown push target {text!r}: use {FORMS}")
    if not rest.strip():
        raise UsageError(f"push target {text!r} names no path: use {FORMS}")
    if scheme == "milvus" and not rest.endswith(".db"):
        raise UsageError(f"push target {text!r}: Milvus Lite takes a file path ending in .db")
    return Target(scheme, os.path.expanduser(rest), text)


@dataclass
class PushReport:
    """What one push did; ``metric`` is the engine's name for the one it searches by."""

    index: str
    target: str
    engine: str
    collection: str
    metric: str
    items: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.index}: {self.items} items pushed to {self.target} "
            f"(collection {self.collection}, metric {self.metric}) in {self.seconds:.1f} s"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "target": self.target,
            "engine": self.engine,
            "collection": self.collection,
            "metric": self.metric,
            "items": self.items,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
        }


def push(
    index_path: str | Path,
    target: str,
    collection: str | None = None,
    batch_size: int = DEFAULT_BATCH,
    replace: bool = False,
) -> PushReport:
    """Copy every item of the index at `index_path` (id, text, metadata, stored vector) into
    `target`'s collection `collection` (default: the index folder's name).

    A collection of that name is refused unless `replace`, which drops and recreates it.
    A metric the engine lacks is refused before anything is written; a push that fails
    midway drops the collection it made.
    """
    from searchkit.service import Index

    where = parse_target(target)
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, not {batch_size}")
    started = time.perf_counter()
    with Index.open(index_path, load=False) as index:  # rows and stored vectors only
        metric = engine_metric(where, index.metric)
        name = collection or index.path.resolve().name
        writer = _connect(where, name)
        report = PushReport(str(index_path), target, where.engine, name, metric)
        try:
            report.items, report.notes = _transfer(index, writer, where, report, batch_size, replace)
        finally:
            writer.close()
    report.seconds = time.perf_counter() - started
    return report


def engine_metric(target: Target, metric: Metric) -> str:
    """The engine's name for `metric`, or a UsageError naming the metrics it has."""
    names = METRICS[target.engine]
    if metric not in names:
        supported = ", ".join(m.value for m in names)
        raise UsageError(
            f"{target.text}: {ENGINES[target.engine]} cannot search by {metric.value} "
            f"(it supports {supported}); push this index to Qdrant, or rebuild it with another --metric"
        )
    return names[metric]


def _connect(target: Target, collection: str) -> Writer:
    if target.engine == "milvus":
        from searchkit.push import milvus

        return milvus.connect(target.location, target.text, collection)
    if target.engine == "lancedb":
        from searchkit.push import lancedb

        return lancedb.connect(target.location, target.text, collection)
    from searchkit.push import qdrant

    return qdrant.connect(target.location, target.text, collection)


def _transfer(
    index: Index, writer: Writer, target: Target, report: PushReport, batch_size: int, replace: bool
) -> tuple[int, list[str]]:
    """Create the collection and fill it; (items written, the engine's notes)."""
    if writer.exists():
        if not replace:
            raise UsageError(
                f"{target.text}: collection {report.collection!r} exists already; "
                "pass --replace to drop and recreate it"
            )
        writer.drop()
    writer.create(index.manifest.model.dimension, report.metric, index.manifest.layout.kind == "flat")
    written = 0
    try:
        for batch in batches(index, batch_size):
            writer.write(batch)
            written += len(batch)
        return written, writer.finish()
    except BaseException:
        with contextlib.suppress(SearchkitError):  # the first error is the one to report
            writer.drop()
        raise


def batches(index: Index, size: int) -> Iterator[Batch]:
    """Every item with its stored vector, `size` at a time, in id order, from one snapshot."""
    store = index.store
    with store.transaction():  # a write while this pushes is either all in or all out
        rows = store.iter_items(batch=size)
        while chunk := list(islice(rows, size)):
            yield _batch(chunk, index.manifest.model.dimension, index.path)


def _batch(rows: list[tuple[str, str, dict[str, Any], bytes]], dimension: int, path: Path) -> Batch:
    import numpy as np

    if any(len(blob) != dimension * 4 for *_, blob in rows):
        raise CorruptIndexError(
            f"{path}: a stored embedding is not {dimension} float32 values; run searchkit check --repair"
        )
    vectors = np.frombuffer(b"".join(blob for *_, blob in rows), dtype="<f4").reshape(len(rows), dimension)
    keys, texts, metadata, _ = zip(*rows, strict=True)
    return Batch(list(keys), list(texts), list(metadata), vectors)
