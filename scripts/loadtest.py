#!/usr/bin/env python
"""Load-test a running `searchkit serve`: concurrent searches, optionally while a writer writes.

    # an index to serve: 2,000 STS-B sentences (real model), or 100k noisy copies of their
    # real embeddings (bench.py's method: the real model's fingerprint, texts "SENTENCE #i")
    .venv/bin/python scripts/loadtest.py build /tmp/lt/stsb2k --items 2000
    .venv/bin/python scripts/loadtest.py build /tmp/lt/stsb100k --items 100000

    .venv/bin/searchkit serve /tmp/lt/stsb2k --port 8000 &
    .venv/bin/python scripts/loadtest.py run http://127.0.0.1:8000 stsb2k --clients 8 --seconds 30 --writer
    .venv/bin/python scripts/loadtest.py run http://127.0.0.1:8000 stsb2k --clients 1 --seconds 30 --json

Each client keeps one keep-alive connection (http.client) and sends one query at a time,
real STS-B sentences that are not in the index, so the server embeds every query. The
writer upserts --write-total new documents in batches spread over the run, deletes every
fourth one, then checks that every kept one is found by its own text and no deleted one is.
Loopback servers only: this is a tool for your own machine.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import sys
import threading
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SCRIPTS = Path(__file__).resolve().parent
MAX_REQUESTS_PER_CLIENT = 1_000_000  # a bound on every loop, whatever --seconds says


def bench() -> Any:
    """scripts/bench.py as a module: its STS-B reader, real embeddings and noisy copies."""
    spec = importlib.util.spec_from_file_location("bench", SCRIPTS / "bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


# --- building an index to serve ------------------------------------------------------------


def build(path: Path, items: int, base_sentences: int, backend: str | None = None) -> None:
    from searchkit import embedder as embedding
    from searchkit.service import Index

    b = bench()
    real = embedding.load(backend=backend)
    started = time.perf_counter()
    if items <= base_sentences:
        texts = b.stsb_sentences()[:items]
        with Index.create(path, embedder=real) as index:
            index.add({"id": str(i), "text": t} for i, t in enumerate(texts))
    else:
        base_texts, base = b.real_embeddings(base_sentences)
        if backend is not None:  # the copies are made from this engine's own vectors
            base = b._unit(real.encode(list(base_texts)))
        vectors, centres = b.noisy_copies(base, items, b.SEED + items)
        texts = [f"{base_texts[c]} #{i}" for i, c in enumerate(centres)]
        replay = b.ReplayEmbedder(real.fingerprint, texts, vectors)
        with Index.create(path, embedder=replay) as index:
            index.add(({"id": str(i), "text": t} for i, t in enumerate(texts)), batch_size=1024)
    print(f"built {path}: {items} items in {time.perf_counter() - started:.1f} s", file=sys.stderr)


# --- the load ----------------------------------------------------------------------------------


class Tally:
    """Latencies and errors of all clients (plain class: this script may be loaded without sys.modules)."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def add(self, seconds: float | None, error: str | None = None) -> None:
        with self.lock:
            if error is None and seconds is not None:
                self.latencies.append(seconds)
            else:
                self.errors.append(error or "unknown")


