"""What decides a model folder's vectors, hashed without loading it: the weights and the pipeline.

The weights are the transformer's ``model.safetensors`` (or ``pytorch_model.bin``) at the
folder's root. The pipeline is every other file sentence-transformers reads to build the
model: ``modules.json``, ``config_sentence_transformers.json`` (prompts, similarity), and the
files of each module's folder (the transformer's ``config.json``, ``sentence_bert_config.json``
and tokenizer files, Pooling's and Normalize's configs, a Dense module's config and weights).
Another pooling mode, prompt or Dense layer is another model, though its weights are the same.

JSON configs are hashed parsed (keys sorted), without the ``__version__`` stamps that
sentence-transformers writes on every save, so that a plain re-save is the same model;
other files, and JSON files too big to be configs, by their bytes. Files
sentence-transformers does not read are left out: the model card, dot files, the training
data description, scripts, subfolders of other runtimes (onnx/, openvino/) and the weights
of other frameworks. Digests are cached by (path, size, mtime), so checking is cheap.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from searchkit.errors import ModelError

__all__ = ["WEIGHT_FILES", "Pipeline", "pipeline", "weights_sha256"]

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# The model card, the training data description, and what other frameworks and runtimes read.
_SKIPPED_NAMES = {"data_config.json", "train_script.py"}
_SKIPPED_SUFFIXES = {".md", ".py", ".h5", ".msgpack", ".ot", ".onnx", ".onnx_data", ".tflite", ".mlmodel"}
_SHORT = 12  # hex digits of each file's digest kept in the fingerprint: enough to say which differs
# Configs are small and are what re-saves reorder and stamp; a big JSON file (tokenizer.json,
# written byte for byte alike by the tokenizers library) is hashed as bytes: sorting its
# 30,000-entry vocabulary would add 40 ms to every cold query.
_CANONICAL_JSON_LIMIT = 64 * 1024

_cache: dict[tuple[str, int, int, str], str] = {}


@dataclass(frozen=True)
class Pipeline:
    """The pipeline's digest, and a short digest of each file it covers (to say which differs)."""

    digest: str
    files: tuple[tuple[str, str], ...]


def weights_sha256(folder: Path) -> str:
    """sha256 of the folder's weights file (the first of WEIGHT_FILES it has)."""
    for name in WEIGHT_FILES:
        weights = folder / name
        if weights.exists():
            return _cached(weights, "bytes")
    raise ModelError(f"no model weights ({' or '.join(WEIGHT_FILES)}) in {folder}")


def pipeline(folder: Path) -> Pipeline:
    """The digest of every file but the weights that sentence-transformers builds the model from."""
    digests = {name: _file_digest(path) for name, path in sorted(_pipeline_files(folder).items())}
    lines = "".join(f"{name}\t{digest}\n" for name, digest in digests.items())
    return Pipeline(
        digest=hashlib.sha256(lines.encode("utf-8")).hexdigest(),
        files=tuple((name, digest[:_SHORT]) for name, digest in digests.items()),
    )


def _pipeline_files(folder: Path) -> dict[str, Path]:
    """By name in the folder: the root's files and each module folder's (not their
    subfolders), but the root's weights."""
    files: dict[str, Path] = {}
    for prefix in dict.fromkeys(["", *_module_paths(folder)]):
        place = folder / prefix
        if not place.is_dir():
            continue  # a module without files of its own (Normalize, in older saves)
        for path in sorted(place.iterdir()):
            name = (Path(prefix) / path.name).as_posix()
            if not path.is_file() or path.name.startswith(".") or path.name in _SKIPPED_NAMES:
                continue
            if path.suffix in _SKIPPED_SUFFIXES or name in WEIGHT_FILES:
                continue
            files[name] = path
    return files


def _module_paths(folder: Path) -> list[str]:
    """The folders modules.json names; none for a plain transformers folder (mean pooling)."""
    modules = _json(folder / "modules.json")
    if not isinstance(modules, list):
        return []  # absent or unreadable: sentence-transformers would refuse it, and hashes it as bytes
    paths = (str(m.get("path") or "").strip("/") for m in modules if isinstance(m, dict))
    return [path for path in paths if path not in ("", ".")]


def _file_digest(path: Path) -> str:
    canonical = path.suffix == ".json" and path.stat().st_size <= _CANONICAL_JSON_LIMIT
    return _cached(path, "json" if canonical else "bytes")


def _cached(path: Path, how: str) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, how)
    if key not in _cache:
        _cache[key] = _canonical_json_sha256(path) if how == "json" else _bytes_sha256(path)
    return _cache[key]


def _bytes_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _canonical_json_sha256(path: Path) -> str:
    data = _json(path)
    if data is None:
        return _bytes_sha256(path)  # not JSON after all: its bytes are what is read
    if isinstance(data, dict):
        data.pop("__version__", None)  # library versions stamped on save, not the model
    if path.name == "modules.json" and isinstance(data, list):
        # sentence-transformers moves its classes between versions (models.Pooling, then
        # sentence_transformer.modules.pooling.Pooling): the same module by another path.
        for module in data:
            kind = module.get("type") if isinstance(module, dict) else None
            if isinstance(kind, str) and kind.startswith("sentence_transformers."):
                module["type"] = kind.rsplit(".", 1)[-1]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
