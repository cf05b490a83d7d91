"""Milvus Lite (``milvus:PATH.db``) through pymilvus' ``MilvusClient``.

A collection of four fields: ``id`` (VARCHAR primary key, searchkit's own id), ``text``
(VARCHAR), ``metadata`` (JSON) and ``vector`` (FLOAT_VECTOR). The vector index is built once
every row is in, FLAT (exact) for a flat searchkit index and HNSW for the others, with the
mapped metric; then the collection is loaded, ready to search. Milvus' L2 is the squared
euclidean distance, IP the dot product.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from searchkit.push.base import Batch, engine_errors, make_folder, missing_library

__all__ = ["MilvusWriter", "connect"]

VARCHAR_MAX = 65_535  # the longest VARCHAR Milvus declares (bytes)
# pymilvus and Milvus Lite's server log every failed call (with a traceback) besides raising;
# the raised error becomes searchkit's one line, so their logs would only repeat it.
_LOGGERS = ("pymilvus", "milvus_lite")


class MilvusWriter:
    """One Milvus collection being pushed to."""

    def __init__(self, client: Any, target: str, collection: str) -> None:
        self.client = client
        self.target = target
        self.collection = collection
        self.metric = ""
        self.exact = True

    def exists(self) -> bool:
        with _errors(self.target):
            return bool(self.client.has_collection(self.collection))

    def drop(self) -> None:
        with _errors(self.target):
            self.client.drop_collection(self.collection)

    def create(self, dimension: int, metric: str, exact: bool) -> None:
        from pymilvus import DataType

        self.metric, self.exact = metric, exact
        with _errors(self.target):
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=VARCHAR_MAX)
            schema.add_field("text", DataType.VARCHAR, max_length=VARCHAR_MAX)
            schema.add_field("metadata", DataType.JSON)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
            self.client.create_collection(self.collection, schema=schema)

    def write(self, batch: Batch) -> None:
        rows = [
            {"id": key, "text": text, "metadata": metadata, "vector": vector}
            for key, text, metadata, vector in zip(
                batch.ids, batch.texts, batch.metadata, batch.vectors.tolist(), strict=True
            )
        ]
        with _errors(self.target):
            self.client.insert(self.collection, rows)

    def finish(self) -> list[str]:
        with _errors(self.target):
            self.client.flush(self.collection)
            params = self.client.prepare_index_params()
            kind = "FLAT" if self.exact else "HNSW"
            params.add_index(field_name="vector", index_type=kind, metric_type=self.metric)
            self.client.create_index(self.collection, params)
            self.client.load_collection(self.collection)
        return [
            f"Milvus Lite keeps collection {self.collection!r} loaded for this process only: "
            f"a client in another one calls load_collection({self.collection!r}) before it searches"
        ]

    def close(self) -> None:
        with _errors(self.target):
            self.client.close()


def connect(location: str, target: str, collection: str) -> MilvusWriter:
    """A client of the Milvus Lite database at `location` (a path ending in .db)."""
    try:
        import milvus_lite  # noqa: F401  pymilvus starts it for a .db path, and says little without it
        from pymilvus import MilvusClient
    except ImportError:
        raise missing_library("Milvus", "pymilvus and milvus-lite") from None
    make_folder(Path(location).parent, target)  # Milvus Lite makes the .db folder, not its parent
    with _errors(target):
        client = MilvusClient(location)
    return MilvusWriter(client, target, collection)


@contextlib.contextmanager
def _errors(target: str) -> Iterator[None]:
    from pymilvus.exceptions import MilvusException

    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        with engine_errors(target, MilvusException):
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
