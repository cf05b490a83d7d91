"""Field indexes: ``fields`` (the metadata fields indexed) and ``field_values`` (their
values by kind, one row per item and kind), which filters on those fields read instead of
every row's JSON (filters.py).

Triggers keep ``field_values`` in step with ``items`` (migration m006 in migrations.py);
indexing a field fills its rows from the items in the same transaction that names it.
"""

from __future__ import annotations

from searchkit._sqlite import sqlite_utils
from searchkit.errors import UsageError
from searchkit.filters import field_path
from searchkit.migrations import FIELD_TRIGGERS, FIELD_VALUES_SELECT, statements

__all__ = [
    "check_field",
    "drop_fields",
    "field_index_problem",
    "index_fields",
    "indexed_fields",
    "rebuild_field_index",
]

_TRIGGERS = ("items_fields_insert", "items_fields_delete", "items_fields_update")
# Every item's rows of the fields named (bound as :field, or every indexed field).
_FILL_ONE = FIELD_VALUES_SELECT.format(
    metadata="items.metadata", item="items.id", tables="items, fields AS f", where="f.name = :field AND"
)
_FILL_ALL = FIELD_VALUES_SELECT.format(
    metadata="items.metadata", item="items.id", tables="items, fields AS f", where=""
)


def indexed_fields(db: sqlite_utils.Database) -> list[str]:
    return [row[0] for row in db.execute("SELECT name FROM fields ORDER BY name")]


def index_fields(db: sqlite_utils.Database, names: list[str]) -> list[str]:
    """Index the fields of `names` not indexed yet, filled from the items; return those."""
    added = []
    with db.atomic():
        for name in dict.fromkeys(names):
            path = check_field(name)
            if db.execute("SELECT 1 FROM fields WHERE name = ?", (name,)).fetchone():
                continue
            db.execute("INSERT INTO fields (name, path) VALUES (?, ?)", (name, path))
            db.execute(
                f"INSERT OR IGNORE INTO field_values (field, kind, value, item) {_FILL_ONE}", {"field": name}
            )
            added.append(name)
    return added


def drop_fields(db: sqlite_utils.Database, names: list[str]) -> list[str]:
    """Drop the field indexes of `names`; return those that existed."""
    dropped = []
    with db.atomic():
        for name in dict.fromkeys(names):
            check_field(name)
            if db.execute("DELETE FROM fields WHERE name = ? RETURNING name", (name,)).fetchone():
                db.execute("DELETE FROM field_values WHERE field = ?", (name,))
                dropped.append(name)
    return dropped


def field_index_problem(db: sqlite_utils.Database) -> str | None:
    """None when ``field_values`` holds exactly what the items say, else what is wrong."""
    present = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    missing = [name for name in _TRIGGERS if name not in present]
    if missing:
        return f"trigger(s) {', '.join(missing)} missing"
    # Each side a subquery: a compound's operators bind left to right (A EXCEPT B UNION C).
    actual = "SELECT * FROM (SELECT field, kind, value, item FROM field_values)"
    expected = f"SELECT * FROM ({_FILL_ALL})"
    stale = db.execute(f"SELECT count(*) FROM ({actual} EXCEPT {expected})").fetchone()[0]
    lacking = db.execute(f"SELECT count(*) FROM ({expected} EXCEPT {actual})").fetchone()[0]
    if stale or lacking:
        return f"{lacking} value(s) missing and {stale} that no item holds"
    return None


def rebuild_field_index(db: sqlite_utils.Database) -> None:
    """Refill ``field_values`` from the items for the fields indexed, triggers recreated."""
    with db.atomic():
        for trigger in _TRIGGERS:
            db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        for statement in statements(FIELD_TRIGGERS):
            db.execute(statement)
        db.execute("DELETE FROM field_values")
        db.execute(f"INSERT OR IGNORE INTO field_values (field, kind, value, item) {_FILL_ALL}")


def check_field(name: str) -> str:
    """The JSON path of a field that can be indexed; UsageError, one line, for one that cannot."""
    path = field_path(name, context="field index")
    if name.startswith("$"):
        raise UsageError(f"field index: {name!r} starts with $, which a filter reads as an operator")
    return path
