"""The ``pending`` table: an ingest's embedded rows, staged batch by batch, then moved into
``items`` in one transaction (`apply`). A mixin of `Store` (database.py), whose connection
and generation it uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from searchkit._sqlite import sqlite_utils
from searchkit.analysis import analyze
from searchkit.store.binding import chunks
from searchkit.store.damage import guarded
from searchkit.store.fulltext import index_analysis
from searchkit.store.rows import PendingRow, dump_metadata

__all__ = ["Staging"]


class Staging:
    if TYPE_CHECKING:

        @property
        def db(self) -> sqlite_utils.Database: ...

        def _bump(self) -> None: ...

        def reclaim(self) -> None: ...

    @guarded
    def pending_total(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM pending").fetchone()[0])

    @guarded
    def stage(self, run: str, rows: Iterable[PendingRow]) -> None:
        """Commit a batch of embedded rows to ``pending`` under `run` (last key wins), each
        with its keyword analysis (analysis.py; done here, batch by batch, so that `apply`'s
        transaction stays SQL alone)."""
        name = index_analysis(self.db)
        records = [
            {
                "key": r.key,
                "run": run,
                "text": r.text,
                "analyzed": analyze(r.text, name),
                "metadata": dump_metadata(r.metadata),
                "content_hash": r.content_hash,
                "source": r.source,
                "origin": r.origin,
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
        for chunk in chunks(list(keys)):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT key FROM pending WHERE run = ? AND key IN ({marks})"
            found.update(row[0] for row in self.db.execute(sql, [run, *chunk]))
        return found

    @guarded
    def pending_count(self, run: str) -> int:
        return int(self.db.execute("SELECT count(*) FROM pending WHERE run = ?", (run,)).fetchone()[0])

    @guarded
    def apply(self, run: str) -> npt.NDArray[np.int64]:
        """Move `run`'s pending rows into ``items`` in one transaction; return the ids whose
        vector changed: new keys and new texts, not rows whose metadata or source alone
        changed (an array: a million Python ints would cost 36 MB).

        An existing key keeps its id (the vector index swaps the vector); a new key
        gets a fresh one. Pending rows of other (crashed) runs are dropped with it.
        """
        with self.db.atomic():
            changed = "FROM pending AS p JOIN items ON items.key = p.key WHERE p.run = ?"
            new_text = "AND items.content_hash != p.content_hash"
            retexted = self._ids(f"SELECT items.id {changed} {new_text}", (run,))
            # An update, not a REPLACE (a delete SQLite's triggers do not see): its trigger
            # writes the old version's tombstone (m007). Written as of the generation this
            # transaction commits.
            gen = self._written_gen()
            self.db.execute(
                f"INSERT INTO embeddings (id, embedding, gen) SELECT items.id, p.embedding, ? {changed}"
                f" {new_text} ON CONFLICT (id) DO UPDATE"
                " SET embedding = excluded.embedding, gen = excluded.gen",
                (gen, run),
            )
            # AUTOINCREMENT: every new row's id is above the largest ever handed out.
            newest = self._sequence()
            self.db.execute(
                """
                UPDATE items SET text = p.text, analyzed = p.analyzed, metadata = p.metadata,
                    content_hash = p.content_hash, source = p.source, origin = p.origin,
                    truncated = p.truncated,
                    updated = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
                FROM pending AS p WHERE p.run = ? AND items.key = p.key
                """,
                (run,),
            )
            self.db.execute(
                """
                INSERT INTO items (key, text, analyzed, metadata, content_hash, source, origin, truncated)
                SELECT key, text, analyzed, metadata, content_hash, source, origin, truncated
                FROM pending WHERE run = ? AND key NOT IN (SELECT key FROM items)
                ORDER BY rowid
                """,
                (run,),
            )
            added = self._ids("SELECT id FROM items WHERE id > ?", (newest,))
            self.db.execute(
                f"INSERT INTO embeddings (id, embedding, gen) SELECT items.id, p.embedding, ? {changed}"
                " AND items.id > ?",
                (gen, run, newest),
            )
            self.db.execute("DELETE FROM pending")
            self._bump()
        return np.sort(np.concatenate([retexted, added]))

    def _written_gen(self) -> int:
        """The ``gen`` of embeddings written now: the generation this write will commit
        (each write bumps it once at its end), above any a reader holds now."""
        row = self.db.execute("SELECT value FROM state WHERE name = 'generation'").fetchone()
        return int(row[0]) + 1

    def _ids(self, sql: str, params: tuple[Any, ...]) -> npt.NDArray[np.int64]:
        return np.fromiter((row[0] for row in self.db.execute(sql, params)), dtype=np.int64)

    def _sequence(self) -> int:
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'items'").fetchone()
        return int(row[0]) if row else 0

    @guarded
    def clear_pending(self) -> None:
        with self.db.atomic():
            self.db.execute("DELETE FROM pending")
        self.reclaim()
