"""An index answers only to its own model: the checks that refuse any other.

An index made before fingerprints recorded a pipeline digest (model_digest.py) is held to
the pipeline of the folder it was built from, where that folder is still there with the
same weights, else to its weights alone; its next write records that digest.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from searchkit import embedder as embedding
from searchkit.errors import ModelError, ModelMismatchError
from searchkit.model_digest import pipeline, weights_sha256
from searchkit.types import Fingerprint

if TYPE_CHECKING:
    from searchkit.manifest import Manifest

__all__ = [
    "check_asked_model",
    "check_model",
    "expected_model",
    "load_model",
    "model_to_load",
    "with_pipeline",
]


def check_model(folder: Path, have: Fingerprint, asked: Fingerprint) -> None:
    if not have.pipeline:  # an old index whose model folder is gone: weights alone
        asked = replace(asked, pipeline="", pipeline_files=())
    if have.identity() != asked.identity():
        raise _mismatch(folder, have, asked.describe(), asked.pipeline_files)


def check_asked_model(
    folder: Path,
    have: Fingerprint,
    model: str | None,
    backend: str | None,
    embedder: embedding.Embedder | None,
) -> None:
    """Refuse a model other than the index's (`have`, as `expected_model` gives it) up front."""
    if embedder is not None:
        check_model(folder, have, embedder.fingerprint)
    elif model is not None or backend is not None:
        # Compare the files before loading torch: the digests need nothing else.
        source = embedding.resolve(model or model_to_load(folder, have))
        asked_backend = embedding.vector_family(backend) if backend not in (None, "auto") else have.backend
        sha256, files = embedding.weights_sha256(source), pipeline(source.path)
        same_pipeline = not have.pipeline or files.digest == have.pipeline
        if (sha256, asked_backend) != (have.sha256, have.backend) or not same_pipeline:
            asked = f"{source.name} ({asked_backend}, sha256 {sha256[:12]}, pipeline {files.digest[:12]})"
            raise _mismatch(folder, have, asked, files.files)


def expected_model(recorded: Fingerprint) -> Fingerprint:
    """The fingerprint an index's model must match: `recorded`, with the pipeline of the
    folder it was built from where it recorded none (a bundled or local model whose
    weights are still the recorded ones)."""
    if recorded.pipeline:
        return recorded
    folder = _built_from(recorded)
    try:
        if folder is None or weights_sha256(folder) != recorded.sha256:
            return recorded
    except ModelError:  # no weights there any more
        return recorded
    files = pipeline(folder)
    return replace(recorded, pipeline=files.digest, pipeline_files=files.files)


def _built_from(recorded: Fingerprint) -> Path | None:
    if recorded.source == "bundled":
        try:
            return embedding.resolve(None).path
        except ModelError:  # the package is gone or its weights changed: nothing to compare with
            return None
    if recorded.source.startswith("local:"):
        path = Path(recorded.source.removeprefix("local:"))
        return path if path.is_dir() else None
    return None  # a hub model: finding its files may mean downloading them


def model_to_load(folder: Path, recorded: Fingerprint) -> str:
    """What to load an index's own model from: its folder, or its name."""
    if not recorded.source.startswith("local:"):
        return recorded.name
    path = recorded.source.removeprefix("local:")
    if not Path(path).is_dir():
        raise ModelError(
            f"{folder} was built with the model folder {path}, which is not there any more; "
            "pass --model with the folder's new place (the same model, or it is refused)"
        )
    return path


def with_pipeline(manifest: Manifest) -> Manifest:
    """The manifest of an index that records no pipeline digest, with the digest of the
    folder it was built from, where `expected_model` finds it (never a digest merely
    asked for); the manifest itself where there is nothing to add."""
    recorded = manifest.model
    if recorded.pipeline:
        return manifest
    expected = expected_model(recorded)
    return replace(manifest, model=expected) if expected.pipeline else manifest


def load_model(
    folder: Path,
    recorded: Fingerprint,
    model: str | None = None,
    backend: str | None = None,
    device: str | None = None,
) -> embedding.Embedder:
    """The index's own model: from `model` (its folder, perhaps moved) or where it was built
    from, with `backend` or the default engine of its family, checked against `recorded`.

    A torch-family index is queried with the default engine (fp32 ONNX when installed: the
    same vectors, and no torch import on a cold query; torch where ONNX cannot run the
    model), unless a backend or a GPU `device` was asked for."""
    expected = expected_model(recorded)
    family = None if expected.backend == "torch" else expected.backend
    loaded = embedding.load(model or model_to_load(folder, expected), backend or family, device)
    check_model(folder, expected, loaded.fingerprint)
    return loaded


def _mismatch(
    folder: Path, have: Fingerprint, asked: str, asked_files: tuple[tuple[str, str], ...]
) -> ModelMismatchError:
    differ = ""
    if have.pipeline_files and asked_files:
        mine, theirs = dict(have.pipeline_files), dict(asked_files)
        names = sorted(n for n in mine.keys() | theirs.keys() if mine.get(n) != theirs.get(n))
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            differ = f" ({shown} {'differs' if len(names) == 1 else 'differ'})"
    return ModelMismatchError(
        f"{folder} was built with {have.describe()}, not {asked}{differ}; "
        "query it with its own model, or build a new index"
    )
