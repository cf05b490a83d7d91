"""An index answers only to its own model: the checks that refuse any other."""

from __future__ import annotations

from pathlib import Path

from searchkit import embedder as embedding
from searchkit.errors import ModelMismatchError
from searchkit.types import Fingerprint

__all__ = ["check_asked_model", "check_model"]


def check_model(folder: Path, have: Fingerprint, asked: Fingerprint) -> None:
    if have.identity() != asked.identity():
        raise ModelMismatchError(
            f"{folder} was built with {have.describe()}, not {asked.describe()}; "
            "query it with its own model, or build a new index"
        )


def check_asked_model(
    folder: Path,
    have: Fingerprint,
    model: str | None,
    backend: str | None,
    embedder: embedding.Embedder | None,
) -> None:
    if embedder is not None:
        check_model(folder, have, embedder.fingerprint)
    elif model is not None or backend is not None:
        # Compare weights before loading torch: the sha256 needs only the files.
        source = embedding.resolve(model or have.name)
        asked_backend = embedding.vector_family(backend) if backend not in (None, "auto") else have.backend
        if (embedding.weights_sha256(source), asked_backend) != (have.sha256, have.backend):
            raise ModelMismatchError(
                f"{folder} was built with {have.describe()}, not {source.name} "
                f"({asked_backend}); query it with its own model, or build a new index"
            )
