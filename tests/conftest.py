"""Shared fixtures: the real bundled model (loaded once), isolated index folders, the CLI."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from searchkit import embedder as embedding
from searchkit.types import Fingerprint

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "corpus.jsonl"
# The ONNX export cache (onnx_export.cache_dir) of test runs: never the user's own
# (~/.cache/searchkit, or a SEARCHKIT_CACHE of theirs), and kept in the repo between runs
# (gitignored) so that the one-time export (10-20 s) is paid once. Set before anything
# loads a model; subprocesses inherit it with the environment.
TEST_CACHE = ROOT / ".test-cache"
os.environ["SEARCHKIT_CACHE"] = str(TEST_CACHE)
# Subprocesses (the CLI, the server, scripts/) import this checkout's searchkit, not whatever
# checkout the environment's editable install points at.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


@pytest.fixture(scope="session")
def model() -> embedding.Embedder:
    """The bundled all-MiniLM-L6-v2, loaded once for the whole test session."""
    return embedding.load()


@pytest.fixture(scope="session")
def st_model(model: embedding.Embedder) -> Any:
    """A SentenceTransformer on torch, for reference numbers (model.encode, model.similarity)."""
    return embedding.load(backend="torch").engine.model


@pytest.fixture(scope="session")
def corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


class TinyEmbedder:
    """A deterministic hashing embedder for tests where semantics don't matter.

    Same interface as `searchkit.embedder.Embedder`; its own fingerprint, so an index
    built with it refuses the real model and the other way round.
    """

    def __init__(self, dimension: int = 16, name: str = "tiny") -> None:
        sha = hashlib.sha256(name.encode()).hexdigest()
        self.fingerprint = Fingerprint(name, "test", sha, dimension, 128, False, "torch")
        self.calls = 0
        self.texts_embedded = 0

    @property
    def dimension(self) -> int:
        return self.fingerprint.dimension

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dimension)
        return out

    def truncated_flags(self, texts: Sequence[str]) -> list[bool]:
        return [len(t.split()) > 128 for t in texts]


@pytest.fixture
def tiny() -> TinyEmbedder:
    return TinyEmbedder()


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[..., Path]:
    """Write `content` (str or bytes) to tmp_path/name and return the path."""

    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return write


def snapshot(folder: Path) -> dict[str, Any]:
    """What a user can observe of an index: its items (with vectors) and its manifest."""
    from searchkit.service import Index

    with Index.open(folder) as index:
        items = list(index.export(vectors=True))
        manifest = index.manifest.to_json()
    return {"items": items, "manifest": manifest}


@pytest.fixture(scope="session")
def other_model_dir(tmp_path_factory: pytest.TempPathFactory, st_model: Any) -> Path:
    """A genuinely different model: all-MiniLM-L6-v2 with one weight matrix perturbed."""
    import torch
    from sentence_transformers import SentenceTransformer

    folder = tmp_path_factory.mktemp("models") / "other-minilm"
    other = SentenceTransformer(str(embedding.resolve(None).path), device="cpu")
    with torch.no_grad():
        first = next(other.parameters())
        first.mul_(1.05)
    other.save(str(folder))
    return folder


def load_script(name: str) -> Any:
    """Import scripts/<name>.py as a module (the stress harnesses live there)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def crash_harness() -> Any:
    return load_script("crash_stress")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, crash_harness: Any) -> Path:
    """A real sentence-transformers model folder, tiny and random: fast in subprocesses."""
    return Path(crash_harness.make_tiny_model(tmp_path_factory.mktemp("tiny-model")))


def line_key(path: Path | str, text: str) -> str:
    """The id of a line (or paragraph) of a text file: its file, and a digest of its text."""
    digest = hashlib.sha256(json.dumps(text, ensure_ascii=False).encode()).hexdigest()
    return f"{path}:{digest[:12]}"
