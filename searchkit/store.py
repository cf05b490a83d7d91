"""The SQLite store (through sqlite-utils): the source of truth of an index.

It knows rows, never FAISS. Tables:

- ``items``: one row per item. ``id`` is the integer the vector index holds
  (AUTOINCREMENT, so a deleted id is never handed out again); ``key`` is the
  user's id; ``metadata`` is JSON; ``embedding`` is the model's float32 vector as
  little-endian bytes (raw, not normalised), so that the vectors can be rebuilt
  for any metric without embedding again.
- ``pending``: rows of an ingest in progress, committed batch by batch so that
  a crashed ingest can reuse their embeddings; ``apply`` moves one run's rows
  into ``items`` in a single transaction.
- ``state``: ``generation``, bumped by every committed change (the manifest
  records the generation its FAISS file reflects), and ``config``, the index's
  model fingerprint, metric and index type as JSON: the manifest can always be
  rebuilt from it.
- ``items_fts``: an FTS5 index over ``items.text`` for keyword search (BM25), kept in
  step with ``items`` by triggers (migrations.py).
- ``_searchkit_migrations``: the numbered schema migrations applied (migrations.py).

Metadata filters arrive compiled (filters.py): SQL with every value bound.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import sqlite_utils

from searchkit.errors import CorruptIndexError, StorageError
from searchkit.filters import NUMBER_FUNCTION, Where, as_number
from searchkit.metrics import Matrix
from searchkit.migrations import MIGRATIONS, statements

__all__ = ["PendingRow", "Store", "StoredItem"]

# SQLite's default limit on bound parameters is 32766 on current builds; stay far below.
_IN_CHUNK = 900


@dataclass(frozen=True)
class StoredItem:
    """One row of ``items`` as the service needs it to answer a query."""

    id: int
    key: str
    text: str
    metadata: dict[str, Any]
    embedding: Matrix


@dataclass(frozen=True)
class PendingRow:
    """An embedded item waiting in ``pending`` for its ingest to be applied."""

    key: str
    text: str
    metadata: dict[str, Any]
    content_hash: str
    source: str
    truncated: bool
    embedding: bytes


F = TypeVar("F", bound=Callable[..., Any])


def _damaged(exc: sqlite3.DatabaseError, path: Path) -> CorruptIndexError:
    return CorruptIndexError(f"{path}: the database is damaged ({exc}); restore it from a backup")


def guarded(fn: F) -> F:
    """Report a damaged database file as CorruptIndexError (lazy generators included).

    Only SQLITE_CORRUPT / SQLITE_NOTADB arrive as a bare ``sqlite3.DatabaseError``;
    its subclasses (OperationalError: full, locked, read-only) pass through.
    """

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(self: Store, *args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(self, *args, **kwargs)
            except sqlite3.DatabaseError as exc:
                if type(exc) is not sqlite3.DatabaseError:
                    raise
                raise _damaged(exc, self.path) from None

        return generator  # type: ignore[return-value]

    @functools.wraps(fn)
    def call(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:
                raise
            raise _damaged(exc, self.path) from None

    return call  # type: ignore[return-value]


class Store:
    """An open ``index.db``; one connection, WAL mode, durable commits."""

    def __init__(self, path: Path, dimension: int | None = None, create: bool = False) -> None:
        """Open the database (or create it); `dimension` defaults to the one in ``config``."""
        self.path = path
        if not create and not path.exists():
            raise CorruptIndexError(
                f"{path.parent}: {path.name} is missing, and with it every item; restore it from a backup"
            )
        conn: sqlite3.Connection | None = None
        try:
            new = not path.exists()
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
            if new:
                # Must precede the first table: lets deletes hand pages back to the filesystem.
                conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a write is on disk when commit returns, even across power loss.
            conn.execute("PRAGMA synchronous=FULL")
            conn.create_function(NUMBER_FUNCTION, 1, as_number, deterministic=True)
            self.db = sqlite_utils.Database(conn)
            self._migrate()
            self.dimension = dimension if dimension is not None else self._config_dimension()
        except sqlite3.OperationalError as exc:
            # Not damage: a read-only file that an older index's migration must write to,
            # or another process holding the write lock past the timeout.
            if conn is not None:
                conn.close()
            raise StorageError(
                f"{path}: cannot open the database for this searchkit ({exc}); "
                "open it once with write access, or retry when the writer is done"
            ) from None
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise CorruptIndexError(
                f"{path}: the database is damaged ({exc}); restore it from a backup"
            ) from None

    def close(self) -> None:
        self.db.conn.close()

    def _migrate(self) -> None:
        if self._applied() >= {name for name, _ in MIGRATIONS}:
            return
        # Two processes may open an older index at once: take the write lock first
        # (BEGIN IMMEDIATE), then look again, so that each migration runs exactly once.
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            applied = self._applied()
            for name, sql in MIGRATIONS:
                if name in applied:
                    continue
                for statement in statements(sql):
                    conn.execute(statement)
                if not self.db["_searchkit_migrations"].exists():
                    conn.execute(
                        "CREATE TABLE _searchkit_migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
                    )
                conn.execute(
                    "INSERT INTO _searchkit_migrations (name, applied_at) VALUES (?, ?)",
                    (name, _now_sql(self.db)),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _applied(self) -> set[str]:
        if not self.db["_searchkit_migrations"].exists():
            return set()
        return {row[0] for row in self.db.execute("SELECT name FROM _searchkit_migrations")}

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

    def _config_dimension(self) -> int:
        return int(self.config.get("model", {}).get("dimension", 0))

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
        """Ids of rows whose embedding is not `dimension` float32 values."""
        sql = "SELECT id FROM items WHERE length(embedding) != ? OR typeof(embedding) != 'blob'"
        return [row[0] for row in self.db.execute(sql, (self.dimension * 4,))]

    @guarded
    def pending_total(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM pending").fetchone()[0])

    @guarded
    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM items").fetchone()[0])

    @guarded
    def truncated_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM items WHERE truncated").fetchone()[0])

    @guarded
    def hashes_for_keys(self, keys: Sequence[str]) -> dict[str, str]:
        """content_hash of each of `keys` already in ``items``."""
        found: dict[str, str] = {}
        for chunk in _chunks(list(keys)):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT key, content_hash FROM items WHERE key IN ({marks})"
            found.update(dict(self.db.execute(sql, chunk).fetchall()))
        return found

    @guarded
    def embeddings_for_hashes(self, hashes: Sequence[str]) -> dict[str, bytes]:
        """A stored embedding (from items or pending) for each known content hash."""
        found: dict[str, bytes] = {}
        for chunk in _chunks(list(set(hashes))):
            marks = ",".join("?" * len(chunk))
            for table in ("items", "pending"):
                sql = f"SELECT content_hash, embedding FROM {table} WHERE content_hash IN ({marks})"
                for digest, blob in self.db.execute(sql, chunk):
                    found.setdefault(digest, blob)
        return found

    @guarded
    def items_by_ids(self, ids: Sequence[int]) -> dict[int, StoredItem]:
        rows: dict[int, StoredItem] = {}
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, key, text, metadata, embedding FROM items WHERE id IN ({marks})"
            for id_, key, text, metadata, blob in self.db.execute(sql, chunk):
                rows[id_] = StoredItem(id_, key, text, json.loads(metadata), self._vector(blob))
        return rows

    @guarded
    def embeddings_by_ids(self, ids: Sequence[int]) -> dict[int, Matrix]:
        found: dict[int, Matrix] = {}
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            for id_, blob in self.db.execute(f"SELECT id, embedding FROM items WHERE id IN ({marks})", chunk):
                found[id_] = self._vector(blob)
        return found

    @guarded
    def matching_ids(self, where: Where) -> np.ndarray:
        """Ids of the items that the compiled filter selects, in id order."""
        # Through the covering index on metadata (m003): the table's rows carry the embeddings.
        sql = f"SELECT id FROM items INDEXED BY items_metadata WHERE {where.sql}"
        rows = self.db.execute(sql, where.params).fetchall()
        return np.sort(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))

    @guarded
    def keyword(self, query: str, limit: int, where: Where | None = None) -> list[tuple[int, float]]:
        """(id, BM25 score) of the best `limit` items holding any word of `query`, best first.

        Scores are FTS5's ``bm25()`` negated, so that higher is better. The words are
        quoted one by one: FTS5 syntax in a query (``"``, ``*``, ``NEAR``, ``-``) is text.
        """
        expression = fts_query(query)
        if not expression or limit <= 0:
            return []
        sql = (
            "SELECT items_fts.rowid, bm25(items_fts) FROM items_fts JOIN items ON items.id = items_fts.rowid"
            f" WHERE items_fts MATCH ?{f' AND {where.sql}' if where else ''}"
            " ORDER BY bm25(items_fts), items_fts.rowid LIMIT ?"
        )
        params = (expression, *(where.params if where else ()), limit)
        return [(int(id_), -float(score)) for id_, score in self.db.execute(sql, params)]

    @guarded
    def fulltext_problem(self) -> str | None:
        """None when the keyword index agrees with ``items``, else what is wrong with it."""
        try:
            with self.db.atomic():
                self.db.execute("INSERT INTO items_fts (items_fts, rank) VALUES ('integrity-check', 1)")
        except sqlite3.DatabaseError as exc:
            return str(exc)
        return None

    @guarded
    def rebuild_fulltext(self) -> None:
        """Rebuild the keyword index (and its triggers) from ``items``."""
        with self.db.atomic():
            for trigger in ("items_fts_insert", "items_fts_delete", "items_fts_update"):
                self.db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            self.db.execute("DROP TABLE IF EXISTS items_fts")
            for statement in statements(dict(MIGRATIONS)["m002_fulltext"]):
                self.db.execute(statement)

    @guarded
    def iter_embeddings(
        self, ids: Sequence[int] | npt.NDArray[np.int64] | None = None, batch: int = 4096
    ) -> Iterator[tuple[np.ndarray, Matrix]]:
        """(ids, vectors) in batches: of every item, or of the given ids."""
        if ids is None:
            last = 0
            while True:
                rows = self.db.execute(
                    "SELECT id, embedding FROM items WHERE id > ? ORDER BY id LIMIT ?",
                    (last, batch),
                ).fetchall()
                if not rows:
                    return
                last = rows[-1][0]
                yield self._batch(rows)
        else:
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT id, embedding FROM items WHERE id IN ({marks}) ORDER BY id"
                rows = self.db.execute(sql, chunk).fetchall()
                if rows:
                    yield self._batch(rows)

    @guarded
    def sample_embeddings(self, n: int) -> Matrix:
        """Up to `n` embeddings drawn at random (to train quantisers on)."""
        # Ids first: sorting whole rows by random() would sort every embedding blob.
        ids = [r[0] for r in self.db.execute("SELECT id FROM items ORDER BY random() LIMIT ?", (n,))]
        out = np.zeros((len(ids), self.dimension), dtype=np.float32)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT embedding FROM items WHERE id IN ({marks})", chunk)
            for i, (blob,) in enumerate(rows, start=start):
                out[i] = self._vector(blob)
        return out

    @guarded
    def iter_items(self, batch: int = 1000) -> Iterator[tuple[str, str, dict[str, Any], bytes]]:
        """(key, text, metadata, embedding bytes) of every item, in id order."""
        last = 0
        while True:
            rows = self.db.execute(
                "SELECT id, key, text, metadata, embedding FROM items WHERE id > ? ORDER BY id LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for _, key, text, metadata, blob in rows:
                yield key, text, json.loads(metadata), blob

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
    def stage(self, run: str, rows: Iterable[PendingRow]) -> None:
        """Commit a batch of embedded rows to ``pending`` under `run` (last key wins)."""
        records = [
            {
                "key": r.key,
                "run": run,
                "text": r.text,
                "metadata": _dump(r.metadata),
                "content_hash": r.content_hash,
                "source": r.source,
                "truncated": int(r.truncated),
                "embedding": r.embedding,
            }
            for r in rows
        ]
        with self.db.atomic():
            self.db.table("pending").insert_all(records, replace=True)

    @guarded
    def pending_keys(self, run: str, keys: Sequence[str]) -> set[str]:
        """Which of `keys` this run has staged already (duplicates within one input)."""
        found: set[str] = set()
        for chunk in _chunks(list(keys)):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT key FROM pending WHERE run = ? AND key IN ({marks})"
            found.update(row[0] for row in self.db.execute(sql, [run, *chunk]))
        return found

    @guarded
    def pending_count(self, run: str) -> int:
        return int(self.db.execute("SELECT count(*) FROM pending WHERE run = ?", (run,)).fetchone()[0])

    @guarded
    def apply(self, run: str) -> npt.NDArray[np.int64]:
        """Move `run`'s pending rows into ``items`` in one transaction; return their ids
        (an array: a million Python ints would cost 36 MB).

        An existing key keeps its id (the vector index swaps the vector); a new key
        gets a fresh one. Pending rows of other (crashed) runs are dropped with it.
        """
        with self.db.atomic():
            self.db.execute(
                """
                UPDATE items SET text = p.text, metadata = p.metadata,
                    content_hash = p.content_hash, source = p.source,
                    truncated = p.truncated, embedding = p.embedding,
                    updated = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
                FROM pending AS p WHERE p.run = ? AND items.key = p.key
                """,
                (run,),
            )
            self.db.execute(
                """
                INSERT INTO items (key, text, metadata, content_hash, source, truncated, embedding)
                SELECT key, text, metadata, content_hash, source, truncated, embedding
                FROM pending WHERE run = ? AND key NOT IN (SELECT key FROM items)
                ORDER BY rowid
                """,
                (run,),
            )
            ids = np.fromiter(
                (
                    row[0]
                    for row in self.db.execute(
                        "SELECT items.id FROM items JOIN pending USING (key) WHERE pending.run = ?"
                        " ORDER BY items.id",
                        (run,),
                    )
                ),
                dtype=np.int64,
            )
            self.db.execute("DELETE FROM pending")
            self._bump()
        return ids

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
            for id_, blob in vectors.items():
                self.db.execute("UPDATE items SET embedding = ? WHERE id = ?", (blob, id_))
            self._bump()

    @guarded
    def clear_pending(self) -> None:
        with self.db.atomic():
            self.db.execute("DELETE FROM pending")
        self.reclaim()

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
            raise _damaged(exc, self.path) from None

    def _bump(self) -> None:
        self.db.execute("UPDATE state SET value = CAST(value AS INTEGER) + 1 WHERE name = 'generation'")


# Words as FTS5's unicode61 tokenizer sees them; more than this many are dropped (the cost
# of an OR query grows with each word, its benefit does not).
_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_WORDS = 64


def fts_query(text: str) -> str:
    """An FTS5 expression matching any word of `text`: each word a quoted string, so
    nothing in it is FTS5 syntax."""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))[:_MAX_WORDS]
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


def _dump(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata, ensure_ascii=False, sort_keys=True)


def _now_sql(db: sqlite_utils.Database) -> str:
    return str(db.execute("SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 'now')").fetchone()[0])


def _chunks(values: Sequence[Any] | npt.NDArray[Any]) -> Iterator[list[Any]]:
    """Plain Python values (sqlite3 binds no numpy ints), a bounded number at a time."""
    for start in range(0, len(values), _IN_CHUNK):
        part = values[start : start + _IN_CHUNK]
        yield part.tolist() if isinstance(part, np.ndarray) else list(part)