class Connection:
    """One keep-alive connection; reopened after a failure."""

    def __init__(self, url: str, token: str | None) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        """One request; retried once on a fresh connection when the server had closed an idle one
        (uvicorn does after 5 s): upserts, deletes and searches are all safe to repeat."""
        for attempt in (1, 2):
            try:
                self.conn.request("POST", path, body=json.dumps(body), headers=self.headers)
                response = self.conn.getresponse()
                return response.status, json.loads(response.read())
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def client(
    url: str,
    index: str,
    token: str | None,
    queries: Sequence[str],
    k: int,
    until: float,
    offset: int,
    tally: Tally,
) -> None:
    conn = Connection(url, token)
    path = f"/indexes/{urllib.parse.quote(index, safe='')}/search"
    try:
        for n in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= until:
                break
            query = queries[(offset + n) % len(queries)]
            started = time.perf_counter()
            try:
                status, answer = conn.post(path, {"query": query, "k": k})
            except (OSError, http.client.HTTPException) as exc:
                tally.add(None, f"{type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - started
            if status != 200 or len(answer.get("hits", ())) == 0:
                tally.add(None, f"{status}: {answer}")
            else:
                tally.add(elapsed)
    finally:
        conn.close()


class WriterReport:
    def __init__(self) -> None:
        self.upserted = self.deleted = self.found = self.deleted_gone = 0
        self.write_errors: list[str] = []
        self.write_seconds: list[float] = []
        self.missing: list[str] = []
        self.deleted_found: list[str] = []


def writer(
    url: str, index: str, token: str | None, total: int, batch: int, until: float, report: WriterReport
) -> None:
    """Upsert `total` new documents in batches spread over the run, delete every fourth, verify."""
    conn = Connection(url, token)
    run = f"{os.getpid()}-{int(time.time())}"
    docs = [
        {"id": f"lt-{run}-{i}", "text": f"load test {run}, document {i}: {_phrase(i)}", "metadata": {"lt": i}}
        for i in range(total)
    ]
    try:
        doomed = _write(conn, index, docs, batch, until, report)
        _verify(conn, index, docs, doomed, report)
    except (OSError, http.client.HTTPException) as exc:
        report.write_errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def _write(
    conn: Connection, index: str, docs: list[dict[str, Any]], batch: int, until: float, report: WriterReport
) -> set[str]:
    base = f"/indexes/{urllib.parse.quote(index, safe='')}/documents"
    batches = [docs[i : i + batch] for i in range(0, len(docs), batch)]
    pause = max(0.0, (until - time.monotonic()) * 0.8 / (len(batches) + 1))
    gate = threading.Event()  # never set: a pause that is not a sleep loop
    for chunk in batches:
        gate.wait(pause)
        started = time.perf_counter()
        status, answer = conn.post(base, {"documents": chunk})
        report.write_seconds.append(time.perf_counter() - started)
        if status == 200:
            report.upserted += len(chunk)
        else:
            report.write_errors.append(f"{status}: {answer}")
    doomed = [d["id"] for d in docs[::4]]
    status, answer = conn.post(f"{base}/delete", {"ids": doomed})
    if status == 200:
        report.deleted = int(answer["deleted"])
    else:
        report.write_errors.append(f"{status}: {answer}")
    return set(doomed)


_WORDS = [
    "amber",
    "birch",
    "cobalt",
    "delta",
    "ember",
    "fjord",
    "garnet",
    "harbor",
    "indigo",
    "juniper",
    "kestrel",
    "lagoon",
]


def _phrase(i: int) -> str:
    return " ".join(_WORDS[(i * p) % len(_WORDS)] for p in (1, 3, 5, 7))


def _verify(
    conn: Connection, index: str, docs: list[dict[str, Any]], doomed: set[str], report: WriterReport
) -> None:
    """Every kept document is found by its own text; no deleted one is found at all."""
    path = f"/indexes/{urllib.parse.quote(index, safe='')}/search"
    for start in range(0, len(docs), 64):
        chunk = docs[start : start + 64]
        status, answer = conn.post(path, {"queries": [d["text"] for d in chunk], "k": 10})
        if status != 200:
            report.write_errors.append(f"verify {status}: {answer}")
            return
        for doc, result in zip(chunk, answer["results"], strict=True):
            ids = [h["id"] for h in result["hits"]]
            if doc["id"] in doomed:
                if doc["id"] in ids:
                    report.deleted_found.append(doc["id"])
                else:
                    report.deleted_gone += 1
            elif ids and ids[0] == doc["id"]:
                report.found += 1
            else:
                report.missing.append(doc["id"])


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q)) if values else float("nan")


