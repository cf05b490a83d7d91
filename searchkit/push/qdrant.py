"""Qdrant: ``qdrant:DIR`` (qdrant-client's local mode) or ``qdrant+http://HOST:PORT`` (a server).

Qdrant's point ids are unsigned integers or UUIDs, never searchkit's string ids: a point's
id is `point_id` of the item's id (a UUID5, the same on every push), and the payload keeps
``id`` (searchkit's), ``text`` and ``metadata``, so a filter names a field as
``metadata.FIELD``. The collection's distance is the mapped metric; Qdrant reports the
euclidean and manhattan distances themselves (lower is nearer), cosine and dot as scores.
A server builds its HNSW index by itself as points arrive; local mode searches exactly.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from searchkit.push.base import Batch, engine_errors, make_folder, missing_library

__all__ = ["POINT_NAMESPACE", "QdrantWriter", "connect", "point_id"]

POINT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "searchkit:push:qdrant")


def point_id(key: str) -> str:
    """The Qdrant point id of the searchkit item `key`."""
    return str(uuid.uuid5(POINT_NAMESPACE, key))


def _errors() -> tuple[type[BaseException], ...]:
    from qdrant_client.common.client_exceptions import QdrantException
    from qdrant_client.http.exceptions import ApiException

    # Local mode refuses bad input with ValueError, a folder another client holds with
    # RuntimeError; a server's answers and unreachable servers are ApiExceptions.
    return (ApiException, QdrantException, ValueError, RuntimeError, OSError)


class QdrantWriter:
    """One Qdrant collection being pushed to."""

    def __init__(self, client: Any, target: str, collection: str) -> None:
        self.client = client
        self.target = target
        self.collection = collection

    def exists(self) -> bool:
        with engine_errors(self.target, *_errors()):
            return bool(self.client.collection_exists(self.collection))

    def drop(self) -> None:
        with engine_errors(self.target, *_errors()):
            self.client.delete_collection(self.collection)

    def create(self, dimension: int, metric: str, exact: bool) -> None:
        from qdrant_client import models

        config = models.VectorParams(size=dimension, distance=models.Distance(metric))
        with engine_errors(self.target, *_errors()):
            self.client.create_collection(self.collection, vectors_config=config)

    def write(self, batch: Batch) -> None:
        from qdrant_client import models

        points = models.Batch(
            ids=[point_id(key) for key in batch.ids],
            vectors=batch.vectors.tolist(),
            payloads=[
                {"id": key, "text": text, "metadata": metadata}
                for key, text, metadata in zip(batch.ids, batch.texts, batch.metadata, strict=True)
            ],
        )
        with engine_errors(self.target, *_errors()):
            self.client.upsert(self.collection, points=points, wait=True)

    def finish(self) -> list[str]:
        return []

    def close(self) -> None:
        with engine_errors(self.target, *_errors()):
            self.client.close()  # local mode: lets go of the folder's lock


def connect(location: str, target: str, collection: str) -> QdrantWriter:
    """A client of the local Qdrant folder `location`, or of the server at that URL."""
    try:
        from qdrant_client import QdrantClient
    except ImportError:
        raise missing_library("Qdrant", "qdrant-client") from None
    server = location.startswith(("http://", "https://"))
    if not server:
        make_folder(Path(location), target)
    with engine_errors(target, *_errors()):
        if server:
            # Its version check runs in a thread and warns, racing the one-line error of an
            # unreachable server; the calls push makes are the same in every Qdrant 1.x.
            client = QdrantClient(url=location, check_compatibility=False)
        else:
            client = QdrantClient(path=location)
    return QdrantWriter(client, target, collection)
