"""Values that cross module boundaries: small, frozen, typed."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from searchkit.errors import UsageError

__all__ = ["CheckReport", "Fingerprint", "Hit", "Hits", "Metric", "Mode", "Record", "WriteReport"]

JSON = dict[str, Any]


class Metric(str, enum.Enum):
    """The four similarity functions of sentence-transformers, persisted by value."""

    COSINE = "cosine"
    DOT = "dot"
    EUCLIDEAN = "euclidean"
    MANHATTAN = "manhattan"

    @classmethod
    def parse(cls, value: str | Metric) -> Metric:
        if isinstance(value, Metric):
            return value
        aliases = {"dot_product": "dot", "cos": "cosine", "l2": "euclidean", "l1": "manhattan"}
        key = aliases.get(str(value).strip().lower(), str(value).strip().lower())
        try:
            return cls(key)
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise UsageError(f"unknown metric {value!r}: choose one of {names}") from None

    @property
    def st_name(self) -> str:
        """The name sentence-transformers gives this function (``similarity_fn_name``)."""
        return "dot" if self is Metric.DOT else self.value


class Mode(str, enum.Enum):
    """How a query ranks items: by embedding, by words (BM25), or both fused."""

    DENSE = "dense"
    KEYWORD = "keyword"
    HYBRID = "hybrid"

    @classmethod
    def parse(cls, value: str | Mode) -> Mode:
        if isinstance(value, Mode):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise UsageError(f"unknown search mode {value!r}: choose one of {names}") from None


@dataclass(frozen=True)
class Record:
    """One item as a reader yields it, before it has an embedding or a row id."""

    text: str
    key: str
    metadata: JSON
    source: str
    # A vector the caller made with the index's own model ("bring your own vectors"): stored
    # and indexed as given, instead of embedding the text. Checked when it is staged.
    embedding: tuple[float, ...] | None = None
    # The file it was read from (its resolved path), for a re-index to know which items a
    # file holds now; None for stdin and the API.
    origin: str | None = None


@dataclass(frozen=True)
class Hit:
    """One search result; ``score`` is higher for more similar, as ``model.similarity``."""

    rank: int
    id: str
    score: float
    text: str
    metadata: JSON

    def to_json(self) -> JSON:
        return {
            "rank": self.rank,
            "id": self.id,
            "score": self.score,
            "text": self.text,
            "metadata": self.metadata,
        }


class Hits(list[Hit]):
    """The hits of one query, best first: a list, with what produced it.

    ``exact`` is True when these are exactly the best items (exhaustive search over
    every candidate that passes the filter), False when an approximate index chose them.
    ``mode`` is how they were ranked; the score of a ``keyword`` hit is its BM25 score,
    of a ``hybrid`` hit its reciprocal-rank-fusion score, of a ``dense`` hit the metric's.
    """

    def __init__(self, hits: list[Hit] | None = None, exact: bool = True, mode: Mode = Mode.DENSE) -> None:
        super().__init__(hits or [])
        self.exact = exact
        self.mode = mode

    def to_json(self, query: str) -> JSON:
        return {
            "query": query,
            "mode": self.mode.value,
            "exact": self.exact,
            "hits": [hit.to_json() for hit in self],
        }


@dataclass(frozen=True)
class Fingerprint:
    """What identifies the vectors a model gives: an index accepts only its own.

    ``pipeline`` is the digest of every file but the weights that sentence-transformers
    builds the model from (model_digest.py), ``pipeline_files`` a short digest of each of
    them, to say which differs. An index made before pipelines were recorded has neither.
    """

    name: str
    source: str
    sha256: str
    dimension: int
    max_seq_length: int
    normalize: bool
    backend: str = "torch"
    pipeline: str = ""
    pipeline_files: tuple[tuple[str, str], ...] = ()

    def identity(self) -> tuple[str, str, int, int, bool, str]:
        """The fields that change the vectors; ``name`` and ``source`` only describe them."""
        return (self.sha256, self.pipeline, self.dimension, self.max_seq_length, self.normalize, self.backend)

    def describe(self) -> str:
        pipeline = f", pipeline {self.pipeline[:12]}" if self.pipeline else ""
        return f"{self.name} ({self.backend}, sha256 {self.sha256[:12]}{pipeline}, {self.dimension} dims)"

    def to_json(self) -> JSON:
        data: JSON = {
            "name": self.name,
            "source": self.source,
            "sha256": self.sha256,
            "dimension": self.dimension,
            "max_seq_length": self.max_seq_length,
            "normalize": self.normalize,
            "backend": self.backend,
        }
        if self.pipeline:
            data["pipeline"] = {"digest": self.pipeline, "files": dict(self.pipeline_files)}
        return data

    @classmethod
    def from_json(cls, data: JSON) -> Fingerprint:
        pipeline = data.get("pipeline") or {}
        return cls(
            name=str(data["name"]),
            source=str(data["source"]),
            sha256=str(data["sha256"]),
            dimension=int(data["dimension"]),
            max_seq_length=int(data["max_seq_length"]),
            normalize=bool(data["normalize"]),
            backend=str(data.get("backend", "torch")),
            pipeline=str(pipeline.get("digest", "")),
            pipeline_files=tuple(sorted((str(k), str(v)) for k, v in pipeline.get("files", {}).items())),
        )


@dataclass
class WriteReport:
    """What one write did to an index; printed after every write."""

    added: int = 0
    updated: int = 0
    metadata_only: int = 0  # of the updated: same text, new metadata or source (not embedded)
    unchanged: int = 0
    deleted: int = 0
    duplicates: int = 0
    truncated: int = 0
    embedded: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def items_per_second(self) -> float:
        seen = self.added + self.updated + self.unchanged
        return seen / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> JSON:
        return {
            "added": self.added,
            "updated": self.updated,
            "metadata_only": self.metadata_only,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "duplicates": self.duplicates,
            "truncated": self.truncated,
            "embedded": self.embedded,
            "seconds": round(self.seconds, 3),
            "items_per_second": round(self.items_per_second, 1),
        }


@dataclass
class CheckReport:
    """What ``check`` found: problems make the index inconsistent, notes do not."""

    path: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> JSON:
        return {
            "path": self.path,
            "ok": self.ok,
            "problems": self.problems,
            "notes": self.notes,
            "repaired": self.repaired,
        }
