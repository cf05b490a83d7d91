"""searchkit push: an index's items and stored vectors in Milvus Lite, LanceDB and Qdrant.

Each engine is read back through its own client library, as a user of that engine would:
its search, with the mapped metric, ranks as searchkit's exact search and scores the same
(once its distance is turned into searchkit's score), and it holds the index's texts,
metadata and vectors. The items carry the model's own vectors scaled by a factor each, so
that cosine, dot, euclidean and manhattan rank them differently.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from searchkit import Index, Metric, StorageError, UsageError
from searchkit.cli import app
from searchkit.push import METRICS, PushReport, parse_target, push
from searchkit.push.qdrant import point_id

K = 10
TIE = 1e-4  # searchkit scores closer than this may come in either order
SCALES = (0.5, 2.0)  # each item's vector is the model's times a factor in this range
Scored = list[tuple[str, float]]


# --- the engines, through their own client libraries ---------------------------------------

# searchkit's score from what each engine reports, by the engine's metric name: Milvus' L2
# and LanceDB's l2 are squared distances, LanceDB's cosine and dot are 1 - similarity.
TO_SCORE: dict[str, Callable[[float], float]] = {
    "COSINE": lambda d: d,
    "IP": lambda d: d,
    "L2": lambda d: -float(np.sqrt(max(d, 0.0))),
    "cosine": lambda d: 1.0 - d,
    "dot": lambda d: 1.0 - d,
    "l2": lambda d: -float(np.sqrt(max(d, 0.0))),
    "Cosine": lambda s: s,
    "Dot": lambda s: s,
    "Euclid": lambda s: -s,
    "Manhattan": lambda s: -s,
}


class Milvus:
    def __init__(self, location: str) -> None:
        from pymilvus import MilvusClient

        self.client = MilvusClient(location)

    def search(self, name: str, metric: str, queries: np.ndarray) -> list[Scored]:
        found = self.client.search(
            name, data=queries.tolist(), limit=K, anns_field="vector", search_params={"metric_type": metric}
        )
        return [[(hit["id"], hit["distance"]) for hit in hits] for hits in found]

    def rows(self, name: str) -> dict[str, tuple[str, Any, list[float]]]:
        rows = self.client.query(
            name, filter="", output_fields=["id", "text", "metadata", "vector"], limit=16384
        )
        return {row["id"]: (row["text"], row["metadata"], row["vector"]) for row in rows}

    def exists(self, name: str) -> bool:
        return bool(self.client.has_collection(name))

    def close(self) -> None:
        self.client.close()


class Lance:
    def __init__(self, location: str) -> None:
        import lancedb

        self.db = lancedb.connect(location)

    def search(self, name: str, metric: str, queries: np.ndarray) -> list[Scored]:
        table = self.db.open_table(name)
        assert table.schema.metadata[b"searchkit.distance_type"] == metric.encode()
        found = [table.search(q).distance_type(metric).limit(K).to_list() for q in queries]
        return [[(row["id"], row["_distance"]) for row in rows] for rows in found]

    def rows(self, name: str) -> dict[str, tuple[str, Any, list[float]]]:
        rows = self.db.open_table(name).to_arrow().to_pylist()
        return {row["id"]: (row["text"], json.loads(row["metadata"]), row["vector"]) for row in rows}

    def exists(self, name: str) -> bool:
        return name in self.db.list_tables().tables

    def close(self) -> None:
        pass


class Qdrant:
    def __init__(self, location: str) -> None:
        from qdrant_client import QdrantClient

        self.client = QdrantClient(path=location)

    def search(self, name: str, metric: str, queries: np.ndarray) -> list[Scored]:
        assert self.client.get_collection(name).config.params.vectors.distance.value == metric
        found = [self.client.query_points(name, query=q.tolist(), limit=K).points for q in queries]
        return [[(self._key(p), p.score) for p in points] for points in found]

    def rows(self, name: str) -> dict[str, tuple[str, Any, list[float]]]:
        points, _ = self.client.scroll(name, limit=16384, with_payload=True, with_vectors=True)
        return {self._key(p): (p.payload["text"], p.payload["metadata"], p.vector) for p in points}

    def exists(self, name: str) -> bool:
        return bool(self.client.collection_exists(name))

    def _key(self, point: Any) -> str:
        key: str = point.payload["id"]
        assert str(point.id) == point_id(key)  # the documented mapping of ids
        return key

    def close(self) -> None:
        self.client.close()


CLIENTS = {"milvus": Milvus, "lancedb": Lance, "qdrant": Qdrant}
PLACES = {"milvus": "m.db", "lancedb": "lance", "qdrant": "qdrant"}
SUPPORTED = [(engine, metric) for engine, names in METRICS.items() for metric in names]


@pytest.fixture
def engine_client() -> Iterator[Callable[[str, Path], Any]]:
    """Open an engine's client on a pushed location; every one is closed after the test."""
    opened: list[Any] = []

    def open_client(engine: str, location: Path) -> Any:
        opened.append(CLIENTS[engine](str(location)))
        return opened[-1]

    yield open_client
    for client in opened:
        client.close()


