"""`searchkit serve`: a real uvicorn process on a free loopback port, asked over HTTP."""

from __future__ import annotations

import http.client
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from searchkit import Index
from searchkit.cli import app
from searchkit.lock import WriteLock
from searchkit.server import limits

from .test_service import QUERIES

TOKEN = "test-token-0123456789"


class Server:
    """`python -m searchkit serve ... --port 0` in a subprocess; the port read from its stderr line."""

    def __init__(
        self, *folders: Path, token: str | None = TOKEN, preexec: Callable[[], None] | None = None
    ) -> None:
        args = [sys.executable, "-m", "searchkit", "serve", *map(str, folders), "--port", "0"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        env.pop("SEARCHKIT_TOKEN", None)
        self.token = token
        self.proc = subprocess.Popen(
            args + (["--token", token] if token else []),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=preexec,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        self.port = self._wait_for_port(deadline=time.monotonic() + 120)
        self.url = f"http://127.0.0.1:{self.port}"

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            self.lines.put(line)

    def _wait_for_port(self, deadline: float) -> int:
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if line.startswith("searchkit: serving"):
                return int(line.split("http://127.0.0.1:", 1)[1].split()[0])
        self.proc.kill()
        raise AssertionError(f"the server did not start: {''.join(self.log)}")

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = "default",
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        """(status, decoded JSON body) of one request on a fresh connection."""
        headers = {"Content-Type": "application/json"}
        token = self.token if token == "default" else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self) -> int:
        code = self.proc.wait(timeout=60)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code


def build(folder: Path, items: list[dict[str, Any]]) -> Path:
    with Index.create(folder) as index:
        index.add(items)
    return folder


@pytest.fixture(scope="module")
def folders(
    tmp_path_factory: pytest.TempPathFactory, corpus: list[dict[str, Any]], model: Any
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("served")
    return {
        "corpus": build(root / "corpus", corpus),
        "scratch": build(root / "scratch", corpus[:50]),
        "fuzz": build(root / "fuzz", corpus[:20]),
    }


@pytest.fixture(scope="module")
def server(folders: dict[str, Path]) -> Iterator[Server]:
    running = Server(*folders.values())
    yield running
    assert running.stop() in (0, -signal.SIGTERM), "".join(running.log)


def hits_of(result: dict[str, Any]) -> list[tuple[str, float]]:
    return [(h["id"], h["score"]) for h in result["hits"]]


# --- answers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"where": {"topic": "weather"}},
        {"mode": "hybrid"},
        {"mode": "keyword", "where": {"topic": {"$in": ["weather", "food"]}}},
        {"group_by_parent": True, "mode": "hybrid"},  # unsplit items: each its own parent
    ],
)
def test_search_answers_equal_the_python_api(
    server: Server, folders: dict[str, Path], options: dict[str, Any]
) -> None:
    with Index.open(folders["corpus"]) as index:
        found = index.search_many(QUERIES, k=5, **options)
    # keyword mode finds only items sharing a word with the query
    assert all(len(hits) == 5 for hits in found) or options.get("mode") == "keyword"
    assert any(found)
    expected = [hits.to_json(q)["hits"] for q, hits in zip(QUERIES, found, strict=True)]
    status, batch = server.call("POST", "/indexes/corpus/search", {"queries": QUERIES, "k": 5, **options})
    assert status == 200
    assert [r["query"] for r in batch["results"]] == QUERIES
    for result, hits in zip(batch["results"], found, strict=True):
        assert (result["mode"], result["exact"]) == (hits.mode.value, hits.exact)
    for result, hits in zip(batch["results"], expected, strict=True):
        assert [h["id"] for h in result["hits"]] == [h["id"] for h in hits]
        assert [h["text"] for h in result["hits"]] == [h["text"] for h in hits]
        assert [h["metadata"] for h in result["hits"]] == [h["metadata"] for h in hits]
        assert [h["score"] for h in result["hits"]] == pytest.approx([h["score"] for h in hits], abs=1e-5)
    status, single = server.call("POST", "/indexes/corpus/search", {"query": QUERIES[0], "k": 5, **options})
    assert status == 200 and single == batch["results"][0]


