#!/usr/bin/env python3
"""searchkit benchmarks: the figures of SPEC §11, each beside its baseline from the same run.

These machines are noisy, so every figure is a median of several repeats and, where the
spec compares, a ratio against a baseline measured in the same run on the same data,
alternated with it (A B A B ...).

    .venv/bin/python scripts/bench.py [--quick] [--sections ingest,cli,warm,ann,memory,recall,plot,filters]
        [--sizes 10000,100000,1000000] [--warm-sizes 10000,100000]
        [--memory-sizes 100000,1000000] [--write-sizes 10000,100000,1000000]
        [--segment-sizes 1000000] [--segment-kinds flat,hnsw] [--scale-sizes 1000000]
        [--scale-kinds flat] [--out bench-results/]

Sections: one function each (see SECTIONS at the bottom), each returning a dict that goes
into OUT/bench.json under its name, with "data" (where its vectors come from: real
embeddings or synthetic ones) and "table" (rows for the summary printed at the end).

  ingest  items/s of Index.create + Index.add against scripts/bench_baseline.py's build()
          (sentence-transformers encode + FAISS flat + sqlite3), model loaded beforehand;
          one row per backend in searchkit.embedder.BACKENDS. Real STS-B and SciFact sentences.
  cli     `searchkit --help` wall time; cold `searchkit query` (a new process each time)
          against the hand-written scripts/bench_baseline.py, on real sentences (10,000).
  warm    Index.search latency, one query at a time, after warm-up: with the real model
          encoding each query, the search alone, and the encoding alone. The indexed
          vectors are noisy copies of real embeddings (see noisy_copies); queries are real.
  ann     queries/s, recall@10 against exact search, build time and bytes per vector of
          every index type in searchkit.vectors.INDEX_TYPES, with a sweep of the FAISS
          search parameter where the index has one (efSearch, nprobe). Noisy copies.
  memory  peak RSS of a streamed ingest of short lines with a trivial 16-dim embedder
          (synthetic vectors), large against small: the growth against the vectors' bytes.
  recall  recall@10 of the default HNSW and IVF against flat through Index.search, on 3,000
          real sentences with 500 other real sentences as queries (the real model).
  plot    recall@10 against queries/s from the ann results: OUT/recall_qps.png.
  writes  one-document upsert and delete p50/p99, the first search after a write against a
          steady one, and the writer's peak RSS, at each --write-sizes for flat and hnsw
          (scripts/bench_writes.py; synthetic vectors).
  filters a --where matching 1% of 1M items (100k with --quick), unindexed against a field
          index: Index.search, the filter alone, and the search parts after it
          (scripts/bench_filters.py). Synthetic: random vectors, generated metadata.
  segments search p50/p99 and recall@10 with as many segments and unsealed vectors as the
          merge policy keeps, against the same items compacted (alternated), and the
          compaction time, at each --segment-sizes for --segment-kinds
          (scripts/bench_segments.py). Noisy copies; real queries, real model.
  scale   --scale-sizes items with their vectors through one Index.add: items/s chunk by
          chunk (the last 10% against the first), the final merges, the writer's peak RSS
          against the vectors' size (scripts/bench_scale.py). Noisy copies, made lazily.

A section run alone merges its result into an existing bench.json (plot alone plots the
ann results stored there).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import importlib.metadata
import inspect
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Everything runs offline: the model is the bundled one, never fetched.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
EVAL = ROOT.parent / "shared" / "data" / "eval"
STSB = EVAL / "stsb"
SCIFACT_CORPUS = EVAL / "scifact" / "corpus.jsonl"
for _folder in (ROOT, SCRIPTS):  # this checkout's searchkit, and bench_baseline beside this file
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

K = 10
SEED = 1234
# Per-dimension standard deviation of the Gaussian noise added to unit-length MiniLM
# embeddings (384 dims: the noise vector's norm is about 0.59) before re-normalising.
# A copy stays near its sentence (cosine ~0.86) but copies of one sentence are not
# duplicates, so neighbours are not trivially ranked.
NOISE = 0.03
# Each ANN search is repeated up to this many times, or until this many seconds are spent.
SEARCH_REPEATS = 3
SEARCH_BUDGET_S = 20.0
REAL = "real all-MiniLM-L6-v2 embeddings of STS-B sentences, then SciFact abstract sentences"
NOISY = (
    f"synthetic: real all-MiniLM-L6-v2 embeddings of STS-B and SciFact sentences, expanded with "
    f"Gaussian noise (sigma {NOISE} per dimension) and re-normalised"
)

Result = dict[str, Any]


@dataclass(frozen=True)
class Config:
    quick: bool
    out: Path
    ann_sizes: tuple[int, ...]
    warm_sizes: tuple[int, ...]
    memory_sizes: tuple[int, int]
    memory_dim: int
    ingest_texts: int
    ab_pairs: int
    cli_items: int
    cold_runs: int
    help_runs: int
    base_sentences: int
    ann_base_sentences: int
    recall_items: int
    warm_queries: int
    ann_queries: int
    write_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    segment_sizes: tuple[int, ...] = (1_000_000,)
    segment_kinds: tuple[str, ...] = ("flat", "hnsw")
    scale_sizes: tuple[int, ...] = (1_000_000,)
    scale_kinds: tuple[str, ...] = ("flat",)
    scale_commit_every: int | None = None
    ray_items: int = 20_000


def make_config(args: argparse.Namespace) -> Config:
    quick = bool(args.quick)
    ann_sizes = _sizes(args.sizes) if args.sizes else ((10_000,) if quick else (10_000, 100_000, 1_000_000))
    if quick:  # 1M only in a full run
        ann_sizes = tuple(n for n in ann_sizes if n < 1_000_000)
    warm_sizes = (
        _sizes(args.warm_sizes) if args.warm_sizes else ((2_000, 10_000) if quick else (10_000, 100_000))
    )
    memory = (
        _sizes(args.memory_sizes)
        if args.memory_sizes
        else ((10_000, 100_000) if quick else (100_000, 1_000_000))
    )
    if len(memory) != 2 or memory[0] >= memory[1]:
        raise SystemExit("--memory-sizes takes two sizes, small then large")
    return Config(
        quick=quick,
        out=Path(args.out),
        ann_sizes=ann_sizes,
        warm_sizes=warm_sizes,
        memory_sizes=(memory[0], memory[1]),
        memory_dim=16,
        ingest_texts=300 if quick else 2000,
        ab_pairs=2 if quick else 3,
        cli_items=500 if quick else 10_000,
        cold_runs=3 if quick else 5,
        help_runs=10,
        base_sentences=500 if quick else 3000,
        ann_base_sentences=500 if quick else 30_000,
        recall_items=500 if quick else 3_000,
        warm_queries=100 if quick else 500,
        ann_queries=200 if quick else 1000,
        write_sizes=_sizes(args.write_sizes)
        if args.write_sizes
        else ((2_000, 10_000) if quick else Config.write_sizes),
        segment_sizes=_sizes(args.segment_sizes)
        if args.segment_sizes
        else ((20_000,) if quick else Config.segment_sizes),
        segment_kinds=_kinds(args.segment_kinds, Config.segment_kinds),
        scale_sizes=_sizes(args.scale_sizes)
        if args.scale_sizes
        else ((100_000,) if quick else Config.scale_sizes),
        scale_kinds=_kinds(args.scale_kinds, Config.scale_kinds),
        scale_commit_every=args.scale_commit_every,
        ray_items=args.ray_items or (2_000 if quick else Config.ray_items),
    )


def _kinds(text: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """'flat,hnsw' -> ("flat", "hnsw"): index types, checked against searchkit's."""
    if not text:
        return default
    from searchkit.layout import INDEX_TYPES

    kinds = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [k for k in kinds if k not in INDEX_TYPES]
    if unknown or not kinds:
        raise SystemExit(f"unknown index type(s) {', '.join(unknown)}: choose from {', '.join(INDEX_TYPES)}")
    return kinds


