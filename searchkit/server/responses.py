"""The answers' shapes, for /openapi.json (and checked by the fuzz test against real answers)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "ERRORS",
    "Embeddings",
    "ErrorBody",
    "Health",
    "IndexInfo",
    "IndexList",
    "SearchResult",
    "SearchResults",
    "SimilarityResult",
    "WriteResult",
]


class ErrorBody(BaseModel):
    error: str


class Health(BaseModel):
    status: str


class HitOut(BaseModel):
    rank: int
    id: str
    score: float
    text: str
    metadata: dict[str, Any]


class SearchResult(BaseModel):
    """As one line of ``searchkit query --json``."""

    query: str
    mode: str
    exact: bool
    hits: list[HitOut]


class SearchResults(BaseModel):
    results: list[SearchResult]


class IndexInfo(BaseModel):
    """As ``searchkit info --json``, with the index's served name."""

    model_config = ConfigDict(extra="allow")
    name: str
    metric: str
    counts: dict[str, int]
    model: dict[str, Any]


class IndexList(BaseModel):
    indexes: list[IndexInfo]


class WriteResult(BaseModel):
    index: str
    items: int
    added: int
    updated: int
    metadata_only: int  # of the updated: same text, new metadata (not embedded)
    unchanged: int
    deleted: int
    duplicates: int
    truncated: int
    embedded: int
    seconds: float
    items_per_second: float
    notes: list[str]


class SimilarityResult(BaseModel):
    metric: str
    rows: list[str]
    columns: list[str]
    scores: list[list[float]]


class Embeddings(BaseModel):
    embeddings: list[list[float]]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# What any route may answer besides its 200 (app.py's docstring says when).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("A bad argument (unknown metric, blank query, a malformed 'where' filter)"),
    401: _error("Missing or wrong token"),
    404: _error("Unknown index or path"),
    409: _error("The index was built with another model"),
    413: _error("Body over the size limit"),
    422: _error("Not JSON, or not the documented shape or limits"),
    503: _error("Another process holds the index's write lock"),
    507: _error("The disk refused a write; nothing was lost"),
}
