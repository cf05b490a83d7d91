"""What every push target implements: a writer of one collection of one engine.

`push` (``__init__.py``) drives a `Writer` in this order, and each engine's module
(``milvus.py``, ``lancedb.py``, ``qdrant.py``) is one such writer:

    exists() -> drop() (only with replace) -> create(dim, metric, exact)
             -> write(batch) ... -> finish() -> close()

and on a failure after ``create``, ``drop()``, so that no half-pushed collection is left.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from searchkit.errors import StorageError, UsageError

__all__ = ["Batch", "Writer", "engine_errors", "make_folder", "missing_library"]


@dataclass(frozen=True)
class Batch:
    """Some items of an index, in id order: the stored vectors as they are in the index."""

    ids: list[str]
    texts: list[str]
    metadata: list[dict[str, Any]]
    vectors: np.ndarray  # (len(ids), dimension) float32

    def __len__(self) -> int:
        return len(self.ids)


class Writer(Protocol):
    """One collection (Milvus), table (LanceDB) or collection (Qdrant) being written."""

    def exists(self) -> bool:
        """Whether the collection is there already."""

    def drop(self) -> None:
        """Remove the collection and what it holds."""

    def create(self, dimension: int, metric: str, exact: bool) -> None:
        """Make the empty collection for vectors of `dimension`, searched by `metric` (the
        engine's own name for it); `exact` when the index searched exactly (a flat index)."""

    def write(self, batch: Batch) -> None:
        """Add the batch's items (their ids are new to the collection)."""

    def finish(self) -> list[str]:
        """Make what was written searchable (build its index, load it); notes for the user."""

    def close(self) -> None:
        """Let go of the client (and of whatever it started)."""


def missing_library(engine: str, packages: str) -> UsageError:
    return UsageError(f"pushing to {engine} needs {packages}: pip install 'searchkit[push]'")


def make_folder(folder: Path, target: str) -> None:
    """The folder a local engine writes in, made here so that an unwritable one is one line."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StorageError(f"{target}: cannot write there: {folder} is a file, not a folder") from None
    except OSError as exc:
        raise StorageError(f"{target}: cannot write there: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StorageError(f"{target}: cannot write there: {folder} is read-only to this user")


@contextlib.contextmanager
def engine_errors(target: str, *kinds: type[BaseException]) -> Iterator[None]:
    """An engine's refusal of `kinds` as one line naming the target (a StorageError)."""
    try:
        yield
    except kinds as exc:
        raise StorageError(f"{target}: {one_line(exc)}") from exc


def one_line(exc: BaseException) -> str:
    # MilvusException keeps the server's words in .message; str() wraps them in a repr.
    text = str(getattr(exc, "message", "") or exc or type(exc).__name__)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    return first if len(first) <= 300 else first[:297] + "..."