def _sizes(text: str) -> tuple[int, ...]:
    """'10000,100k,1M' -> (10000, 100000, 1000000)."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        scale = {"k": 1_000, "m": 1_000_000}.get(part[-1:], 1)
        sizes.append(int(float(part.rstrip("km")) * scale))
    return tuple(sorted(set(sizes)))


# --- shared helpers -------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def lap(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Seconds one call of fn(*args, **kwargs) takes."""
    started = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - started


def run_wall(cmd: Sequence[str]) -> tuple[float, str]:
    """Wall seconds of a subprocess (start-up included) and its stdout; raise if it fails."""
    started = time.perf_counter()
    done = subprocess.run(list(cmd), capture_output=True, text=True, env=os.environ.copy())
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... exited {done.returncode}: {done.stderr.strip()[-800:]}")
    return seconds, done.stdout


def ms(seconds: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000.0, q))


def row(
    figure: str,
    value: str,
    baseline: str = "",
    ratio: str = "",
    target: str = "",
    met: bool | None = None,
) -> dict[str, Any]:
    """One line of the summary table; `met` is None where the spec sets no bar for it."""
    return {
        "figure": figure,
        "value": value,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "met": met,
    }


def searchkit_exe() -> str:
    beside = Path(sys.executable).with_name("searchkit")
    return str(beside if beside.exists() else ROOT / ".venv" / "bin" / "searchkit")


@functools.cache
def stsb_sentences() -> tuple[str, ...]:
    """STS-B dev + test sentences (columns 6 and 7), deduplicated, in file order."""
    seen: dict[str, None] = {}
    for name in ("sts-dev.csv", "sts-test.csv"):
        with open(STSB / name, encoding="utf-8", newline="") as f:
            for line in f:
                cols = line.rstrip("\n").rstrip("\r").split("\t")
                for text in cols[5:7]:
                    if text.strip():
                        seen.setdefault(text, None)
    return tuple(seen)


