"""Keyword search: ``items_fts``, the FTS5 index over ``items.text``, queried with BM25.

Triggers keep it in step with ``items`` (migration m002 in migrations.py).
"""

from __future__ import annotations

import re
import sqlite3

from searchkit._sqlite import sqlite_utils
from searchkit.filters import Where
from searchkit.migrations import MIGRATIONS, statements

__all__ = ["fts_query", "fulltext_problem", "keyword", "rebuild_fulltext"]


def keyword(
    db: sqlite_utils.Database, query: str, limit: int, where: Where | None = None
) -> list[tuple[int, float]]:
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
    return [(int(id_), -float(score)) for id_, score in db.execute(sql, params)]


def fulltext_problem(db: sqlite_utils.Database) -> str | None:
    """None when the keyword index agrees with ``items``, else what is wrong with it."""
    try:
        with db.atomic():
            db.execute("INSERT INTO items_fts (items_fts, rank) VALUES ('integrity-check', 1)")
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None


def rebuild_fulltext(db: sqlite_utils.Database) -> None:
    """Rebuild the keyword index (and its triggers) from ``items``."""
    with db.atomic():
        for trigger in ("items_fts_insert", "items_fts_delete", "items_fts_update"):
            db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        db.execute("DROP TABLE IF EXISTS items_fts")
        for statement in statements(dict(MIGRATIONS)["m002_fulltext"]):
            db.execute(statement)


# Words as FTS5's unicode61 tokenizer sees them; more than this many are dropped (the cost
# of an OR query grows with each word, its benefit does not).
_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_WORDS = 64


def fts_query(text: str) -> str:
    """An FTS5 expression matching any word of `text`: each word a quoted string, so
    nothing in it is FTS5 syntax."""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))[:_MAX_WORDS]
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
