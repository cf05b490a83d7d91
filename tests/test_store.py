"""searchkit.store: migrations, staging and applying, ids, generations, reads, corruption."""

from __future__ import annotations

import base64
import json
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from searchkit.errors import CorruptIndexError
from searchkit.store import PendingRow, Store, StoredItem

DIM = 4
SQLITE_UTILS = Path(sys.executable).parent / "sqlite-utils"


def vector(offset: float = 0.0, dim: int = DIM) -> np.ndarray:
    return np.arange(dim, dtype="<f4") + np.float32(offset)


def row(key: str, text: str | None = None, offset: float = 0.0, **metadata: Any) -> PendingRow:
    text = text if text is not None else f"text of {key}"
    return PendingRow(
        key=key,
        text=text,
        metadata=metadata,
        content_hash=f"hash:{text}",
        source=f"src:{key}",
        truncated=False,
        embedding=vector(offset).tobytes(),
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "index.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = Store(db_path, DIM, create=True)
    yield s
    s.close()


def add(store: Store, run: str, *rows: PendingRow) -> list[int]:
    store.stage(run, rows)
    return store.apply(run).tolist()


def keys_to_ids(store: Store) -> dict[str, int]:
    return {k: i for i, k in store.db.execute("SELECT id, key FROM items ORDER BY id")}


# --- migrations ------------------------------------------------------------------


MIGRATION_NAMES = [
    "initial",
    "fulltext",
    "metadata_index",
    "counts",
    "embeddings",
    "fields",
    "segments",
    "cjk_fulltext",
    "origins",
]


def test_an_older_index_opened_by_several_processes_at_once_migrates_once(db_path: Path) -> None:
    import sqlite3
    import threading

    store = Store(db_path, DIM, create=True)
    add(store, "r", row("a", "old words here"))
    store.close()
    conn = sqlite3.connect(db_path)  # back to the m001 schema, as an older searchkit left it
    conn.executescript(
        "DROP TRIGGER items_fts_insert; DROP TRIGGER items_fts_delete; DROP TRIGGER items_fts_update;"
        "DROP TABLE items_fts; DROP INDEX items_metadata;"
        "DROP TRIGGER items_count_insert; DROP TRIGGER items_count_delete; DROP TRIGGER items_count_update;"
        "DELETE FROM state WHERE name IN ('items', 'truncated');"
        "DROP TRIGGER items_embedding_delete;"
        "ALTER TABLE items ADD COLUMN embedding BLOB NOT NULL DEFAULT x'';"
        "UPDATE items SET embedding = (SELECT embedding FROM embeddings WHERE id = items.id);"
        "DROP TABLE embeddings; DROP TABLE tombstones; DROP TABLE segments;"
        "DROP TRIGGER items_fields_insert; DROP TRIGGER items_fields_delete;"
        "DROP TRIGGER items_fields_update;"
        "DROP TABLE field_values; DROP TABLE fields;"
        "DELETE FROM _searchkit_migrations WHERE name != 'm001_initial';"
    )
    conn.close()
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Store(db_path, DIM).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store = Store(db_path, DIM)
    try:
        names = [r[0] for r in store.db.execute("SELECT name FROM _searchkit_migrations ORDER BY name")]
        assert names == [f"m00{n}_{name}" for n, name in enumerate(MIGRATION_NAMES, start=1)]
        assert [i for i, _ in store.keyword("words", 5)] == [1]
        assert store.count() == 1
        np.testing.assert_array_equal(store.embeddings_by_ids([1])[1], vector(0))
    finally:
        store.close()


def test_migrations_create_the_tables(store: Store) -> None:
    tables = set(store.db.table_names())
    assert {"items", "pending", "state", "segments", "tombstones", "_searchkit_migrations"} <= tables
    assert [r["name"] for r in store.db["_searchkit_migrations"].rows] == [
        "m001_initial",
        "m002_fulltext",
        "m003_metadata_index",
        "m004_counts",
        "m005_embeddings",
        "m006_fields",
        "m007_segments",
        "m008_cjk_fulltext",
        "m009_origins",
    ]
    assert store.generation == 0
    assert store.count() == 0
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {c.name for c in store.db["items"].columns} == {
        "id",
        "key",
        "text",
        "metadata",
        "content_hash",
        "source",
        "truncated",
        "updated",
        "analyzed",
        "origin",
    }
    assert {c.name for c in store.db["embeddings"].columns} == {"id", "embedding", "gen"}


def test_opening_a_missing_database_without_create_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    with pytest.raises(CorruptIndexError) as info:
        Store(path, DIM)
    assert str(info.value) == (
        f"{tmp_path}: index.db is missing, and with it every item; restore it from a backup"
    )
    assert not path.exists()


def test_dimension_defaults_to_the_configured_one(db_path: Path) -> None:
    store = Store(db_path, DIM, create=True)
    try:
        store.set_config({"model": {"dimension": DIM}})
        add(store, "r", row("a", offset=1))
    finally:
        store.close()
    reopened = Store(db_path)
    try:
        assert reopened.dimension == DIM
        np.testing.assert_array_equal(reopened.embeddings_by_ids([1])[1], vector(1))
    finally:
        reopened.close()


def test_migrations_are_idempotent_on_reopen(db_path: Path) -> None:
    first = Store(db_path, DIM, create=True)
    applied = list(first.db["_searchkit_migrations"].rows)
    add(first, "r", row("a"), row("b"))
    first.close()
    for _ in range(2):
        again = Store(db_path, DIM)
        try:
            assert list(again.db["_searchkit_migrations"].rows) == applied
            assert again.count() == 2
            assert again.generation == 1
            states = dict(again.db.execute("SELECT name, value FROM state").fetchall())
            assert states == {
                "generation": "1",
                "config": "{}",
                "items": "2",
                "truncated": "0",
                "analysis": "cjk-bigrams+unigrams",
            }
        finally:
            again.close()


# --- stage and apply -------------------------------------------------------------


def test_stage_then_apply_moves_rows(store: Store) -> None:
    store.stage("r1", [row("a"), row("b", offset=1)])
    assert store.count() == 0
    assert store.pending_count("r1") == 2
    assert store.pending_count("other") == 0
    assert store.apply("r1").tolist() == [1, 2]
    assert store.count() == 2
    assert store.pending_count("r1") == 0
    assert list(store.iter_items()) == [
        ("a", "text of a", {}, vector(0).tobytes()),
        ("b", "text of b", {}, vector(1).tobytes()),
    ]
    stored = store.db.execute("SELECT key, content_hash, source, truncated FROM items").fetchall()
    assert stored == [("a", "hash:text of a", "src:a", 0), ("b", "hash:text of b", "src:b", 0)]


def test_apply_keeps_ids_of_existing_keys_and_gives_new_keys_new_ids(store: Store) -> None:
    assert add(store, "r1", row("a"), row("b"), row("c")) == [1, 2, 3]
    ids = add(store, "r2", row("d"), row("b", "new text of b", offset=9, lang="en"))
    assert ids == [2, 4]
    assert keys_to_ids(store) == {"a": 1, "b": 2, "c": 3, "d": 4}
    b = store.items_by_ids([2])[2]
    assert (b.key, b.text, b.metadata) == ("b", "new text of b", {"lang": "en"})
    np.testing.assert_array_equal(store.embeddings_by_ids([2])[2], vector(9))
    assert hashes(store, ["b"]) == {"b": "hash:new text of b"}
    assert store.count() == 4


def test_new_keys_get_ids_in_staging_order(store: Store) -> None:
    store.stage("r", [row("z"), row("m")])
    store.stage("r", [row("a")])
    assert store.apply("r").tolist() == [1, 2, 3]
    assert keys_to_ids(store) == {"z": 1, "m": 2, "a": 3}


def test_stage_last_key_wins(store: Store) -> None:
    store.stage("r", [row("a", "first"), row("a", "second", offset=2)])
    store.stage("r", [row("b"), row("a", "third", offset=3)])
    assert store.pending_count("r") == 2
    assert add(store, "r") == [1, 2]
    assert keys_to_ids(store) == {"b": 1, "a": 2}
    assert store.items_by_ids([2])[2].text == "third"


def test_apply_drops_pending_rows_of_other_runs(store: Store) -> None:
    store.stage("crashed", [row("x", "from a crash")])
    store.stage("r", [row("y")])
    assert store.pending_keys("crashed", ["x", "y"]) == {"x"}
    assert store.apply("r").tolist() == [1]
    assert keys_to_ids(store) == {"y": 1}
    assert store.pending_count("crashed") == 0
    assert store.embeddings_for_hashes(["hash:from a crash"]) == {}


def test_deleted_ids_are_never_reused(db_path: Path) -> None:
    store = Store(db_path, DIM, create=True)
    try:
        add(store, "r1", row("a"), row("b"), row("c"))
        assert store.delete(["c"]) == [3]  # the highest id: without AUTOINCREMENT it comes back
        assert add(store, "r2", row("d")) == [4]
        assert sorted(store.delete(["d", "b"])) == [2, 4]
    finally:
        store.close()
    reopened = Store(db_path, DIM)
    try:
        assert add(reopened, "r3", row("c"), row("e")) == [5, 6]
        assert keys_to_ids(reopened) == {"a": 1, "c": 5, "e": 6}
    finally:
        reopened.close()


# --- delete and generation -------------------------------------------------------


def test_delete_returns_existing_ids_and_ignores_unknown_keys(store: Store) -> None:
    add(store, "r", row("a"), row("b"), row("c"))
    assert sorted(store.delete(["c", "nope", "a", "also-nope"])) == [1, 3]
    assert store.delete(["a", "nope"]) == []
    assert store.delete([]) == []
    assert keys_to_ids(store) == {"b": 2}


def test_generation_bumps_on_apply_and_delete(db_path: Path) -> None:
    store = Store(db_path, DIM, create=True)
    try:
        assert store.generation == 0
        add(store, "r1", row("a"), row("b"))
        assert store.generation == 1
        add(store, "r2", row("a", "changed"))
        assert store.generation == 2
        store.delete(["a"])
        assert store.generation == 3
        store.delete(["unknown"])
        assert store.generation == 3
        store.stage("r3", [row("c")])
        assert store.generation == 3
    finally:
        store.close()
    reopened = Store(db_path, DIM)
    try:
        assert reopened.generation == 3
    finally:
        reopened.close()


def test_delete_of_many_keys_crosses_chunks(store: Store) -> None:
    keys = [f"k{i:04d}" for i in range(2000)]
    add(store, "r", *(row(k) for k in keys))
    deleted = store.delete([*keys[::2], "missing"])
    assert sorted(deleted) == list(range(1, 2001, 2))
    assert store.count() == 1000
    assert store.generation == 2


# --- reads -----------------------------------------------------------------------


def hashes(store: Store, keys: list[str]) -> dict[str, str]:
    return {key: state.content_hash for key, state in store.states_for_keys(keys).items()}


def test_states_for_keys(store: Store) -> None:
    add(store, "r", row("a", "alpha"), row("b", "beta", lang="en"))
    store.stage("pending-run", [row("p", "pending only")])
    assert hashes(store, ["b", "a", "missing", "p"]) == {"a": "hash:alpha", "b": "hash:beta"}
    state = store.states_for_keys(["b"])["b"]
    assert (state.metadata, state.source, state.truncated) == ('{"lang": "en"}', "src:b", False)
    assert store.states_for_keys([]) == {}


def test_apply_returns_only_the_ids_whose_vector_changes(store: Store) -> None:
    add(store, "r1", row("a"), row("b"), row("c"))
    # b: same text, new metadata; c: new text; d: new key.
    ids = add(store, "r2", row("b", lang="ko"), row("c", "new text of c", offset=5), row("d"))
    assert ids == [3, 4]
    assert store.items_by_ids([2])[2].metadata == {"lang": "ko"}


def test_hashes_for_many_keys_crosses_chunks(store: Store) -> None:
    keys = [f"k{i}" for i in range(2000)]
    add(store, "r", *(row(k) for k in keys))
    found = hashes(store, [*keys, "nope"])
    assert found == {k: f"hash:text of {k}" for k in keys}


def test_embeddings_for_hashes_from_items_and_pending(store: Store) -> None:
    add(store, "r", row("a", "alpha", offset=1), row("b", "beta", offset=2))
    store.stage("next", [row("c", "gamma", offset=3), row("d", "alpha", offset=99)])
    found = store.embeddings_for_hashes(["hash:alpha", "hash:gamma", "hash:alpha", "hash:unknown"])
    assert found == {"hash:alpha": vector(1).tobytes(), "hash:gamma": vector(3).tobytes()}
    assert store.embeddings_for_hashes([]) == {}


def test_items_by_ids(store: Store) -> None:
    add(store, "r", row("a", offset=1, lang="en"), row("b", offset=2), row("c", offset=3))
    found = store.items_by_ids([3, 1, 42])
    assert set(found) == {1, 3}
    a = found[1]
    assert isinstance(a, StoredItem)
    assert (a.id, a.key, a.text, a.metadata) == (1, "a", "text of a", {"lang": "en"})
    vectors = store.embeddings_by_ids([3, 1, 42])
    assert set(vectors) == {1, 3} and vectors[1].dtype == np.float32
    np.testing.assert_array_equal(vectors[1], vector(1))
    np.testing.assert_array_equal(vectors[3], vector(3))
    assert store.items_by_ids([]) == {}


def test_a_stored_embedding_of_the_wrong_dimension_is_corrupt(db_path: Path) -> None:
    store = Store(db_path, DIM, create=True)
    try:
        bad = PendingRow("a", "t", {}, "h", "s", False, np.arange(3, dtype="<f4").tobytes())
        add(store, "r", bad)
        with pytest.raises(CorruptIndexError) as info:
            store.embeddings_by_ids([1])
        assert str(info.value) == (
            f"{db_path}: a stored embedding is not {DIM} float32 values; run searchkit check --repair"
        )
    finally:
        store.close()


def test_iter_embeddings_all_in_batches(store: Store) -> None:
    add(store, "r", *(row(f"k{i}", offset=i) for i in range(5)))
    store.delete(["k1"])
    batches = list(store.iter_embeddings(batch=2))
    assert [ids.tolist() for ids, _ in batches] == [[1, 3], [4, 5]]
    for ids, vectors in batches:
        assert ids.dtype == np.int64
        assert vectors.dtype == np.float32
        assert vectors.shape == (len(ids), DIM)
        np.testing.assert_array_equal(vectors, np.stack([vector(i - 1) for i in ids]))


def test_iter_embeddings_of_given_ids(store: Store) -> None:
    add(store, "r", *(row(f"k{i}", offset=i) for i in range(5)))
    [(ids, vectors)] = list(store.iter_embeddings(ids=[4, 2, 77]))
    assert ids.tolist() == [2, 4]
    np.testing.assert_array_equal(vectors, np.stack([vector(1), vector(3)]))
    assert list(store.iter_embeddings(ids=[99])) == []
    assert list(store.iter_embeddings(ids=[])) == []


def test_iter_embeddings_of_an_empty_store(store: Store) -> None:
    assert list(store.iter_embeddings()) == []
    assert list(store.iter_items()) == []


def test_iter_embeddings_of_many_ids_crosses_chunks(store: Store) -> None:
    add(store, "r", *(row(f"k{i}", offset=i) for i in range(2000)))
    wanted = list(range(2000, 0, -3))
    got = np.concatenate([ids for ids, _ in store.iter_embeddings(ids=wanted)])
    assert sorted(got.tolist()) == sorted(wanted)


def test_iter_items_in_id_order(store: Store) -> None:
    add(store, "r1", row("b", offset=1), row("a", offset=2, tag="x"))
    add(store, "r2", row("c", offset=3), row("b", "b again", offset=4))
    assert list(store.iter_items(batch=1)) == [
        ("b", "b again", {}, vector(4).tobytes()),
        ("a", "text of a", {"tag": "x"}, vector(2).tobytes()),
        ("c", "text of c", {}, vector(3).tobytes()),
    ]


def test_pending_keys(store: Store) -> None:
    store.stage("r1", [row("a"), row("b")])
    store.stage("r2", [row("c")])
    assert store.pending_keys("r1", ["a", "c", "z"]) == {"a"}
    assert store.pending_keys("r2", ["a", "b", "c"]) == {"c"}
    assert store.pending_keys("r1", []) == set()
    many = [f"m{i}" for i in range(1500)]
    store.stage("r3", [row(k) for k in many[::2]])
    assert store.pending_keys("r3", many) == set(many[::2])


def test_metadata_round_trips_with_unicode(db_path: Path) -> None:
    metadata = {
        "名前": "東京",
        "emoji": "🙂 ok",
        "quote": 'say "hi"\n',
        "nested": {"list": [1, 2.5, None, True, "ü"], "empty": {}},
        "n": -3,
    }
    store = Store(db_path, DIM, create=True)
    try:
        add(store, "r", PendingRow("ключ", "текст 🙂", metadata, "h", "s", True, vector().tobytes()))
        item = store.items_by_ids([1])[1]
        assert (item.key, item.text, item.metadata) == ("ключ", "текст 🙂", metadata)
        assert list(store.iter_items()) == [("ключ", "текст 🙂", metadata, vector().tobytes())]
        assert store.truncated_count() == 1
    finally:
        store.close()
    raw = sqlite3.connect(db_path)
    try:
        stored = raw.execute("SELECT metadata FROM items").fetchone()[0]
    finally:
        raw.close()
    assert "東京" in stored  # readable JSON in the database, not \\u escapes
    assert json.loads(stored) == metadata


# --- config and maintenance ------------------------------------------------------


def test_config_round_trips_and_is_a_write(db_path: Path) -> None:
    config = {"metric": "cosine", "model": {"name": "m", "dimension": DIM}, "note": "é"}
    store = Store(db_path, DIM, create=True)
    try:
        assert store.config == {}
        store.set_config(config)
        assert store.config == config
        assert store.generation == 1
    finally:
        store.close()
    reopened = Store(db_path, DIM)
    try:
        assert reopened.config == config
        assert reopened.generation == 1
    finally:
        reopened.close()


def test_ids_integrity_and_malformed_embeddings(store: Store) -> None:
    assert store.ids().tolist() == []
    short = PendingRow("short", "t", {}, "h", "s", False, np.arange(3, dtype="<f4").tobytes())
    add(store, "r", row("a"), short, row("b"))
    store.delete(["a"])
    ids = store.ids()
    assert ids.dtype == np.int64
    assert ids.tolist() == [2, 3]
    assert store.integrity() == "ok"
    assert store.malformed_embeddings() == [2]
    store.replace_embeddings({2: vector(5).tobytes()})
    assert store.malformed_embeddings() == []
    np.testing.assert_array_equal(store.embeddings_by_ids([2])[2], vector(5))
    assert store.generation == 3


def test_clear_pending(store: Store) -> None:
    store.stage("r1", [row("a"), row("b")])
    store.stage("r2", [row("c")])
    assert store.pending_total() == 3
    store.clear_pending()
    assert store.pending_total() == 0
    assert store.pending_keys("r1", ["a", "b"]) == set()
    assert store.count() == 0


# --- the database as other tools see it ------------------------------------------


def sqlite_utils_cli(*args: str | Path) -> Any:
    done = subprocess.run(
        [str(SQLITE_UTILS), *map(str, args)], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize("open_while_reading", [True, False])
def test_the_database_opens_with_the_sqlite_utils_cli(db_path: Path, open_while_reading: bool) -> None:
    store = Store(db_path, DIM, create=True)
    try:
        add(store, "r", row("a", offset=1, lang="en"), row("b", "beta", offset=2))
        store.stage("next", [row("p")])
    finally:
        if not open_while_reading:
            store.close()
    try:
        counts = {t["table"]: t["count"] for t in sqlite_utils_cli("tables", "--counts", db_path)}
        assert counts["items"] == 2
        assert counts["pending"] == 1
        assert counts["state"] == 5
        assert counts["_searchkit_migrations"] == len(MIGRATION_NAMES)
        assert counts["embeddings"] == 2
        assert counts["fields"] == counts["field_values"] == 0  # none indexed until asked
        # The keyword index is the kind sqlite-utils (and Datasette) detect and search.
        assert [r["key"] for r in sqlite_utils_cli("search", db_path, "items", "beta")] == ["b"]
        rows = sqlite_utils_cli("rows", db_path, "items")
        assert [(r["id"], r["key"], r["text"]) for r in rows] == [(1, "a", "text of a"), (2, "b", "beta")]
        assert [json.loads(r["metadata"]) for r in rows] == [{"lang": "en"}, {}]
        assert all("embedding" not in r for r in rows)  # rows of text, not of 1.5 KB blobs
        vectors = sqlite_utils_cli("rows", db_path, "embeddings")
        blobs = [base64.b64decode(r["embedding"]["encoded"]) for r in vectors]
        assert blobs == [vector(1).tobytes(), vector(2).tobytes()]
        state = sqlite_utils_cli("rows", db_path, "state")
        assert {r["name"]: r["value"] for r in state} == {
            "generation": "1",
            "config": "{}",
            "items": "2",
            "truncated": "0",
            "analysis": "cjk-bigrams+unigrams",
        }
    finally:
        if open_while_reading:
            store.close()


# --- corruption ------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(random.Random(1234).randbytes(8192), id="random-bytes"),
        pytest.param(b"this is a text file, not a database\n" * 200, id="text"),
    ],
)
def test_a_file_that_is_not_a_database_is_corrupt(db_path: Path, content: bytes) -> None:
    db_path.write_bytes(content)
    with pytest.raises(CorruptIndexError) as info:
        Store(db_path, DIM)
    message = str(info.value)
    assert message == (
        f"{db_path}: the database is damaged (file is not a database); restore it from a backup"
    )
    assert "\n" not in message
    assert db_path.read_bytes() == content  # refused, not overwritten


