"""Reopening an index with its own engine: torch where ONNX cannot run the model, --backend to choose."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from searchkit import Index, UnsupportedModelError
from searchkit import embedder as embedding
from searchkit.cli import app

from .test_server import Server

TEXTS = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium"]
QUERY = "Is it sunny?"
NOTE = (
    "note: model 'minilm-prompted': a default prompt ('query') is not supported by the onnx backend; "
    "embedding with torch (sentence-transformers) instead\n"
)


def run(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def prompted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """all-MiniLM-L6-v2 with a default prompt: sentence-transformers prepends it, ONNX refuses it."""
    pytest.importorskip("onnxruntime")  # without it, torch is the default anyway
    folder = tmp_path_factory.mktemp("prompted") / "minilm-prompted"
    shutil.copytree(embedding.resolve(None).path, folder)
    config = {"prompts": {"query": "query: ", "document": ""}, "default_prompt_name": "query"}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def torch_built(tmp_path_factory: pytest.TempPathFactory, prompted_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("torch-built")
    items = folder / "items.txt"
    items.write_text("\n".join(TEXTS) + "\n")
    result = run("index", folder / "index", items, "--model", prompted_dir, "--backend", "torch")
    assert result.exit_code == 0, result.output
    return folder / "index"


def expected_hits(prompted_dir: Path) -> list[tuple[str, float]]:
    """What torch (sentence-transformers itself) ranks, with the model's own prompt."""
    st = embedding.load(str(prompted_dir), backend="torch").engine.model
    scores = st.similarity(st.encode([QUERY]), st.encode(TEXTS))[0].tolist()
    return sorted(zip(TEXTS, scores, strict=True), key=lambda pair: -pair[1])


def assert_hits(found: list[tuple[str, float]], prompted_dir: Path) -> None:
    expected = expected_hits(prompted_dir)
    assert [text for text, _ in found] == [text for text, _ in expected]
    np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], atol=1e-5)


def test_onnx_refuses_the_model_and_the_default_runs_it_on_torch(prompted_dir: Path, st_model: Any) -> None:
    with pytest.raises(UnsupportedModelError, match=r"a default prompt \('query'\) .* use --backend torch$"):
        embedding.load(str(prompted_dir), backend="onnx")
    loaded = embedding.load(str(prompted_dir))
    assert loaded.backend == "torch" and f"note: {loaded.note}\n" == NOTE
    assert embedding.load(str(prompted_dir)) is loaded  # the fallback, like every load, happens once
    assert embedding.load(str(prompted_dir), backend="torch").note is None
    reference = embedding.load(str(prompted_dir), backend="torch").engine.model.encode(TEXTS)
    np.testing.assert_allclose(loaded.encode(TEXTS), reference, atol=1e-5)
    assert not np.allclose(reference, st_model.encode(TEXTS), atol=1e-3)  # the prompt is applied


def test_a_torch_built_index_reopens_through_index_open(torch_built: Path, prompted_dir: Path) -> None:
    for backend in (None, "auto", "torch"):
        with Index.open(torch_built, backend=backend) as index:
            assert_hits([(h.text, h.score) for h in index.search(QUERY, k=3)], prompted_dir)
            assert index.embedder.backend == "torch"
            assert (index.note is None) == (backend == "torch")


def test_a_torch_built_index_reopens_through_the_cli(torch_built: Path, prompted_dir: Path) -> None:
    result = run("query", torch_built, QUERY, "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == NOTE
    assert_hits([(h["text"], h["score"]) for h in json.loads(result.stdout)["hits"]], prompted_dir)

    result = run("query", torch_built, QUERY, "--json", "--backend", "torch")
    assert result.exit_code == 0 and result.stderr == "", result.output
    assert_hits([(h["text"], h["score"]) for h in json.loads(result.stdout)["hits"]], prompted_dir)

    result = run("query", torch_built, QUERY, "--backend", "onnx")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert result.stderr == (
        "Error: model 'minilm-prompted': a default prompt ('query') is not supported by the onnx "
        "backends; use --backend torch\n"
    )


def test_a_torch_built_index_is_served(torch_built: Path, prompted_dir: Path) -> None:
    server = Server(torch_built, token=None)
    try:
        status, body = server.call("POST", "/indexes/index/search", {"query": QUERY, "k": 3})
        assert status == 200, body
        assert_hits([(h["text"], h["score"]) for h in body["hits"]], prompted_dir)
        assert NOTE in server.log, server.log
    finally:
        assert server.stop() in (0, -signal.SIGTERM), "".join(server.log)


def test_a_dense_module_runs_on_torch_with_a_note(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense

    tiny = SentenceTransformer(str(tiny_model_dir), device="cpu")
    modules = [*list(tiny)[:-1], Dense(32, 16), list(tiny)[-1]]  # Transformer, Pooling, Dense, Normalize
    folder = tmp_path / "tiny-dense"
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))

    loaded = embedding.load(str(folder))
    assert loaded.backend == "torch" and loaded.dimension == 16
    assert loaded.note == (
        "model 'tiny-dense': the module pipeline Transformer -> Pooling -> Dense -> Normalize is not "
        "supported by the onnx backend; embedding with torch (sentence-transformers) instead"
    )
    reference = SentenceTransformer(str(folder), device="cpu").encode(TEXTS)
    np.testing.assert_allclose(loaded.encode(TEXTS), reference, atol=1e-5)
    assert "2_Dense/model.safetensors" in dict(loaded.fingerprint.pipeline_files)


def test_backend_does_not_go_with_server() -> None:
    result = run("query", "somewhere/index", "x", "--server", "http://127.0.0.1:9", "--backend", "torch")
    assert result.exit_code == 1 and result.stderr == (
        "Error: --backend does not go with --server: the server queries with the index's own model\n"
    )