def test_info_similarity_and_embed(server: Server, folders: dict[str, Path], model: Any) -> None:
    status, listed = server.call("GET", "/indexes")
    assert status == 200 and [i["name"] for i in listed["indexes"]] == ["corpus", "fuzz", "scratch"]
    status, info = server.call("GET", "/indexes/corpus")
    assert status == 200 and info["counts"]["items"] == 364 and info["metric"] == "cosine"
    texts = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium"]
    status, table = server.call("POST", "/similarity", {"texts": texts})
    assert status == 200 and table["rows"] == texts
    assert table["scores"][0] == pytest.approx([1.0, 0.6660, 0.1058], abs=1e-4)
    status, embedded = server.call("POST", "/embed", {"texts": texts[:2]})
    assert status == 200
    assert np.allclose(embedded["embeddings"], model.encode(texts[:2]), atol=1e-5)
    assert server.call("GET", "/health", token=None) == (200, {"status": "ok"})


# --- auth and the bind rule ---------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", ""])
@pytest.mark.parametrize("path", ["/indexes", "/indexes/corpus", "/openapi.json"])
def test_everything_but_health_needs_the_token(server: Server, path: str, token: str | None) -> None:
    status, body = server.call("GET", path, token=token)
    assert status == 401 and "Authorization: Bearer" in body["error"]
    status, _ = server.call("GET", path)
    assert status == 200


def test_a_write_without_the_token_writes_nothing(server: Server) -> None:
    status, _ = server.call(
        "POST", "/indexes/scratch/documents", {"documents": [{"id": "x", "text": "x"}]}, None
    )
    assert status == 401
    assert server.call("GET", "/indexes/scratch")[1]["counts"]["items"] == 50


def test_a_metadata_only_upsert_is_an_update(server: Server) -> None:
    def upsert(tag: str) -> dict[str, Any]:
        doc = {"id": "meta-a", "text": "a note on herons and their nests", "metadata": {"tag": tag}}
        status, report = server.call("POST", "/indexes/scratch/documents", {"documents": [doc]})
        assert status == 200, report
        return report

    assert upsert("x")["added"] == 1
    report = upsert("y")
    assert (report["updated"], report["metadata_only"], report["embedded"]) == (1, 1, 0)
    query = {"query": "herons", "k": 3, "where": {"tag": "y"}}
    assert [h["id"] for h in server.call("POST", "/indexes/scratch/search", query)[1]["hits"]] == ["meta-a"]
    assert server.call("POST", "/indexes/scratch/documents/delete", {"ids": ["meta-a"]})[0] == 200
    assert server.call("GET", "/indexes/scratch")[1]["counts"]["items"] == 50


def test_documents_may_bring_their_own_vectors(server: Server, model: Any) -> None:
    vector = model.encode(["a heron stands in the shallow water"])[0].tolist()
    doc = {"id": "given-a", "text": "a heron stands in the shallow water", "embedding": vector}
    status, report = server.call("POST", "/indexes/scratch/documents", {"documents": [doc]})
    assert status == 200 and (report["added"], report["embedded"]) == (1, 0), report
    status, found = server.call("POST", "/indexes/scratch/search", {"query": "a heron in the water", "k": 1})
    assert found["hits"][0]["id"] == "given-a"
    doc["embedding"] = vector[:10]
    status, error = server.call("POST", "/indexes/scratch/documents", {"documents": [doc]})
    assert status == 422 and "embedding has 10 values, and the index's model gives 384" in error["error"]
    assert server.call("POST", "/indexes/scratch/documents/delete", {"ids": ["given-a"]})[0] == 200
    assert server.call("GET", "/indexes/scratch")[1]["counts"]["items"] == 50


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "--host 0.0.0.0 is reachable from other machines; pass --token T"),
        (["--host", "192.168.1.20"], "--host 192.168.1.20 is reachable from other machines"),
        (["--host", "example.org"], "--host example.org is reachable from other machines"),
        (["--token", " "], "--token is empty"),
    ],
)
def test_the_bind_rule(
    tmp_path: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEARCHKIT_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve", str(tmp_path / "idx"), *args])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {message}") and result.stderr.count("\n") == 1


