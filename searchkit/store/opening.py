"""Opening ``index.db``: the connection's settings, the schema brought up to date, and
what a failure to open means (in use or read-only: StorageError; damaged: CorruptIndexError).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import sqlite_utils

from searchkit.errors import CorruptIndexError, StorageError
from searchkit.filters import NUMBER_FUNCTION, as_number
from searchkit.migrations import migrate
from searchkit.store.damage import damaged

__all__ = ["open_database"]


def open_database(path: Path, dimension: int | None, create: bool) -> tuple[sqlite_utils.Database, int]:
    """Connect to `path` (created if `create`) and migrate it; the dimension is `dimension`,
    or else the one recorded in ``config``."""
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
        db = sqlite_utils.Database(conn)
        migrate(db)
        return db, dimension if dimension is not None else _config_dimension(db)
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
        raise damaged(exc, path) from None


def _config_dimension(db: sqlite_utils.Database) -> int:
    row = db.execute("SELECT value FROM state WHERE name = 'config'").fetchone()
    return int(json.loads(row[0]).get("model", {}).get("dimension", 0))
