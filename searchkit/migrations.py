"""The numbered schema migrations of ``index.db``, applied in order, each in one transaction.

``_searchkit_migrations`` records the ones applied, so an index made by an older
searchkit gains the newer tables the first time it is opened.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from searchkit._sqlite import sqlite_utils
from searchkit.analysis import DEFAULT, TOKENIZE, analyze

__all__ = [
    "FIELD_TRIGGERS",
    "FIELD_VALUES_SELECT",
    "FULLTEXT",
    "FULLTEXT_DROP",
    "MIGRATIONS",
    "analyze_rows",
    "is_current",
    "migrate",
    "recorded_analysis",
    "stale_analyses",
    "statements",
]

M001_INITIAL = """
CREATE TABLE items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    content_hash TEXT NOT NULL,
    source TEXT,
    truncated INTEGER NOT NULL DEFAULT 0,
    embedding BLOB NOT NULL,
    updated TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX items_content_hash ON items (content_hash);
CREATE TABLE pending (
    key TEXT PRIMARY KEY,
    run TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    source TEXT,
    truncated INTEGER NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX pending_content_hash ON pending (content_hash);
CREATE TABLE state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO state (name, value) VALUES ('generation', '0');
INSERT INTO state (name, value) VALUES ('config', '{}');
"""

# Keyword search: an FTS5 index over items.text (external content: the text is stored
# once, in items). Triggers keep it in step inside the very transaction that changes
# items, so it can never disagree with them after a crash. Porter stemming on top of
# unicode61 (diacritics folded), as BM25 baselines usually stem English.
M002_FULLTEXT = """
CREATE VIRTUAL TABLE items_fts USING fts5(
    text, content="items", content_rowid="id", tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
    INSERT INTO items_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
    INSERT INTO items_fts (items_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER items_fts_update AFTER UPDATE OF text ON items BEGIN
    INSERT INTO items_fts (items_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO items_fts (rowid, text) VALUES (new.id, new.text);
END;
INSERT INTO items_fts (items_fts) VALUES ('rebuild');
"""

# Metadata filters read only ``metadata``, but a scan of ``items`` reads every row's
# embedding too (1.5 KB each); this covering index holds the metadata alone: filtering
# 40,000 items took 16 ms through it and 210 ms over the table.
M003_METADATA_INDEX = """
CREATE INDEX items_metadata ON items (metadata);
"""

# The item and truncation counts, kept in ``state`` by triggers inside the very transaction
# that changes ``items``: at 1M items each count(*) of a write cost 0.3-0.8 s (a scan).
M004_COUNTS = """
INSERT OR REPLACE INTO state (name, value) VALUES ('items', (SELECT count(*) FROM items));
INSERT OR REPLACE INTO state (name, value)
    VALUES ('truncated', (SELECT count(*) FROM items WHERE truncated));
CREATE TRIGGER items_count_insert AFTER INSERT ON items BEGIN
    UPDATE state SET value = CAST(value AS INTEGER) + 1 WHERE name = 'items';
    UPDATE state SET value = CAST(value AS INTEGER) + (new.truncated != 0) WHERE name = 'truncated';
END;
CREATE TRIGGER items_count_delete AFTER DELETE ON items BEGIN
    UPDATE state SET value = CAST(value AS INTEGER) - 1 WHERE name = 'items';
    UPDATE state SET value = CAST(value AS INTEGER) - (old.truncated != 0) WHERE name = 'truncated';
END;
CREATE TRIGGER items_count_update AFTER UPDATE OF truncated ON items BEGIN
    UPDATE state SET value = CAST(value AS INTEGER) - (old.truncated != 0) + (new.truncated != 0)
    WHERE name = 'truncated';
END;
"""

# Embeddings in a table of their own: a scan of ``items`` (a filter, an export of texts,
# `sqlite-utils rows index.db items`) no longer reads 1.5 KB of vector per row. A row's
# embedding goes with it (the trigger), inside the transaction that deletes it.
M005_EMBEDDINGS = """
CREATE TABLE embeddings (id INTEGER PRIMARY KEY, embedding BLOB NOT NULL);
INSERT INTO embeddings (id, embedding) SELECT id, embedding FROM items;
ALTER TABLE items DROP COLUMN embedding;
CREATE TRIGGER items_embedding_delete AFTER DELETE ON items BEGIN
    DELETE FROM embeddings WHERE id = old.id;
END;
"""
# Field indexes (as Qdrant's payload indexes): for each field named in ``fields``, one row
# of ``field_values`` per item that holds it, per kind of value it can match: a JSON string
# as a ``string``; a JSON number, or a string that reads as a finite number (a CSV column),
# as a ``number``; true/false as a ``boolean`` (1/0). The values are the very expressions
# filters.py evaluates over the JSON (same path, same json_type, same NUMBER_FUNCTION),
# so a filter answered from here selects what it selects there. Triggers keep the rows in
# step inside the transaction that changes ``items``; no field is indexed until asked.
FIELD_VALUES_SELECT = """
SELECT f.name, 'string', json_extract({metadata}, f.path), {item} FROM {tables}
    WHERE {where} json_type({metadata}, f.path) = 'text'
UNION ALL
SELECT f.name, 'number', CASE json_type({metadata}, f.path) WHEN 'text'
        THEN searchkit_number(json_extract({metadata}, f.path)) ELSE json_extract({metadata}, f.path) END,
    {item} FROM {tables}
    WHERE {where} (json_type({metadata}, f.path) IN ('integer', 'real')
        OR (json_type({metadata}, f.path) = 'text'
            AND searchkit_number(json_extract({metadata}, f.path)) IS NOT NULL))
UNION ALL
SELECT f.name, 'boolean', json_type({metadata}, f.path) = 'true', {item} FROM {tables}
    WHERE {where} json_type({metadata}, f.path) IN ('true', 'false')
"""
_NEW_ROW = FIELD_VALUES_SELECT.format(metadata="new.metadata", item="new.id", tables="fields AS f", where="")
FIELD_TRIGGERS = f"""
CREATE TRIGGER items_fields_insert AFTER INSERT ON items BEGIN
    INSERT OR IGNORE INTO field_values (field, kind, value, item) {_NEW_ROW};
END;
CREATE TRIGGER items_fields_delete AFTER DELETE ON items BEGIN
    DELETE FROM field_values WHERE item = old.id;
END;
CREATE TRIGGER items_fields_update AFTER UPDATE OF metadata ON items
WHEN old.metadata IS NOT new.metadata BEGIN
    DELETE FROM field_values WHERE item = old.id;
    INSERT OR IGNORE INTO field_values (field, kind, value, item) {_NEW_ROW};
END;
"""
M006_FIELDS = (
    """
CREATE TABLE fields (
    name TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE TABLE field_values (
    field TEXT NOT NULL,
    kind TEXT NOT NULL,
    value NOT NULL,
    item INTEGER NOT NULL,
    PRIMARY KEY (field, kind, value, item)
) WITHOUT ROWID;
CREATE INDEX field_values_item ON field_values (item);
"""
    + FIELD_TRIGGERS
)

# Segments (segments/): the vectors are immutable FAISS files, each over the embeddings
# written in a range of generations (``first``..``last``), listed here; those written since
# the last one (``gen`` above every ``last``) are the unsealed tail, which readers hold in
# memory. SQLite is the log: a write changes rows only. When an embedding is replaced or
# deleted, a trigger writes its tombstone (the id, the generation of the version that died,
# the generation it died in), inside the write's transaction: a reader skips the version in
# the segment whose range holds ``old_gen``, and catches up by reading the tombstones and
# embeddings with ``gen`` above its own generation (both indexed). A row's gen is written
# as the store's generation + 1: the one its transaction commits, or below it, always above
# the generation a reader of the state before it holds. The FAISS file of an older index
# becomes its first segment, over generation 0.
M007_SEGMENTS = """
ALTER TABLE embeddings ADD COLUMN gen INTEGER NOT NULL DEFAULT 0;
CREATE INDEX embeddings_gen ON embeddings (gen);
CREATE TABLE tombstones (id INTEGER NOT NULL, old_gen INTEGER NOT NULL, gen INTEGER NOT NULL);
CREATE INDEX tombstones_old_gen ON tombstones (old_gen);
CREATE INDEX tombstones_gen ON tombstones (gen);
CREATE TRIGGER embeddings_replaced AFTER UPDATE OF embedding, gen ON embeddings BEGIN
    INSERT INTO tombstones (id, old_gen, gen) VALUES (old.id, old.gen, new.gen);
END;
CREATE TRIGGER embeddings_deleted AFTER DELETE ON embeddings BEGIN
    INSERT INTO tombstones (id, old_gen, gen)
    VALUES (old.id, old.gen, (SELECT CAST(value AS INTEGER) + 1 FROM state WHERE name = 'generation'));
END;
CREATE TABLE segments (
    name TEXT PRIMARY KEY,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    vectors INTEGER NOT NULL,
    marked INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
INSERT INTO segments (name, first, last, vectors, kind)
    SELECT 'vectors-' || value || '.faiss', 0, 0, (SELECT count(*) FROM embeddings),
        coalesce((SELECT json_extract(value, '$.layout.kind') FROM state WHERE name = 'config'), 'flat')
    FROM state WHERE name = 'generation' AND EXISTS (SELECT 1 FROM embeddings);
"""

# Keyword search in Chinese, Japanese and Korean (analysis.py). Python's sqlite3 cannot give
# FTS5 a tokenizer of its own, so the store analyses the text of an item with CJK characters
# in Python when it writes it (``items.analyzed``; NULL for any other text, whose keyword
# index stays exactly as it was) and the index holds ``coalesce(analyzed, text)``. Its content
# is a view of that, so that FTS5's own 'rebuild' and 'integrity-check' read what the
# triggers feed it (external content read from ``items`` itself would be ``items.text``, and
# every CJK item would look corrupt). The triggers stay pure SQL: any tool may write rows
# (a row written without ``analyzed`` is indexed by its text; check finds it, --repair
# analyses it). ``state`` 'analysis' names the analysis the index holds, which queries use.
# ``items_fts_terms`` is FTS5's vocabulary of the index (term, items holding it, occurrences),
# which a query reads to leave out its common CJK characters (fulltext.py).
FULLTEXT = f"""
CREATE VIEW items_fts_source AS SELECT id, coalesce(analyzed, text) AS text FROM items;
CREATE VIRTUAL TABLE items_fts USING fts5(
    text, content="items_fts_source", content_rowid="id", tokenize='{TOKENIZE}'
);
CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
    INSERT INTO items_fts (rowid, text) VALUES (new.id, coalesce(new.analyzed, new.text));
END;
CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
    INSERT INTO items_fts (items_fts, rowid, text)
        VALUES ('delete', old.id, coalesce(old.analyzed, old.text));
END;
CREATE TRIGGER items_fts_update AFTER UPDATE OF text, analyzed ON items
WHEN old.text IS NOT new.text OR old.analyzed IS NOT new.analyzed BEGIN
    INSERT INTO items_fts (items_fts, rowid, text)
        VALUES ('delete', old.id, coalesce(old.analyzed, old.text));
    INSERT INTO items_fts (rowid, text) VALUES (new.id, coalesce(new.analyzed, new.text));
END;
CREATE TRIGGER items_fts AFTER DELETE ON items WHEN 0 BEGIN
    -- Never runs. sqlite-utils (`search`, `rebuild-fts`) and Datasette find the keyword index
    -- of items by a VIRTUAL TABLE ... USING FTS5 with content="items", or by a schema entry of
    -- items, like this trigger, whose text says so and whose name is the index's: items_fts.
    SELECT 1;
END;
CREATE VIRTUAL TABLE items_fts_terms USING fts5vocab(items_fts, 'row');
INSERT INTO items_fts (items_fts) VALUES ('rebuild');
"""
FULLTEXT_DROP = [
    "DROP TABLE IF EXISTS items_fts_terms",
    "DROP TRIGGER IF EXISTS items_fts_insert",
    "DROP TRIGGER IF EXISTS items_fts_delete",
    "DROP TRIGGER IF EXISTS items_fts_update",
    "DROP TRIGGER IF EXISTS items_fts",
    "DROP TABLE IF EXISTS items_fts",
    "DROP VIEW IF EXISTS items_fts_source",
]


def m008_cjk_fulltext(conn: sqlite3.Connection) -> None:
    """The keyword index of FULLTEXT, in place of m002's: the CJK rows analysed (in Python,
    so this migration is a function), then the index rebuilt from the items."""
    for statement in FULLTEXT_DROP:
        conn.execute(statement)
    for table in ("items", "pending"):
        if "analyzed" not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN analyzed TEXT")
    conn.execute("INSERT OR IGNORE INTO state (name, value) VALUES ('analysis', ?)", (DEFAULT,))
    analyze_rows(conn)
    for statement in statements(FULLTEXT):
        conn.execute(statement)


def recorded_analysis(conn: sqlite3.Connection) -> str:
    """The keyword analysis the index holds (analysis.py), ``words`` before m008."""
    row = conn.execute("SELECT value FROM state WHERE name = 'analysis'").fetchone()
    return str(row[0]) if row else "words"


def analyze_rows(conn: sqlite3.Connection) -> int:
    """Write the analysed text of every item and staged row whose stored one is not what the
    index's analysis gives (with the keyword index's triggers dropped: rebuild it after);
    return how many changed."""
    changed = 0
    for table, updates in _restated(conn):
        conn.executemany(f"UPDATE {table} SET analyzed = ? WHERE rowid = ?", updates)
        changed += len(updates)
    return changed


def stale_analyses(conn: sqlite3.Connection) -> int:
    """How many items and staged rows hold an analysed text other than the index's analysis
    of their text (written by another tool, or by hand)."""
    return sum(len(updates) for _, updates in _restated(conn))


def _restated(conn: sqlite3.Connection) -> Iterator[tuple[str, list[tuple[str | None, int]]]]:
    """(table, [(analysed text, rowid)]) of the rows whose analysed text is not the one
    their text has, a page at a time. Every text is read: in Python a million short ones
    took 2.3 s, SQLite's GLOB over the CJK ranges 19 s."""
    name = recorded_analysis(conn)
    for table in ("items", "pending"):
        last = 0
        sql = f"SELECT rowid, text, analyzed FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT 1000"
        while rows := conn.execute(sql, (last,)).fetchall():
            last = rows[-1][0]
            updates = [(new, rowid) for rowid, text, old in rows if (new := analyze(text, name)) != old]
            if updates:
                yield table, updates


def m009_origins(conn: sqlite3.Connection) -> None:
    """Each item's file: ``origin``, its resolved path (NULL for stdin and the API), by which a
    re-index replaces a file's items and removes those of files gone (service/sources.py).

    An item read before m009 has only its ``source``, the path as it was typed then
    (``PATH:LINE``, ``PATH``): its origin is that path resolved from where the index is
    first opened now, when a file is there (a re-index from the same place then replaces
    its items, instead of adding them again under the new ids); NULL otherwise."""
    for table in ("items", "pending"):
        if "origin" not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN origin TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS items_origin ON items (origin) WHERE origin IS NOT NULL")
    conn.create_function("searchkit_origin", 1, _cached(_legacy_origin), deterministic=True)
    conn.execute(
        "UPDATE items SET origin = searchkit_origin(source) WHERE origin IS NULL AND source IS NOT NULL"
    )


def _legacy_origin(typed: str) -> str | None:
    path = Path(typed)
    try:
        return str(path.resolve()) if typed not in ("", "stdin", "api") and path.is_file() else None
    except OSError:
        return None


def _cached(function: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """Once per distinct path: a million items come from a few thousand files."""
    seen: dict[str, str | None] = {}

    def cached(source: str) -> str | None:
        path = re.sub(r":\d+$", "", source)
        if path not in seen:
            seen[path] = function(path)
        return seen[path]

    return cached


Migration = str | Callable[[sqlite3.Connection], None]  # a script, or a function for a step SQL cannot do

MIGRATIONS: list[tuple[str, Migration]] = [
    ("m001_initial", M001_INITIAL),
    ("m002_fulltext", M002_FULLTEXT),
    ("m003_metadata_index", M003_METADATA_INDEX),
    ("m004_counts", M004_COUNTS),
    ("m005_embeddings", M005_EMBEDDINGS),
    ("m006_fields", M006_FIELDS),
    ("m007_segments", M007_SEGMENTS),
    ("m008_cjk_fulltext", m008_cjk_fulltext),
    ("m009_origins", m009_origins),
]


def statements(script: str) -> list[str]:
    """Split a script into complete statements (a trigger body holds semicolons of its own)."""
    found: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            found.append(current.strip())
            current = ""
    if current.strip():
        found.append(current.strip())
    return found


def migrate(db: sqlite_utils.Database) -> None:
    """Apply the migrations `db` lacks, each exactly once even with several processes at once."""
    if is_current(db):
        return
    # Two processes may open an older index at once: take the write lock first
    # (BEGIN IMMEDIATE), then look again, so that each migration runs exactly once.
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        applied = _applied(db)
        for name, sql in MIGRATIONS:
            if name in applied:
                continue
            if callable(sql):
                sql(conn)
            else:
                for statement in statements(sql):
                    conn.execute(statement)
            if not db["_searchkit_migrations"].exists():
                conn.execute("CREATE TABLE _searchkit_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
            conn.execute(
                "INSERT INTO _searchkit_migrations (name, applied_at) VALUES (?, ?)",
                (name, _now_sql(db)),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def is_current(db: sqlite_utils.Database) -> bool:
    """Whether `db` has every migration (a read-only database must, to be used)."""
    return _applied(db) >= {name for name, _ in MIGRATIONS}


def _applied(db: sqlite_utils.Database) -> set[str]:
    if not db["_searchkit_migrations"].exists():
        return set()
    return {row[0] for row in db.execute("SELECT name FROM _searchkit_migrations")}


def _now_sql(db: sqlite_utils.Database) -> str:
    return str(db.execute("SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 'now')").fetchone()[0])
