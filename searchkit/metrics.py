"""Similarity scores, computed as sentence-transformers' ``model.similarity`` does.

Higher is always more similar: euclidean and manhattan are reported as minus the
distance. The arithmetic is direct (differences, not the ``|a|^2 + |b|^2 - 2ab``
expansion) so that near-identical texts score 0 exactly rather than a rounding error.
"""

from __future__ import annotations

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


def pairwise(a: Matrix, b: Matrix, metric: Metric) -> npt.NDArray[np.float64]:
    """The (len(a), len(b)) score matrix of `metric`, equal to ``model.similarity``."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if metric is Metric.COSINE:
        a64 = a64 / np.maximum(np.linalg.norm(a64, axis=1, keepdims=True), 1e-12)
        b64 = b64 / np.maximum(np.linalg.norm(b64, axis=1, keepdims=True), 1e-12)
    if metric in (Metric.COSINE, Metric.DOT):
        product: npt.NDArray[np.float64] = a64 @ b64.T
        return product
    rows = max(1, _CHUNK_FLOATS // max(1, b64.shape[0] * b64.shape[1]))
    out = np.empty((a64.shape[0], b64.shape[0]), dtype=np.float64)
    for start in range(0, a64.shape[0], rows):
        diff = a64[start : start + rows, None, :] - b64[None, :, :]
        if metric is Metric.EUCLIDEAN:
            out[start : start + rows] = -np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        else:
            out[start : start + rows] = -np.abs(diff).sum(axis=2)
    return out
