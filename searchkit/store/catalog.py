"""The committed set of segments (Lucene's ``SegmentInfos``), in SQLite: which FAISS files
hold which generations' embeddings, and the tombstones of versions that died since
(m007, migrations.py). A mixin of `Store` (database.py); it knows rows, never FAISS.

A segment covers the embeddings written in generations ``first``..``last``; the tail is
every embedding written after the last segment's ``last`` (`sealed`). An embedding's
version is live in the one segment whose range holds its ``gen``, unless a tombstone
(``id``, ``old_gen``) says it was replaced or deleted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from searchkit._sqlite import sqlite_utils
from searchkit.metrics import Matrix
from searchkit.store.damage import guarded

__all__ = ["Catalog", "SegmentRecord"]

IdArray = npt.NDArray[np.int64]
_NO_END = 2**62  # above every generation and id


@dataclass(frozen=True)
class SegmentRecord:
    """One committed segment: its file, the generations it covers, what it holds."""

    name: str
    first: int
    last: int
    vectors: int  # entries in the file
    kind: str  # flat, hnsw, ... (the FAISS type of the file)
    marked: int = 0  # of them, entries the file itself marks removed (-1: HNSW, IVF)


class Catalog:
    if TYPE_CHECKING:

        @property
        def db(self) -> sqlite_utils.Database: ...

        def _bump(self) -> None: ...

        def _batch(self, rows: list[tuple[int, bytes]]) -> tuple[np.ndarray, Matrix]: ...

        @property
        def generation(self) -> int: ...

    @guarded
    def segments(self) -> list[SegmentRecord]:
        """The committed segments, oldest range first."""
        rows = self.db.execute("SELECT name, first, last, vectors, kind, marked FROM segments ORDER BY first")
        return [SegmentRecord(str(n), int(f), int(la), int(v), str(k), int(m)) for n, f, la, v, k, m in rows]

    @guarded
    def segment_listing(self) -> list[dict[str, Any]]:
        """Each segment as `info` shows it (dead: its tombstones and the entries its file
        marks removed), and last the tail."""
        dead = self.dead_counts()
        listed: list[dict[str, Any]] = [
            {
                "name": r.name,
                "generations": [r.first, r.last],
                "vectors": r.vectors,
                "dead": r.marked + dead.get(r.name, 0),
                "type": r.kind,
            }
            for r in self.segments()
        ]
        listed.append({"name": "tail", "vectors": self.tail_count(), "dead": 0, "type": "memory"})
        return listed

    @guarded
    def sealed(self) -> int:
        """The last generation held by a segment (-1: none); newer embeddings are the tail."""
        row = self.db.execute("SELECT max(last) FROM segments").fetchone()
        return -1 if row[0] is None else int(row[0])

    @guarded
    def tail_count(self) -> int:
        """How many embeddings are not in a segment yet (an index range count)."""
        sql = "SELECT count(*) FROM embeddings WHERE gen > ?"
        return int(self.db.execute(sql, (self.sealed(),)).fetchone()[0])

    @guarded
    def tail_ids(self) -> IdArray:
        """The ids of the embeddings not in a segment yet."""
        rows = self.db.execute("SELECT id FROM embeddings WHERE gen > ?", (self.sealed(),)).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    @guarded
    def tombstone_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM tombstones").fetchone()[0])

    @guarded
    def dead_counts(self) -> dict[str, int]:
        """Each segment's tombstones: the versions it holds that have died."""
        sql = (
            "SELECT s.name, count(t.id) FROM segments AS s LEFT JOIN tombstones AS t"
            " ON t.old_gen BETWEEN s.first AND s.last GROUP BY s.name"
        )
        return {str(name): int(n) for name, n in self.db.execute(sql)}

    @guarded
    def written_since(self, generation: int, batch: int = 4096) -> Iterator[tuple[IdArray, Matrix]]:
        """(ids, vectors) of the embeddings written after `generation`."""
        yield from self._embedding_pages(generation + 1, _NO_END, batch)

    @guarded
    def written_between(self, first: int, last: int, batch: int = 4096) -> Iterator[tuple[IdArray, Matrix]]:
        """(ids, vectors) of the live embeddings written in generations `first`..`last`."""
        yield from self._embedding_pages(first, last, batch)

    def _embedding_pages(self, first: int, last: int, batch: int) -> Iterator[tuple[IdArray, Matrix]]:
        """Pages in (gen, id) order along the ``embeddings_gen`` index (whose entries are
        (gen, rowid)): each page starts after the last one's key, so the read costs what it
        returns, never a scan of every embedding (ordered by id alone, SQLite scanned them)."""
        sql = (
            "SELECT id, embedding, gen FROM embeddings INDEXED BY embeddings_gen"
            " WHERE gen <= ? AND (gen, id) > (?, ?) ORDER BY gen, id LIMIT ?"
        )
        after = (first - 1, _NO_END)
        while rows := self.db.execute(sql, (last, *after, batch)).fetchall():
            after = (rows[-1][2], rows[-1][0])
            yield self._batch([(r[0], r[1]) for r in rows])

    @guarded
    def died_since(self, generation: int) -> list[tuple[int, int]]:
        """(id, old_gen) of every version that died after `generation`."""
        sql = "SELECT id, old_gen FROM tombstones INDEXED BY tombstones_gen WHERE gen > ?"
        return [(int(i), int(g)) for i, g in self.db.execute(sql, (generation,))]

    @guarded
    def dead_between(self, first: int, last: int) -> IdArray:
        """The ids whose version written in `first`..`last` has died (a segment's tombstones)."""
        sql = "SELECT id FROM tombstones WHERE old_gen BETWEEN ? AND ?"
        rows = self.db.execute(sql, (first, last)).fetchall()
        return np.unique(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))

    @guarded
    def unknown_tombstones(self) -> int:
        """Tombstones of versions no segment and no tail holds (check)."""
        sealed = self.sealed()
        sql = (
            "SELECT count(*) FROM tombstones AS t WHERE t.old_gen <= ? AND NOT EXISTS"
            " (SELECT 1 FROM segments AS s WHERE t.old_gen BETWEEN s.first AND s.last)"
        )
        return int(self.db.execute(sql, (sealed,)).fetchone()[0])

    @guarded
    def replace_segments(self, gone: Sequence[str], new: Sequence[SegmentRecord], as_of: int) -> None:
        """Inside a transaction: `gone` leave the set, `new` join it, and the tombstones
        that the new files no longer need go: those of the versions in their ranges that
        had died by generation `as_of`, which the files were built from. A change of the
        set is a write: the generation moves, so readers notice it."""
        for name in gone:
            self.db.execute("DELETE FROM segments WHERE name = ?", (name,))
        for record in new:
            self.db.execute(
                "INSERT INTO segments (name, first, last, vectors, kind, marked) VALUES (?, ?, ?, ?, ?, ?)",
                (record.name, record.first, record.last, record.vectors, record.kind, record.marked),
            )
            self.db.execute(
                "DELETE FROM tombstones WHERE old_gen BETWEEN ? AND ? AND gen <= ?",
                (record.first, record.last, as_of),
            )
        self._bump()

    @guarded
    def clear_segments(self) -> None:
        """Inside a transaction: no segment, no tombstone, and no embedding newer than the
        generation (a damaged one's, which would be read as the tail): a rebuild makes one
        segment from all."""
        generation = self.generation
        self.db.execute("DELETE FROM segments")
        self.db.execute("UPDATE embeddings SET gen = ? WHERE gen > ?", (generation, generation))
        self.db.execute("DELETE FROM tombstones")