@pytest.fixture(scope="module", autouse=True)
def _release_milvus_lite() -> Iterator[None]:
    """Milvus Lite serves each .db path from a thread of this process until it exits;
    stop the ones these tests started (pymilvus' own close leaves them running)."""
    yield
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_all()


# --- the indexes -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split(corpus: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every seventh sentence of the corpus is a query (50 of them); the others are items."""
    queries = [item["text"] for item in corpus[::7]][:50]
    items = [item for item in corpus if item["text"] not in queries]
    return items, queries


@pytest.fixture(scope="module")
def items(model: Any, split: tuple[list[dict[str, Any]], list[str]]) -> list[dict[str, Any]]:
    corpus, _ = split
    vectors = model.encode([c["text"] for c in corpus])
    scales = np.random.default_rng(13).uniform(*SCALES, len(corpus))
    return [
        {
            "id": c["id"],
            "text": c["text"],
            "metadata": {
                "topic": c.get("topic"),
                "n": n,
                "tags": [c.get("topic"), "pushed"],
                "deep": {"k": n % 3},
            },
            "embedding": (vector * scale).tolist(),
        }
        for n, (c, vector, scale) in enumerate(zip(corpus, vectors, scales, strict=True))
    ]


@pytest.fixture(scope="module")
def queries(model: Any, split: tuple[list[dict[str, Any]], list[str]]) -> tuple[list[str], np.ndarray]:
    _, texts = split
    return texts, np.asarray(model.encode(texts), dtype=np.float32)


@pytest.fixture(scope="module")
def indexes(
    tmp_path_factory: pytest.TempPathFactory, model: Any, items: list[dict[str, Any]]
) -> dict[Metric, Path]:
    """One flat (exact) index per metric, of the same items and vectors."""
    folders = {}
    for metric in Metric:
        folder = tmp_path_factory.mktemp("push") / f"docs-{metric.value}"
        with Index.create(folder, metric=metric, index_type="flat", embedder=model) as index:
            index.add(items)
        folders[metric] = folder
    return folders


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory, indexes: dict[Metric, Path]) -> dict[Any, Any]:
    """Every index pushed to every engine that has its metric, each to its own place."""
    done = {}
    for engine, metric in SUPPORTED:
        location = tmp_path_factory.mktemp(engine) / PLACES[engine]
        report = push(indexes[metric], f"{engine}:{location}", batch_size=100)
        done[engine, metric] = location, report
    return done


def searchkit_hits(folder: Path, model: Any, texts: list[str]) -> list[Scored]:
    with Index.open(folder, embedder=model) as index:
        found = index.search_many(texts, k=K)
        assert all(hits.exact for hits in found)
    return [[(hit.id, hit.score) for hit in hits] for hits in found]


def assert_same_ranking(expected: Scored, got: Scored) -> None:
    """The same ids in the same order, but for ties (which may come in either order)."""
    scores = dict(expected)
    assert {key for key, _ in got} == set(scores), (expected, got)
    for (want, score), (have, _) in zip(expected, got, strict=True):
        assert want == have or abs(scores[have] - score) < TIE, (expected, got)


# --- what each engine answers ------------------------------------------------------------------


@pytest.mark.parametrize(("engine", "metric"), SUPPORTED, ids=[f"{e}-{m.value}" for e, m in SUPPORTED])
def test_the_engine_ranks_and_scores_as_searchkit(
    engine: str,
    metric: Metric,
    pushed: dict[Any, Any],
    indexes: dict[Metric, Path],
    model: Any,
    queries: tuple[list[str], np.ndarray],
    engine_client: Callable[[str, Path], Any],
) -> None:
    texts, vectors = queries
    location, report = pushed[engine, metric]
    with Index.open(indexes[metric], load=False) as index:
        assert report.items == len(index) > 300
    assert report.metric == METRICS[engine][metric] and report.collection == f"docs-{metric.value}"
    expected = searchkit_hits(indexes[metric], model, texts)
    found = engine_client(engine, location).search(report.collection, report.metric, vectors)
    assert len(found) == len(expected) == 50
    to_score = TO_SCORE[report.metric]
    for want, got in zip(expected, found, strict=True):
        assert_same_ranking(want, got)
        for (_, score), (_, reported) in zip(want, got, strict=True):
            assert to_score(reported) == pytest.approx(score, abs=1e-4, rel=1e-4)


