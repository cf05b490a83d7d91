#!/usr/bin/env python3
"""Choose hybrid search's fusion settings on SciFact *train* (never on test).

Ranks every train query once densely and once by BM25 (to the largest depth tried),
then fuses the two rankings with searchkit's own `fuse` under a grid of settings and
scores each by NDCG@10 (searchkit.evaluate, trec_eval's definition). Prints JSON: dense
alone, keyword alone, every setting, the best, and how the best fares on each half of
the queries (a check that the choice is not noise).

    searchkit index /tmp/scifact ../shared/data/eval/scifact/corpus.jsonl \
        --text-field title,text --id-field _id
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/tune_fusion.py --index /tmp/scifact
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from searchkit import Index
from searchkit.evaluate import Qrels, mean_metrics, read_qrels, read_queries
from searchkit.service.search import Fusion, fuse

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "eval" / "scifact"
RRF_K = (1, 2, 3, 5, 10, 20, 40, 60, 100)
DEPTH = (20, 50, 100, 200)
KEYWORD_WEIGHT = (0.5, 0.75, 1.0, 1.1, 1.25, 1.5, 2.0)

Ranked = dict[str, list[tuple[int, float]]]


def rankings(index: Index, texts: dict[str, str], mode: str, depth: int) -> tuple[Ranked, dict[int, str]]:
    """Row ids with scores per query, best first, and the item id of each row id."""
    ids = list(texts)
    found = index.search_many([texts[q] for q in ids], k=depth, mode=mode)
    keys = dict(index.store.db.execute("SELECT key, id FROM items").fetchall())
    ranked = {q: [(int(keys[h.id]), h.score) for h in hits] for q, hits in zip(ids, found, strict=True)}
    return ranked, {v: k for k, v in keys.items()}


def ndcg(ranked: dict[str, list[int]], keys: dict[int, str], qrels: Qrels) -> float:
    as_keys = {q: [keys[i] for i in r] for q, r in ranked.items()}
    return mean_metrics(as_keys, qrels, 10)["ndcg@10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="a SciFact index built as above")
    parser.add_argument(
        "--split", default="train", choices=["train"], help="only train: tune nothing on test"
    )
    args = parser.parse_args()
    qrels = read_qrels(DATA / "qrels" / f"{args.split}.tsv")
    queries = read_queries(DATA / "queries.jsonl")
    texts = {q: queries[q] for q in qrels if q in queries}
    qrels = {q: qrels[q] for q in texts}
    started = time.perf_counter()
    with Index.open(args.index) as index:
        dense, keys = rankings(index, texts, "dense", max(DEPTH))
        keyword, _ = rankings(index, texts, "keyword", max(DEPTH))
    summary: dict[str, Any] = {
        "split": args.split,
        "queries": len(texts),
        "dense_ndcg@10": ndcg({q: [i for i, _ in r] for q, r in dense.items()}, keys, qrels),
        "keyword_ndcg@10": ndcg({q: [i for i, _ in r] for q, r in keyword.items()}, keys, qrels),
        "grid": [],
    }
    for rrf_k, depth, weight in itertools.product(RRF_K, DEPTH, KEYWORD_WEIGHT):
        fusion = Fusion(rrf_k=rrf_k, depth=depth, dense_weight=1.0, keyword_weight=weight)
        fused = {q: [i for i, _ in fuse(dense[q][:depth], keyword[q][:depth], fusion)[:10]] for q in texts}
        summary["grid"].append({"rrf_k": rrf_k, "depth": depth, "keyword_weight": weight,
                                "ndcg@10": ndcg(fused, keys, qrels)})  # fmt: skip
    best = max(summary["grid"], key=lambda row: row["ndcg@10"])
    summary["best"] = best
    summary["default_60_100_1"] = next(
        r for r in summary["grid"] if (r["rrf_k"], r["depth"], r["keyword_weight"]) == (60, 100, 1.0)
    )
    halves = [list(texts)[::2], list(texts)[1::2]]
    fusion = Fusion(best["rrf_k"], best["depth"], 1.0, best["keyword_weight"])
    summary["best_on_halves"] = [
        {
            "hybrid": ndcg(
                {q: [i for i, _ in fuse(dense[q], keyword[q], fusion)[:10]] for q in half}, keys, qrels
            ),
            "dense": ndcg({q: [i for i, _ in dense[q][:10]] for q in half}, keys, qrels),
            "keyword": ndcg({q: [i for i, _ in keyword[q][:10]] for q in half}, keys, qrels),
        }
        for half in halves
    ]
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["grid"].sort(key=lambda row: -row["ndcg@10"])
    summary["grid"] = summary["grid"][:15]  # the best ones; the rest is below them
    json.dump(summary, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