def test_the_counters_follow_every_write_without_a_scan(store: Store) -> None:
    truncated = PendingRow("t", "long", {}, "hash:long", "src:t", True, vector(7).tobytes())
    add(store, "r1", row("a"), row("b"), truncated)
    assert (store.count(), store.truncated_count()) == (3, 1)
    add(store, "r2", PendingRow("t", "short", {}, "hash:short", "src:t", False, vector(8).tobytes()))
    assert (store.count(), store.truncated_count()) == (3, 0)
    store.delete(["a"])
    assert store.counters() == store.counted() == {"items": 2, "truncated": 0}
    plan = store.db.execute("EXPLAIN QUERY PLAN SELECT value FROM state WHERE name = 'items'").fetchall()
    assert not any("SCAN" in step[3] for step in plan)


def test_an_index_made_before_m004_and_m005_keeps_every_vector(tmp_path: Path) -> None:
    """The fixture was made by searchkit at 384e01e (migrations m001-m003): embeddings inside items."""
    import shutil
    import sqlite3

    folder = tmp_path / "legacy"
    shutil.copytree(Path(__file__).parent / "fixtures" / "legacy-index", folder)
    conn = sqlite3.connect(folder / "index.db")
    before = dict(conn.execute("SELECT id, embedding FROM items").fetchall())
    conn.close()
    store = Store(folder / "index.db")
    try:
        assert store.counters() == store.counted() == {"items": len(before), "truncated": 0}
        assert {i: v.tobytes() for i, v in store.embeddings_by_ids(list(before)).items()} == before
        assert "embedding" not in {c.name for c in store.db["items"].columns}
    finally:
        store.close()


