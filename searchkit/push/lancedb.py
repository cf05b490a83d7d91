"""LanceDB (``lancedb:DIR``) through ``lancedb.connect``.

A table of ``id`` (string, searchkit's own id), ``text``, ``metadata`` (the item's metadata as
a JSON string: items need not share fields, as a struct column would make them) and
``vector`` (fixed-size list of float32). LanceDB has no metric per table: a search names it,
``table.search(q).distance_type("cosine")``, so the schema's metadata records the one to use
(``searchkit.distance_type``). No vector index is built: LanceDB searches without one by
brute force, exactly, which is right for small tables; the note says how to build one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from searchkit.push.base import Batch, engine_errors, make_folder, missing_library

__all__ = ["LanceWriter", "connect"]

# What LanceDB's Python and Rust layers raise when a table cannot be made or written.
_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, RuntimeError)


class LanceWriter:
    """One LanceDB table being pushed to."""

    def __init__(self, db: Any, target: str, collection: str) -> None:
        self.db = db
        self.target = target
        self.collection = collection
        self.schema: Any = None
        self.table: Any = None
        self.metric = ""

    def exists(self) -> bool:
        token = None
        with engine_errors(self.target, *_ERRORS):
            while True:  # the listing comes in pages
                page = self.db.list_tables(page_token=token)
                if self.collection in page.tables:
                    return True
                if not (token := page.page_token):
                    return False

    def drop(self) -> None:
        with engine_errors(self.target, *_ERRORS):
            self.db.drop_table(self.collection, ignore_missing=True)

    def create(self, dimension: int, metric: str, exact: bool) -> None:
        import pyarrow as pa

        self.metric = metric
        self.schema = pa.schema(
            [
                pa.field("id", pa.string(), nullable=False),
                pa.field("text", pa.string()),
                pa.field("metadata", pa.string()),
                pa.field("vector", pa.list_(pa.float32(), dimension)),
            ],
            metadata={"searchkit.distance_type": metric},
        )
        with engine_errors(self.target, *_ERRORS):
            self.table = self.db.create_table(self.collection, schema=self.schema)

    def write(self, batch: Batch) -> None:
        import pyarrow as pa

        dimension = batch.vectors.shape[1]
        columns = [
            pa.array(batch.ids, pa.string()),
            pa.array(batch.texts, pa.string()),
            pa.array([json.dumps(m, ensure_ascii=False) for m in batch.metadata], pa.string()),
            pa.FixedSizeListArray.from_arrays(pa.array(batch.vectors.reshape(-1)), dimension),
        ]
        with engine_errors(self.target, *_ERRORS):
            self.table.add(pa.RecordBatch.from_arrays(columns, schema=self.schema))

    def finish(self) -> list[str]:
        return [
            f"LanceDB searches table {self.collection!r} by brute force (exact; no vector index); "
            f"search it with .distance_type({self.metric!r}), and for a large table build an index: "
            f"table.create_index(metric={self.metric!r}, vector_column_name='vector')"
        ]

    def close(self) -> None:
        self.table = None  # a local connection holds no process or lock to let go of


def connect(location: str, target: str, collection: str) -> LanceWriter:
    """A connection to the LanceDB database folder `location`."""
    try:
        import lancedb
        import pyarrow  # noqa: F401
    except ImportError:
        raise missing_library("LanceDB", "lancedb and pyarrow") from None
    make_folder(Path(location), target)
    with engine_errors(target, *_ERRORS):
        db = lancedb.connect(location)
    return LanceWriter(db, target, collection)
