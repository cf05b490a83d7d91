#!/usr/bin/env python3
"""Field filters at scale: a --where matching 1% of 1M items, unindexed against a field index.

    .venv/bin/python scripts/bench_filters.py [--items 1000000] [--queries 50] [--index /tmp/bench-filters]
        [--out bench-results/filters.json]

Synthetic data: items "item N" with random 384-d float32 embeddings (Gaussian, from a
stand-in embedder, so nothing is embedded by a model) and metadata ``bucket`` (N % 100,
an integer), ``tag`` ("t" + N % 100, a string), ``score`` (a float in [0, 1)) and
``year`` (a CSV-style numeric string). The index (flat, so that FAISS searches the
matches exactly with an ID selector) is built once and kept at --index; a later run reuses
it. Each filter below matches 1% of the items.

Timed, over the same random query vectors, alternating unindexed and indexed (the field
index dropped and made again in between is not timed; its build time is reported):

- ``search``: ``Index.search(query, k=10, where=...)`` end to end through the Python API.
  The stand-in embedder's own time per query (a NumPy draw, reported as ``encode_ms``) is
  included, the model's is not: no model runs;
- ``filter``: ``Store.matching_ids`` alone (what the field index changes);
- ``memory``: what ``search`` does with up to 10,000 matches (search.py's EXACT_LIMIT) on
  flat and HNSW indexes: the matches' vectors read from FAISS's memory by id, ranked, the
  best re-scored from the stored embeddings;
- ``flat``: FAISS's flat search over the matching ids (an ID selector), what ``search``
  did with them on a flat index before ``memory``;
- ``exact``: the exact search over the matches' stored embeddings, what an approximate
  index does for up to 10,000 matches where FAISS cannot hand their vectors back (IVF, SQ, PQ).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DIMENSION = 384
K = 10
FILTERS: dict[str, dict[str, Any]] = {
    "integer equality": {"bucket": 37},
    "string equality": {"tag": "t37"},
    "float range": {"score": {"$gte": 0.25, "$lt": 0.26}},
    "CSV-string range": {"year": {"$gte": 1937, "$lte": 1937}},
}
FIELDS = ("bucket", "tag", "score", "year")
DATA = "synthetic: random 384-d float32 vectors (Gaussian), generated metadata; a flat index"


class RandomEmbedder:
    """Duck-typed `searchkit.embedder.Embedder`: Gaussian vectors, seeded by each batch's
    first text (so a rebuild draws the same ones), at NumPy's speed."""

    def __init__(self) -> None:
        from searchkit.types import Fingerprint

        self.fingerprint = Fingerprint("bench-random", "bench", "0" * 64, DIMENSION, 128, False, "torch")

    @property
    def dimension(self) -> int:
        return DIMENSION

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        rng = np.random.default_rng(zlib.crc32(texts[0].encode()) if texts else 0)
        return rng.standard_normal((len(texts), DIMENSION), dtype=np.float32)

    def truncated_flags(self, texts: Sequence[str]) -> list[bool]:
        return [False] * len(texts)


