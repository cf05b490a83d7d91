#!/usr/bin/env python3
"""bench.py's `scale` section: N items (1M) with their stored vectors through one `Index.add`,
throughput chunk by chunk over the whole ingest, and the writer's peak memory.

A child process ingests N items {"id", "text", "embedding"} (noisy copies of real embeddings,
made lazily block by block: neither the items nor all their vectors are held at once) from a
generator, in one `Index.add` call with its default batch size, into a new flat index (hnsw
with --scale-kinds flat,hnsw; ef_construction 40 from 200,000 items). `Index.add` commits and
seals a segment every COMMIT_EVERY (50,000) items staged; the child times each such chunk
through the public hooks:

- `on_progress` is called after each staged batch: the call that takes the count past
  COMMIT_EVERY ends the chunk's staging;
- the generator is next asked for an item once that commit and its seal are done: that
  ends the chunk.

What follows the last full chunk (the rest staged, committed, and the merges the policy runs
at the end of `add`) is timed apart. The figures: the last 10% of the full chunks against
the first 10% (items/s), the writer's peak RSS (VmHWM) against the vectors' size (N x 384
x 4 bytes), and the total.

    .venv/bin/python scripts/bench.py --sections scale [--scale-sizes 1000000] [--scale-kinds flat,hnsw]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

DIMENSION = 384
BLOCK = 10_000  # vectors made at once by the generator (15 MB)
FAST_HNSW_FROM = 200_000
FAST_HNSW = {"ef_construction": 40}
SHARE = 0.1  # the first and the last 10% of the chunks
# Each item's "embedding": a NumPy row (as model.encode gives; Index.add keeps it an array),
# or with AS_LISTS a list of floats (as JSON gives; converted float by float).
AS_LISTS = False


def index_options(kind: str, n: int) -> dict[str, int] | None:
    return dict(FAST_HNSW) if kind == "hnsw" and n >= FAST_HNSW_FROM else None


def _hwm() -> int:
    from bench import peak_rss_bytes

    return int(peak_rss_bytes())


class Clock:
    """Chunk boundaries seen from on_progress and from the generator (see the docstring)."""

    def __init__(self, commit_every: int) -> None:
        self.commit_every = commit_every
        self.staged = 0
        self.chunk_started = time.perf_counter()
        self.staged_at: float | None = None  # the chunk's staging done, its commit pending
        self.last_progress = self.chunk_started
        self.source_s = 0.0  # time the generator spent making vectors, this chunk
        self.chunks: list[dict[str, Any]] = []

    def progress(self, size: int) -> None:
        self.last_progress = time.perf_counter()
        self.staged += size
        if self.staged >= self.commit_every:  # Index.add commits and seals now
            self.staged_at = self.last_progress

    def pulled(self) -> None:
        """The generator is asked for an item: a pending commit has finished."""
        if self.staged_at is None:
            return
        from bench import log

        now = time.perf_counter()
        self.chunks.append(
            {
                "items": self.staged,
                "seconds": now - self.chunk_started,
                "stage_s": self.staged_at - self.chunk_started,
                "commit_seal_s": now - self.staged_at,
                "source_s": self.source_s,
                "peak_rss_bytes": _hwm(),
            }
        )
        self.chunk_started, self.staged_at, self.staged, self.source_s = now, None, 0, 0.0
        last = self.chunks[-1]
        log(
            f"    chunk {len(self.chunks)}: {last['items']:,} items in {last['seconds']:.1f} s "
            f"({last['items'] / last['seconds']:,.0f}/s; commit and seal {last['commit_seal_s']:.1f} s)"
        )


def _items(clock: Clock, n: int, base_texts: Sequence[str], base: np.ndarray) -> Iterator[dict[str, Any]]:
    from bench import SEED, noisy_copies

    for number, start in enumerate(range(0, n, BLOCK)):
        clock.pulled()
        started = time.perf_counter()
        vectors, centres = noisy_copies(base, min(BLOCK, n - start), SEED + n + number)
        clock.source_s += time.perf_counter() - started
        for i, (vector, centre) in enumerate(zip(vectors, centres, strict=True), start=start):
            clock.pulled()
            embedding = vector.tolist() if AS_LISTS else vector
            yield {"id": str(i), "text": f"{base_texts[centre]} #{i}", "embedding": embedding}
    clock.pulled()


def ingest(
    folder: Path, n: int, kind: str, base_sentences: int, fingerprint: str, commit_every: int
) -> dict[str, Any]:
    """The child: one Index.add of `n` items into a new index at `folder`, timed per chunk."""
    from bench import ReplayEmbedder, log, real_embeddings

    import searchkit.service.ingest as index_module
    from searchkit.service import Index
    from searchkit.types import Fingerprint

    after_imports = _hwm()
    if commit_every:  # a small test run: more chunks than its size would give
        index_module.COMMIT_EVERY = commit_every
    chunk = index_module.COMMIT_EVERY
    base_texts, base = real_embeddings(base_sentences)
    # The real model's fingerprint, and no model: the items bring their vectors.
    model = ReplayEmbedder(
        Fingerprint.from_json(json.loads(fingerprint)), [], np.zeros((0, DIMENSION), np.float32)
    )
    options = index_options(kind, n)
    log(f"  ingesting {n:,} items into {kind}{f' {options}' if options else ''}, chunks of {chunk:,}")
    before = _hwm()
    index = Index.create(folder, index_type=kind, index_options=options, embedder=model)
    try:
        clock = Clock(chunk)
        started = time.perf_counter()
        clock.chunk_started = started
        report = index.add(_items(clock, n, base_texts, base), on_progress=clock.progress)
        finished = time.perf_counter()
        segments = index.segments()
    finally:
        index.close()
    tail_from = max(clock.last_progress, clock.chunk_started)  # the last staged batch, or chunk
    log(f"    the rest and the merges: {finished - tail_from:.1f} s; segments {segments}")
    return {
        "items": n,
        "added": report.added,
        "kind": kind,
        "index_options": options,
        "commit_every": chunk,
        "commit_every_patched": bool(commit_every),
        "seconds": finished - started,
        "chunks": clock.chunks,
        "rest": {
            "items": clock.staged,
            "stage_s": clock.last_progress - clock.chunk_started if clock.staged else 0.0,
        },
        "final_s": finished - tail_from,
        "segments": segments,
        "peak_rss_bytes": _hwm(),
        "peak_rss_before_index_bytes": before,
        "peak_rss_after_imports_bytes": after_imports,
        "vectors_bytes": n * DIMENSION * 4,
        "embedding_as": "list" if AS_LISTS else "numpy",
    }


def _child(*args: str) -> dict[str, Any]:
    """Run the ingest in a new process (its own VmHWM; progress on stderr, live); its JSON."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args], stdout=subprocess.PIPE, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench_scale {args[0]} exited {done.returncode} (its error is above)")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def throughput(chunks: Sequence[dict[str, Any]]) -> tuple[float, float, int]:
    """Items/s of the first and the last SHARE of the full chunks, and how many chunks each."""
    if not chunks:
        return float("nan"), float("nan"), 0
    m = max(1, round(SHARE * len(chunks)))

    def rate(part: Sequence[dict[str, Any]]) -> float:
        return sum(c["items"] for c in part) / sum(c["seconds"] for c in part)

    return rate(chunks[:m]), rate(chunks[-m:]), m


