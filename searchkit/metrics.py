"""Similarity scores, computed as sentence-transformers' ``model.similarity`` does.

Higher is always more similar: euclidean and manhattan are reported as minus the
distance. The arithmetic is direct (differences, not the ``|a|^2 + |b|^2 - 2ab``
expansion) so that near-identical texts score 0 exactly rather than a rounding error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from searchkit.types import Metric

__all__ = ["Matrix", "normalize", "pairwise", "prepare"]

Matrix = npt.NDArray[np.float32]

# Rows of `a` handled per step in the distance metrics, so that the (rows, n, dim)
# difference tensor stays around 32 MB whatever the sizes.
_CHUNK_FLOATS = 8_000_000


def normalize(vectors: Matrix) -> Matrix:
    """L2-normalise rows; zero rows stay zero, as in torch.nn.functional.normalize."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: Matrix = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def prepare(vectors: Matrix, metric: Metric) -> Matrix:
    """Vectors as the index stores them for `metric`: normalised for cosine, else as given."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return normalize(vectors) if metric is Metric.COSINE else vectors


def pairwise(a: Matrix, b: Matrix, metric: Metric, dtype: type = np.float64) -> npt.NDArray[Any]:
    """The (len(a), len(b)) score matrix of `metric`, equal to ``model.similarity``
    (computed in `dtype`: float32 ranks as FAISS does, at half the cost)."""
    a64: npt.NDArray[Any] = np.asarray(a, dtype=dtype)
    b64: npt.NDArray[Any] = np.asarray(b, dtype=dtype)
    if metric is Metric.COSINE:
        a64 = a64 / np.maximum(np.linalg.norm(a64, axis=1, keepdims=True), 1e-12)
        b64 = b64 / np.maximum(np.linalg.norm(b64, axis=1, keepdims=True), 1e-12)
    if metric in (Metric.COSINE, Metric.DOT):
        product: npt.NDArray[Any] = a64 @ b64.T
        return product
    rows = max(1, _CHUNK_FLOATS // max(1, b64.shape[0] * b64.shape[1]))
    out: npt.NDArray[Any] = np.empty((a64.shape[0], b64.shape[0]), dtype=dtype)
    for start in range(0, a64.shape[0], rows):
        diff = a64[start : start + rows, None, :] - b64[None, :, :]
        if metric is Metric.EUCLIDEAN:
            out[start : start + rows] = -np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        else:
            out[start : start + rows] = -np.abs(diff).sum(axis=2)
    return out
