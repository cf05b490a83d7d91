"""filters.py: the --where vocabulary compiled to SQL, and the errors for bad filters."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from searchkit.errors import UsageError
from searchkit.filters import NUMBER_FUNCTION, as_number, compile_where


def select(rows: list[dict[str, Any]], where: Any) -> list[int]:
    """Run a compiled filter over JSON rows in a bare SQLite table."""
    import json

    conn = sqlite3.connect(":memory:")
    conn.create_function(NUMBER_FUNCTION, 1, as_number, deterministic=True)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, metadata TEXT)")
    conn.executemany("INSERT INTO items VALUES (?, ?)", [(i, json.dumps(r)) for i, r in enumerate(rows)])
    compiled = compile_where(where)
    if compiled is None:
        return [r[0] for r in conn.execute("SELECT id FROM items")]
    return [r[0] for r in conn.execute(f"SELECT id FROM items WHERE {compiled.sql}", compiled.params)]


ROWS = [
    {"genre": "news", "year": 2010, "flag": True},
    {"genre": "sport", "year": "2015", "flag": False},  # as a CSV column gives it
    {"genre": "news", "year": 1999.5},
    {"genre": "tech"},
    {"genre": 5, "year": "n/a", "flag": "true"},
]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"genre": "news"}, [0, 2]),
        ('{"genre": "news"}', [0, 2]),
        ({"genre": {"$eq": "tech"}}, [3]),
        ({"genre": {"$ne": "news"}}, [1, 3, 4]),
        ({"year": {"$gte": 2010}}, [0, 1]),
        ({"year": {"$gt": 1999, "$lt": 2011}}, [0, 2]),
        ({"year": 2015}, [1]),
        ({"year": "2015"}, [1]),
        ({"year": {"$lt": "3"}}, [1]),  # strings compare with strings only, as text
        ({"genre": 5}, [4]),
        ({"flag": True}, [0]),
        ({"flag": False}, [1]),
        ({"genre": {"$in": ["tech", "sport"]}}, [1, 3]),
        ({"genre": {"$nin": ["tech", "sport"]}}, [0, 2, 4]),
        ({"genre": {"$in": []}}, []),
        ({"year": {"$nin": []}}, [0, 1, 2, 3, 4]),
        ({"$or": [{"genre": "tech"}, {"year": {"$lt": 2000}}]}, [2, 3]),
        ({"$and": [{"genre": "news"}, {"flag": True}]}, [0]),
        ({"genre": "news", "year": {"$lt": 2000}}, [2]),
        ({"missing": {"$ne": 1}}, [0, 1, 2, 3, 4]),
        ({}, [0, 1, 2, 3, 4]),
        (None, [0, 1, 2, 3, 4]),
    ],
)
def test_filters_select_what_they_say(where: Any, expected: list[int]) -> None:
    assert select(ROWS, where) == expected


@pytest.mark.parametrize(
    "hostile",
    [
        {"genre": "news' OR '1'='1"},
        {"genre') OR 1=1 --": "x"},
        {"genre": {"$in": ["x'); DROP TABLE items; --"]}},
        {".genre": "news"},
        {"genre": {"$lt": "'; DELETE FROM items; --"}},
    ],
)
def test_injection_strings_are_only_values(hostile: dict[str, Any]) -> None:
    assert select(ROWS, hostile) == []


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ('{"genre": ', "--where is not valid JSON (Expecting value at character 10)"),
        ("[1, 2]", "--where must be a JSON object, not an array"),
        ({"genre": {"$like": "n%"}}, "--where: unknown operator '$like'; use one of $eq, $ne"),
        ({"$not": {"genre": "news"}}, "--where: unknown operator '$not' (at the top: $and, $or"),
        ({"$and": {"genre": "news"}}, "--where: $and takes a non-empty list of filters, not an object"),
        ({"$or": []}, "--where: $or takes a non-empty list of filters, not an array"),
        ({"$or": [{}]}, "--where: expected a non-empty object, found an empty object"),
        ({"year": {"$gt": [1, 2]}}, "--where: $gt takes a string, number or boolean, not an array"),
        ({"year": {"$gt": True}}, "--where: $gt compares numbers or strings, not a boolean"),
        ({"year": None}, "--where: $eq takes a string, number or boolean, not null"),
        ({"year": {"$in": 5}}, "--where: $in takes a list of values, not a number"),
        ({"year": {"$in": [{"a": 1}]}}, "--where: $in takes a string, number or boolean, not an object"),
        ({"year": {}}, '--where: an empty operator object; write e.g. {"$gte": 2010}'),
        ({"": 1}, "--where: bad field name ''"),
        ({'a"b': 1}, "--where: field name 'a\"b' holds a quote, backslash or control character"),
        ({"year": float("nan")}, "--where: $eq takes a string, number or boolean, not a non-finite number"),
    ],
)
def test_bad_filters_are_one_line_usage_errors(where: Any, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        compile_where(where)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


def test_deep_and_huge_filters_are_refused() -> None:
    deep: dict[str, Any] = {"a": 1}
    for _ in range(40):
        deep = {"$and": [deep]}
    with pytest.raises(UsageError, match="nests deeper"):
        compile_where(deep)
    with pytest.raises(UsageError, match="too large"):
        compile_where({"a": {"$in": list(range(6000))}})


def test_numbers_read_from_strings() -> None:
    assert as_number("2015") == 2015.0 and as_number(" 3.5 ") == 3.5 and as_number(7) == 7.0
    assert as_number("n/a") is None and as_number("nan") is None and as_number(True) is None
