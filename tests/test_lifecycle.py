"""An index over time: crashes, concurrent writers, full disks, damage, rebuilds, space."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from searchkit import Index, LockError, Metric
from searchkit.lock import WriteLock
from searchkit.service import check
from searchkit.service.index import DB_FILE

from .conftest import CORPUS, snapshot
from .test_service import QUERIES, brute_force


def searchkit_cli(
    *args: Any, limit_file_size: int | None = None, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m searchkit ARGS`; `preexec` runs in the child before it starts."""

    def limit() -> None:
        if limit_file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))
        if preexec is not None:
            preexec()

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "searchkit", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=limit,
        timeout=300,
    )


# --- crashes: tests/test_faults.py kills a real process at each named step of a write ---


# --- concurrency: real processes ---------------------------------------------------


def test_two_writers_at_once_both_land(tmp_path: Path, crash_harness: Any, tiny_model_dir: Path) -> None:
    first = {f"a{i}": f"first writer item {i} alpha" for i in range(1500)}
    second = {f"b{i}": f"second writer item {i} bravo" for i in range(1500)}
    crash_harness.write_jsonl(tmp_path / "a.jsonl", first)
    crash_harness.write_jsonl(tmp_path / "b.jsonl", second)
    folder = tmp_path / "idx"
    crash_harness.run_to_end("index", str(folder), str(tmp_path / "a.jsonl"), "--model", str(tiny_model_dir))
    crash_harness.write_jsonl(tmp_path / "a2.jsonl", {k: v + " again" for k, v in first.items()})
    env = crash_harness.env()
    procs = [
        subprocess.Popen(
            crash_harness.cli("index", str(folder), str(tmp_path / name)),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a2.jsonl", "b.jsonl")
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    items = crash_harness.items_of(folder)
    assert items == {**{k: v + " again" for k, v in first.items()}, **second}
    assert check(folder).ok


def test_readers_never_see_a_half_write(tmp_path: Path, crash_harness: Any, tiny_model_dir: Path) -> None:
    """A real writer process is held inside its commit (its SQLite transaction open:
    SEARCHKIT_PAUSE), and readers then see the index exactly as before it."""
    from searchkit import embedder as embedding

    model = embedding.load(str(tiny_model_dir))
    base = {f"r{i}": f"resident item {i} charlie" for i in range(500)}
    extra = {f"w{i}": f"written item {i} delta" for i in range(1500)}
    crash_harness.write_jsonl(tmp_path / "base.jsonl", base)
    crash_harness.write_jsonl(tmp_path / "extra.jsonl", extra)
    folder = tmp_path / "idx"
    crash_harness.run_to_end(
        "index", str(folder), str(tmp_path / "base.jsonl"), "--model", str(tiny_model_dir)
    )
    go = tmp_path / "go"
    files = list(folder.glob("*.faiss*"))
    writer = subprocess.Popen(
        crash_harness.cli("index", str(folder), str(tmp_path / "extra.jsonl")),
        env={**crash_harness.env(), "SEARCHKIT_PAUSE": f"in-commit:{go}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def read() -> tuple[int, int, str]:
        with Index.open(folder, embedder=model) as index:
            hits = index.search("resident item 7 charlie", k=3)
            counts = index.info()["counts"]  # one snapshot: rows and vectors agree
            return counts["items"], counts["vectors"], hits[0].id

    deadline = time.monotonic() + 120
    while not Path(f"{go}.reached").exists():  # bounded: the writer stops inside its commit
        assert writer.poll() is None and time.monotonic() < deadline, writer.stderr
        time.sleep(0.01)
    assert list(folder.glob("*.faiss*")) == files  # a write changes rows only, no vector file
    during = [read() for _ in range(5)]
    go.touch()
    _, stderr = writer.communicate(timeout=300)
    assert writer.returncode == 0, stderr
    assert during == [(500, 500, "r7")] * 5
    assert read() == (2000, 2000, "r7")
    assert crash_harness.items_of(folder) == {**base, **extra}


def test_a_second_writer_waits_then_fails_clearly(tmp_path: Path, tiny: Any) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    with WriteLock(tmp_path / "i"), pytest.raises(LockError, match="another process is writing"):
        index.add([{"id": "a", "text": "x"}], lock_timeout=0.3)
    assert len(index) == 0
    assert index.add([{"id": "a", "text": "x"}]).added == 1


# --- a full disk -------------------------------------------------------------------


def test_a_full_disk_fails_cleanly_and_loses_nothing(tmp_path: Path, tiny_model_dir: Path) -> None:
    folder = tmp_path / "idx"
    small = tmp_path / "small.txt"
    small.write_text("".join(f"committed line {i}\n" for i in range(50)), encoding="utf-8")
    assert searchkit_cli("index", folder, small, "--model", tiny_model_dir).returncode == 0
    before = snapshot(folder)
    big = tmp_path / "big.txt"
    big.write_text(
        "".join(f"a much longer line number {i} " * 20 + "\n" for i in range(3000)), encoding="utf-8"
    )
    limit = max(p.stat().st_size for p in folder.iterdir()) + 64 * 1024
    result = searchkit_cli("index", folder, big, limit_file_size=limit)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"Error: cannot write to {folder}: "), result.stderr
    assert "free disk space" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert snapshot(folder)["items"] == before["items"]
    assert check(folder).ok


# --- damage, check and repair ---------------------------------------------------------


@pytest.fixture
def healthy(tmp_path: Path, tiny: Any) -> Path:
    folder = tmp_path / "idx"
    index = Index.create(folder, embedder=tiny)
    index.add([{"id": f"k{i}", "text": f"text number {i}"} for i in range(40)])
    index.compact()  # the 40 vectors sealed into one segment file
    index.close()
    return folder


def vectors_path(folder: Path) -> Path:
    (path,) = folder.glob("segment-*.faiss")
    return path


def _faiss_edit(folder: Path, edit: Any) -> None:
    import faiss

    index = faiss.read_index(str(vectors_path(folder)))
    edit(index)
    faiss.write_index(index, str(vectors_path(folder)))


def _set_manifest(folder: Path, **changes: Any) -> None:
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    for dotted, value in changes.items():
        target = data
        *parents, last = dotted.split("__")
        for part in parents:
            target = target[part]
        target[last] = value
    path.write_text(json.dumps(data))


DAMAGE = {
    "orphan vector": (
        lambda f: _faiss_edit(f, lambda ix: ix.add_with_ids(np.ones((1, 16), "float32"), np.array([999]))),
        "vectors: 1 vector(s) with no item (orphans)",
    ),
    "missing vector": (
        lambda f: _faiss_edit(f, lambda ix: ix.remove_ids(np.array([3], dtype="int64"))),
        "vectors: 1 item(s) with no vector",
    ),
    "altered vector": (
        lambda f: _faiss_edit(
            f,
            lambda ix: (
                ix.remove_ids(np.array([5], dtype="int64")),
                ix.add_with_ids(np.ones((1, 16), "float32"), np.array([5])),
            ),
        ),
        "vectors: 1 vector(s) differ from the stored embeddings",
    ),
    "corrupt faiss file": (
        lambda f: vectors_path(f).write_bytes(b"\x00garbage" * 100),
        "vectors: ",
    ),
    "missing faiss file": (lambda f: vectors_path(f).unlink(), "vectors: segment segment-"),
    "tombstone of an id the segment lacks": (
        lambda f: _sql(f, "INSERT INTO tombstones (id, old_gen, gen) VALUES (999, 1, 1)"),
        "vectors: segment-",
    ),
    "tombstone of a version no segment holds": (
        lambda f: _sql(f, "INSERT INTO tombstones (id, old_gen, gen) VALUES (3, -5, 1)"),
        "vectors: 1 tombstone(s) of versions no segment holds",
    ),
    "a lost tombstone": (  # the segment's version of item 7 not marked dead: held twice
        lambda f: (
            _sql(f, "UPDATE embeddings SET gen = 10000 WHERE id = 7"),
            _sql(f, "DELETE FROM tombstones"),
        ),
        "vectors: 1 item(s) held twice",
    ),
    "manifest counts": (
        lambda f: _set_manifest(f, counts__items=7),
        "manifest: counts 7 items, the database holds 40",
    ),
    "manifest metric": (
        lambda f: _set_manifest(f, metric="euclidean"),
        "manifest: metric disagrees with the database",
    ),
    "manifest garbage": (lambda f: (f / "manifest.json").write_text("{not json"), "manifest: "),
    "keyword index out of step": (
        lambda f: _sql(
            f, "INSERT INTO items_fts (items_fts, rowid, text) VALUES ('delete', 5, 'text number 4')"
        ),
        "keyword index: ",
    ),
    "keyword index dropped": (lambda f: _sql(f, "DROP TABLE items_fts"), "keyword index: "),
    "bad embedding": (
        lambda f: _sql(f, f"UPDATE embeddings SET embedding = x'0000' WHERE id = {_ID_OF_K1}"),
        "database: 1 stored embedding(s) missing or of the wrong size",
    ),
    "missing embedding": (
        lambda f: _sql(f, "DELETE FROM embeddings WHERE id = (SELECT id FROM items WHERE key = 'k2')"),
        "database: 1 stored embedding(s) missing or of the wrong size",
    ),
}


_ID_OF_K1 = "(SELECT id FROM items WHERE key = 'k1')"


def _sql(folder: Path, statement: str) -> None:
    import sqlite3

    conn = sqlite3.connect(folder / DB_FILE)
    conn.execute(statement)
    conn.commit()
    conn.close()


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_check_finds_damage_and_repair_restores_it(damage: str, healthy: Path, tiny: Any) -> None:
    assert check(healthy).ok
    before = snapshot(healthy)["items"]
    harm, message = DAMAGE[damage]
    harm(healthy)
    found = check(healthy)
    assert not found.ok
    assert any(p.startswith(message) for p in found.problems), found.problems
    repaired = check(healthy, repair=True, embedder=tiny)
    assert repaired.ok and repaired.repaired, repaired
    assert check(healthy).ok
    assert snapshot(healthy)["items"] == before
    with Index.open(healthy, embedder=tiny) as index:
        assert index.search("text number 12", k=1)[0].id == "k12"
        assert [h.id for h in index.search("text number 12", k=1, mode="keyword")] == ["k12"]


def test_check_cli_exit_codes(healthy: Path, tiny: Any) -> None:
    from typer.testing import CliRunner

    from searchkit.cli import app

    ok = CliRunner().invoke(app, ["check", str(healthy)])
    assert ok.exit_code == 0 and ok.stdout.strip().endswith("consistent")
    vectors_path(healthy).unlink()
    bad = CliRunner().invoke(app, ["check", str(healthy), "--json"])
    assert bad.exit_code == 1 and json.loads(bad.stdout)["ok"] is False
    fixed = CliRunner().invoke(app, ["check", str(healthy), "--repair"])
    assert fixed.exit_code == 0 and "repaired:" in fixed.stdout


def test_a_truncated_database_is_reported_not_repaired(healthy: Path) -> None:
    db = healthy / DB_FILE
    with db.open("r+b") as f:
        f.truncate(db.stat().st_size // 3)
    report = check(healthy, repair=True)
    assert not report.ok and report.problems[0].startswith("database: ")
    result = searchkit_cli("query", healthy, "text")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


def test_an_interrupted_write_is_finished_by_check(healthy: Path, tiny: Any) -> None:
    manifest = json.loads((healthy / "manifest.json").read_text())
    with Index.open(healthy, embedder=tiny) as index:
        index.delete(["k0"])
    (healthy / "manifest.json").write_text(json.dumps(manifest))  # as if it died before step 4
    report = check(healthy)
    assert report.ok and any("finished an interrupted write" in n for n in report.notes), report
    assert json.loads((healthy / "manifest.json").read_text())["counts"]["items"] == 39


# --- rebuild, space --------------------------------------------------------------


def test_rebuild_with_another_metric_equals_brute_force_and_embeds_nothing(
    tmp_path: Path, corpus: list[dict[str, Any]], st_model: Any, model: Any
) -> None:
    folder = tmp_path / "idx"
    Index.create(folder, embedder=model).add(corpus)
    for metric in (Metric.MANHATTAN, Metric.EUCLIDEAN, Metric.DOT):
        with Index.open(folder) as index:
            report = index.rebuild(metric=metric)
            assert index._embedder is None  # no model was even loaded
            assert report.embedded == 0
        with Index.open(folder) as index:
            assert index.metric is metric and index.manifest.faiss == "IDMap2,Flat"
            for query, hits in zip(QUERIES, index.search_many(QUERIES, k=10), strict=True):
                expected = brute_force(st_model, corpus, query, metric, 10)
                assert [h.id for h in hits] == [e[0] for e in expected]
                np.testing.assert_allclose([h.score for h in hits], [e[1] for e in expected], atol=1e-4)
    assert check(folder).ok


def test_deletes_give_space_back(tmp_path: Path, tiny: Any) -> None:
    folder = tmp_path / "idx"
    index = Index.create(folder, embedder=tiny)
    index.add([{"id": str(i), "text": f"some longer text for item {i} " * 8} for i in range(3000)])
    index.close()
    full = (folder / DB_FILE).stat().st_size
    index = Index.open(folder, embedder=tiny)
    index.delete([str(i) for i in range(2500)])
    index.close()
    assert (folder / DB_FILE).stat().st_size < full * 0.5
    with Index.open(folder, embedder=tiny) as index:
        assert len(index) == 500 and index.vectors.ntotal == 500
        assert {h.id for h in index.search("some longer text for item 7 ", k=500)} == {
            str(i) for i in range(2500, 3000)
        }


def test_reindexing_corpus_twice_reports_unchanged(tmp_path: Path, model: Any) -> None:
    result = searchkit_cli("index", tmp_path / "idx", CORPUS, "--json")
    again = searchkit_cli("index", tmp_path / "idx", CORPUS, "--json")
    first, second = json.loads(result.stdout), json.loads(again.stdout)
    assert first["added"] == second["unchanged"] == first["items"] > 300
    assert second["embedded"] == 0 and second["added"] == second["updated"] == 0


def test_rebuild_script_in_place_and_with_another_model(
    tmp_path: Path, tiny_model_dir: Path, crash_harness: Any
) -> None:
    from .conftest import ROOT

    items = {f"s{i}": f"script item {i} echo" for i in range(300)}
    crash_harness.write_jsonl(tmp_path / "in.jsonl", {**items})
    folder = tmp_path / "idx"
    crash_harness.run_to_end("index", str(folder), str(tmp_path / "in.jsonl"), "--model", str(tiny_model_dir))
    script = [sys.executable, str(ROOT / "scripts" / "rebuild_index.py")]
    env = crash_harness.env()
    done = subprocess.run(
        [*script, str(folder), "--metric", "manhattan"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "300 vectors rebuilt for manhattan" in done.stdout and "nothing embedded" in done.stdout
    target = tmp_path / "v2"
    done = subprocess.run(
        [*script, str(folder), "--model", "all-MiniLM-L6-v2", "--to", str(target)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    with Index.open(target) as new:
        assert new.manifest.model.name == "all-MiniLM-L6-v2" and new.metric is Metric.MANHATTAN
        assert new.manifest.model.dimension == 384
    assert crash_harness.items_of(target) == items == crash_harness.items_of(folder)
    assert check(target).ok and check(folder).ok
