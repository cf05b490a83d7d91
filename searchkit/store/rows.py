"""The rows that cross the store's boundary: items to answer with, items to stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from searchkit.metrics import Matrix

__all__ = ["PendingRow", "StoredItem"]


@dataclass(frozen=True)
class StoredItem:
    """One row of ``items`` as the service needs it to answer a query."""

    id: int
    key: str
    text: str
    metadata: dict[str, Any]
    embedding: Matrix


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