@functools.cache
def sentence_pool() -> tuple[str, ...]:
    """Real English sentences: STS-B's, then those of SciFact's titles and abstracts
    (split at sentence ends), deduplicated, in file order: about 55,000."""
    import re

    seen = dict.fromkeys(stsb_sentences())
    with open(SCIFACT_CORPUS, encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            for text in [doc.get("title", ""), *re.split(r"(?<=[.!?])\s+(?=[A-Z])", doc.get("text", ""))]:
                if 20 <= len(text.strip()) <= 600:
                    seen.setdefault(text.strip(), None)
    return tuple(seen)


@functools.cache
def real_embeddings(n: int) -> tuple[tuple[str, ...], np.ndarray]:
    """The first `n` pool sentences and their real, unit-length embeddings (the default
    model), cached in bench-results/cache/ (embedding 30,000 takes minutes here)."""
    from searchkit import embedder as embedding

    texts = sentence_pool()[:n]
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    cache = ROOT / "bench-results" / "cache" / f"embeddings-{len(texts)}-{digest}.npy"
    if cache.exists():
        return texts, np.load(cache)
    log(f"  embedding {len(texts)} real sentences with the real model (cached in {cache.parent})")
    vectors = _unit(embedding.load().encode(list(texts)))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return texts, vectors


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def noisy_copies(base: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` unit vectors, each a random row of `base` plus Gaussian noise, and those rows' indexes."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    centres = rng.integers(0, len(base), size=n)
    chunk = 100_000  # bounds the temporaries at 1M x 384
    for start in range(0, n, chunk):
        rows = centres[start : start + chunk]
        block = base[rows] + NOISE * rng.standard_normal((len(rows), base.shape[1]), dtype=np.float32)
        out[start : start + len(rows)] = _unit(block)
    return out, centres


class ReplayEmbedder:
    """Duck-typed `searchkit.embedder.Embedder` that hands back precomputed vectors.

    It carries the real model's fingerprint, so an index built with it is queryable with
    the real model; and with the query vectors precomputed it times a search without the
    model.
    """

    def __init__(self, fingerprint: Any, texts: Sequence[str], vectors: np.ndarray) -> None:
        self.fingerprint = fingerprint
        self._rows = {text: i for i, text in enumerate(texts)}
        self._vectors = vectors

    @property
    def dimension(self) -> int:
        return int(self.fingerprint.dimension)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self._vectors[[self._rows[t] for t in texts]]

    def truncated_flags(self, texts: Sequence[str]) -> list[bool]:
        return [False] * len(texts)


class TinyEmbedder:
    """A trivial deterministic embedder (crc32 of the text through sines), for scale runs."""

    def __init__(self, dimension: int) -> None:
        from searchkit.types import Fingerprint

        sha = hashlib.sha256(f"bench-tiny-{dimension}".encode()).hexdigest()
        self.fingerprint = Fingerprint("bench-tiny", "bench", sha, dimension, 128, False, "torch")
        self._frequencies = np.arange(1, dimension + 1, dtype=np.float64) * 0.6180339887

    @property
    def dimension(self) -> int:
        return self.fingerprint.dimension

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        seeds = np.fromiter((zlib.crc32(t.encode()) for t in texts), dtype=np.float64, count=len(texts))
        return np.sin(np.outer(seeds, self._frequencies)).astype(np.float32)

    def truncated_flags(self, texts: Sequence[str]) -> list[bool]:
        return [False] * len(texts)


def default_engine() -> str:
    """The backend searchkit embeds with when none is named (torch before there was a choice)."""
    from searchkit import embedder as embedding

    choose = getattr(embedding, "default_backend", None)
    return str(choose()) if choose is not None else "torch"


def searchkit_ingest(path: Path, items: Sequence[dict[str, Any]], backend: str | None = None) -> None:
    """What the ingest section times: a new index, every item added, closed."""
    from searchkit.service import Index

    index = Index.create(path, metric="cosine", **({"backend": backend} if backend else {}))
    try:
        report = index.add(items)
    finally:
        index.close()
    if report.added != len(items):
        raise RuntimeError(f"searchkit added {report.added} of {len(items)} items")


# --- sections -------------------------------------------------------------------------


def ingest_target(backend: str, default_backend: str) -> tuple[float | None, str]:
    """SPEC §11: the default backend >= 0.95x raw encode; a faster one >= 2.5x (torch: no bar
    unless it is the default, being what the baseline runs)."""
    if backend == default_backend:
        return 0.95, ">= 0.95x (default backend)"
    if backend == "torch":
        return None, ""
    return 2.5, ">= 2.5x (fast backend; its STS-B/SciFact not checked here)"


def section_ingest(cfg: Config) -> Result:
    """Indexing throughput, model load excluded, alternated with the hand-written baseline."""
    import bench_baseline

    from searchkit import embedder as embedding
    from searchkit.errors import SearchkitError

    texts = list(stsb_sentences()[: cfg.ingest_texts])
    items = [{"id": str(i), "text": text} for i, text in enumerate(texts)]
    baseline_model = bench_baseline.load_model()
    baseline_model.encode(texts[:64], batch_size=32, show_progress_bar=False)  # first calls are slow
    default_backend = default_engine()
    result: Result = {
        "data": f"{REAL} ({len(texts)} texts)",
        "texts": len(texts),
        "backends": {},
        "table": [],
    }
    for backend in embedding.BACKENDS:
        try:
            embedding.load(backend=backend).encode(texts[:64])  # loaded and warmed before timing
        except SearchkitError as exc:  # e.g. its runtime is not installed here
            result["backends"][backend] = {"skipped": str(exc)}
            result["table"].append(row(f"ingest items/s [{backend}]", f"skipped: {exc}"))
            continue
        baseline_rates: list[float] = []
        searchkit_rates: list[float] = []
        for pair in range(cfg.ab_pairs):
            with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
                seconds = lap(bench_baseline.build, Path(tmp) / "baseline.db", texts, baseline_model)
                baseline_rates.append(len(texts) / seconds)
                seconds = lap(searchkit_ingest, Path(tmp) / "index", items, backend)
                searchkit_rates.append(len(texts) / seconds)
            rates = f"baseline {baseline_rates[-1]:.0f}/s, searchkit {searchkit_rates[-1]:.0f}/s"
            log(f"  {backend} pair {pair + 1}: {rates}")
        base, ours = statistics.median(baseline_rates), statistics.median(searchkit_rates)
        ratio = ours / base
        bar, target = ingest_target(backend, default_backend)
        result["backends"][backend] = {
            "default": backend == default_backend,
            "baseline_items_per_s": baseline_rates,
            "searchkit_items_per_s": searchkit_rates,
            "baseline_median": base,
            "searchkit_median": ours,
            "ratio": ratio,
            "target_ratio": bar,
        }
        met = None if bar is None else ratio >= bar
        figure = f"ingest items/s [{backend}{', default' if backend == default_backend else ''}]"
        result["table"].append(row(figure, f"{ours:.0f}", f"{base:.0f}", f"{ratio:.2f}x", target, met))
    return result


def section_cli(cfg: Config) -> Result:
    """`searchkit --help`, and a cold `searchkit query` against the hand-written script."""
    import bench_baseline

    from searchkit.service import Index

    exe = searchkit_exe()
    help_s = [run_wall([exe, "--help"])[0] for _ in range(cfg.help_runs)]
    texts = list(sentence_pool()[: cfg.cli_items])
    query = "A man is playing a guitar."
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        index_path, db_path = Path(tmp) / "index", Path(tmp) / "baseline.db"
        log(f"  building both stores of {len(texts)} sentences")
        searchkit_ingest(index_path, [{"id": str(i), "text": t} for i, t in enumerate(texts)])
        with Index.open(index_path) as opened:
            family = opened.manifest.model.backend
        bench_baseline.build(db_path, texts, bench_baseline.load_model())
        searchkit_cmd = [exe, "query", str(index_path), query]
        baseline_cmd = [sys.executable, str(SCRIPTS / "bench_baseline.py"), str(db_path), query]
        # One untimed run of each first, so that both start with their files in the page
        # cache; it also checks that they find the same top 10.
        _, out = run_wall([*searchkit_cmd, "--json"])
        searchkit_top = [hit["text"] for hit in json.loads(out.splitlines()[0])["hits"]]
        _, out = run_wall(baseline_cmd)
        baseline_top = [line.split("\t", 2)[2] for line in out.splitlines() if line.strip()]
        searchkit_s: list[float] = []
        baseline_s: list[float] = []
        for run in range(cfg.cold_runs):
            baseline_s.append(run_wall(baseline_cmd)[0])
            searchkit_s.append(run_wall(searchkit_cmd)[0])
            log(f"  cold run {run + 1}: baseline {baseline_s[-1]:.2f} s, searchkit {searchkit_s[-1]:.2f} s")
    help_median = statistics.median(help_s)
    ours, base = statistics.median(searchkit_s), statistics.median(baseline_s)
    agree = len(set(searchkit_top) & set(baseline_top)) / max(1, len(baseline_top))
    return {
        "data": f"{REAL} ({len(texts)} items); "
        f"searchkit's default engine {default_engine()}, vectors of the {family} family",
        "engine": default_engine(),
        "vector_family": family,
        "help_s": help_s,
        "help_median_s": help_median,
        "items": len(texts),
        "query": query,
        "searchkit_query_s": searchkit_s,
        "baseline_query_s": baseline_s,
        "searchkit_median_s": ours,
        "baseline_median_s": base,
        "ratio": ours / base,
        "top10_agreement": agree,
        "table": [
            row("searchkit --help (s)", f"{help_median:.3f}", target="<= 0.3 s", met=help_median <= 0.3),
            row(
                f"cold query, {len(texts)} items (s)",
                f"{ours:.2f}",
                f"{base:.2f}",
                f"{ours / base:.2f}x",
                "<= 0.15x (at 10k items)",
                ours / base <= 0.15,
            ),
            row("cold query: same top 10 as baseline", f"{agree:.0%}"),
        ],
    }


def section_warm(cfg: Config) -> Result:
    """Warm Index.search latency, one query at a time: end to end, search only, encoding only."""
    from searchkit import embedder as embedding
    from searchkit.service import Index

    real = embedding.load()
    engine = str(getattr(real, "backend", real.fingerprint.backend))
    base_texts, base = real_embeddings(cfg.base_sentences)
    queries = list(stsb_sentences()[cfg.base_sentences : cfg.base_sentences + cfg.warm_queries])
    query_vectors = _unit(real.encode(queries))
    result: Result = {
        "data": f"index: {NOISY}; queries: {len(queries)} other real STS-B sentences, "
        f"real model ({engine} engine)",
        "engine": engine,
        "queries": len(queries),
        "sizes": {},
        "table": [],
    }
    for n in cfg.warm_sizes:
        vectors, centres = noisy_copies(base, n, SEED + n)
        texts = [f"{base_texts[c]} #{i}" for i, c in enumerate(centres)]  # distinct texts, distinct rows
        with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp:
            path = Path(tmp) / "index"
            started = time.perf_counter()
            index = Index.create(
                path, metric="cosine", embedder=ReplayEmbedder(real.fingerprint, texts, vectors)
            )
            index.add({"id": str(i), "text": t} for i, t in enumerate(texts))
            index.close()
            build_s = time.perf_counter() - started
            del vectors, texts
            full = Index.open(path, embedder=real)
            search_only = Index.open(path, embedder=ReplayEmbedder(real.fingerprint, queries, query_vectors))
            info = full.info()
            if len(full.search(queries[0], k=K)) != K:
                raise RuntimeError(f"warm: a search of {n} items did not return {K} hits")
            for q in queries[:20]:  # warm-up
                full.search(q, k=K)
                search_only.search(q, k=K)
            end_to_end: list[float] = []
            search: list[float] = []
            encode: list[float] = []
            for q in queries:  # interleaved, so that noise falls on all three alike
                end_to_end.append(lap(full.search, q, k=K))
                search.append(lap(search_only.search, q, k=K))
                encode.append(lap(real.encode, [q]))
            full.close()
            search_only.close()
        figures = {
            "build_s": build_s,
            "index": {key: info[key] for key in ("index", "index_type", "faiss") if key in info},
        }
        for name, seconds in (("with_model", end_to_end), ("search_only", search), ("encode_only", encode)):
            figures[name] = {
                "p50_ms": ms(seconds, 50),
                "p99_ms": ms(seconds, 99),
                "mean_ms": float(np.mean(seconds) * 1000),
            }
        result["sizes"][str(n)] = figures
        p50 = figures["with_model"]["p50_ms"]
        log(f"  {n} items: built in {build_s:.1f} s; p50 {p50:.2f} ms with the model")
        for name, label in (
            ("with_model", f"with model [{engine}]"),
            ("search_only", "search only"),
            ("encode_only", f"encode only [{engine}]"),
        ):
            p50, p99 = figures[name]["p50_ms"], figures[name]["p99_ms"]
            met = p50 <= 10 and p99 <= 50 if name == "with_model" else None
            target = "p50 <= 10, p99 <= 50 (at 100k)" if name == "with_model" else ""
            result["table"].append(
                row(f"warm {n:,}: {label} p50/p99 ms", f"{p50:.2f} / {p99:.2f}", target=target, met=met)
            )
    return result


def ann_index_types() -> list[str]:
    from searchkit import vectors

    # "auto" picks one of the others by size: measuring it again would add nothing.
    return [t for t in vectors.INDEX_TYPES if t != "auto"]


def build_vector_index(index_type: str, vectors: np.ndarray, rng: np.random.Generator) -> Any:
    """A searchkit VectorIndex of `index_type` over `vectors` (ids 0..n-1), trained if it needs it."""
    from searchkit.types import Metric
    from searchkit.vectors import VectorIndex

    # Types whose parameters depend on the size (IVF's nlist) take the count when created.
    sized = "count" in inspect.signature(VectorIndex.create).parameters
    extra = {"count": len(vectors)} if sized else {}
    index = VectorIndex.create(vectors.shape[1], Metric.COSINE, index_type, **extra)
    if getattr(index, "needs_training", False):
        rows = rng.choice(len(vectors), size=min(len(vectors), index.layout.training_size), replace=False)
        index.train(vectors[np.sort(rows)])
    index.add(np.arange(len(vectors), dtype=np.int64), vectors)
    return index


def search_settings(index: Any) -> list[str]:
    """FAISS ParameterSpace settings to sweep; "" is searchkit's own setting, measured first."""
    import faiss

    inner = faiss.downcast_index(index.index.index)
    if hasattr(inner, "hnsw"):
        return ["", *(f"efSearch={v}" for v in (16, 32, 64, 128, 256, 512))]
    if hasattr(inner, "nprobe") and hasattr(inner, "nlist"):
        return ["", *(f"nprobe={v}" for v in (1, 2, 4, 8, 16, 32, 64, 128, 256) if v <= inner.nlist)]
    return [""]


def timed_search(index: Any, vectors: np.ndarray, queries: np.ndarray) -> tuple[float, np.ndarray]:
    """Queries/s of one batched search (median of repeats) and the ids it found, the way
    the service searches: k x the layout's over-fetch candidates from FAISS, re-scored
    exactly against the stored vectors."""
    seconds: list[float] = []
    ids = np.empty((0, K), dtype=np.int64)
    fetch = K * index.layout.overfetch
    while len(seconds) < SEARCH_REPEATS and sum(seconds) < SEARCH_BUDGET_S:
        started = time.perf_counter()
        _, candidates = index.search(queries, fetch)
        if fetch > K:
            scores = np.einsum("qd,qcd->qc", queries, vectors[np.maximum(candidates, 0)])
            scores[candidates < 0] = -np.inf
            best = np.argsort(-scores, axis=1, kind="stable")[:, :K]
            candidates = np.take_along_axis(candidates, best, axis=1)
        ids = candidates
        seconds.append(time.perf_counter() - started)
    return len(queries) / statistics.median(seconds), ids


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f.tolist()) & set(t.tolist())) / K for f, t in zip(found, truth, strict=True)])
    )


def section_ann(cfg: Config) -> Result:
    """Queries/s and recall@10 of every index type against exact search, per size."""
    import faiss

    texts, base = real_embeddings(cfg.ann_base_sentences)
    queries, query_centres = noisy_copies(base, cfg.ann_queries, SEED - 1)  # own seed: not indexed
    types = ann_index_types()
    runs: list[dict[str, Any]] = []
    table: list[dict[str, Any]] = []
    own_share: dict[str, float] = {}
    for n in cfg.ann_sizes:
        vectors, centres = noisy_copies(base, n, SEED + n)
        _, truth = faiss.knn(queries, vectors, K, faiss.METRIC_INNER_PRODUCT)
        # How clustered the data is: the share of each query's exact top 10 that are copies
        # of its own sentence. Near 100%, clustering indexes (IVF) have it easier than on
        # a real corpus, so their recall here is optimistic.
        own_share[str(n)] = float((centres[truth] == query_centres[:, None]).mean())
        table.append(row(f"ann {n:,}: exact top 10 from own sentence", f"{own_share[str(n)]:.0%}"))
        flat_qps: float | None = None
        for index_type in types:
            rng = np.random.default_rng(SEED)
            started = time.perf_counter()
            index = build_vector_index(index_type, vectors, rng)
            build_s = time.perf_counter() - started
            with tempfile.TemporaryDirectory(prefix="bench-ann-") as tmp:
                saved = Path(tmp) / "vectors.faiss"
                index.save(saved)
                bytes_per_vector = saved.stat().st_size / n
            layout = index.layout.to_json() if hasattr(index, "layout") else {}
            points = []
            for setting in search_settings(index):
                if setting:
                    faiss.ParameterSpace().set_index_parameters(index.index, setting)
                qps, found = timed_search(index, vectors, queries)
                points.append(
                    {
                        "size": n,
                        "index_type": index_type,
                        "layout": layout,
                        "setting": setting or "default",
                        "default": not setting,
                        "qps": qps,
                        "recall_at_10": recall_at_k(found, truth),
                        "build_s": build_s,
                        "bytes_per_vector": bytes_per_vector,
                    }
                )
            del index
            if index_type == "flat":
                flat_qps = points[0]["qps"]
            for point in points:
                point["speedup_vs_flat"] = point["qps"] / flat_qps if flat_qps else None
            runs.extend(points)
            table.append(_ann_row(points, n))
            log(f"  {n:,} {index_type}: {table[-1]['value']}")
        del vectors
    return {
        "data": f"{NOISY}; {len(texts)} base sentences; {cfg.ann_queries} queries drawn the same way "
        f"with another seed; exact = FAISS knn, inner product; batched search of all queries, "
        f"k x the layout's over-fetch re-scored exactly (as the service does)",
        "index_types": types,
        "sizes": list(cfg.ann_sizes),
        "queries": cfg.ann_queries,
        "own_sentence_share": own_share,
        "runs": runs,
        "table": table,
    }


def _ann_row(points: list[dict[str, Any]], n: int) -> dict[str, Any]:
    default = points[0]
    speedup = default["speedup_vs_flat"]
    value = (
        f"recall {default['recall_at_10']:.3f}, {default['qps']:,.0f} q/s, "
        f"{default['bytes_per_vector']:.0f} B/vec, build {default['build_s']:.1f} s"
    )
    good = [p for p in points if p["recall_at_10"] >= 0.95]
    if len(points) > 1 and good:
        best = max(good, key=lambda p: p["qps"])
        value += f"; best at recall>=0.95: {best['qps']:,.0f} q/s ({best['setting']})"
    # SPEC §11's bar is for the default ANN index: what `--index-type auto` picks at this size.
    from searchkit.types import Metric
    from searchkit.vectors import plan

    is_default = plan("auto", Metric.COSINE, n, 384).kind == default["index_type"] != "flat"
    met = None
    if n >= 1_000_000 and is_default and speedup is not None:
        met = default["recall_at_10"] >= 0.95 and speedup >= 10
    return row(
        f"ann {n:,} {default['index_type']}{' (auto)' if is_default else ''}",
        value,
        ratio=f"{speedup:.1f}x flat" if speedup is not None else "",
        target="recall >= 0.95 at >= 10x flat (1M)" if is_default and n >= 1_000_000 else "",
        met=met,
    )


def peak_rss_bytes() -> int:
    """This process's own peak RSS (VmHWM).

    Not ru_maxrss: Linux carries the parent's RSS over into a child's ru_maxrss across
    fork and exec, so a child of this (large) process would report at least its size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_child(n: int, dimension: int, folder: Path) -> Result:
    """Run in a subprocess: stream `n` short lines into a new flat index; report peak RSS."""
    from searchkit.service import Index

    after_imports = peak_rss_bytes()
    lines: Iterator[dict[str, Any]] = ({"id": str(i), "text": f"short line number {i}"} for i in range(n))
    started = time.perf_counter()
    index = Index.create(
        folder / "index", metric="cosine", index_type="flat", embedder=TinyEmbedder(dimension)
    )
    try:
        report = index.add(lines)
    finally:
        index.close()
    seconds = time.perf_counter() - started
    return {
        "items": n,
        "added": report.added,
        "seconds": seconds,
        "peak_rss_bytes": peak_rss_bytes(),
        "peak_rss_after_imports_bytes": after_imports,
        "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # see peak_rss_bytes
    }


def section_memory(cfg: Config) -> Result:
    """Peak RSS of a streamed ingest, large against small; the growth against the vectors' size."""
    small, large = cfg.memory_sizes
    dim = cfg.memory_dim
    runs: dict[int, Result] = {}
    for n in (small, large):
        with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", str(n)]
            _, out = run_wall([*cmd, "--memory-dim", str(dim), "--memory-dir", tmp])
        runs[n] = json.loads(out.strip().splitlines()[-1])
        peak_mib = runs[n]["peak_rss_bytes"] / 2**20
        log(f"  {n:,} lines: peak RSS {peak_mib:.0f} MiB in {runs[n]['seconds']:.1f} s")
    growth = runs[large]["peak_rss_bytes"] - runs[small]["peak_rss_bytes"]
    vectors_growth = (large - small) * dim * 4
    per_item = growth / (large - small)
    mib = 2**20
    return {
        "data": f"synthetic: a trivial deterministic {dim}-dim embedder (crc32 through sines), "
        f"short lines 'short line number N', flat index, each size in its own process (its own VmHWM)",
        "dimension": dim,
        "runs": {str(n): r for n, r in runs.items()},
        "growth_bytes": growth,
        "vectors_bytes_large": large * dim * 4,
        "vectors_growth_bytes": vectors_growth,
        "excess_over_vectors_bytes": growth - vectors_growth,
        "growth_per_item_bytes": per_item,
        "table": [
            row(f"ingest peak RSS {small:,} lines (MiB)", f"{runs[small]['peak_rss_bytes'] / mib:.0f}"),
            row(f"ingest peak RSS {large:,} lines (MiB)", f"{runs[large]['peak_rss_bytes'] / mib:.0f}"),
            row(
                "peak RSS growth vs vectors' growth (MiB)",
                f"{growth / mib:.0f}",
                f"{vectors_growth / mib:.0f}",
                f"{growth / vectors_growth:.2f}x",
                f"~ the vectors ({dim} dims x 4 B = {dim * 4} B/item)",
            ),
            row("peak RSS growth per item (B)", f"{per_item:.0f}", f"{dim * 4}"),
        ],
    }


def section_recall(cfg: Config) -> Result:
    """Recall@10 of the default HNSW and IVF settings against flat, through Index.search, on
    real sentences: 3,000 indexed, 500 others as queries (SciFact abstract sentences beyond
    the ANN section's base, so none of them was used to choose a setting)."""
    from searchkit import embedder as embedding
    from searchkit.service import Index

    pool = sentence_pool()
    start = cfg.ann_base_sentences + 5_000
    texts, queries = pool[start : start + cfg.recall_items], list(pool[start + cfg.recall_items :][:500])
    real = embedding.load()
    vectors = _unit(real.encode(list(texts)))
    found: dict[str, list[list[str]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-recall-") as tmp:
        for index_type in ("flat", "hnsw", "ivf"):
            index = Index.create(
                Path(tmp) / index_type,
                index_type=index_type,
                embedder=ReplayEmbedder(real.fingerprint, texts, vectors),
            )
            index.add({"id": str(i), "text": t} for i, t in enumerate(texts))
            index.close()
            with Index.open(Path(tmp) / index_type, embedder=real) as opened:
                layout = opened.manifest.layout
                found[index_type] = [[h.id for h in hits] for hits in opened.search_many(queries, k=K)]
            log(f"  {index_type}: {layout}")
    figures = {
        kind: float(
            np.mean([len(set(a) & set(b)) / K for a, b in zip(found[kind], found["flat"], strict=True)])
        )
        for kind in ("hnsw", "ivf")
    }
    return {
        "data": f"{REAL}: {len(texts)} indexed, {len(queries)} other sentences as queries, real model",
        "recall_at_10": figures,
        "table": [
            row(
                f"recall@10 vs flat, {len(texts):,} real sentences: hnsw",
                f"{figures['hnsw']:.3f}",
                target=">= 0.95",
                met=figures["hnsw"] >= 0.95,
            ),
            row(
                f"recall@10 vs flat, {len(texts):,} real sentences: ivf",
                f"{figures['ivf']:.3f}",
                target=">= 0.90",
                met=figures["ivf"] >= 0.90,
            ),
        ],
    }


def section_plot(cfg: Config, ann: Result | None) -> Result:
    """recall@10 against queries/s, one curve per index type, one panel per size."""
    if not ann or not ann.get("runs"):
        return {"skipped": "no ann results: run the ann section", "table": []}
    try:
        import matplotlib
    except ImportError:
        note = "matplotlib is not installed: .venv/bin/pip install matplotlib (and add it to the dev extras)"
        return {"skipped": note, "table": [row("plot", "skipped: matplotlib missing")]}
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    runs = ann["runs"]
    sizes = sorted({r["size"] for r in runs})
    types = list(dict.fromkeys(r["index_type"] for r in runs))
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.8), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, n in zip(axes[0], sizes, strict=True):
        for i, index_type in enumerate(types):
            points = [r for r in runs if r["size"] == n and r["index_type"] == index_type]
            if not points:
                continue
            sweep = [p for p in points if not p["default"]] or points  # in parameter order
            ax.plot(
                [p["qps"] for p in sweep],
                [p["recall_at_10"] for p in sweep],
                "o-",
                ms=4,
                lw=1,
                color=colours(i),
                label=index_type,
            )
            for p in points:
                if p["default"]:  # searchkit's own setting
                    ax.plot(p["qps"], p["recall_at_10"], "*", ms=13, color=colours(i), mec="black")
        ax.axhline(0.95, ls="--", lw=0.8, color="grey")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overlap
        ax.set_xlabel(f"queries/s (batches of {ann.get('queries', '?')}, log scale)")
        ax.set_ylabel("recall@10 vs exact search")
        ax.set_title(f"{n:,} x 384 vectors")
        ax.grid(True, which="both", lw=0.3)
        ax.legend(fontsize=8, title="* = default setting", title_fontsize=8)
    fig.suptitle(
        "searchkit ANN: noisy copies of real MiniLM embeddings of STS-B and SciFact sentences", fontsize=10
    )
    fig.tight_layout()
    path = cfg.out / "recall_qps.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return {"path": str(path), "data": ann.get("data", ""), "table": [row("plot", str(path))]}


def section_filters(cfg: Config) -> Result:
    """A --where matching 1% of 1M items (100k with --quick), read from every row's JSON and
    from a field index, timed part by part (scripts/bench_filters.py)."""
    import bench_filters

    n = 100_000 if cfg.quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="bench-filters-") as tmp:
        path = Path(tmp) / "index"
        build_s = bench_filters.build(path, n)
        result: Result = {"data": bench_filters.DATA, "build_s": build_s, **bench_filters.measure(path, 50)}
    result["table"] = []
    for name, figure in result["filters"].items():
        for way in ("unindexed", "indexed"):
            p50, p99 = figure[way]["search"]["p50_ms"], figure[way]["search"]["p99_ms"]
            filtered = figure[way]["filter"]["p50_ms"]
            result["table"].append(
                row(
                    f"filters {n:,}: {name}, 1%, {way}: search p50/p99 ms (filter alone p50)",
                    f"{p50:.1f} / {p99:.1f} ({filtered:.1f})",
                    target="p50 <= 20 (indexed, at 1M)" if way == "indexed" else "",
                    met=p50 <= 20 if way == "indexed" and n >= 1_000_000 else None,
                )
            )
    return result


SECTIONS: dict[str, Callable[[Config, dict[str, Result]], Result]] = {
    "ingest": lambda cfg, done: section_ingest(cfg),
    "cli": lambda cfg, done: section_cli(cfg),
    "warm": lambda cfg, done: section_warm(cfg),
    "ann": lambda cfg, done: section_ann(cfg),
    "memory": lambda cfg, done: section_memory(cfg),
    "recall": lambda cfg, done: section_recall(cfg),
    "filters": lambda cfg, done: section_filters(cfg),
    "plot": lambda cfg, done: section_plot(cfg, done.get("ann")),
    "writes": lambda cfg, done: __import__("bench_writes").section(cfg.write_sizes),
    "segments": lambda cfg, done: __import__("bench_segments").section(
        cfg.segment_sizes, cfg.segment_kinds, cfg.base_sentences
    ),
    "scale": lambda cfg, done: __import__("bench_scale").section(
        cfg.scale_sizes, cfg.scale_kinds, cfg.base_sentences, cfg.scale_commit_every
    ),
    "ray": lambda cfg, done: __import__("bench_ray").section(cfg.ray_items),
    "peers": lambda cfg, done: __import__("bench_peers").section(
        (1_000,) if cfg.quick else (5_000,), 100 if cfg.quick else 200
    ),
}


# --- running and reporting --------------------------------------------------------------


def environment(cfg: Config, sections: list[str]) -> Result:
    versions = {}
    for package in ("searchkit", "torch", "sentence-transformers", "faiss-cpu", "numpy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    config = asdict(cfg)
    config["out"] = str(cfg.out)
    import faiss

    return {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "sections": sections,
        "config": config,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),  # other work on the machine skews absolute figures
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "versions": versions,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON: {type(value).__name__}")


def print_table(results: dict[str, Result]) -> None:
    headers = ("section", "figure", "searchkit", "baseline", "ratio", "target", "met")
    lines = []
    for name, result in results.items():
        for r in result.get("table", []):
            met = {True: "yes", False: "NO", None: ""}[r["met"]]
            lines.append((name, r["figure"], r["value"], r["baseline"], r["ratio"], r["target"], met))
    widths = [
        max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(headers)
    ]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    print()
    for name, result in results.items():
        data = result.get("data") or result.get("skipped") or ""
        print(f"{name:<7} {result['wall_s']:7.1f} s  {data}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="searchkit benchmarks (SPEC §11), as ratios to baselines.")
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma list of: {', '.join(SECTIONS)}"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer repeats, no 1M")
    parser.add_argument("--sizes", help="ann sizes, e.g. 10000,100000,1000000 (1M never with --quick)")
    parser.add_argument("--warm-sizes", help="warm index sizes (default 10000,100000)")
    parser.add_argument("--memory-sizes", help="small,large line counts (default 100000,1000000)")
    parser.add_argument("--write-sizes", help="writes index sizes (default 10000,100000,1000000)")
    parser.add_argument("--segment-sizes", help="segments index sizes (default 1000000; 20000 with --quick)")
    parser.add_argument("--segment-kinds", help="segments index types (default flat,hnsw)")
    parser.add_argument("--scale-sizes", help="scale ingest sizes (default 1000000; 100000 with --quick)")
    parser.add_argument("--scale-kinds", help="scale index types (default flat; flat,hnsw adds hnsw)")
    parser.add_argument("--ray-items", type=int, help="ray: sentences indexed each way (default 20,000)")
    parser.add_argument(
        "--scale-commit-every",
        type=int,
        help="testing only: the scale child's Index.add commits every this many items, not 50,000",
    )
    parser.add_argument(
        "--out", default=str(ROOT / "bench-results"), help="folder for bench.json and the plot"
    )
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--memory-dim", type=int, default=16, help=argparse.SUPPRESS)
    parser.add_argument("--memory-dir", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_child is not None:
        print(json.dumps(memory_child(args.memory_child, args.memory_dim, Path(args.memory_dir))))
        return 0
    cfg = make_config(args)
    names = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section(s) {', '.join(unknown)}: choose from {', '.join(SECTIONS)}")
    cfg.out.mkdir(parents=True, exist_ok=True)
    path = cfg.out / "bench.json"
    stored: dict[str, Result] = json.loads(path.read_text())["sections"] if path.exists() else {}
    meta = environment(cfg, names)
    log(f"searchkit bench: {', '.join(names)}{' (quick)' if cfg.quick else ''} -> {path}")
    done: dict[str, Result] = {}
    for name in names:
        log(f"== {name}")
        started = time.perf_counter()
        result = SECTIONS[name](cfg, {**stored, **done})
        result["wall_s"] = round(time.perf_counter() - started, 1)
        result["measured_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        result["quick"] = cfg.quick
        result["run_started"] = meta["started"]  # bench.json's "meta" is the latest run's
        done[name] = result
        log(f"   {name}: {result['wall_s']:.1f} s")
        document = {"meta": meta, "sections": {**stored, **done}}
        path.write_text(json.dumps(document, indent=1, default=_plain) + "\n")
    print_table(done)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