# --- keyword analysis (m008) -------------------------------------------------------

OLD_ROWS = [
    ("zh", "我喜欢踢足球和打篮球。"),
    ("ja", "私はサッカーが好きです。"),
    ("ko", "나는 축구를 좋아한다."),
    ("en", "I like soccer."),
]


def _old_index(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An index as searchkit made it before m008 (the migrations before it, rows written as
    it wrote them), with an interrupted ingest's staged row."""
    from searchkit import migrations

    with monkeypatch.context() as patch:
        before = [m for m in migrations.MIGRATIONS if m[0] < "m008"]
        patch.setattr(migrations, "MIGRATIONS", before)
        old = Store(db_path, DIM, create=True)
        with old.db.atomic():
            for key, text in OLD_ROWS:
                old.db.execute(
                    "INSERT INTO items (key, text, content_hash) VALUES (?, ?, ?)",
                    (key, text, f"hash:{text}"),
                )
            old.db.execute(
                "INSERT INTO embeddings (id, embedding) SELECT id, ? FROM items", (vector().tobytes(),)
            )
            old.db.execute(
                "INSERT INTO pending (key, run, text, metadata, content_hash, truncated, embedding)"
                " VALUES ('p', 'crashed', '足球', '{}', 'hash:p', 0, ?)",
                (vector().tobytes(),),
            )
        assert "analyzed" not in {c.name for c in old.db["items"].columns}
        assert [i for i, _ in old.keyword("축구", 5)] == []  # the issue: 축구를 is one word to unicode61
        assert [i for i, _ in old.keyword("축구를", 5)] == [3]
        old.close()


def test_an_index_from_before_cjk_analysis_is_migrated_when_opened(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _old_index(db_path, monkeypatch)
    store = Store(db_path, DIM)
    try:
        names = [r[0] for r in store.db.execute("SELECT name FROM _searchkit_migrations ORDER BY name")]
        assert names[-2:] == ["m008_cjk_fulltext", "m009_origins"]
        assert store.analysis == "cjk-bigrams+unigrams"
        analysed = dict(store.db.execute("SELECT key, analyzed FROM items").fetchall())
        assert analysed["en"] is None
        assert analysed["ko"] == "나 나는 는 축 축구 구 구를 를 좋 좋아 아 아한 한 한다 다 ."
        assert store.db.execute("SELECT analyzed FROM pending").fetchone()[0] == "足 足球 球"
        ids = keys_to_ids(store)
        found = [("足球", "zh"), ("サッカー", "ja"), ("축구", "ko"), ("축구를", "ko"), ("soccer", "en")]
        for query, key in found:
            assert [i for i, _ in store.keyword(query, 5)][:1] == [ids[key]], query
        assert store.fulltext_problem() is None
        add(store, "r", row("new", "축구공을 샀다."))  # and writes go on analysed
        assert next(i for i, _ in store.keyword("축구공", 5)) == keys_to_ids(store)["new"]
        assert store.fulltext_problem() is None
    finally:
        store.close()
    # What sqlite-utils and Datasette show: the keyword index found and searched as before.
    assert [r["key"] for r in sqlite_utils_cli("search", db_path, "items", "soccer")] == ["en"]
    # A CJK unit is a term of its own there too.
    assert sorted(r["key"] for r in sqlite_utils_cli("search", db_path, "items", "축구")) == ["ko", "new"]


def test_the_keyword_index_is_checked_and_rebuilt_with_its_analysis(store: Store) -> None:
    add(store, "r", row("ko", "나는 축구를 좋아한다."), row("en", "plain text"))
    assert store.fulltext_problem() is None
    with store.db.atomic():  # a keyword index out of step with the analysed text
        store.db.execute("INSERT INTO items_fts (items_fts, rowid, text) VALUES ('delete', 1, '축구')")
    assert store.fulltext_problem() == "database disk image is malformed"
    store.rebuild_fulltext()
    assert store.fulltext_problem() is None
    with store.db.atomic():  # FTS5's own rebuild reads the analysed texts (the view) too
        store.db.execute("INSERT INTO items_fts (items_fts) VALUES ('rebuild')")
    assert store.fulltext_problem() is None
    assert [i for i, _ in store.keyword("축구", 5)] == [1]
    generation = store.generation
    store.set_analysis("words")
    assert store.db.execute("SELECT count(*) FROM items WHERE analyzed IS NOT NULL").fetchone()[0] == 0
    assert store.keyword("축구", 5) == [] and store.fulltext_problem() is None
    assert store.generation == generation  # the keyword index is derived: rows and vectors unchanged


def test_an_analysis_this_searchkit_does_not_know_is_refused(store: Store) -> None:
    from searchkit.errors import IndexFileError, UsageError

    with pytest.raises(UsageError, match="unknown keyword analysis 'nope'"):
        store.set_analysis("nope")
    with store.db.atomic():
        store.db.execute("UPDATE state SET value = 'from-the-future' WHERE name = 'analysis'")
    with pytest.raises(IndexFileError, match="'from-the-future', which this searchkit does not know"):
        store.keyword("x", 5)
    problem = store.fulltext_problem()
    assert problem == "it holds the analysis 'from-the-future', which this searchkit does not know"


def test_a_query_leaves_out_its_common_cjk_characters(store: Store) -> None:
    """Held by most items, 나 and 는 of the query 나는 would make FTS5 score every item
    (fulltext.COMMON_SHARE); the bigram 나는 and a query of the one character 나 stay."""
    add(store, "r", *(row(f"k{i}", f"나는 간다 {i}") for i in range(1200)), row("x", "나 혼자"))
    x = keys_to_ids(store)["x"]
    assert x not in {i for i, _ in store.keyword("나는", 2000)}
    assert [i for i, _ in store.keyword("나", 5)][:1] == [x]
    assert x in {i for i, _ in store.keyword("혼자는", 5)}  # 는 left out, 혼 and 자 kept