@pytest.mark.parametrize("engine", list(METRICS))
def test_the_engine_holds_the_index_texts_metadata_and_vectors(
    engine: str,
    pushed: dict[Any, Any],
    indexes: dict[Metric, Path],
    engine_client: Callable[[str, Path], Any],
) -> None:
    location, report = pushed[engine, Metric.DOT]  # dot: the vectors exactly as stored
    with Index.open(indexes[Metric.DOT], load=False) as index:
        stored = {item["id"]: item for item in index.export(vectors=True)}
    rows = engine_client(engine, location).rows(report.collection)
    assert rows.keys() == stored.keys()
    for key, (text, metadata, vector) in rows.items():
        assert (text, metadata) == (stored[key]["text"], stored[key]["metadata"])
        np.testing.assert_allclose(vector, stored[key]["embedding"], rtol=1e-6, atol=1e-7)


def test_the_metrics_rank_these_items_differently(
    indexes: dict[Metric, Path], model: Any, queries: tuple[list[str], np.ndarray]
) -> None:
    """Without this, an engine searching by the wrong metric could still pass the tests above."""
    texts, _ = queries
    rankings = {
        metric: [[key for key, _ in hits] for hits in searchkit_hits(indexes[metric], model, texts)]
        for metric in Metric
    }
    for a, b in [
        (Metric.COSINE, Metric.DOT),
        (Metric.DOT, Metric.EUCLIDEAN),
        (Metric.EUCLIDEAN, Metric.MANHATTAN),
    ]:
        assert sum(x != y for x, y in zip(rankings[a], rankings[b], strict=True)) >= 10, (a, b)


# --- what is refused, and replacing ----------------------------------------------------------


@pytest.mark.parametrize("engine", ["milvus", "lancedb"])
def test_a_metric_the_engine_lacks_is_refused_and_nothing_is_made(
    engine: str, indexes: dict[Metric, Path], tmp_path: Path
) -> None:
    location = tmp_path / "nested" / PLACES[engine]
    with pytest.raises(UsageError) as refused:
        push(indexes[Metric.MANHATTAN], f"{engine}:{location}")
    message = str(refused.value)
    assert "\n" not in message and f"{engine}:{location}" in message
    assert "cannot search by manhattan (it supports cosine, dot, euclidean)" in message
    assert not (tmp_path / "nested").exists()


@pytest.mark.parametrize("engine", list(METRICS))
def test_an_existing_collection_is_refused_without_replace_and_replaced_with_it(
    engine: str,
    indexes: dict[Metric, Path],
    model: Any,
    tmp_path: Path,
    engine_client: Callable[[str, Path], Any],
) -> None:
    location = tmp_path / PLACES[engine]
    target = f"{engine}:{location}"
    push(indexes[Metric.COSINE], target, collection="docs")
    refusal = r"collection 'docs' exists already; pass --replace to drop and recreate it$"
    with pytest.raises(UsageError, match=refusal):
        push(indexes[Metric.COSINE], target, collection="docs")
    small = tmp_path / "small"
    with Index.create(small, index_type="flat", embedder=model) as index:
        index.add([{"id": "only", "text": "The weather is lovely today.", "metadata": {"new": True}}])
    assert push(small, target, collection="docs", replace=True).items == 1
    rows = engine_client(engine, location).rows("docs")
    assert list(rows) == ["only"] and rows["only"][:2] == ("The weather is lovely today.", {"new": True})


