#!/usr/bin/env python3
"""bench.py's `segments` section: search with as many segments as the merge policy allows,
against the same items in one segment; and the time compaction takes.

For each size N and index type (flat, hnsw; HNSW with ef_construction 40 from 200,000 items,
as 200 takes over 15 minutes a million on these machines), two processes:

1. builds an index of N items from noisy copies of real embeddings (the real model's
   fingerprint; texts "SENTENCE #i"; the embeddings given with the items, so no model call),
   compacts it into one segment (`Index.compact()`; a rebuild, should it leave more), and
   computes the exact top 10 of the queries (FAISS IndexFlatIP over every stored vector):
   real STS-B sentences not among the copied ones, embedded with the real model;
2. measures on it, through the Python API, one query at a time: search latency p50/p99
   through `Index.search` with the real model encoding each query ("with model"), with the
   query vectors precomputed ("search only"), and the segment view's own search
   (`index.vectors.search`: FAISS over every part and the tail, no SQLite re-scoring); and
   recall@10 of `Index.search`. Of:
   - "one_before": the index as built, one segment of N;
   - "many": items added to reach the most segments the policy keeps: 90% of a tier's
     worth per tier below N's (90,000 then 9,000 at 1M; the 90,000 seal in two chunks that
     merge into one segment), then `seal_at` - 1 more (the tail, which a write leaves);
   - "compacted": those items after `Index.compact()` (timed), which seals the tail and
     merges every segment into one (extending the largest, as the policy's merges do);
   - "one": the same items in one segment (`Index.rebuild()`, timed).
   "many", "compacted" and "one" are copies of one folder (segment files hard-linked),
   searched alternately query by query (A B C, B C A, ...), so that noise falls on all;
   each index's files are read once before it is measured, so that every one is measured
   with its files in the page cache, as a running server holds them (`_in_page_cache`).

The targets compare "many" with "compacted" (the issue's wording) and with "one": p50 <= 1.1x,
p99 <= 1.2x, recall@10 within 0.005.

    .venv/bin/python scripts/bench.py --sections segments [--segment-sizes 1000000]
        [--segment-kinds flat,hnsw]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

K = 10
KINDS = ("flat", "hnsw")
QUERIES = 200
ROUNDS = 5  # passes over the queries: 1,000 latencies a figure (a p99 of 400 was their 4th worst)
WARMUP = 20
FAST_HNSW_FROM = 200_000  # from this size, HNSW is built with ef_construction 40
FAST_HNSW = {"ef_construction": 40}
TOP_ADDED_TIER = 1  # segments are added in tiers up to this one (1: 90,000 vectors)
BUILD_BATCH = 1024
MODES = ("with_model", "search_only", "vectors_only")


def index_options(kind: str, n: int) -> dict[str, int] | None:
    return dict(FAST_HNSW) if kind == "hnsw" and n >= FAST_HNSW_FROM else None


def added_sizes(n: int) -> list[int]:
    """The items to add to a compacted index of `n` so that it holds one segment per tier
    below n's (up to TOP_ADDED_TIER), each 90% of its tier's top, and a tail one short of
    sealing: the most parts the policy lets a search fan out to at that size."""
    from searchkit.segments.policy import DEFAULT_POLICY as policy

    tiers = range(min(policy.tier(n), TOP_ADDED_TIER + 1) - 1, -1, -1)
    return [int(0.9 * policy.floor * policy.tier_factor ** (t + 1)) for t in tiers] + [policy.seal_at - 1]


def _items(base_texts: Sequence[str], vectors: np.ndarray, centres: np.ndarray, start: int) -> Iterator[Any]:
    for i, (vector, centre) in enumerate(zip(vectors, centres, strict=True), start=start):
        # A NumPy row, as model.encode gives: kept as an array by Index.add (a list of floats
        # would be converted one float at a time).
        yield {"id": str(i), "text": f"{base_texts[centre]} #{i}", "embedding": vector}


def _segment_sizes(index: Any) -> tuple[list[int], int]:
    listed = index.segments()
    return [s["vectors"] for s in listed if s["name"] != "tail"], int(listed[-1]["vectors"])


class _Every:
    """An on_progress that logs every 10% of `n` items staged."""

    def __init__(self, n: int) -> None:
        self.n, self.done, self.next = n, 0, n // 10
        self.started = time.perf_counter()

    def __call__(self, size: int) -> None:
        from bench import log

        self.done += size
        if self.done >= self.next:
            log(f"    {self.done:,} of {self.n:,} staged in {time.perf_counter() - self.started:.0f} s")
            self.next += max(1, self.n // 10)


# --- child 1: the index, compacted, and the exact answers -------------------------------


def build(folder: Path, n: int, kind: str, base_sentences: int, queries: int) -> dict[str, Any]:
    import faiss
    from bench import SEED, _unit, lap, log, noisy_copies, real_embeddings, stsb_sentences

    from searchkit import embedder as embedding
    from searchkit.service import Index

    real = embedding.load()
    base_texts, base = real_embeddings(base_sentences)
    texts = list(stsb_sentences()[base_sentences : base_sentences + queries])
    query_vectors = _unit(real.encode(texts))
    vectors, centres = noisy_copies(base, n, SEED + n)
    scores, ids = faiss.knn(query_vectors, vectors, K, faiss.METRIC_INNER_PRODUCT)
    np.save(folder.parent / "queries.npy", query_vectors)
    np.save(folder.parent / "truth-scores.npy", scores)
    np.save(folder.parent / "truth-ids.npy", ids)
    (folder.parent / "queries.json").write_text(json.dumps(texts))
    options = index_options(kind, n)
    log(f"  building {n:,} {kind}{f' {options}' if options else ''}")
    index = Index.create(folder, index_type=kind, index_options=options, embedder=real)
    try:
        add_s = lap(
            index.add, _items(base_texts, vectors, centres, 0), batch_size=BUILD_BATCH, on_progress=_Every(n)
        )
        after_add = index.segments()
        compact_s = lap(index.compact)
        sizes, tail = _segment_sizes(index)
        # Index.compact() merges everything into one; should it ever leave more, a rebuild
        # writes one.
        rebuild_s = lap(index.rebuild) if len(sizes) != 1 or tail else None
        sizes, tail = _segment_sizes(index)
        layout = index.manifest.layout.to_json()
    finally:
        index.close()
    rebuilt = f", rebuilt as one in {rebuild_s:.1f} s" if rebuild_s is not None else ""
    log(
        f"  built in {add_s:.1f} s ({len(after_add) - 1} segment(s)), compacted in {compact_s:.1f} s{rebuilt}"
    )
    if len(sizes) != 1 or tail:
        raise RuntimeError(f"segments build: left segments {sizes} and a tail of {tail}, not one segment")
    return {
        "add_s": add_s,
        "initial_compact_s": compact_s,
        "initial_rebuild_s": rebuild_s,
        "segments_after_add": after_add,
        "layout": layout,
        "index_options": options,
    }


# --- child 2: the measurements -----------------------------------------------------------


class SwitchEmbedder:
    """The real model, or (`replay` set) the precomputed vectors of the query texts: one
    `Index` searched either way, with the model or without it."""

    def __init__(self, real: Any, texts: Sequence[str], vectors: np.ndarray) -> None:
        from bench import ReplayEmbedder

        self.real = real
        self.fingerprint = real.fingerprint
        self.replayed = ReplayEmbedder(real.fingerprint, texts, vectors)
        self.replay = False

    @property
    def dimension(self) -> int:
        return int(self.fingerprint.dimension)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        source = self.replayed if self.replay else self.real
        return np.asarray(source.encode(texts, batch_size=batch_size))

    def truncated_flags(self, texts: Sequence[str]) -> list[bool]:
        return [False] * len(texts)


def _link_or_copy(source: str, target: str) -> None:
    """Segment files are immutable: the copy shares them (hard links); the rest is copied."""
    if source.endswith(".faiss"):
        try:
            os.link(source, target)
            return
        except OSError:
            pass
    shutil.copy2(source, target)


def _in_page_cache(*folders: Path) -> None:
    """Read every file of each index folder once, so that each is measured as a running
    server holds it: its segment files and database in the page cache. A first pass over
    pages not read since they were written (or evicted by the copies and the rebuild) costs
    a disk read per page; in the run before this, the first pass made the p99 of "many"
    (whose 90,000 and 9,000 segments had been written first) 39 ms against 17 for "one",
    and the 12 worst of 1,000 searches of an index not yet read took 250 to 700 ms."""
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                with open(path, "rb") as f:
                    while f.read(1 << 24):
                        pass


def _recall(found: list[list[str]], truth: np.ndarray) -> float:
    return float(
        np.mean([len({int(i) for i in f} & set(t.tolist())) / K for f, t in zip(found, truth, strict=True)])
    )


def _measure(
    indexes: dict[str, Any], switch: SwitchEmbedder, texts: list[str], vectors: np.ndarray, truth: np.ndarray
) -> dict[str, Any]:
    """Latencies of each index of `indexes` (alternated per query, in turn first) and recall@10."""
    from bench import ms

    from searchkit.metrics import prepare

    names = list(indexes)
    views = {name: index.vectors for name, index in indexes.items()}
    fetch = {name: K * index.manifest.layout.overfetch for name, index in indexes.items()}
    prepared = {name: prepare(vectors, index.metric) for name, index in indexes.items()}
    seconds: dict[str, dict[str, list[float]]] = {name: {mode: [] for mode in MODES} for name in names}
    found: dict[str, dict[str, list[list[str]]]] = {name: {"model": [], "replay": []} for name in names}
    exact: dict[str, list[bool]] = {name: [] for name in names}

    def one(name: str, n: int, text: str, record: bool) -> None:
        index, spent = indexes[name], seconds[name]
        switch.replay = False
        started = time.perf_counter()
        with_model = index.search(text, k=K)
        middle = time.perf_counter()
        switch.replay = True
        replayed = index.search(text, k=K)
        last = time.perf_counter()
        views[name].search(prepared[name][n : n + 1], fetch[name])
        done = time.perf_counter()
        if record:
            spent["with_model"].append(middle - started)
            spent["search_only"].append(last - middle)
            spent["vectors_only"].append(done - last)
            found[name]["model"].append([h.id for h in with_model])
            found[name]["replay"].append([h.id for h in replayed])
            exact[name].append(bool(with_model.exact))

    for n, text in enumerate(texts[:WARMUP]):
        for name in names:
            one(name, n, text, record=False)
    for round_ in range(ROUNDS):
        for n, text in enumerate(texts):
            turn = (n + round_) % len(names)
            for name in names[turn:] + names[:turn]:
                one(name, n, text, record=True)
    result: dict[str, Any] = {}
    for name in names:
        figures: dict[str, Any] = {
            mode: {"p50_ms": ms(s, 50), "p99_ms": ms(s, 99), "mean_ms": float(np.mean(s) * 1000)}
            for mode, s in seconds[name].items()
        }
        first_round = len(texts)
        figures["recall_at_10"] = _recall(found[name]["model"][:first_round], truth)
        figures["recall_at_10_replayed"] = _recall(found[name]["replay"][:first_round], truth)
        figures["exact_share"] = float(np.mean(exact[name]))
        figures["parts"] = len(views[name].parts) + (1 if len(views[name].tail.ids) else 0)
        result[name] = figures
    return result


def _merged_truth(
    first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The top K of two exact top-K lists over disjoint sets (ids already global)."""
    scores = np.concatenate([first[0], second[0]], axis=1)
    ids = np.concatenate([first[1], second[1]], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


def measure(folder: Path, n: int, base_sentences: int) -> dict[str, Any]:
    import faiss
    from bench import SEED, lap, log, noisy_copies, peak_rss_bytes, real_embeddings

    from searchkit import embedder as embedding
    from searchkit.service import Index

    work = folder.parent
    real = embedding.load()
    texts = json.loads((work / "queries.json").read_text())
    query_vectors = np.load(work / "queries.npy")
    truth = (np.load(work / "truth-scores.npy"), np.load(work / "truth-ids.npy"))
    switch = SwitchEmbedder(real, texts, query_vectors)
    drift = float(np.abs(np.asarray(real.encode(texts[:20])) - query_vectors[:20]).max())
    rss: dict[str, int] = {}

    _in_page_cache(folder)
    index = Index.open(folder, embedder=switch)
    log(f"  (a) one segment of {n:,} items: {len(texts)} queries x {ROUNDS}")
    figures = _measure({"one_before": index}, switch, texts, query_vectors, truth[1])
    rss["after_a"] = peak_rss_bytes()

    base_texts, base = real_embeddings(base_sentences)
    sizes = added_sizes(n)
    vectors, centres = noisy_copies(base, sum(sizes), SEED + n + 1)
    offsets = np.cumsum([0, *sizes])
    adds = []
    for size, start in zip(sizes, offsets, strict=False):
        block = slice(int(start), int(start + size))
        seconds = lap(index.add, _items(base_texts, vectors[block], centres[block], n + int(start)))
        adds.append({"items": size, "seconds": seconds, "segments": index.segments()})
    scores, ids = faiss.knn(query_vectors, vectors, K, faiss.METRIC_INNER_PRODUCT)
    truth = _merged_truth(truth, (scores, ids + n))
    del vectors, centres
    parts, tail = _segment_sizes(index)
    log(f"  (b) added {' + '.join(f'{s:,}' for s in sizes)}: segments {parts}, tail {tail}")
    expected_parts, expected_tail = [n, *sizes[:-1]], sizes[-1]
    shape_ok = parts == expected_parts and tail == expected_tail
    if not shape_ok:
        log(f"  WARNING: segments {parts} + tail {tail}, expected {expected_parts} + tail {expected_tail}")
    many_segments = index.segments()
    index.close()
    many, one = work / "many", work / "one"
    shutil.copytree(folder, many, copy_function=_link_or_copy)
    shutil.copytree(folder, one, copy_function=_link_or_copy)

    index = Index.open(folder, embedder=switch)
    compact_s = lap(index.compact)
    compacted_segments = index.segments()
    log(f"  (c) Index.compact() in {compact_s:.1f} s: segments {_segment_sizes(index)}")
    one_index = Index.open(one, embedder=switch)
    rebuild_s = lap(one_index.rebuild)
    one_segments = one_index.segments()
    log(f"  one segment of the same items: Index.rebuild() in {rebuild_s:.1f} s")
    rss["after_b_c"] = peak_rss_bytes()
    many_index = Index.open(many, embedder=switch)
    _in_page_cache(many, folder, one)
    log("  measuring many segments, Index.compact()'s and one segment, alternated")
    indexes = {"many": many_index, "compacted": index, "one": one_index}
    figures.update(_measure(indexes, switch, texts, query_vectors, truth[1]))
    for opened in indexes.values():
        opened.close()
    rss["end"] = peak_rss_bytes()
    return {
        "figures": figures,
        "added": adds,
        "segments_many": many_segments,
        "segments_compacted": compacted_segments,
        "segments_one": one_segments,
        "expected_parts": expected_parts,
        "expected_tail": expected_tail,
        "shape_ok": shape_ok,
        "compact_s": compact_s,
        "rebuild_s": rebuild_s,
        "query_encode_drift": drift,
        "peak_rss_bytes": peak_rss_bytes(),
        "peak_rss_checkpoints_bytes": rss,
    }


# --- the section ---------------------------------------------------------------------------


def _child(*args: str) -> dict[str, Any]:
    """Run a step of this script in a new process (its progress on stderr, live); its JSON."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args], stdout=subprocess.PIPE, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench_segments {args[0]} exited {done.returncode} (its error is above)")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def section(
    sizes: Sequence[int], kinds: Sequence[str] = KINDS, base_sentences: int = 3000, queries: int = QUERIES
) -> dict[str, Any]:
    from bench import NOISY, log, row

    runs: dict[str, Any] = {}
    table = []
    for n in sizes:
        for kind in kinds:
            with tempfile.TemporaryDirectory(prefix="bench-segments-") as tmp:
                folder = Path(tmp) / "index"
                built = _child("build", str(folder), str(n), kind, str(base_sentences), str(queries))
                measured = _child("measure", str(folder), str(n), str(base_sentences))
            run = {**built, **measured}
            runs[f"{n}-{kind}"] = run
            rows = _rows(row, n, kind, run)
            for line in rows:
                log(f"  {line['figure']}: {line['value']} | {line['baseline']} | {line['ratio']}")
            table += rows
    return {
        "data": f"index: {NOISY} ({base_sentences} base sentences), ids i, texts 'SENTENCE #i', the "
        f"embeddings given with the items (NumPy rows; no model call); queries: {queries} other "
        f"real STS-B sentences, real model; recall@10 against FAISS IndexFlatIP over every stored "
        f"vector. 'many': one segment of N plus 90% of a tier's worth of items per tier below N's (up "
        f"to tier {TOP_ADDED_TIER}), then seal_at - 1 more (the tail); 'compacted': those items "
        f"after Index.compact() (which merges every segment into one); "
        f"'one': the same items as one segment (Index.rebuild()); the three are copies of one "
        f"folder, searched alternately, query by query ({ROUNDS} passes), each with its files read once "
        f"first (in the page cache, as a running server holds them). The targets compare "
        f"'many' with 'compacted' (the issue's) and with 'one'. HNSW with index_options "
        f"{FAST_HNSW} from {FAST_HNSW_FROM:,} items "
        f"(ef_construction 200 takes over 15 min per million here), the default below",
        "runs": runs,
        "table": table,
    }


WHAT = {
    "with_model": "Index.search with model",
    "search_only": "Index.search, query vectors given",
    "vectors_only": "segment view search alone",
}


def _rows(row: Any, n: int, kind: str, run: dict[str, Any]) -> list[dict[str, Any]]:
    figures = run["figures"]
    many, compacted, one, before = (figures[s] for s in ("many", "compacted", "one", "one_before"))
    label = f"{n:,} {kind}"
    rows = []
    # The target is against the compacted index; 'one' (rebuilt from scratch) too.
    for name, base, modes in (("compacted", compacted, ("with_model",)), ("one", one, tuple(WHAT))):
        for mode in modes:
            p50, p99 = (many[mode][f"{q}_ms"] / base[mode][f"{q}_ms"] for q in ("p50", "p99"))
            # The target is on a search as users make it (the model embeds the query); the
            # other two say where the time goes.
            timed = mode == "with_model"
            rows.append(
                row(
                    f"many segments vs {name}: {WHAT[mode]} p50/p99 ms [{label}]",
                    f"{many[mode]['p50_ms']:.2f} / {many[mode]['p99_ms']:.2f}",
                    f"{base[mode]['p50_ms']:.2f} / {base[mode]['p99_ms']:.2f}",
                    f"{p50:.2f}x / {p99:.2f}x",
                    "<= 1.1x / <= 1.2x" if timed else "",
                    p50 <= 1.1 and p99 <= 1.2 if timed else None,
                )
            )
    difference = many["recall_at_10"] - one["recall_at_10"]
    sizes = " + ".join(f"{v:,}" for v in run["expected_parts"])
    compacted_parts = " + ".join(
        f"{s['vectors']:,}" for s in run["segments_compacted"] if s["name"] != "tail"
    )
    mode = "search_only"
    return [
        *rows,
        row(
            f"many segments vs one: recall@10 [{label}]",
            f"{many['recall_at_10']:.4f}",
            f"{one['recall_at_10']:.4f}",
            f"{difference:+.4f}",
            "within 0.005 (not below one - 0.005)",
            difference >= -0.005,
        ),
        row(
            f"parts searched, many segments [{label}]",
            f"{many['parts']}: {sizes} + tail {run['expected_tail']:,}",
            f"{one['parts']}",
            target="one segment per tier below N's, a tail < seal_at",
            met=bool(run["shape_ok"]),
        ),
        row(
            f"after Index.compact(): {WHAT[mode]} p50/p99 ms, recall@10 [{label}, {compacted_parts}]",
            f"{compacted[mode]['p50_ms']:.2f} / {compacted[mode]['p99_ms']:.2f}, "
            f"{compacted['recall_at_10']:.4f}",
            f"{one[mode]['p50_ms']:.2f} / {one[mode]['p99_ms']:.2f}, {one['recall_at_10']:.4f}",
            f"{compacted[mode]['p50_ms'] / one[mode]['p50_ms']:.2f}x / "
            f"{compacted[mode]['p99_ms'] / one[mode]['p99_ms']:.2f}x",
        ),
        row(
            f"one segment of {n:,} before the additions: {WHAT[mode]} p50/p99 ms, recall@10 [{label}]",
            f"{before[mode]['p50_ms']:.2f} / {before[mode]['p99_ms']:.2f}, {before['recall_at_10']:.4f}",
        ),
        row(
            f"compaction s: Index.compact() of many segments (Index.rebuild() into one) [{label}, "
            f"+{sum(run['expected_parts'][1:]) + run['expected_tail']:,}]",
            f"{run['compact_s']:.1f}",
            f"{run['rebuild_s']:.1f}",
        ),
        row(
            f"build s: Index.add of {n:,}, then Index.compact() [{label}]",
            f"{run['add_s']:.1f} + {run['initial_compact_s']:.1f}"
            + (f" + rebuild {run['initial_rebuild_s']:.1f}" if run.get("initial_rebuild_s") else ""),
        ),
        row(
            f"measuring child peak RSS MiB (three copies open at the end) [{label}]",
            f"{run['peak_rss_bytes'] / 2**20:.0f}",
        ),
    ]


if __name__ == "__main__":
    # This checkout's searchkit (not another one an editable install points at), and bench.py.
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here.parent), str(here)]
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "build":
        result = build(Path(rest[0]), int(rest[1]), rest[2], int(rest[3]), int(rest[4]))
    elif command == "measure":
        result = measure(Path(rest[0]), int(rest[1]), int(rest[2]))
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(result, default=float))