def items(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    scores = rng.random(n)
    for i in range(n):
        metadata = {
            "bucket": i % 100,
            "tag": f"t{i % 100}",
            "score": float(scores[i]),
            "year": str(1900 + i % 100),
        }
        yield {"id": str(i), "text": f"item {i}", "metadata": metadata}


def build(path: Path, n: int, index_type: str = "flat") -> float:
    from searchkit.service import Index

    started = time.perf_counter()
    index = Index.create(path, index_type=index_type, embedder=RandomEmbedder())
    try:
        done = [0]

        def progress(count: int) -> None:
            done[0] += count
            if done[0] % 100_000 < count:
                print(f"  staged {done[0]:,} items ({time.perf_counter() - started:.0f} s)", file=sys.stderr)

        index.add(items(n), batch_size=4096, on_progress=progress)
    finally:
        index.close()
    return time.perf_counter() - started


def lap(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Milliseconds one call of fn(*args, **kwargs) takes."""
    started = time.perf_counter()
    fn(*args, **kwargs)
    return (time.perf_counter() - started) * 1000


def figures(laps: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(laps, 50)), 3),
        "p99_ms": round(float(np.percentile(laps, 99)), 3),
        "mean_ms": round(statistics.fmean(laps), 3),
    }


PARTS = ("search", "filter", "memory", "flat", "exact")


def measure(path: Path, queries: int) -> dict[str, Any]:
    from searchkit.service import Index

    embedder = RandomEmbedder()
    index = Index.open(path, embedder=embedder)
    texts = [f"query {q}" for q in range(queries)]
    result: dict[str, Any] = {"items": len(index), "queries": queries, "index_build_s": {}, "filters": {}}
    result["encode_ms"] = figures([lap(embedder.encode, [t]) for t in texts])
    index.index_field(*FIELDS, drop=True)
    for name, where in FILTERS.items():
        field = next(iter(where))
        ways = ("unindexed", "indexed")
        laps: dict[str, dict[str, list[float]]] = {w: {p: [] for p in PARTS} for w in ways}
        matches = set()
        half = len(texts) // 2
        for part in (texts[:half], texts[half:]):  # each way twice, alternated: noise falls on both
            for way in ways:
                if way == "indexed":
                    result["index_build_s"][field] = round(lap(index.index_field, field) / 1000, 2)
                matches.add(time_queries(index, where, part, laps[way]))
                if way == "indexed":
                    result["indexed_plan"] = plan(index, where)
                    index.index_field(field, drop=True)
        if len(matches) != 1:
            raise RuntimeError(f"{name}: the two ways matched {matches} items")
        result["filters"][name] = {
            "where": where,
            "matches": matches.pop(),
            **{way: {p: figures(v) for p, v in parts.items()} for way, parts in laps.items()},
        }
    index.close()
    return result


def time_queries(index: Any, where: dict[str, Any], texts: list[str], laps: dict[str, list[float]]) -> int:
    """Time each part of a filtered search for each query; return how many items matched."""
    from searchkit.filters import compile_where
    from searchkit.metrics import prepare
    from searchkit.service.search import _nearest_among, exact_nearest

    compiled = compile_where(where, index.store.indexed_fields())
    allowed = index.store.matching_ids(compiled)
    for text in texts:
        vector = index.embedder.encode([text])
        prepared = prepare(vector, index.metric)
        hits = index.search(text, k=K, where=where)
        if len(hits) != K:
            raise RuntimeError(f"{where}: {len(hits)} hits, not {K}")
        laps["search"].append(lap(index.search, text, k=K, where=where))
        laps["filter"].append(lap(index.store.matching_ids, compiled))
        laps["memory"].append(lap(_in_memory, index, vector, allowed, _nearest_among))
        laps["flat"].append(lap(index.vectors.search, prepared, K, allowed))
        laps["exact"].append(lap(exact_nearest, index, vector, K, allowed))
    return len(allowed)


def _in_memory(index: Any, vector: np.ndarray, allowed: np.ndarray, nearest: Callable[..., Any]) -> Any:
    """What search.py does with up to 10,000 matches on flat and HNSW: their vectors from
    FAISS's memory, ranked, the best re-scored from the stored embeddings."""
    return nearest(index, vector, K, allowed, index.vectors.exact_vectors(allowed))


def plan(index: Any, where: dict[str, Any]) -> list[str]:
    from searchkit.filters import compile_where

    compiled = compile_where(where, index.store.indexed_fields())
    sql, params = index.store.matching_sql(compiled)
    return [row[-1] for row in index.store.db.execute("EXPLAIN QUERY PLAN " + sql, params)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--index", default="/tmp/bench-filters", help="built once, reused")
    parser.add_argument("--index-type", default="flat", help="flat (default) or another type to build")
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "filters.json"))
    args = parser.parse_args(argv)
    path = Path(args.index)
    built = None
    if not (path / "manifest.json").exists():
        print(f"building {args.items:,} synthetic items at {path}", file=sys.stderr)
        built = round(build(path, args.items, args.index_type), 1)
        print(f"  built in {built} s", file=sys.stderr)
    result = {"data": DATA.replace("a flat index", f"a {args.index_type} index"), "build_s": built}
    result.update(measure(path, args.queries))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{result['items']:,} items; encode (stand-in) p50 {result['encode_ms']['p50_ms']} ms")
    for name, figure in result["filters"].items():
        print(f"{name} ({figure['matches']:,} matches)")
        for way in ("unindexed", "indexed"):
            cells = "  ".join(
                f"{p} {figure[way][p]['p50_ms']:.2f}/{figure[way][p]['p99_ms']:.2f}" for p in PARTS
            )
            print(f"  {way:<9}  p50/p99 ms: {cells}")
    print(f"plan: {result['indexed_plan']}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