def test_a_push_that_fails_midway_leaves_no_collection(
    indexes: dict[Metric, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine_client: Callable[[str, Path], Any],
) -> None:
    from searchkit.push.lancedb import LanceWriter

    calls: list[int] = []
    write = LanceWriter.write

    def failing(self: LanceWriter, batch: Any) -> None:
        calls.append(len(batch))
        if len(calls) == 2:
            raise StorageError("lancedb:x: disk full")
        write(self, batch)

    monkeypatch.setattr(LanceWriter, "write", failing)
    with pytest.raises(StorageError, match="disk full"):
        push(indexes[Metric.COSINE], f"lancedb:{tmp_path / 'l'}", batch_size=100)
    assert calls == [100, 100]
    assert not engine_client("lancedb", tmp_path / "l").exists("docs-cosine")


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("pymilvus", "pushing to Milvus needs pymilvus and milvus-lite: pip install 'searchkit[push]'"),
        ("lancedb", "pushing to LanceDB needs lancedb and pyarrow: pip install 'searchkit[push]'"),
        ("qdrant_client", "pushing to Qdrant needs qdrant-client: pip install 'searchkit[push]'"),
    ],
)
def test_a_missing_client_library_is_one_line(
    module: str, message: str, indexes: dict[Metric, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if it were not installed
    engine = {"pymilvus": "milvus", "qdrant_client": "qdrant"}.get(module, module)
    with pytest.raises(UsageError) as refused:
        push(indexes[Metric.COSINE], f"{engine}:{tmp_path / 'nested' / PLACES[engine]}")
    assert str(refused.value) == message
    assert not (tmp_path / "nested").exists()


@pytest.mark.parametrize("engine", list(METRICS))
def test_an_unwritable_place_is_one_line(engine: str, indexes: dict[Metric, Path], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = f"{engine}:{blocker / PLACES[engine]}"
    with pytest.raises(StorageError) as refused:
        push(indexes[Metric.COSINE], target)
    reason = f"{blocker} is a file, not a folder" if engine == "milvus" else "Not a directory"
    assert str(refused.value) == f"{target}: cannot write there: {reason}"


def test_a_qdrant_server_that_does_not_answer_is_one_line(indexes: dict[Metric, Path]) -> None:
    with socket.socket() as free:  # a loopback port that nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    target = f"qdrant+http://127.0.0.1:{port}"
    with pytest.raises(StorageError) as refused:
        push(indexes[Metric.COSINE], target)
    assert str(refused.value).startswith(f"{target}: ") and "refused" in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            "faiss:/tmp/x",
            "unknown push target 'faiss:/tmp/x': use milvus:PATH.db, lancedb:DIR, qdrant:DIR or "
            "qdrant+http://HOST:PORT",
        ),
        ("/tmp/x.db", "unknown push target '/tmp/x.db'"),
        ("qdrant+http://", "unknown push target 'qdrant+http://'"),
        ("lancedb:", "push target 'lancedb:' names no path"),
        ("milvus:/tmp/x", "push target 'milvus:/tmp/x': Milvus Lite takes a file path ending in .db"),
    ],
)
def test_bad_targets_are_refused(target: str, message: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_target(target)
    assert str(refused.value).startswith(message)


def test_target_forms() -> None:
    assert parse_target("qdrant+http://127.0.0.1:6333").location == "http://127.0.0.1:6333"
    assert parse_target("qdrant+https://q.example:6333").location == "https://q.example:6333"
    assert parse_target("milvus:some/where.db").location == "some/where.db"
    assert parse_target("qdrant:~/q").location == str(Path.home() / "q")


# --- the CLI ---------------------------------------------------------------------------------


def run(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_push_prints_one_summary_line(indexes: dict[Metric, Path], tmp_path: Path) -> None:
    folder = indexes[Metric.COSINE]
    target = f"qdrant:{tmp_path / 'q'}"
    result = run("push", folder, target, "--collection", "docs")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{folder}: {result.stdout.split()[1]} items pushed to {target} ")
    assert "(collection docs, metric Cosine) in " in result.stdout and result.stdout.count("\n") == 1
    again = run("push", folder, target, "--collection", "docs", "--replace", "--json", "--batch-size", "64")
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert report["collection"] == "docs" and report["metric"] == "Cosine" and report["engine"] == "qdrant"
    assert PushReport(**{k: v for k, v in report.items()}).items == report["items"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["faiss:/x"], "Error: unknown push target 'faiss:/x': use milvus:PATH.db"),
        (["qdrant:QDRANT", "--batch-size", "0"], "Error: batch size must be at least 1, not 0"),
    ],
)
def test_cli_push_errors_are_one_line(
    indexes: dict[Metric, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    args = [a.replace("QDRANT", str(tmp_path / "q")) for a in args]
    result = run("push", indexes[Metric.COSINE], *args)
    assert result.exit_code == 1 and result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert not (tmp_path / "q").exists()


def test_cli_push_of_a_missing_index(tmp_path: Path) -> None:
    result = run("push", tmp_path / "nothing", f"qdrant:{tmp_path / 'q'}")
    assert result.exit_code == 1 and result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "q").exists()


def test_help_imports_no_engine_library() -> None:
    engines = ["pymilvus", "milvus_lite", "lancedb", "qdrant_client"]
    code = (
        "import sys\nfrom searchkit.cli import app\n"
        "for argv in (['--help'], ['push', '--help']):\n"
        "    try:\n        app(argv)\n"
        "    except SystemExit as exc:\n        assert not exc.code, exc.code\n"
        f"print(sorted(m for m in {engines!r} if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "push" in done.stdout, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"
