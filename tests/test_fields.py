"""Field indexes (store/fields.py, migration m006): the same answers as the JSON, from an index."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from searchkit.cli import app
from searchkit.errors import UsageError
from searchkit.filters import compile_where
from searchkit.service import Index, check

INDEXED = ["s", "n", "f", "c", "b", "m"]  # "x" stays unindexed
STRINGS = ["a", "b", "B", "ab", "", "2015", "10", "é"]
VALUES: list[Any] = [*STRINGS, 0, 1, 2, 10, 2015, -3, 1.5, 2.0, 1e20, True, False]


def metadata(n: int, rng: random.Random) -> dict[str, Any]:
    """Every kind of value a field can hold, and fields that are missing."""
    choices: dict[str, list[Any]] = {
        "s": STRINGS,
        "n": [0, 1, 2, 10, 2015, -3, 2**60 + 1],
        "f": [0.5, 1.5, 2.0, -0.25, 1e20],
        "c": ["2015", " 10 ", "1.5", "n/a", "1e400", "-3", "0x10"],  # CSV-style strings
        "b": [True, False],
        "m": ["a", "10", 10, 10.0, True, False, None, [1, 2], {"k": 1}, "", 1.5],
        "x": ["a", 1, True],
    }
    return {name: rng.choice(pool) for name, pool in choices.items() if rng.random() < 0.8}


def random_filter(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    if depth < 2 and rng.random() < 0.3:
        return {
            rng.choice(["$and", "$or"]): [random_filter(rng, depth + 1) for _ in range(rng.randint(1, 3))]
        }
    filters: dict[str, Any] = {}
    for _ in range(rng.choice([1, 1, 1, 2])):
        field = rng.choice([*INDEXED, "x"])
        roll = rng.random()
        if roll < 0.3:
            filters[field] = rng.choice(VALUES)
        elif roll < 0.5:
            op = rng.choice(["$in", "$nin"])
            filters[field] = {op: rng.sample(VALUES, rng.randint(0, 4))}
        else:
            ops = rng.sample(["$eq", "$ne", "$lt", "$lte", "$gt", "$gte"], rng.randint(1, 2))
            order = [v for v in VALUES if not isinstance(v, bool)]
            filters[field] = {op: rng.choice(order if op not in ("$eq", "$ne") else VALUES) for op in ops}
    return filters


@pytest.fixture
def index(tmp_path: Path, tiny: Any) -> Any:
    rng = random.Random(12)
    opened = Index.create(tmp_path / "i", embedder=tiny)
    opened.add({"id": f"k{n}", "text": f"text {n}", "metadata": metadata(n, rng)} for n in range(400))
    yield opened
    opened.close()


def ids(index: Any, where: Any, indexed: list[str]) -> list[int]:
    compiled = compile_where(where, indexed)
    assert compiled is not None
    return list(index.store.matching_ids(compiled))


HAND_PICKED: list[dict[str, Any]] = [
    {"s": "a"},
    {"s": "2015"},
    {"c": 2015},
    {"c": "2015"},
    {"c": {"$gte": 10, "$lt": 2015}},
    {"c": {"$gte": 10, "$lt": "2"}},  # a numeric string is a string and a number at once
    {"n": 2**60 + 1},  # beyond float precision: compared as the JSON path compares it
    {"n": {"$gt": 1, "$lte": 2015}},
    {"f": 2},
    {"f": {"$gt": 1e19}},
    {"b": True},
    {"b": False},
    {"m": 10},
    {"m": "10"},
    {"m": True},
    {"m": {"$in": ["a", 10, False]}},
    {"m": {"$nin": ["a", 10]}},
    {"m": {"$ne": True}},
    {"s": {"$in": []}},
    {"s": {"$nin": []}},
    {"s": {"$lt": "b"}},
    {"s": "a", "n": {"$ne": 1}},
    {"$or": [{"s": "a"}, {"n": 2}]},
    {"$or": [{"s": "a"}, {"x": 1}]},
    {"$and": [{"s": {"$in": ["a", "b"]}}, {"$or": [{"b": True}, {"f": {"$lt": 1}}]}]},
    {"x": "a", "s": "b"},
]


@pytest.mark.parametrize("where", HAND_PICKED, ids=json.dumps)
def test_a_field_index_selects_what_the_json_selects(index: Any, where: dict[str, Any]) -> None:
    index.index_field(*INDEXED)
    assert ids(index, where, INDEXED) == ids(index, where, [])


def test_many_random_filters_select_the_same_both_ways(index: Any) -> None:
    index.index_field(*INDEXED)
    rng = random.Random(5)
    nonempty = 0
    for _ in range(600):
        where = random_filter(rng)
        expected = ids(index, where, [])
        assert ids(index, where, INDEXED) == expected, where
        for some in (INDEXED[:2], INDEXED[3:]):  # some fields indexed, others not
            assert ids(index, where, some) == expected, (where, some)
        nonempty += bool(expected)
    assert nonempty > 200  # the filters select things, not only nothing


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_search_answers_the_same_with_the_index(index: Any, mode: str) -> None:
    wheres = [{"s": "a"}, {"c": {"$gte": 0}}, {"$or": [{"b": True}, {"m": 10}]}, {"s": "b", "x": "a"}]
    before = [index.search("text 7", k=20, where=w, mode=mode) for w in wheres]
    assert index.index_field("s", "c", "b", "m") == ["s", "c", "b", "m"]
    after = [index.search("text 7", k=20, where=w, mode=mode) for w in wheres]
    assert [[(h.id, h.score) for h in hits] for hits in after] == [
        [(h.id, h.score) for h in hits] for hits in before
    ]
    assert all(len(hits) >= 1 for hits in after) and len(after[0]) == 20


def plan(index: Any, where: dict[str, Any]) -> list[str]:
    compiled = compile_where(where, index.store.indexed_fields())
    sql, params = index.store.matching_sql(compiled)
    return [step[3] for step in index.store.db.execute("EXPLAIN QUERY PLAN " + sql, params)]


@pytest.mark.parametrize(
    "where",
    [
        {"s": "a"},
        {"n": {"$gte": 2, "$lt": 11}},
        {"s": {"$in": ["a", "b"]}, "b": True},
        {"s": "a", "x": 1, "m": {"$ne": 10}},  # the rest read from the matching rows only
        {"$or": [{"s": "a"}, {"n": 2}]},
    ],
    ids=json.dumps,
)
def test_a_selective_filter_on_an_indexed_field_scans_no_items(index: Any, where: dict[str, Any]) -> None:
    assert any(step.startswith("SCAN items") for step in plan(index, where))  # before: every row's JSON
    index.index_field("s", "n", "b")
    steps = plan(index, where)
    assert not [s for s in steps if s.startswith(("SCAN items", "SCAN field_values"))], steps
    assert any("field_values USING PRIMARY KEY" in s for s in steps), steps


def rows(index: Any) -> set[tuple[Any, ...]]:
    return set(index.store.db.execute("SELECT field, kind, value, item FROM field_values"))


def test_writes_keep_the_field_index_in_step(tmp_path: Path, tiny: Any) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add(
        [{"id": f"k{n}", "text": f"t{n}", "metadata": {"g": f"g{n % 3}", "y": str(n)}} for n in range(9)]
    )
    index.index_field("g", "y")
    key = {k: i for i, k in index.store.db.execute("SELECT id, key FROM items")}
    assert ("g", "string", "g1", key["k4"]) in rows(index) and ("y", "number", 4.0, key["k4"]) in rows(index)
    assert len(rows(index)) == 9 + 2 * 9  # y is a string and a number
    report = index.add(
        [
            {"id": "k4", "text": "t4", "metadata": {"g": "g9"}},  # metadata only: y gone, g changed
            {"id": "k5", "text": "a new text", "metadata": {"g": "g2", "y": 5}},  # re-embedded
            {"id": "new", "text": "new", "metadata": {"g": True, "y": 7.5, "z": 1}},
        ]
    )
    assert (report.metadata_only, report.updated, report.added) == (1, 2, 1)
    key = {k: i for i, k in index.store.db.execute("SELECT id, key FROM items")}
    found = rows(index)
    assert {r for r in found if r[3] == key["k4"]} == {("g", "string", "g9", key["k4"])}
    assert {r for r in found if r[3] == key["k5"]} == {
        ("g", "string", "g2", key["k5"]),
        ("y", "number", 5, key["k5"]),
    }
    assert {r for r in found if r[3] == key["new"]} == {
        ("g", "boolean", 1, key["new"]),
        ("y", "number", 7.5, key["new"]),
    }
    index.delete(["k0", "new"])
    assert not {r for r in rows(index) if r[3] in (key["k0"], key["new"])}
    assert index.store.field_index_problem() is None
    assert [h.id for h in index.search("x", k=10, where={"g": "g0"})] != []
    assert sorted(h.id for h in index.search("x", k=10, where={"g": "g0"})) == ["k3", "k6"]
    assert index.store.field_index_problem() is None
    plan = index.store.db.execute("EXPLAIN QUERY PLAN DELETE FROM field_values WHERE item = 3").fetchall()
    assert [step[3] for step in plan] == [
        "SEARCH field_values USING COVERING INDEX field_values_item (item=?)"
    ]
    index.close()


def test_indexing_and_dropping(index: Any) -> None:
    generation = index.store.generation
    assert index.fields() == [] and index.info()["fields"] == []
    assert index.index_field("s", "n", "s") == ["s", "n"]
    assert index.index_field("n", "b") == ["b"]
    assert index.fields() == ["b", "n", "s"] and index.info()["fields"] == ["b", "n", "s"]
    assert index.index_field("n", "zz", drop=True) == ["n"]
    assert index.fields() == ["b", "s"]
    assert not [r for r in rows(index) if r[0] == "n"]
    assert index.store.generation == generation  # no vectors changed: no new generation
    with pytest.raises(UsageError, match="name at least one metadata field"):
        index.index_field()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "field index: bad field name ''"),
        (" s", "field index: bad field name ' s'"),
        ('a"b', "field index: field name 'a\"b' holds a quote, backslash or control character"),
        ("$or", "field index: '$or' starts with $, which a filter reads as an operator"),
    ],
)
def test_bad_field_names_are_refused(index: Any, name: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        index.index_field("s", name)
    assert str(caught.value) == message
    assert index.fields() == []  # nothing of the call was kept


def test_another_reader_sees_a_new_field_index_at_once(index: Any, tiny: Any) -> None:
    reader = Index.open(index.path, embedder=tiny)
    before = reader.search("text 1", k=5, where={"s": "a"})
    index.index_field("s")
    assert reader.fields() == ["s"]
    after = reader.search("text 1", k=5, where={"s": "a"})
    assert [h.id for h in after] == [h.id for h in before]
    reader.close()


def test_an_older_index_gains_the_tables_empty(tmp_path: Path, tiny: Any) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add([{"id": "a", "text": "one", "metadata": {"g": "x"}}])
    db = index.store.db
    for trigger in ("items_fields_insert", "items_fields_delete", "items_fields_update"):
        db.execute(f"DROP TRIGGER {trigger}")
    db.execute("DROP TABLE field_values")
    db.execute("DROP TABLE fields")
    db.execute("DELETE FROM _searchkit_migrations WHERE name = 'm006_fields'")
    index.close()
    reopened = Index.open(tmp_path / "i", embedder=tiny)
    assert reopened.fields() == [] and rows(reopened) == set()
    assert reopened.index_field("g") == ["g"] and rows(reopened) == {("g", "string", "x", 1)}
    reopened.close()


def test_check_notices_a_field_index_that_disagrees_and_repair_rebuilds_it(index: Any) -> None:
    index.index_field("s", "n")
    db = index.store.db
    removed = db.execute("DELETE FROM field_values WHERE item IN (1, 2, 3) RETURNING item").fetchall()
    db.execute("INSERT INTO field_values VALUES ('n', 'number', 99, 3)")
    assert removed
    report = check(index.path)
    problems = [p for p in report.problems if p.startswith("field index")]
    said = f"field index: {len(removed)} value(s) missing and 1 that no item holds"
    assert problems == [said], report.problems
    repaired = check(index.path, repair=True)
    assert repaired.ok and repaired.repaired == ["rebuilt the field index (n, s) from the items"]
    db.execute("DROP TRIGGER items_fields_update")
    report = check(index.path)
    assert report.problems == ["field index: trigger(s) items_fields_update missing"]
    assert check(index.path, repair=True).ok
    index.add([{"id": "k1", "text": "text 1", "metadata": {"s": "zz"}}])
    assert ids(index, {"s": "zz"}, ["s"]) == ids(index, {"s": "zz"}, []) != []


# --- the CLI ---------------------------------------------------------------------------------


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_index_field_command(index: Any) -> None:
    folder = str(index.path)
    result = run("index-field", folder, "s", "n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"{folder}: indexed s, n", "fields indexed: n, s"]
    result = run("index-field", folder, "s", "--drop", "zz")
    assert result.stdout.splitlines() == [
        f"{folder}: already indexed s",
        f"{folder}: not indexed, nothing to drop: zz",
        "fields indexed: n, s",
    ]
    result = run("index-field", folder, "s", "--drop", "n", "--json")
    assert json.loads(result.stdout) == {"index": folder, "indexed": [], "dropped": ["n"], "fields": ["s"]}
    info = run("info", folder)
    assert "fields:     s" in info.stdout.splitlines()
    assert json.loads(run("info", folder, "--json").stdout)["fields"] == ["s"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["s", "a\\b"],
            "Error: field index: field name 'a\\\\b' holds a quote, backslash or control character",
        ),
        ([], "Error: name a metadata field to index, or --drop FIELD"),
    ],
)
def test_index_field_errors_are_one_line(index: Any, args: list[str], message: str) -> None:
    result = run("index-field", str(index.path), *args)
    assert result.exit_code == 1 and result.stderr.strip() == message


def test_index_field_of_no_index_is_one_line(tmp_path: Path) -> None:
    result = run("index-field", str(tmp_path / "nope"), "s")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1


def test_index_with_index_field(tmp_path: Path, write_file: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_file(
        "in.jsonl", "".join(json.dumps({"id": str(n), "text": f"t {n}", "g": n % 2}) + "\n" for n in range(6))
    )
    folder = tmp_path / "i"
    bad = run("index", str(folder), str(source), "--index-field", "")
    assert bad.exit_code == 1 and bad.stderr.strip() == "Error: field index: bad field name ''"
    assert not folder.exists()  # refused before anything was made
    result = run("index", str(folder), str(source), "--index-field", "g", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["fields_indexed"] == ["g"]
    with Index.open(folder) as opened:
        assert opened.fields() == ["g"]
        assert (
            ids(opened, {"g": 1}, ["g"]) == ids(opened, {"g": 1}, [])
            and len(ids(opened, {"g": 1}, ["g"])) == 3
        )


def test_field_values_is_plain_sqlite(index: Any) -> None:
    index.index_field("n")
    conn = sqlite3.connect(index.path / "index.db")  # no searchkit function needed to read it
    count = conn.execute(
        "SELECT count(*) FROM field_values WHERE field = 'n' AND kind = 'number'"
    ).fetchone()[0]
    conn.close()
    assert count == len(ids(index, {"n": {"$gte": -1e300}}, [])) > 0
