"""The rows that cross the store's boundary: items to answer with, items to stage."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["PendingRow", "RowState", "StoredItem", "dump_metadata"]


def dump_metadata(metadata: dict[str, Any]) -> str:
    """Metadata as ``items.metadata`` holds it: one spelling per value, so that two
    dumps are equal exactly when the metadata is (``1`` and ``true`` stay apart)."""
    return json.dumps(metadata, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class StoredItem:
    """One row of ``items`` as the service needs it to answer a query (its vector is
    read apart, from ``embeddings``, by what scores it)."""

    id: int
    key: str
    text: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class PendingRow:
    """An embedded item waiting in ``pending`` for its ingest to be applied."""

    key: str
    text: str
    metadata: dict[str, Any]
    content_hash: str
    source: str
    truncated: bool
    embedding: bytes
    origin: str | None = None  # the file it was read from (readers: Record.origin)


@dataclass(frozen=True)
class RowState:
    """What an upsert compares an incoming item with: is it new, changed, or the same?"""

    content_hash: str
    metadata: str  # as dump_metadata writes it
    source: str | None
    truncated: bool
    origin: str | None = None
