"""searchkit.similarity and searchkit.embed: the tutorial's numbers, and model.similarity's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import searchkit
from searchkit import Metric, UsageError

TUTORIAL = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium"]
TUTORIAL_SQUARE = [[1.0000, 0.6660, 0.1058], [0.6660, 1.0000, 0.1471], [0.1058, 0.1471, 1.0000]]
SENTENCES1 = ["I've already seen this movie", "I like soccer", "he is a basketball player"]
SENTENCES2 = ["I don't want to watch this movie again", "I like baseball", "My name is roach"]
TUTORIAL_CROSS = [[0.6584, 0.1095, 0.2218], [0.1317, 0.7686, 0.1979], [0.1149, 0.2156, 0.1521]]


def test_tutorial_square_table_to_four_decimals(model: Any) -> None:
    result = searchkit.similarity(TUTORIAL)
    assert result.metric is Metric.COSINE
    assert result.rows == TUTORIAL and result.columns == TUTORIAL
    assert np.round(result.scores, 4).tolist() == TUTORIAL_SQUARE


def test_tutorial_cross_table_to_four_decimals(model: Any) -> None:
    result = searchkit.similarity(SENTENCES1, to=SENTENCES2)
    assert result.columns == SENTENCES2
    assert np.round(result.scores, 4).tolist() == TUTORIAL_CROSS


@pytest.mark.parametrize("metric", list(Metric))
def test_every_metric_equals_model_similarity(metric: Metric, st_model: Any) -> None:
    texts = [*TUTORIAL, *SENTENCES1]
    result = searchkit.similarity(texts, to=SENTENCES2, metric=metric)
    a, b = st_model.encode(texts), st_model.encode(SENTENCES2)
    previous = st_model.similarity_fn_name
    try:
        st_model.similarity_fn_name = metric.st_name
        expected = st_model.similarity(a, b).numpy()
    finally:
        st_model.similarity_fn_name = previous
    np.testing.assert_allclose(result.scores, expected, atol=1e-4)


@pytest.mark.parametrize(("backend", "tolerance"), [("torch", 1e-6), ("onnx", 1e-5), (None, 1e-5)])
def test_embed_equals_model_encode(st_model: Any, backend: str | None, tolerance: float) -> None:
    vectors = searchkit.embed(TUTORIAL, backend=backend)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, st_model.encode(TUTORIAL), atol=tolerance)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: searchkit.similarity([]), "no texts given"),
        (
            lambda: searchkit.similarity(["a"], metric="cosh"),
            "unknown metric 'cosh': choose one of",
        ),
        (lambda: searchkit.embed([]), "no texts given"),
        (
            lambda: searchkit.embed(["a"], batch_size=0),
            "batch size must be a positive integer, not 0",
        ),
        (
            lambda: searchkit.embed(["a"], backend="tpu"),
            "unknown backend 'tpu': choose one of auto, torch, onnx, onnx-int8",
        ),
    ],
)
def test_bad_arguments(call: Any, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        call()
    assert str(caught.value).startswith(message)