def section(
    sizes: Sequence[int],
    kinds: Sequence[str] = ("flat",),
    base_sentences: int = 3000,
    commit_every: int | None = None,
) -> dict[str, Any]:
    from bench import NOISY, log, real_embeddings, row

    from searchkit import embedder as embedding

    real_embeddings(base_sentences)  # made (and cached) here, where the model may load
    fingerprint = json.dumps(embedding.load().fingerprint.to_json())
    runs: dict[str, Any] = {}
    table = []
    mib = 2**20
    for n in sizes:
        for kind in kinds:
            with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
                args = [str(Path(tmp) / "index"), str(n), kind, str(base_sentences), fingerprint]
                run = _child("ingest", *args, str(commit_every or 0))
            first, last, m = throughput(run["chunks"])
            ratio = last / first if m else float("nan")
            run.update(first_items_per_s=first, last_items_per_s=last, chunks_compared=m, ratio=ratio)
            runs[f"{n}-{kind}"] = run
            peak, vectors = run["peak_rss_bytes"], run["vectors_bytes"]
            label = f"{n:,} {kind}"
            chunks = len(run["chunks"])
            at_1m = n >= 1_000_000
            log(
                f"  {label}: {n / run['seconds']:,.0f} items/s over {run['seconds']:.1f} s; {chunks} chunks, "
                f"first {m}: {first:,.0f}/s, last {m}: {last:,.0f}/s ({ratio:.2f}x); final "
                f"{run['final_s']:.1f} s; peak RSS {peak / mib:.0f} MiB ({peak / vectors:.2f}x the vectors)"
            )
            table += [
                row(
                    f"ingest with stored vectors: items/s, total s [{label}]",
                    f"{n / run['seconds']:,.0f}, {run['seconds']:.1f}",
                ),
                row(
                    f"last {m} / first {m} of {chunks} full chunks: items/s [{label}]",
                    f"{last:,.0f}" if m else f"no full chunk (< {run['commit_every']:,} items)",
                    f"{first:,.0f}" if m else "",
                    f"{ratio:.2f}x" if m else "",
                    ">= 0.8x (1M)",
                    ratio >= 0.8 if at_1m and m else None,
                ),
                row(
                    f"after the last chunk: rest staged, committed, merged s [{label}]",
                    f"{run['final_s']:.1f} ({run['rest']['items']:,} items)",
                ),
                row(
                    f"writer peak RSS vs the vectors MiB [{label}]",
                    f"{peak / mib:.0f}",
                    f"{vectors / mib:.0f}",
                    f"{peak / vectors:.2f}x",
                    "<= 1.5x (1M)",
                    peak / vectors <= 1.5 if at_1m else None,
                ),
            ]
    form = "lists of floats" if AS_LISTS else "NumPy rows"
    patched = f"; COMMIT_EVERY set to {commit_every:,} in the child (a test run)" if commit_every else ""
    return {
        "data": f"{NOISY} ({base_sentences} base sentences), made lazily {BLOCK:,} at a time; ids i, "
        f"texts 'SENTENCE #i', the vectors given as the items' 'embedding' ({form}; no model call), "
        f"one Index.add of a generator (default batch size); a chunk is what Index.add commits and "
        f"seals at once; HNSW with index_options {FAST_HNSW} from {FAST_HNSW_FROM:,} items{patched}",
        "runs": runs,
        "table": table,
    }


if __name__ == "__main__":
    # This checkout's searchkit (not another one an editable install points at), and bench.py.
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here.parent), str(here)]
    command, rest = sys.argv[1], sys.argv[2:]
    if command != "ingest":
        raise SystemExit(f"unknown command {command!r}")
    folder, n, kind, base_sentences, fingerprint, commit_every = rest
    result = ingest(Path(folder), int(n), kind, int(base_sentences), fingerprint, int(commit_every))
    print(json.dumps(result, default=float))
