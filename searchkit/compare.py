"""Texts without an index: embeddings and similarity matrices, as sentence-transformers gives them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from searchkit import embedder as embedding
from searchkit.errors import UsageError
from searchkit.metrics import Matrix, pairwise
from searchkit.types import Metric

__all__ = ["Similarity", "embed", "similarity"]


@dataclass(frozen=True)
class Similarity:
    """A score matrix: ``scores[i][j]`` compares ``rows[i]`` with ``columns[j]``."""

    metric: Metric
    rows: list[str]
    columns: list[str]
    scores: npt.NDArray[np.float64]

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric.value,
            "rows": self.rows,
            "columns": self.columns,
            "scores": self.scores.tolist(),
        }


def embed(
    texts: Sequence[str],
    model: str | None = None,
    backend: str | None = None,
    batch_size: int = 32,
    embedder: embedding.Embedder | None = None,
    device: str | None = None,
) -> Matrix:
    """Embed `texts` with `model` (default all-MiniLM-L6-v2), or with an `embedder` already
    loaded: a (n, dim) float32 array."""
    texts = _check_texts(texts, "texts")
    if batch_size <= 0:
        raise UsageError(f"batch size must be a positive integer, not {batch_size}")
    encoder = embedder or embedding.load(model, backend, device)
    return encoder.encode(texts, batch_size=batch_size)


def similarity(
    texts: Sequence[str],
    to: Sequence[str] | None = None,
    metric: str | Metric = Metric.COSINE,
    model: str | None = None,
    backend: str | None = None,
    embedder: embedding.Embedder | None = None,
    device: str | None = None,
) -> Similarity:
    """Score `texts` against `to` (or against themselves): ``model.similarity``'s numbers.

    `embedder`, when given, is a model already loaded (the service's), used instead of `model`."""
    metric = Metric.parse(metric)
    rows = _check_texts(texts, "texts")
    columns = _check_texts(to, "--to texts") if to else rows
    encoder = embedder or embedding.load(model, backend, device)
    vectors = encoder.encode(list(dict.fromkeys(rows + columns)))
    position = {text: i for i, text in enumerate(dict.fromkeys(rows + columns))}
    a = vectors[[position[t] for t in rows]]
    b = vectors[[position[t] for t in columns]]
    return Similarity(metric, rows, columns, pairwise(a, b, metric))


def _check_texts(texts: Sequence[str] | None, what: str) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    values = list(texts or [])
    if not values:
        raise UsageError(f"no {what} given")
    if any(not isinstance(t, str) for t in values):
        raise UsageError(f"{what} must be strings")
    return values
