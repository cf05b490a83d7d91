"""searchkit.metrics: the four scores equal numpy's and sentence-transformers' own functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from sentence_transformers import SimilarityFunction
from sentence_transformers.util import cos_sim, dot_score, euclidean_sim, manhattan_sim

from searchkit import metrics
from searchkit.metrics import normalize, pairwise, prepare
from searchkit.types import Metric

ST_FUNCTIONS: dict[Metric, Callable[..., torch.Tensor]] = {
    Metric.COSINE: cos_sim,
    Metric.DOT: dot_score,
    Metric.EUCLIDEAN: euclidean_sim,
    Metric.MANHATTAN: manhattan_sim,
}


def random(shape: tuple[int, int], seed: int, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).uniform(-1, 1, shape) * scale).astype(np.float32)


def numpy_scores(a: np.ndarray, b: np.ndarray, metric: Metric) -> np.ndarray:
    """The reference, one pair at a time, written independently of searchkit."""
    out = np.empty((len(a), len(b)))
    for i, x in enumerate(a.astype(np.float64)):
        for j, y in enumerate(b.astype(np.float64)):
            if metric is Metric.COSINE:
                denominator = max(np.linalg.norm(x), 1e-12) * max(np.linalg.norm(y), 1e-12)
                out[i, j] = float(np.dot(x, y)) / denominator
            elif metric is Metric.DOT:
                out[i, j] = float(np.dot(x, y))
            elif metric is Metric.EUCLIDEAN:
                out[i, j] = -float(np.linalg.norm(x - y))
            else:
                out[i, j] = -float(np.sum(np.abs(x - y)))
    return out


@pytest.fixture(params=list(Metric), ids=[m.value for m in Metric])
def metric(request: pytest.FixtureRequest) -> Metric:
    return Metric(request.param)


def test_the_sentence_transformers_names_are_its_similarity_functions() -> None:
    for metric_, function in ST_FUNCTIONS.items():
        assert SimilarityFunction.to_similarity_fn(metric_.st_name) is function
    assert {m.st_name for m in Metric} <= {f.value for f in SimilarityFunction}


# --- against numpy and sentence-transformers -------------------------------------


@pytest.mark.parametrize(("rows", "columns", "dim"), [(1, 1, 3), (6, 9, 32), (4, 4, 384)])
def test_pairwise_equals_numpy(metric: Metric, rows: int, columns: int, dim: int) -> None:
    a, b = random((rows, dim), seed=1), random((columns, dim), seed=2)
    scores = pairwise(a, b, metric)
    assert scores.shape == (rows, columns)
    assert scores.dtype == np.float64
    np.testing.assert_allclose(scores, numpy_scores(a, b, metric), rtol=0, atol=1e-9)


@pytest.mark.parametrize(("rows", "columns", "dim", "scale"), [(6, 9, 32, 1.0), (3, 40, 64, 0.2)])
def test_pairwise_equals_sentence_transformers(
    metric: Metric, rows: int, columns: int, dim: int, scale: float
) -> None:
    a, b = random((rows, dim), seed=3, scale=scale), random((columns, dim), seed=4, scale=scale)
    st_function: Any = SimilarityFunction.to_similarity_fn(metric.st_name)
    theirs = st_function(a, b).numpy()
    np.testing.assert_allclose(pairwise(a, b, metric), theirs, rtol=0, atol=1e-5)
    np.testing.assert_allclose(pairwise(a, b, metric), ST_FUNCTIONS[metric](a, b).numpy(), atol=1e-5)


def test_square_matrix_against_sentence_transformers(metric: Metric) -> None:
    a = random((7, 16), seed=5)
    scores = pairwise(a, a, metric)
    np.testing.assert_allclose(scores, ST_FUNCTIONS[metric](a, a).numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(scores, scores.T, rtol=0, atol=1e-12)


def test_higher_is_more_similar(metric: Metric) -> None:
    query = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    near_to_far = np.array([[0.9, 0.1, 0.0], [0.5, 0.5, 0.0], [-1.0, 0.2, 0.0]], dtype=np.float32)
    scores = pairwise(query, near_to_far, metric)[0]
    assert scores[0] > scores[1] > scores[2]


def test_distance_metrics_are_negative_distances() -> None:
    a = np.array([[0.0, 0.0]], dtype=np.float32)
    b = np.array([[3.0, 4.0], [-1.0, 1.0]], dtype=np.float32)
    assert pairwise(a, b, Metric.EUCLIDEAN).tolist() == [[-5.0, -np.sqrt(2.0)]]
    assert pairwise(a, b, Metric.MANHATTAN).tolist() == [[-7.0, -2.0]]
    assert pairwise(b, b, Metric.DOT).tolist() == [[25.0, 1.0], [1.0, 2.0]]


def test_cosine_of_a_zero_vector_is_zero_not_nan() -> None:
    a = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]], dtype=np.float32)
    b = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    scores = pairwise(a, b, Metric.COSINE)
    assert not np.isnan(scores).any()
    assert scores[0].tolist() == [0.0, 0.0]
    assert scores[1, 1] == 0.0
    np.testing.assert_allclose(scores, cos_sim(a, b).numpy(), atol=1e-6)


# --- exact zeros -----------------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 1e3, 1e-3])
def test_identical_vectors_are_exactly_zero_apart(scale: float) -> None:
    a = random((20, 384), seed=6, scale=scale) + np.float32(scale)  # far from the origin
    b = a[::-1].copy()
    for metric_ in (Metric.EUCLIDEAN, Metric.MANHATTAN):
        scores = pairwise(a, b, metric_)
        diagonal = np.diag(scores[:, ::-1])
        assert (diagonal == 0).all(), diagonal
        assert (np.delete(scores[:, ::-1].ravel(), np.arange(0, 400, 21)) < 0).all()


def test_identical_vectors_where_the_expansion_would_not_give_zero() -> None:
    a = (np.random.default_rng(0).uniform(-1, 1, (4, 384)) * 10 + 100).astype(np.float32)
    # |a|^2 + |b|^2 - 2ab (torch's matmul path) leaves a rounding error here; searchkit must not
    expansion = torch.cdist(
        torch.from_numpy(a), torch.from_numpy(a.copy()), compute_mode="use_mm_for_euclid_dist"
    )
    assert (torch.diag(expansion) > 0).any()
    assert np.diag(pairwise(a, a.copy(), Metric.EUCLIDEAN)).tolist() == [0.0] * 4


# --- normalize and prepare -------------------------------------------------------


def test_normalize_gives_unit_rows_and_keeps_zero_rows_zero() -> None:
    vectors = random((6, 10), seed=7, scale=5)
    vectors[2] = 0
    vectors[5] = 0
    out = normalize(vectors)
    assert out.dtype == np.float32
    assert out.shape == vectors.shape
    norms = np.linalg.norm(out, axis=1)
    np.testing.assert_allclose(norms[[0, 1, 3, 4]], 1.0, rtol=1e-6)
    assert out[2].tolist() == [0.0] * 10
    assert out[5].tolist() == [0.0] * 10
    assert not np.isnan(out).any()
    reference = torch.nn.functional.normalize(torch.from_numpy(vectors), p=2, dim=1).numpy()
    np.testing.assert_allclose(out, reference, rtol=1e-6, atol=1e-7)


def test_normalize_does_not_change_its_input() -> None:
    vectors = random((3, 4), seed=8, scale=3)
    before = vectors.copy()
    normalize(vectors)
    np.testing.assert_array_equal(vectors, before)


def test_prepare_normalises_for_cosine_only(metric: Metric) -> None:
    vectors = random((5, 12), seed=9, scale=4).astype(np.float64)[:, ::2]  # strided, float64
    vectors[1] = 0
    out = prepare(vectors, metric)
    assert out.dtype == np.float32
    assert out.flags["C_CONTIGUOUS"]
    if metric is Metric.COSINE:
        np.testing.assert_allclose(np.linalg.norm(out[[0, 2, 3, 4]], axis=1), 1.0, rtol=1e-6)
        assert out[1].tolist() == [0.0] * 6
        np.testing.assert_allclose(out, normalize(vectors.astype(np.float32)), rtol=1e-7)
    else:
        assert out.tolist() == vectors.astype(np.float32).tolist()


def test_prepared_cosine_dot_equals_cosine_scores() -> None:
    a, b = random((4, 20), seed=10, scale=3), random((6, 20), seed=11, scale=3)
    via_dot = pairwise(prepare(a, Metric.COSINE), prepare(b, Metric.COSINE), Metric.DOT)
    np.testing.assert_allclose(via_dot, pairwise(a, b, Metric.COSINE), rtol=0, atol=1e-6)


# --- chunking --------------------------------------------------------------------


@pytest.mark.parametrize("chunk_floats", [1, 40, 100, 10**9])
@pytest.mark.parametrize("metric_", [Metric.EUCLIDEAN, Metric.MANHATTAN])
def test_chunked_equals_unchunked(
    monkeypatch: pytest.MonkeyPatch, chunk_floats: int, metric_: Metric
) -> None:
    a, b = random((13, 8), seed=12), random((5, 8), seed=13)
    unchunked = pairwise(a, b, metric_)
    monkeypatch.setattr(metrics, "_CHUNK_FLOATS", chunk_floats)
    chunked = pairwise(a, b, metric_)
    np.testing.assert_array_equal(chunked, unchunked)
    np.testing.assert_allclose(chunked, numpy_scores(a, b, metric_), rtol=0, atol=1e-9)


@pytest.mark.parametrize("metric_", [Metric.EUCLIDEAN, Metric.MANHATTAN])
def test_large_b_takes_the_chunked_path_and_equals_unchunked(
    monkeypatch: pytest.MonkeyPatch, metric_: Metric
) -> None:
    a = random((3, 64), seed=14)
    b = random((125_001, 64), seed=15)
    assert metrics._CHUNK_FLOATS // b.size == 0  # one row of `a` per step
    chunked = pairwise(a, b, metric_)
    assert chunked.shape == (3, len(b))
    monkeypatch.setattr(metrics, "_CHUNK_FLOATS", 10 * a.size * b.size)
    np.testing.assert_array_equal(chunked, pairwise(a, b, metric_))
    sample = np.random.default_rng(16).choice(len(b), 50, replace=False)
    np.testing.assert_allclose(chunked[:, sample], numpy_scores(a, b[sample], metric_), atol=1e-9)


def test_empty_inputs() -> None:
    a = np.empty((0, 4), dtype=np.float32)
    b = random((3, 4), seed=17)
    for metric_ in Metric:
        assert pairwise(a, b, metric_).shape == (0, 3)
        assert pairwise(b, a, metric_).shape == (3, 0)
