"""The indexes one server holds, and the only way its routes reach them.

Each index is opened twice, both sharing one loaded model:

- a reader, shared by every request thread: `Index` snapshot reads are thread-safe, and
  only the snapshot (FAISS lookup and row fetch) is serialized, not the query encoding;
  it picks up every committed generation, the server's own or another process's
  (`searchkit index` run beside the server), on its next read;
- a writer, used by one request at a time (a `threading.Lock`); the index's ``flock``
  keeps other processes out. Its write is durable when `add` / `delete` return. It
  changes rows only and loads no vectors; its `Compactor` thread seals and merges
  segments in the background (service/compaction.py).

Names come only from the folders served, never from a request.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from searchkit import embedder as embedding
from searchkit.errors import IndexNotFoundError, UsageError
from searchkit.server.limits import WRITE_LOCK_TIMEOUT_S
from searchkit.service import Index
from searchkit.types import Hits, WriteReport

__all__ = ["ServedIndex", "Shelf"]


@dataclass
class ServedIndex:
    name: str
    reader: Index
    writer: Index
    write_lock: threading.Lock = field(default_factory=threading.Lock)

    def search(
        self, queries: Sequence[str], k: int, where: dict[str, Any] | None, mode: str, group_by_parent: bool
    ) -> list[Hits]:
        return self.reader.search_many(queries, k, where=where, mode=mode, group_by_parent=group_by_parent)

    def info(self) -> dict[str, Any]:
        return {"name": self.name, **self.reader.info()}

    def upsert(self, documents: list[dict[str, Any]]) -> tuple[WriteReport, int]:
        """Add or update `documents`; the report and the item count after the write."""
        with self.write_lock:
            report = self.writer.add(documents, lock_timeout=WRITE_LOCK_TIMEOUT_S)
            return report, len(self.writer)

    def delete(self, ids: Sequence[str]) -> tuple[WriteReport, int]:
        with self.write_lock:
            report = self.writer.delete(ids, lock_timeout=WRITE_LOCK_TIMEOUT_S)
            return report, len(self.writer)

    def close(self) -> None:
        with self.write_lock:  # a write still running in a worker thread finishes first
            if self.writer.compactor is not None:
                self.writer.compactor.close()  # a compaction step under way finishes first
            self.writer.close()
            self.reader.close()


class Shelf:
    """The served indexes by name, opened together (the model loads once), closed together."""

    def __init__(self, indexes: dict[str, ServedIndex]) -> None:
        self.indexes = indexes

    @classmethod
    def open(
        cls,
        paths: Sequence[str | Path],
        model: str | None = None,
        backend: str | None = None,
        device: str | None = None,
    ) -> Shelf:
        """Open every index; `model`, `backend` and `device`, when given, load the model of
        each (and refuse an index whose model it is not)."""
        folders = _named_folders(paths)
        opened: dict[str, ServedIndex] = {}
        try:
            for name, folder in folders.items():
                reader = Index.open(folder, model=model, backend=backend, device=device)
                try:
                    # reader.embedder loads the model: once per model, however many indexes use it.
                    opened[name] = _served(name, folder, reader)
                except BaseException:
                    reader.close()
                    raise
        except BaseException:
            for served in opened.values():
                served.close()
            raise
        return cls(opened)

    def get(self, name: str) -> ServedIndex:
        served = self.indexes.get(name)
        if served is None:
            known = ", ".join(sorted(self.indexes))
            raise IndexNotFoundError(f"no index named {name!r} is served here; served: {known}")
        return served

    @property
    def embedder(self) -> embedding.Embedder:
        """The model of the first index served: /embed and /similarity use it."""
        return next(iter(self.indexes.values())).reader.embedder

    @property
    def notes(self) -> list[str]:
        """What loading the models had to say, each once."""
        return list(dict.fromkeys(s.reader.note for s in self.indexes.values() if s.reader.note))

    def close(self) -> None:
        for served in self.indexes.values():
            served.close()


def _served(name: str, folder: Path, reader: Index) -> ServedIndex:
    """The reader, and a writer that loads no vectors (writes change rows only), with the
    background compaction of its index (its own Index: its own SQLite connection)."""
    from searchkit.service.compaction import Compactor

    writer = Index.open(folder, embedder=reader.embedder, load=False)
    try:
        writer.compactor = Compactor(Index.open(folder, embedder=reader.embedder, load=False))
    except BaseException:
        writer.close()
        raise
    return ServedIndex(name, reader, writer)


def _named_folders(paths: Sequence[str | Path]) -> dict[str, Path]:
    if not paths:
        raise UsageError("no index to serve; pass one or more index folders")
    folders: dict[str, Path] = {}
    for path in paths:
        folder = Path(path).resolve()
        if folder.name in folders:
            raise UsageError(
                f"two served indexes are named {folder.name!r} ({folders[folder.name]} and {folder}); "
                "an index is named by its folder: serve one of them, or rename a folder"
            )
        folders[folder.name] = folder
    return folders
