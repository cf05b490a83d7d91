"""Keyword search: ``items_fts``, the FTS5 index over each item's analysed text (its text,
or for text with CJK characters ``items.analyzed``: analysis.py), queried with BM25.

Triggers keep it in step with ``items`` (migrations.py: FULLTEXT, m008). A query is analysed
with the analysis the index records (``state`` 'analysis'), as its items were.
"""

from __future__ import annotations

import sqlite3

from searchkit import analysis
from searchkit._sqlite import sqlite_utils
from searchkit.errors import IndexFileError, UsageError
from searchkit.filters import Where
from searchkit.migrations import (
    FULLTEXT,
    FULLTEXT_DROP,
    analyze_rows,
    recorded_analysis,
    stale_analyses,
    statements,
)

__all__ = ["fts_query", "fulltext_problem", "index_analysis", "keyword", "rebuild_fulltext", "set_analysis"]


def keyword(
    db: sqlite_utils.Database, query: str, limit: int, where: Where | None = None
) -> list[tuple[int, float]]:
    """(id, BM25 score) of the best `limit` items holding any term of `query`, best first.

    Scores are FTS5's ``bm25()`` negated, so that higher is better. The terms are
    quoted one by one: FTS5 syntax in a query (``"``, ``*``, ``NEAR``, ``-``) is text.
    """
    name = index_analysis(db)
    expression = _expression(_common_left_out(db, query, name))
    if not expression or limit <= 0:
        return []
    sql = (
        "SELECT items_fts.rowid, bm25(items_fts) FROM items_fts JOIN items ON items.id = items_fts.rowid"
        f" WHERE items_fts MATCH ?{f' AND {where.sql}' if where else ''}"
        " ORDER BY bm25(items_fts), items_fts.rowid LIMIT ?"
    )
    params = (expression, *(where.params if where else ()), limit)
    return [(int(id_), -float(score)) for id_, score in db.execute(sql, params)]


def index_analysis(db: sqlite_utils.Database) -> str:
    """The keyword analysis the index holds (analysis.ANALYSES), which its queries and new
    items must be analysed with."""
    name = recorded_analysis(db.conn)
    if name not in analysis.ANALYSES:
        raise IndexFileError(
            f"the keyword index holds the analysis {name!r}, which this searchkit does not know "
            f"({_known()}); was it made by a newer searchkit?"
        )
    return name


def fulltext_problem(db: sqlite_utils.Database) -> str | None:
    """None when the keyword index agrees with ``items``, else what is wrong with it."""
    try:
        with db.atomic():
            # rank 1: the index checked against its content (the view of the analysed texts).
            db.execute("INSERT INTO items_fts (items_fts, rank) VALUES ('integrity-check', 1)")
    except sqlite3.DatabaseError as exc:
        return str(exc)
    name = recorded_analysis(db.conn)
    if name not in analysis.ANALYSES:
        return f"it holds the analysis {name!r}, which this searchkit does not know"
    stale = stale_analyses(db.conn)
    if stale:
        return f"{stale} row(s) whose analysed text (items.analyzed) is not their text's {name!r} analysis"
    return None


def rebuild_fulltext(db: sqlite_utils.Database) -> None:
    """Rebuild the keyword index (and its triggers) from ``items``, each item's analysed
    text written anew by the index's analysis first."""
    with db.atomic():
        for statement in FULLTEXT_DROP:
            db.execute(statement)
        analyze_rows(db.conn)
        for statement in statements(FULLTEXT):
            db.execute(statement)


def set_analysis(db: sqlite_utils.Database, name: str) -> None:
    """Hold the keyword index in analysis `name` (analysis.ANALYSES) from now on: every
    item re-analysed and the index rebuilt, in one transaction."""
    if name not in analysis.ANALYSES:
        raise UsageError(f"unknown keyword analysis {name!r} (this searchkit knows {_known()})")
    with db.atomic():
        db.execute("INSERT OR REPLACE INTO state (name, value) VALUES ('analysis', ?)", (name,))
        rebuild_fulltext(db)


def _known() -> str:
    return ", ".join(sorted(analysis.ANALYSES))


def fts_query(text: str, analysis_name: str = analysis.DEFAULT) -> str:
    """An FTS5 expression matching any term of `text` (analysis.terms): each term a quoted
    string, so nothing in it is FTS5 syntax."""
    return _expression(analysis.terms(text, analysis_name))


def _expression(terms: list[str]) -> str:
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


# A query's optional terms (analysis.optional_terms: single CJK characters) held by more
# than this share of the items, and by more than COMMON_ITEMS (below that they cost little),
# are left out. Chosen on KorSTS dev (scripts/eval_korsts.py, the share alone): NDCG@10
# 0.910-0.911 from 0.05 to 0.2 and with none left out, 0.901 at 0.02; 100,000 Korean items
# of three sentences each answer in 85 ms instead of 245.
COMMON_SHARE = 0.05
COMMON_ITEMS = 1000


def _common_left_out(db: sqlite_utils.Database, query: str, name: str) -> list[str]:
    """`query`'s terms, less its optional ones that are common in the index (their item
    counts read from ``items_fts_terms``, FTS5's vocabulary of the index)."""
    terms = analysis.terms(query, name)
    maybe = analysis.optional_terms(query, name)
    optional = [t for t in terms if t in maybe]
    if not optional:
        return terms
    marks = ",".join("?" * len(optional))
    counts = db.execute(f"SELECT term, doc FROM items_fts_terms WHERE term IN ({marks})", optional)
    items = int(db.execute("SELECT value FROM state WHERE name = 'items'").fetchone()[0])
    common = {term for term, count in counts if count > max(COMMON_SHARE * items, COMMON_ITEMS)}
    return [t for t in terms if t not in common]
