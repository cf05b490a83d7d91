#!/usr/bin/env python3
"""searchkit's quality on the public sets, beside the published figures.

STS-B test (cosine Spearman) and SciFact test (NDCG@10 and friends, trec_eval's definitions)
from ../shared/data/eval/ (never copied into the repo), with the default model:

- each backend (torch, onnx, onnx-int8), SciFact through a real searchkit index with
  exact (flat) search, and `searchkit.service.quality.evaluate` (what `searchkit eval` runs);
- with the default backend, each index type of `searchkit.vectors.INDEX_TYPES` (rebuilt
  from the stored embeddings, nothing re-embedded), with its recall@10 against exact search;
- keyword (FTS5 BM25) and hybrid (RRF) modes.

Prints a table and writes JSON (default bench-results/eval_public.json). Test splits are a
final check only: the hybrid settings were chosen on train (scripts/tune_fusion.py).

Embeddings are cached in --cache (the cache of scripts/onnx_quality.py, keyed by model file
and texts), so a re-run embeds nothing; the first run embeds SciFact's 5,183 documents once
per backend (torch takes about 7 minutes on 2 cores).

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/eval_public.py [--backends torch,onnx,onnx-int8]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from searchkit import Index
from searchkit import embedder as embedding
from searchkit.evaluate import read_qrels, read_queries
from searchkit.service.quality import against_exact, evaluate
from searchkit.vectors import INDEX_TYPES

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "eval"
PUBLISHED = {"stsb": 0.8203, "scifact": 0.6451, "scifact_bm25": 0.665}
BACKENDS = ("torch", "onnx", "onnx-int8")


def _onnx_quality() -> Any:
    spec = importlib.util.spec_from_file_location("onnx_quality", ROOT / "scripts" / "onnx_quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CachedEmbedder:
    """A searchkit embedder whose vectors for known texts come from the cache."""

    def __init__(self, real: embedding.Embedder, table: dict[str, np.ndarray]) -> None:
        self.real = real
        self.table = table
        self.fingerprint = real.fingerprint

    @property
    def dimension(self) -> int:
        return self.real.dimension

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.table]
        if missing:
            self.table.update(zip(missing, self.real.encode(missing, batch_size=batch_size), strict=True))
        return np.stack([self.table[t] for t in texts]).astype(np.float32)

    def truncated_flags(self, texts: Sequence[str]) -> list[bool]:
        return self.real.truncated_flags(texts)


def cache_key(real: embedding.Embedder, backend: str) -> str:
    """onnx_quality.py's key for this engine, so both scripts share one cache."""
    model_path = getattr(real.engine, "model_path", None)
    if model_path is None:
        return f"torch:{real.fingerprint.sha256}"
    stat = Path(model_path).stat()
    return f"{backend}:{model_path}:{stat.st_size}:{stat.st_mtime_ns}"


def read_corpus() -> tuple[list[str], list[str]]:
    """SciFact ids and texts, (title + " " + text).strip() as `--text-field title,text` joins them."""
    ids, docs = [], []
    with (DATA / "scifact" / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            ids.append(str(row["_id"]))
            docs.append(" ".join([row.get("title") or "", row.get("text") or ""]).strip())
    return ids, docs


def run_backend(name: str, cache: Any, sets: dict[str, Any], folder: Path, full: bool) -> dict[str, Any]:
    real = embedding.load(backend=name)
    key = cache_key(real, name)
    left, right, gold = sets["stsb"]
    started = time.perf_counter()
    sts = cache.get(key, left + right, real.encode)
    a, b = sts[: len(left)], sts[len(left) :]
    cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    result: dict[str, Any] = {"stsb_test_spearman": float(spearmanr(cosine, gold).statistic)}
    ids, docs = sets["corpus"]
    texts, qrels = sets["queries"], sets["qrels"]
    table = dict(zip(docs, cache.get(key, docs, real.encode), strict=True))
    table.update(zip(texts.values(), cache.get(key, list(texts.values()), real.encode), strict=True))
    result["embed_seconds"] = round(time.perf_counter() - started, 1)
    with Index.create(folder / name, embedder=CachedEmbedder(real, table), index_type="flat") as index:
        index.add([{"id": i, "text": d} for i, d in zip(ids, docs, strict=True)], batch_size=256)
        result["scifact"] = {"flat": evaluate(index, texts, qrels, k=10, mode="dense")}
        exact = top_ids(index, texts)
        if full:
            for mode in ("keyword", "hybrid"):
                result["scifact"][mode] = evaluate(index, texts, qrels, k=10, mode=mode)
            for kind in INDEX_TYPES:
                if kind == "flat":
                    continue
                index.rebuild(index_type=kind)
                row = evaluate(index, texts, qrels, k=10, mode="dense")
                row["resolved"] = index.manifest.layout.kind
                row["recall@10_vs_exact"] = against_exact(index, sample=1000, k=10)["recall@10"]
                found = top_ids(index, texts)
                row["query_recall@10_vs_exact"] = float(
                    np.mean([len(set(found[q]) & set(exact[q])) / len(exact[q]) for q in exact])
                )
                result["scifact"][kind] = row
    return result


def top_ids(index: Index, texts: dict[str, str]) -> dict[str, list[str]]:
    """The dense top 10 of each test query (to compare an approximate index with flat)."""
    hits = index.search_many(list(texts.values()), k=10)
    return {q: [h.id for h in found] for q, found in zip(texts, hits, strict=True)}


def table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| backend | index / mode | STS-B test Spearman | SciFact test NDCG@10 | recall@10 | MAP@10 | "
        "top-10 vs exact: test queries / stored items | reference |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend, res in results.items():
        for name, row in res["scifact"].items():
            kind = name if row.get("resolved", name) == name else f"{name} (ran as {row['resolved']})"
            sts = f"{res['stsb_test_spearman']:.4f}" if name == "flat" else ""
            reference = {"flat": "MTEB 0.6451 (STS-B 0.8203)", "keyword": "BM25 0.665"}.get(name, "")
            vs_exact = (
                f"{row['query_recall@10_vs_exact']:.3f} / {row['recall@10_vs_exact']:.3f}"
                if "recall@10_vs_exact" in row
                else ""
            )
            lines.append(
                f"| {backend} | {kind} | {sts} | {row['ndcg@10']:.4f} | {row['recall@10']:.4f} | "
                f"{row['map@10']:.4f} | {vs_exact} | {reference} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/searchkit-onnx-quality"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "eval_public.json")
    args = parser.parse_args()
    onnx_quality = _onnx_quality()
    queries = read_queries(DATA / "scifact" / "queries.jsonl")
    qrels = read_qrels(DATA / "scifact" / "qrels" / "test.tsv")
    sets = {
        "stsb": onnx_quality.read_stsb(DATA / "stsb" / "sts-test.csv"),
        "corpus": read_corpus(),
        "queries": {q: queries[q] for q in qrels if q in queries},
        "qrels": qrels,
    }
    cache = onnx_quality.Cache(args.cache)
    default = embedding.default_backend()
    results: dict[str, Any] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in [n.strip() for n in args.backends.split(",") if n.strip()]:
            results[name] = run_backend(name, cache, sets, Path(tmp), full=name == default)
            print(f"{name}: done at {time.perf_counter() - started:.0f} s", flush=True)
    lines = table(results)
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"published": PUBLISHED, "default_backend": default, "results": results, "table": lines}
    report["seconds"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
