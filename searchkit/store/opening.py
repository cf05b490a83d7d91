"""Opening ``index.db``: the connection's settings, the schema brought up to date, and
what a failure to open means (in use or read-only: StorageError; damaged: CorruptIndexError).

An index in a folder this process cannot write (a read-only mount, another user's folder)
opens read-only, so that it can still be searched, listed and checked: SQLite's ``mode=ro``
where the WAL's ``-shm`` file can be used, else ``immutable=1``, which SQLite may only be
told when nothing is writing the file. Nothing can while the folder is read-only to
everyone; an owner writing it while another user reads it with ``immutable`` is not
supported (SQLite would not see the owner's commits).
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from searchkit._sqlite import sqlite_utils
from searchkit.errors import CorruptIndexError, StorageError
from searchkit.filters import NUMBER_FUNCTION, as_number
from searchkit.migrations import is_current, migrate
from searchkit.store.damage import damaged

__all__ = ["open_database", "writable"]


def open_database(
    path: Path, dimension: int | None, create: bool, read_only: bool = False
) -> tuple[sqlite_utils.Database, int]:
    """Connect to `path` (created if `create`) and migrate it, or open it `read_only`
    (see `writable`); the dimension is `dimension`, or else the one recorded in ``config``."""
    if not create and not path.exists():
        raise CorruptIndexError(
            f"{path.parent}: {path.name} is missing, and with it every item; restore it from a backup"
        )
    if read_only:
        return _open(path, dimension, lambda: _connect_read_only(path), _require_current, _cannot_read)
    return _open(path, dimension, lambda: _connect(path), migrate, _cannot_open)


def _open(
    path: Path,
    dimension: int | None,
    connect: Callable[[], sqlite3.Connection],
    settle: Callable[[sqlite_utils.Database], None],
    cannot: Callable[[Path, sqlite3.OperationalError], str],
) -> tuple[sqlite_utils.Database, int]:
    """Connect, bring the schema to this searchkit (`settle`), and sort out failures:
    OperationalError is not damage (locked, read-only); other DatabaseErrors are."""
    conn: sqlite3.Connection | None = None
    try:
        conn = connect()
        conn.create_function(NUMBER_FUNCTION, 1, as_number, deterministic=True)
        db = sqlite_utils.Database(conn)
        settle(db)
        return db, dimension if dimension is not None else _config_dimension(db)
    except sqlite3.OperationalError as exc:
        if conn is not None:
            conn.close()
        raise StorageError(cannot(path, exc)) from None
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        raise damaged(exc, path) from None


def _connect(path: Path) -> sqlite3.Connection:
    new = not path.exists()
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    try:
        if new:
            # Must precede the first table: lets deletes hand pages back to the filesystem.
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a write is on disk when commit returns, even across power loss.
        conn.execute("PRAGMA synchronous=FULL")
    except BaseException:
        conn.close()
        raise
    return conn


def _cannot_open(path: Path, exc: sqlite3.OperationalError) -> str:
    # A file that an older index's migration must write to, or another process holding
    # the write lock past the timeout.
    return (
        f"{path}: cannot open the database for this searchkit ({exc}); "
        "open it once with write access, or retry when the writer is done"
    )


def writable(path: Path) -> bool:
    """Whether this process may write the database at `path` (else it opens read-only)."""
    # SQLite writes beside the file (-wal, -shm) even to read, so the folder counts too.
    return os.access(path.parent, os.W_OK) and os.access(path, os.W_OK)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to the database of a folder this process cannot write."""
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    # A -wal file means a writer has (or had) the database open: only mode=ro, which
    # reads its commits through -shm, is safe then. Without one, nothing is writing.
    in_use = path.with_name(path.name + "-wal").exists()
    return sqlite3.connect(uri if in_use else uri + "&immutable=1", uri=True, check_same_thread=False)


def _require_current(db: sqlite_utils.Database) -> None:
    if not is_current(db):
        raise sqlite3.OperationalError("it was made by an older searchkit and needs upgrading")


def _cannot_read(path: Path, exc: sqlite3.OperationalError) -> str:
    return (
        f"{path.parent}: the folder is read-only to this user and the index cannot be read "
        f"without writing to it ({exc}); open it once with write access"
    )


def _config_dimension(db: sqlite_utils.Database) -> int:
    row = db.execute("SELECT value FROM state WHERE name = 'config'").fetchone()
    return int(json.loads(row[0]).get("model", {}).get("dimension", 0))