def test_two_served_folders_of_one_name_are_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", str(tmp_path / "a" / "idx"), str(tmp_path / "b" / "idx")])
    assert result.exit_code == 1
    assert "two served indexes are named 'idx'" in result.stderr and result.stderr.count("\n") == 1


def test_a_taken_port_is_one_line(folders: dict[str, Path]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", str(folders["fuzz"]), "--port", str(port)])
    assert result.exit_code == 1
    assert (
        result.stderr.startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")
        and result.stderr.count("\n") == 1
    )


# --- limits and errors ----------------------------------------------------------------

TOO_LONG = "x" * (limits.MAX_TEXT_CHARS + 1)
TOO_MANY = ["q"] * (limits.MAX_BATCH + 1)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/indexes/nope/search", {"query": "x"}, 404, "no index named 'nope' is served here"),
        ("GET", "/indexes/nope", None, 404, "no index named 'nope'"),
        ("POST", "/indexes/..%2F..%2Fcorpus/search", {"query": "x"}, 404, "no such path"),
        ("POST", "/indexes/a%2Fb/search", {"query": "x"}, 404, "no such path"),
        ("POST", "/indexes/a/b/search", {"query": "x"}, 404, "no such path"),
        ("GET", "/indexes/..", None, 404, "no index named '..'"),
        ("GET", "/indexes/corpus/search", None, 405, "GET is not allowed"),
        ("POST", "/indexes/corpus/search", b'{"query": "x"', 422, "the body is not valid JSON"),
        ("POST", "/indexes/corpus/search", b"", 422, "body: Field required"),
        ("POST", "/indexes/corpus/search", ["x"], 422, "body: Input should be a valid dictionary"),
        ("POST", "/indexes/corpus/search", {}, 422, "give either 'query' (one text) or 'queries'"),
        ("POST", "/indexes/corpus/search", {"query": "x", "queries": ["y"]}, 422, "give either"),
        ("POST", "/indexes/corpus/search", {"query": 5}, 422, "query: Input should be a valid string"),
        (
            "POST",
            "/indexes/corpus/search",
            {"query": "x", "k": "5"},
            422,
            "k: Input should be a valid integer",
        ),
        (
            "POST",
            "/indexes/corpus/search",
            {"query": "x", "k": True},
            422,
            "k: Input should be a valid integer",
        ),
        ("POST", "/indexes/corpus/search", {"query": "x", "k": 0}, 422, "k: Input should be greater than"),
        ("POST", "/indexes/corpus/search", {"query": "x", "k": limits.MAX_K + 1}, 422, "less than or equal"),
        ("POST", "/indexes/corpus/search", {"queries": TOO_MANY}, 422, "queries: List should have at most"),
        ("POST", "/indexes/corpus/search", {"queries": []}, 422, "queries: List should have at least 1"),
        ("POST", "/indexes/corpus/search", {"query": TOO_LONG}, 422, "query: String should have at most"),
        ("POST", "/indexes/corpus/search", {"query": "\ud800"}, 422, "query: "),
        (
            "POST",
            "/indexes/corpus/search",
            {"query": "x", "kk": 1},
            422,
            "kk: Extra inputs are not permitted",
        ),
        ("POST", "/indexes/corpus/search", {"query": "   "}, 400, "queries must be non-empty strings"),
        (
            "POST",
            "/indexes/corpus/search",
            {"query": "x", "where": {"topic": {"$regex": "w.*"}}},
            400,
            "$regex",
        ),
        ("POST", "/indexes/corpus/search", {"query": "x", "mode": "sparse"}, 422, "mode"),
        (
            "POST",
            "/indexes/scratch/documents",
            {"documents": []},
            422,
            "documents: List should have at least",
        ),
        ("POST", "/indexes/scratch/documents", {"documents": [{"text": "x"}]}, 422, "documents.0.id: Field"),
        (
            "POST",
            "/indexes/scratch/documents",
            {"documents": [{"id": "x", "text": 1}]},
            422,
            "documents.0.text",
        ),
        (
            "POST",
            "/indexes/scratch/documents",
            {"documents": [{"id": "x", "text": " "}]},
            400,
            "'text' must be",
        ),
        (
            "POST",
            "/indexes/scratch/documents",
            {"documents": [{"id": "x", "text": "x", "metadata": {"n": float("nan")}}]},
            400,
            "metadata must be plain JSON",
        ),
        ("POST", "/indexes/scratch/documents/delete", {"ids": [None]}, 422, "ids.0"),
        ("POST", "/similarity", {"texts": ["a"], "metric": "cosh"}, 400, "unknown metric 'cosh'"),
        ("POST", "/embed", {"texts": TOO_MANY}, 422, "texts: List should have at most"),
    ],
)
def test_bad_requests_get_a_4xx_with_one_line(
    server: Server, method: str, path: str, body: Any, status: int, message: str
) -> None:
    raw = body if isinstance(body, bytes) else None
    got, answer = server.call(method, path, None if raw is not None else body, raw=raw)
    assert (got, message in answer["error"]) == (status, True), answer
    assert "\n" not in answer["error"] and list(answer) == ["error"]
    if path.startswith("/indexes/scratch"):
        assert server.call("GET", "/indexes/scratch")[1]["counts"]["items"] == 50