def run(args: argparse.Namespace) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(args.server)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(
            f"loadtest: {args.server} is not a loopback http:// URL; this tool loads your own machine only"
        )
    queries = _queries(args)
    tally = Tally()
    load_before = os.getloadavg()
    started = time.monotonic()
    until = started + args.seconds
    threads = [
        threading.Thread(
            target=client, args=(args.server, args.index, args.token, queries, args.k, until, i * 7919, tally)
        )
        for i in range(args.clients)
    ]
    written = WriterReport()
    if args.writer:
        threads.append(
            threading.Thread(
                target=writer,
                args=(
                    args.server,
                    args.index,
                    args.token,
                    args.write_total,
                    args.write_batch,
                    until,
                    written,
                ),
            )
        )
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    result: dict[str, Any] = {
        "server": args.server,
        "index": args.index,
        "clients": args.clients,
        "seconds": round(elapsed, 2),
        "queries": len(tally.latencies),
        "queries_per_s": round(len(tally.latencies) / elapsed, 1),
        "p50_ms": round(percentile(tally.latencies, 50), 2),
        "p95_ms": round(percentile(tally.latencies, 95), 2),
        "p99_ms": round(percentile(tally.latencies, 99), 2),
        "errors": len(tally.errors),
        "first_errors": tally.errors[:3],
        "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
    }
    if args.writer:
        result["writer"] = {
            "upserted": written.upserted,
            "deleted": written.deleted,
            "write_p50_ms": round(percentile(written.write_seconds, 50), 1),
            "errors": written.write_errors[:3],
            "kept_found_by_own_text": f"{written.found}/{written.upserted - written.deleted}",
            "deleted_gone": f"{written.deleted_gone}/{written.deleted}",
            "missing": written.missing[:5],
            "deleted_but_found": written.deleted_found[:5],
        }
    return result


def _queries(args: argparse.Namespace) -> list[str]:
    if args.queries:
        lines = Path(args.queries).read_text(encoding="utf-8").splitlines()
        return [line for line in lines if line.strip()]
    sentences = bench().stsb_sentences()
    return list(sentences[args.query_offset : args.query_offset + 500])


def report(result: dict[str, Any]) -> None:
    print(
        f"{result['index']}: {result['clients']} client(s), {result['seconds']} s: "
        f"{result['queries']} queries, {result['queries_per_s']} queries/s, "
        f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms, "
        f"{result['errors']} error(s); load average (1/5/15 min) before {result['load_average'][:3]}, "
        f"after {result['load_average'][3:]}"
    )
    for line in result["first_errors"]:
        print(f"  error: {line[:300]}")
    if "writer" in result:
        w = result["writer"]
        print(
            f"  writer: {w['upserted']} upserted, {w['deleted']} deleted (write p50 {w['write_p50_ms']} ms); "
            f"kept found by their own text {w['kept_found_by_own_text']}, deleted gone {w['deleted_gone']}"
        )
        for line in w["errors"]:
            print(f"  write error: {line[:300]}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build", help="build an index of STS-B sentences to serve")
    b.add_argument("path", type=Path)
    b.add_argument("--items", type=int, default=2000)
    b.add_argument("--base-sentences", type=int, default=2000, help="real sentences the copies are made from")
    b.add_argument("--backend", help="the embedding engine (default: searchkit's default), e.g. onnx-int8")
    r = commands.add_parser("run", help="load a running server")
    r.add_argument("server", help="e.g. http://127.0.0.1:8000 (loopback only)")
    r.add_argument("index", help="the served index's name (its folder name)")
    r.add_argument("--clients", type=int, default=8)
    r.add_argument("--seconds", type=float, default=20.0)
    r.add_argument("-k", type=int, default=10)
    r.add_argument("--queries", help="a file of queries, one per line (default: STS-B sentences)")
    r.add_argument("--query-offset", type=int, default=2000, help="first STS-B sentence used as a query")
    r.add_argument("--token", default=os.environ.get("SEARCHKIT_TOKEN"))
    r.add_argument("--writer", action="store_true", help="upsert and delete while the clients search")
    r.add_argument("--write-total", type=int, default=200)
    r.add_argument("--write-batch", type=int, default=20)
    r.add_argument("--json", action="store_true", help="print one JSON document")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "build":
        build(args.path, args.items, args.base_sentences, args.backend)
        return 0
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        report(result)
    w = result.get("writer", {})
    clean = (
        not result["errors"]
        and not w.get("errors")
        and not w.get("missing")
        and not w.get("deleted_but_found")
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
