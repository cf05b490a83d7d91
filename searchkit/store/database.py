"""`Store`: one open ``index.db`` and the reads and writes of its rows (tables: __init__.py);
the staging of an ingest and its commit into ``items`` are staging.py's.

It knows rows, never FAISS. Metadata filters arrive compiled (filters.py): SQL with
every value bound.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from searchkit._sqlite import sqlite_utils
from searchkit.errors import CorruptIndexError
from searchkit.filters import Where
from searchkit.metrics import Matrix
from searchkit.store import fields, fulltext
from searchkit.store.binding import chunks as _chunks
from searchkit.store.catalog import Catalog
from searchkit.store.damage import damaged, guarded
from searchkit.store.opening import open_database, writable
from searchkit.store.rows import RowState, StoredItem
from searchkit.store.sources import Sources
from searchkit.store.staging import Staging

__all__ = ["Store"]

# iter_items' rows, each with its embedding (a join, paged by the items' id).
_ITEMS_WITH_EMBEDDINGS = "items JOIN embeddings USING (id)"


class Store(Staging, Catalog, Sources):
    """An open ``index.db``; WAL mode, durable commits. One connection per thread that uses
    it, so that each thread's reads are a snapshot of their own, taken and used without
    waiting for another thread's (SQLite connections are not to be shared mid-transaction)."""

    def __init__(self, path: Path, dimension: int | None = None, create: bool = False) -> None:
        """Open the database (or create it); `dimension` defaults to the one in ``config``."""
        self.path = path
        self.read_only = not create and not writable(path)  # then searches work, writes fail
        first, self.dimension = open_database(path, dimension, create, self.read_only)
        self._local = threading.local()
        self._local.db = first
        self._connections = [first]
        self._connecting = threading.Lock()

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection (opened on its first use)."""
        db: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if db is None:
            db, _ = open_database(self.path, self.dimension, False, self.read_only)
            with self._connecting:
                self._connections.append(db)
            self._local.db = db
        return db

    def close(self) -> None:
        with self._connecting:
            for db in self._connections:
                db.conn.close()
            self._connections.clear()

    # --- reads -----------------------------------------------------------------

    @property
    @guarded
    def generation(self) -> int:
        row = self.db.execute("SELECT value FROM state WHERE name = 'generation'").fetchone()
        return int(row[0])

    @property
    @guarded
    def config(self) -> dict[str, Any]:
        row = self.db.execute("SELECT value FROM state WHERE name = 'config'").fetchone()
        value: dict[str, Any] = json.loads(row[0])
        return value

    @guarded
    def set_config(self, config: dict[str, Any]) -> None:
        """Record the index's configuration; a change is a write (bumps the generation)."""
        with self.db.atomic():
            self.db.execute(
                "UPDATE state SET value = ? WHERE name = 'config'", (json.dumps(config, sort_keys=True),)
            )
            self._bump()

    @guarded
    def integrity(self) -> str:
        """'ok', or SQLite's first complaint about the file."""
        return str(self.db.execute("PRAGMA quick_check").fetchone()[0])

    @guarded
    def ids(self) -> np.ndarray:
        rows = self.db.execute("SELECT id FROM items ORDER BY id").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    @guarded
    def malformed_embeddings(self) -> list[int]:
        """Ids of rows whose embedding is missing, or not `dimension` float32 values."""
        sql = (
            "SELECT items.id FROM items LEFT JOIN embeddings AS e ON e.id = items.id"
            " WHERE e.id IS NULL OR typeof(e.embedding) != 'blob' OR length(e.embedding) != ?"
        )
        return [row[0] for row in self.db.execute(sql, (self.dimension * 4,))]

    @guarded
    def count(self) -> int:
        """The number of items: a counter the triggers keep (m004), not a scan."""
        return self._counter("items")

    @guarded
    def truncated_count(self) -> int:
        return self._counter("truncated")

    def _counter(self, name: str) -> int:
        return int(self.db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()[0])

    @guarded
    def counted(self) -> dict[str, int]:
        """The counts by scanning ``items``, to check the counters against (check)."""
        sql = "SELECT count(*), coalesce(sum(truncated != 0), 0) FROM items"
        items, truncated = self.db.execute(sql).fetchone()
        return {"items": int(items), "truncated": int(truncated)}

    @guarded
    def counters(self) -> dict[str, int]:
        return {"items": self._counter("items"), "truncated": self._counter("truncated")}

    @guarded
    def recount(self) -> None:
        """Set the counters to the counts (check --repair)."""
        with self.db.atomic():
            for name, value in self.counted().items():
                self.db.execute("UPDATE state SET value = ? WHERE name = ?", (str(value), name))

    @guarded
    def states_for_keys(self, keys: Sequence[str]) -> dict[str, RowState]:
        """Text hash, metadata, source, truncation and origin of each of `keys` already in ``items``."""
        found: dict[str, RowState] = {}
        for chunk in _chunks(list(keys)):
            marks = ",".join("?" * len(chunk))
            sql = (
                "SELECT key, content_hash, metadata, source, truncated, origin"
                f" FROM items WHERE key IN ({marks})"
            )
            for key, digest, metadata, source, truncated, origin in self.db.execute(sql, chunk):
                found[key] = RowState(digest, metadata, source, bool(truncated), origin)
        return found

    @guarded
    def embeddings_for_hashes(self, hashes: Sequence[str]) -> dict[str, bytes]:
        """A stored embedding (from items or pending) for each known content hash."""
        found: dict[str, bytes] = {}
        for chunk in _chunks(list(set(hashes))):
            marks = ",".join("?" * len(chunk))
            for sql in (
                "SELECT i.content_hash, e.embedding FROM items AS i JOIN embeddings AS e ON e.id = i.id"
                f" WHERE i.content_hash IN ({marks})",
                f"SELECT content_hash, embedding FROM pending WHERE content_hash IN ({marks})",
            ):
                for digest, blob in self.db.execute(sql, chunk):
                    found.setdefault(digest, blob)
        return found

    @guarded
    def items_by_ids(self, ids: Sequence[int]) -> dict[int, StoredItem]:
        rows: dict[int, StoredItem] = {}
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, key, text, metadata FROM items WHERE id IN ({marks})"
            for id_, key, text, metadata in self.db.execute(sql, chunk):
                rows[id_] = StoredItem(id_, key, text, json.loads(metadata))
        return rows

    @guarded
    def embeddings_by_ids(self, ids: Sequence[int]) -> dict[int, Matrix]:
        found: dict[int, Matrix] = {}
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, embedding FROM embeddings WHERE id IN ({marks})"
            for id_, blob in self.db.execute(sql, chunk):
                found[id_] = self._vector(blob)
        return found

    @guarded
    def matching_ids(self, where: Where) -> np.ndarray:
        """Ids of the items that the compiled filter selects, in id order."""
        sql, params = self.matching_sql(where)
        # One string of ids, parsed by NumPy: 10,000 rows as Python tuples cost 3 ms, this 1.
        text = self.db.execute(f"SELECT group_concat(id) FROM ({sql})", params).fetchone()[0]
        found = np.fromstring(text, dtype=np.int64, sep=",") if text else np.zeros(0, dtype=np.int64)
        return np.unique(found)

    def matching_sql(self, where: Where) -> tuple[str, tuple[Any, ...]]:
        """The query `matching_ids` runs (its ids may repeat): from the field indexes alone
        where they answer the whole filter; from them, then each row, where they answer a
        condition of it; else a scan of the covering index on metadata (m003), which
        holds only the metadata (the rows hold the texts too)."""
        if where.ids is not None:
            sql, params = where.ids
            return f"SELECT item AS id FROM ({sql})", params
        if where.seeks:
            return f"SELECT id FROM items WHERE {where.sql}", where.params
        return f"SELECT id FROM items INDEXED BY items_metadata WHERE {where.sql}", where.params

    @guarded
    def indexed_fields(self) -> list[str]:
        """The metadata fields with a field index, by name."""
        return fields.indexed_fields(self.db)

    @guarded
    def index_fields(self, names: list[str]) -> list[str]:
        """Index these metadata fields (filled from the items); return those that were not yet."""
        return fields.index_fields(self.db, names)

    @guarded
    def drop_fields(self, names: list[str]) -> list[str]:
        """Drop these field indexes; return those that existed."""
        return fields.drop_fields(self.db, names)

    @guarded
    def field_index_problem(self) -> str | None:
        """None when the field indexes agree with ``items``, else what is wrong with them."""
        return fields.field_index_problem(self.db)

    @guarded
    def rebuild_field_index(self) -> None:
        """Refill the field indexes (and their triggers) from ``items``."""
        fields.rebuild_field_index(self.db)

    @guarded
    def keyword(self, query: str, limit: int, where: Where | None = None) -> list[tuple[int, float]]:
        """(id, BM25 score) of the best `limit` items holding any term of `query` (its words,
        and its CJK runs' units: analysis.py), best first (fulltext.py)."""
        return fulltext.keyword(self.db, query, limit, where)

    @property
    @guarded
    def analysis(self) -> str:
        """The keyword analysis the index holds (analysis.ANALYSES; ``state`` 'analysis')."""
        return fulltext.index_analysis(self.db)

    @guarded
    def set_analysis(self, name: str) -> None:
        """Hold the keyword index in analysis `name`: every item re-analysed and the index
        rebuilt in one transaction (rows, vectors and the generation unchanged)."""
        fulltext.set_analysis(self.db, name)

    @guarded
    def fulltext_problem(self) -> str | None:
        """None when the keyword index agrees with ``items``, else what is wrong with it."""
        return fulltext.fulltext_problem(self.db)

    @guarded
    def rebuild_fulltext(self) -> None:
        """Rebuild the keyword index (and its triggers) from ``items``."""
        fulltext.rebuild_fulltext(self.db)

    @guarded
    def iter_embeddings(
        self, ids: Sequence[int] | npt.NDArray[np.int64] | None = None, batch: int = 4096
    ) -> Iterator[tuple[np.ndarray, Matrix]]:
        """(ids, vectors) in batches: of every item, or of the given ids."""
        if ids is None:
            for rows in self._pages("id, embedding", batch, table="embeddings"):
                yield self._batch(rows)
        else:
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT id, embedding FROM embeddings WHERE id IN ({marks}) ORDER BY id"
                rows = self.db.execute(sql, chunk).fetchall()
                if rows:
                    yield self._batch(rows)

    @guarded
    def sample_embeddings(self, n: int) -> Matrix:
        """Up to `n` embeddings drawn at random (to train quantisers on)."""
        # Ids first: sorting whole rows by random() would sort every embedding blob.
        ids = [r[0] for r in self.db.execute("SELECT id FROM items ORDER BY random() LIMIT ?", (n,))]
        batches = [vectors for _, vectors in self.iter_embeddings(ids)]
        return np.concatenate(batches) if batches else np.zeros((0, self.dimension), dtype=np.float32)

    @guarded
    def iter_items(self, batch: int = 1000) -> Iterator[tuple[str, str, dict[str, Any], bytes]]:
        """(key, text, metadata, embedding bytes) of every item, in id order."""
        for rows in self._pages("id, key, text, metadata, embedding", batch, table=_ITEMS_WITH_EMBEDDINGS):
            for _, key, text, metadata, blob in rows:
                yield key, text, json.loads(metadata), blob

    def _pages(self, columns: str, batch: int, table: str = "items") -> Iterator[list[Any]]:
        """Every item's `columns` (the first must be ``id``), `batch` rows at a time, in id
        order: each page starts after the last id of the one before, never at an OFFSET."""
        last = 0
        while rows := self.db.execute(
            f"SELECT {columns} FROM {table} WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
        ).fetchall():
            last = rows[-1][0]
            yield rows

    def _vector(self, blob: bytes) -> Matrix:
        if not isinstance(blob, bytes) or len(blob) != self.dimension * 4:
            raise CorruptIndexError(
                f"{self.path}: a stored embedding is not {self.dimension} float32 values; "
                "run searchkit check --repair"
            )
        return np.frombuffer(blob, dtype="<f4").astype(np.float32)

    def _batch(self, rows: list[tuple[int, bytes]]) -> tuple[np.ndarray, Matrix]:
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vectors = np.stack([self._vector(r[1]) for r in rows])
        return ids, vectors

    # --- writes ----------------------------------------------------------------

    @guarded
    def piece_keys(self, parent: str) -> set[str]:
        """The keys stored for `parent` split into pieces (``PARENT#N``), and `parent` itself."""
        rows = self.db.execute(
            "SELECT key FROM items WHERE key = ? OR (key > ? AND key < ?)",
            (parent, parent + "#", parent + "$"),  # a range on the key index: "$" follows "#"
        )
        prefix = len(parent) + 1
        return {key for (key,) in rows if key == parent or key[prefix:].isdigit()}

    @guarded
    def delete(self, keys: Sequence[str]) -> list[int]:
        """Delete items by key in one transaction; return the ids that existed."""
        ids: list[int] = []
        with self.db.atomic():
            for chunk in _chunks(list(keys)):
                marks = ",".join("?" * len(chunk))
                ids += [
                    row[0]
                    for row in self.db.execute(
                        f"DELETE FROM items WHERE key IN ({marks}) RETURNING id", chunk
                    )
                ]
            if ids:
                self._bump()
        return ids

    @guarded
    def replace_embeddings(self, vectors: dict[int, bytes]) -> None:
        """Swap the embeddings of existing rows (check --repair re-embeds damaged ones)."""
        with self.db.atomic():
            gen = self._written_gen()
            for id_, blob in vectors.items():
                sql = (
                    "INSERT INTO embeddings (id, embedding, gen) VALUES (?, ?, ?) ON CONFLICT (id)"
                    " DO UPDATE SET embedding = excluded.embedding, gen = excluded.gen"
                )
                self.db.execute(sql, (id_, blob, gen))
            self._bump()

    @guarded
    def reclaim(self) -> None:
        """Give free pages back to the filesystem, so deletes shrink the file (outside a transaction)."""
        # executescript steps the pragma to the end; execute() frees only one page per step.
        self.db.conn.executescript("PRAGMA incremental_vacuum;")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction around several calls: all of them commit, or none.

        Also a consistent snapshot for reads (WAL): rows and ``generation`` from one moment.
        """
        try:
            with self.db.atomic():
                yield
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:
                raise
            raise damaged(exc, self.path) from None

    def _bump(self) -> None:
        self.db.execute("UPDATE state SET value = CAST(value AS INTEGER) + 1 WHERE name = 'generation'")
