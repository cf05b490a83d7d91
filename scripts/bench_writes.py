#!/usr/bin/env python3
"""bench.py's `writes` section: what one small write costs as an index grows (issue 12).

For each size and index type, one process builds the index (synthetic 384-dim vectors from a
deterministic embedder: semantics do not matter here), and a second process, a writer and a
reader on the same index as in `searchkit serve`, times through the Python API:

- a one-document upsert (a new id) and a one-document delete, each committed and durable;
- the first search of the reader after each write, and a steady search (median of 5) next to it;
- the second process's peak RSS (VmHWM): the writer's and the reader's memory together.

    .venv/bin/python scripts/bench.py --sections writes [--write-sizes 10000,100000,1000000]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WRITES = 30  # upserts, and as many deletes
STEADY = 5  # searches after each first one, whose median is the steady figure
DIMENSION = 384
KINDS = ("flat", "hnsw")


def _embedder() -> Any:
    from bench import TinyEmbedder

    return TinyEmbedder(DIMENSION)


def build(folder: Path, n: int, kind: str) -> dict[str, Any]:
    """Child 1: an index of `n` items of type `kind` at `folder`."""
    from searchkit.service import Index

    started = time.perf_counter()
    with Index.create(folder, index_type=kind, embedder=_embedder()) as index:
        index.add(({"id": f"item{i}", "text": f"stored item number {i}"} for i in range(n)), batch_size=1024)
    return {"build_s": time.perf_counter() - started}


def write(folder: Path) -> dict[str, Any]:
    """Child 2: a writer and a reader on `folder`; times each write and the reads after it."""
    from bench import lap, peak_rss_bytes

    from searchkit.service import Index

    embedder = _embedder()
    writer, reader = Index.open(folder, embedder=embedder), Index.open(folder, embedder=embedder)
    queries = [f"a query about item {i}" for i in range(WRITES)]
    for q in queries[:10]:
        reader.search(q, k=10)
    times: dict[str, list[float]] = {name: [] for name in ("upsert", "delete", "first", "steady")}
    for n, query in enumerate(queries):
        upsert = [{"id": f"new{n}", "text": f"a new document {n}"}]
        writes = (("upsert", writer.add, upsert), ("delete", writer.delete, [f"item{n}"]))
        for name, change, argument in writes:
            times[name].append(lap(change, argument))
            times["first"].append(lap(reader.search, query, k=10))
            times["steady"].append(statistics.median(lap(reader.search, query, k=10) for _ in range(STEADY)))
    writer.close()
    reader.close()
    return {"seconds": times, "peak_rss_bytes": peak_rss_bytes()}


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench_writes {args[0]} failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def section(sizes: tuple[int, ...]) -> dict[str, Any]:
    from bench import log, ms, row

    runs: dict[str, Any] = {}
    table = []
    for n in sizes:
        for kind in KINDS:
            with tempfile.TemporaryDirectory(prefix="bench-writes-") as tmp:
                folder = Path(tmp) / "index"
                built = _child("build", str(folder), str(n), kind)
                measured = _child("write", str(folder))
            seconds = measured["seconds"]
            run = {
                **built,
                "peak_rss_bytes": measured["peak_rss_bytes"],
                **{f"{name}_p50_ms": ms(values, 50) for name, values in seconds.items()},
                **{f"{name}_p99_ms": ms(values, 99) for name, values in seconds.items()},
            }
            runs[f"{n}-{kind}"] = run
            log(
                f"  {n:,} {kind}: upsert p50 {run['upsert_p50_ms']:.1f} ms, delete p50 "
                f"{run['delete_p50_ms']:.1f} ms, first search {run['first_p50_ms']:.1f} ms "
                f"(steady {run['steady_p50_ms']:.1f}), peak RSS {run['peak_rss_bytes'] / 2**20:.0f} MiB"
            )
            first = run["first_p50_ms"] / run["steady_p50_ms"]
            table += [
                *(
                    row(f"1-doc {name} p50 / p99 ms [{n:,} {kind}]", f"{p50:.1f} / {p99:.1f}")
                    for name in ("upsert", "delete")
                    for p50, p99 in [(run[f"{name}_p50_ms"], run[f"{name}_p99_ms"])]
                ),
                row(
                    f"first search after a write ms [{n:,} {kind}]",
                    f"{run['first_p50_ms']:.1f}",
                    f"{run['steady_p50_ms']:.1f}",
                    f"{first:.2f}x",
                    "<= 1.5x at 1M",
                    first <= 1.5 if n >= 1_000_000 else None,
                ),
                row(f"writer + reader peak RSS MiB [{n:,} {kind}]", f"{run['peak_rss_bytes'] / 2**20:.0f}"),
            ]
    return {
        "data": f"synthetic: a deterministic {DIMENSION}-dim embedder (crc32 through sines), "
        f"items 'stored item number N'; {WRITES} one-document upserts and {WRITES} deletes per run",
        "runs": runs,
        "table": table,
    }


if __name__ == "__main__":
    # This checkout's searchkit (not another one an editable install points at), and bench.py.
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here.parent), str(here)]
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "build":
        print(json.dumps(build(Path(rest[0]), int(rest[1]), rest[2])))
    elif command == "write":
        print(json.dumps(write(Path(rest[0])), default=float))
    else:
        raise SystemExit(f"unknown command {command!r}")
