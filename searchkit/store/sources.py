"""Which items each file holds: ``items.origin`` (m009), and the keys an ingest has seen.

A mixin of `Store` (database.py). An ingest notes every key it reads from a file in a
temporary table of its own connection (``seen``: on disk, not in Python's memory, however
large the input), so that at its end the store can say which items the files it read, and
the folders it listed, no longer hold (`stale_keys`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from searchkit.store.damage import guarded

if TYPE_CHECKING:
    from searchkit._sqlite import sqlite_utils

__all__ = ["Sources"]


class Sources:
    if TYPE_CHECKING:

        @property
        def db(self) -> sqlite_utils.Database: ...

    @guarded
    def forget_seen(self) -> None:
        """Start an ingest's list of keys seen afresh."""
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY)")
        self.db.execute("DELETE FROM temp.seen")

    @guarded
    def note_seen(self, keys: Sequence[str]) -> None:
        with self.db.atomic():
            self.db.conn.executemany("INSERT OR IGNORE INTO temp.seen (key) VALUES (?)", ((k,) for k in keys))

    @guarded
    def stale_keys(self, files: Sequence[str], folders: Sequence[str], kept: Sequence[str]) -> list[str]:
        """The keys of items that `files` (read whole) no longer hold, and of every item from
        a file under one of `folders` that is neither among `files` nor `kept`."""
        stale: list[str] = []
        for origin in files:
            rows = self.db.execute(
                "SELECT key FROM items WHERE origin = ? AND key NOT IN (SELECT key FROM temp.seen)", (origin,)
            )
            stale += [key for (key,) in rows]
        present = {*files, *kept}
        for folder in folders:
            prefix = folder.rstrip("/") + "/"
            # A range on the origin index: "0" is the character after "/".
            rows = self.db.execute(
                "SELECT DISTINCT origin FROM items WHERE origin >= ? AND origin < ?",
                (prefix, prefix[:-1] + "0"),
            )
            for (origin,) in rows.fetchall():
                if origin not in present:
                    stale += [
                        key for (key,) in self.db.execute("SELECT key FROM items WHERE origin = ?", (origin,))
                    ]
        return list(dict.fromkeys(stale))