def test_a_body_without_a_json_content_type_says_so(server: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("POST", "/embed", body=b'{"texts": ["x"]}', headers={"Authorization": f"Bearer {TOKEN}"})
        response = conn.getresponse()
        assert response.status == 422
        assert "Content-Type: application/json" in json.loads(response.read())["error"]
    finally:
        conn.close()


def test_a_20_mb_body_is_refused_before_it_is_read(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        head = (
            "POST /indexes/corpus/documents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: {20 * 1024 * 1024}\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"documents": [')  # and not a byte more: the answer comes anyway
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {
        "error": "request body over 10 MB; send fewer or shorter documents per request"
    }
    assert server.call("GET", "/health") == (200, {"status": "ok"})


# --- writes, concurrency, other writers --------------------------------------------------


def test_concurrent_searches_during_upserts_and_deletes(server: Server, folders: dict[str, Path]) -> None:
    """Readers never fail and never see half a write: each write is 20 documents, all or none.

    The first write is held in flight (this process holds the index's write lock, so the
    server's writer waits for it) until readers have run searches that began after it was
    sent and ended before it was answered: the overlap is proven, not hoped for.
    """
    base = 50
    seen: list[tuple[int, int]] = []
    failures: list[Any] = []
    done = threading.Event()
    in_flight = [0]  # odd while a write request is sent and not yet answered
    overlapped: list[tuple[int, int]] = []
    enough = threading.Condition()
    holding = [False]  # while this process holds the write lock, the server's write cannot commit

    def read() -> None:
        while not done.is_set():
            began, held_then = in_flight[0], holding[0]
            status, answer = server.call("POST", "/indexes/scratch/search", {"queries": QUERIES[:2], "k": 3})
            info_status, info = server.call("GET", "/indexes/scratch")
            if status != 200 or info_status != 200 or any(len(r["hits"]) != 3 for r in answer["results"]):
                failures.append((status, answer, info_status, info))
                return
            seen.append((info["counts"]["items"], info["counts"]["vectors"]))
            if began % 2 and in_flight[0] == began and held_then and holding[0]:
                with enough:
                    overlapped.append(seen[-1])
                    enough.notify_all()

    def write(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        in_flight[0] += 1
        try:
            return server.call("POST", path, body)
        finally:
            in_flight[0] += 1

    readers = [threading.Thread(target=read) for _ in range(4)]
    for thread in readers:
        thread.start()
    try:
        held = WriteLock(folders["scratch"], timeout=10).acquire()
        holding[0] = True
        answers: list[tuple[int, Any]] = []
        first = [{"id": f"w0-{i}", "text": f"written batch 0, note {i} about otters"} for i in range(20)]
        writer = threading.Thread(
            target=lambda: answers.append(write("/indexes/scratch/documents", {"documents": first}))
        )
        writer.start()
        try:
            with enough:
                enough.wait_for(lambda: len(overlapped) >= 3 or bool(failures), timeout=20)
        finally:
            holding[0] = False
            held.release()
        writer.join(timeout=120)
        assert len(overlapped) >= 3 and set(overlapped) == {(base, base)}, (overlapped, failures)
        assert answers and answers[0][0] == 200 and answers[0][1]["added"] == 20, answers
        for batch in range(1, 4):
            docs = [
                {"id": f"w{batch}-{i}", "text": f"written batch {batch}, note {i} about otters"}
                for i in range(20)
            ]
            status, report = write("/indexes/scratch/documents", {"documents": docs})
            assert status == 200 and report["added"] == 20, report
        status, report = write("/indexes/scratch/documents/delete", {"ids": [f"w1-{i}" for i in range(20)]})
        assert status == 200 and report["deleted"] == 20 and report["items"] == base + 60
    finally:
        done.set()
        for thread in readers:
            thread.join(timeout=120)
    assert not failures, failures[0]
    assert seen and all(items == vectors and (items - base) % 20 == 0 for items, vectors in seen), seen
    for batch, i in [(0, 0), (2, 7), (3, 19)]:
        text = f"written batch {batch}, note {i} about otters"
        assert (
            hits_of(server.call("POST", "/indexes/scratch/search", {"query": text, "k": 1})[1])[0][0]
            == f"w{batch}-{i}"
        )
    status, gone = server.call(
        "POST", "/indexes/scratch/search", {"query": "written batch 1, note 3 about otters"}
    )
    assert status == 200 and not any(h["id"].startswith("w1-") for h in gone["hits"])
    status, report = server.call(
        "POST",
        "/indexes/scratch/documents/delete",
        {"ids": [f"w{b}-{i}" for b in (0, 2, 3) for i in range(20)]},
    )
    assert status == 200 and report["items"] == base


def test_a_cli_write_beside_the_server_is_seen(
    server: Server, folders: dict[str, Path], tmp_path: Path
) -> None:
    extra = tmp_path / "extra.jsonl"
    extra.write_text(
        "".join(
            json.dumps({"id": f"cli-{i}", "text": f"a line written by the cli, number {i}, on kites"}) + "\n"
            for i in range(5)
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cli = [sys.executable, "-m", "searchkit"]
    done = subprocess.run(
        [*cli, "index", str(folders["scratch"]), str(extra)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    status, found = server.call(
        "POST", "/indexes/scratch/search", {"query": "a line written by the cli, number 3, on kites", "k": 1}
    )
    assert status == 200 and found["hits"][0]["id"] == "cli-3"
    # The server's own writer starts from the CLI's generation, not from its own last one.
    status, report = server.call(
        "POST", "/indexes/scratch/documents", {"documents": [{"id": "srv", "text": "from the server"}]}
    )
    assert status == 200 and report["items"] == 56
    done = subprocess.run(
        [*cli, "delete", str(folders["scratch"]), *[f"cli-{i}" for i in range(5)], "srv"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert server.call("GET", "/indexes/scratch")[1]["counts"]["items"] == 50


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("UsageError", 400),
        ("InputError", 422),
        ("IndexNotFoundError", 404),
        ("ModelMismatchError", 409),
        ("LockError", 503),
        ("StorageError", 507),
        ("CorruptIndexError", 500),
        ("ModelError", 500),
    ],
)
def test_library_errors_map_to_statuses(error: str, status: int) -> None:
    import searchkit
    from searchkit.server.app import status_for

    assert status_for(getattr(searchkit, error)("x")) == status


def test_sigterm_keeps_every_acknowledged_write(folders: dict[str, Path], tmp_path: Path) -> None:
    """SIGTERM while a write runs: it is answered, then the server exits; nothing acknowledged is lost."""
    folder = tmp_path / "term"
    shutil.copytree(folders["fuzz"], folder)
    running = Server(folder)
    try:
        status, _ = running.call(
            "POST",
            "/indexes/term/documents",
            {"documents": [{"id": "before", "text": "acknowledged before the signal"}]},
        )
        assert status == 200
        docs = [
            {"id": f"t{i}", "text": f"item {i} of a long write that the signal interrupts"}
            for i in range(300)
        ]
        answers: list[tuple[int, Any]] = []
        writer = threading.Thread(
            target=lambda: answers.append(
                running.call("POST", "/indexes/term/documents", {"documents": docs})
            )
        )
        writer.start()
        deadline = time.monotonic() + 60
        while not _locked(folder):  # the write has begun when it holds the index's lock
            assert writer.is_alive() and time.monotonic() < deadline, "the write was not seen in flight"
            writer.join(timeout=0.005)
        running.proc.send_signal(signal.SIGTERM)
        writer.join(timeout=120)
        assert running.wait() in (0, -signal.SIGTERM)
    finally:
        if running.proc.poll() is None:
            running.proc.kill()
            running.wait()
    assert answers and answers[0][0] == 200, (answers, "".join(running.log))
    with Index.open(folder) as index:
        keys = {item["id"] for item in index.export()}
    assert {"before", *(d["id"] for d in docs)} <= keys


def test_ctrl_c_is_a_normal_stop(folders: dict[str, Path]) -> None:
    running = Server(folders["fuzz"])
    assert running.call("GET", "/health") == (200, {"status": "ok"})
    running.proc.send_signal(signal.SIGINT)
    assert running.wait() == 0
    assert running.log[-1] == "searchkit: stopped; every request in flight was answered\n", running.log


def _locked(folder: Path) -> bool:
    lock = WriteLock(folder, timeout=0)
    if lock.try_acquire():
        lock.release()
        return False
    return True


# --- the CLI as a client ----------------------------------------------------------------


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_cli_query_through_the_server_prints_what_a_local_query_prints(
    server: Server, folders: dict[str, Path], json_flag: list[str]
) -> None:
    args = ["query", str(folders["corpus"]), QUERIES[0], QUERIES[1], "-k", "4", *json_flag]
    local = CliRunner().invoke(app, args)
    remote = CliRunner().invoke(app, [*args, "--server", server.url, "--token", TOKEN])
    by_env = CliRunner().invoke(app, args, env={"SEARCHKIT_SERVER": server.url, "SEARCHKIT_TOKEN": TOKEN})
    assert local.exit_code == remote.exit_code == by_env.exit_code == 0, (remote.stderr, by_env.stderr)
    assert remote.stdout == local.stdout == by_env.stdout


def test_cli_query_through_the_server_sends_long_inputs_in_batches(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from searchkit.server import client

    monkeypatch.setattr(client, "MAX_BATCH", 2)  # the server's limit, small enough to cross twice
    questions = tmp_path / "questions.txt"
    questions.write_text("\n".join(QUERIES[:5]), encoding="utf-8")
    args = ["query", "corpus", "--input", str(questions), "-k", "1", "--json"]
    result = CliRunner().invoke(app, [*args, "--server", server.url, "--token", TOKEN])
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["query"] for line in result.stdout.splitlines()] == QUERIES[:5]


def test_cli_query_through_the_server_loads_nothing_heavy(server: Server, folders: dict[str, Path]) -> None:
    heavy = [
        "torch",
        "sentence_transformers",
        "faiss",
        "onnxruntime",
        "fastapi",
        "uvicorn",
        "httpx",
        "requests",
    ]
    argv = ["query", str(folders["corpus"]), "kites", "--server", server.url, "--token", TOKEN]
    code = (
        "import sys\nfrom searchkit.cli import app\n"
        f"try:\n    app({argv!r})\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Query: kites" in done.stdout, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--token", "wrong"], "answered 401: missing or wrong token"),
        (["--model", "all-MiniLM-L6-v2"], "--model does not go with --server"),
    ],
)
def test_cli_query_through_the_server_errors(server: Server, extra: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["query", "somewhere/corpus", "x", "--server", server.url, *extra])
    assert result.exit_code == 1 and message in result.stderr and result.stderr.count("\n") == 1


def test_cli_query_with_no_server_there_is_one_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        result = CliRunner().invoke(app, ["query", "corpus", "x", "--server", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot reach the searchkit server at http://127.0.0.1:{port}")
    assert result.stderr.count("\n") == 1


def test_cli_query_of_an_unknown_index_through_the_server(server: Server) -> None:
    result = CliRunner().invoke(
        app, ["query", "elsewhere/other", "x", "--server", server.url, "--token", TOKEN]
    )
    assert result.exit_code == 1 and "answered 404: no index named 'other'" in result.stderr


# --- fuzz: the service's own OpenAPI schema ----------------------------------------------


def test_no_request_the_schema_allows_or_forbids_gets_a_5xx(server: Server) -> None:
    """schemathesis draws requests that fit /openapi.json and requests that break it."""
    import schemathesis  # the dev extra (scripts/setup.sh): missing, the test fails, never skips
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    status, spec = server.call("GET", "/openapi.json")
    assert status == 200
    schema = schemathesis.openapi.from_dict(spec)
    strategies = []
    for result in schema.get_all_operations():
        operation = result.ok()
        named = {"name": "fuzz"} if "{name}" in operation.path else None
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            strategies.append(operation.as_strategy(mode, path_parameters=named))
        if named:
            strategies.append(operation.as_strategy())  # any name at all
    failures: list[str] = []
    seen_statuses: list[Any] = []
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi import checks as openapi

    checks = [
        not_a_server_error,
        openapi.status_code_conformance,
        openapi.content_type_conformance,
        openapi.response_schema_conformance,
    ]

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(strategies))
    def ask(case: Any) -> None:
        response = case.call(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        seen_statuses.append((case.method, case.path, response.status_code))
        try:  # no 5xx; every status, content type and body as /openapi.json documents it
            case.validate_response(response, checks=checks)
        except Exception as exc:  # schemathesis raises a Failure, or a group of them
            failures.append(f"{case.method} {case.formatted_path} {case.body!r}: {exc}")

    ask()
    assert not failures, failures[:3]
    assert {status // 100 for *_, status in seen_statuses} == {2, 4}, "the fuzz reached too little"
    assert server.call("GET", "/health") == (200, {"status": "ok"})


def test_the_load_test_script_runs_clean(server: Server, tmp_path: Path) -> None:
    from .conftest import load_script

    queries = tmp_path / "queries.txt"
    queries.write_text("\n".join(QUERIES), encoding="utf-8")
    loadtest = load_script("loadtest")
    args = ["run", server.url, "fuzz", "--clients", "2", "--seconds", "1", "--queries", str(queries)]
    writes = ["--writer", "--write-total", "8", "--write-batch", "4", "--token", TOKEN, "--json"]
    assert loadtest.main([*args, *writes]) == 0


def test_the_server_seals_new_vectors_in_the_background(
    tmp_path: Path, corpus: list[dict[str, Any]], model: Any
) -> None:
    """Writes through the service change rows only; its compaction thread seals them into a
    segment once seal_at (1,000) wait, while the answers stay whole."""
    from searchkit.service import check

    folder = build(tmp_path / "growing", corpus[:20])
    running = Server(folder)
    try:
        rng = np.random.default_rng(7)
        for batch in range(3):  # BYO vectors: 1,500 documents, nothing to embed
            vectors = rng.standard_normal((500, model.dimension)).astype(np.float32)
            docs = [
                {"id": f"g{batch}-{i}", "text": f"grown {batch} {i}", "embedding": v.tolist()}
                for i, v in enumerate(vectors)
            ]
            status, report = running.call("POST", "/indexes/growing/documents", {"documents": docs})
            assert status == 200 and report["added"] == 500, report
        deadline = time.monotonic() + 60
        while True:  # bounded: the background compaction seals within a second or so
            status, info = running.call("GET", "/indexes/growing")
            tail = info["segments"][-1]
            if tail["vectors"] < 1_000 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert tail["name"] == "tail" and tail["vectors"] < 1_000, info["segments"]
        files = info["segments"][:-1]
        assert files and all((folder / s["name"]).exists() for s in files)
        assert sum(s["vectors"] - s["dead"] for s in info["segments"]) == info["counts"]["items"] == 1_520
        status, answer = running.call("POST", "/indexes/growing/search", {"query": corpus[3]["text"], "k": 1})
        assert status == 200 and answer["hits"][0]["id"] == corpus[3]["id"]
    finally:
        assert running.stop() in (0, -signal.SIGTERM), "".join(running.log)
    assert check(folder).ok
