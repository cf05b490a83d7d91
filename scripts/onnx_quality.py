#!/usr/bin/env python3
"""What the onnx backends cost in quality, and what they gain in speed, against torch.

For each backend (torch = sentence-transformers, onnx = ONNX Runtime fp32, onnx-int8):
STS-B dev cosine Spearman, SciFact train NDCG@10 (exact cosine ranking, trec_eval's
formula), and throughput on STS-B dev sentences as a ratio to sentence-transformers'
``model.encode(batch_size=32)`` timed in the same process, runs interleaved. Only dev and
train splits: nothing here is tuned on a test split. Reads the data from
../shared/data/eval (never copied into the repo). Prints one JSON document.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/onnx_quality.py [--skip-scifact] [--repeats 3]

Embeddings are cached in --cache (default /tmp/searchkit-onnx-quality), keyed by the
model file, so that re-running after a change re-embeds only what changed; torch takes
about 7 minutes on SciFact's 5,183 documents on 2 cores.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from searchkit import embedder
from searchkit.onnx_backend import OnnxEncoder

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "eval"
BACKENDS = ("torch", "onnx", "onnx-int8")
Encode = Callable[[Sequence[str]], np.ndarray]


def read_stsb(path: Path) -> tuple[list[str], list[str], list[float]]:
    left, right, gold = [], [], []
    with path.open(encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            gold.append(float(cols[4]))
            left.append(cols[5])
            right.append(cols[6])
    return left, right, gold


Qrels = dict[str, dict[str, int]]


def read_scifact(folder: Path, split: str) -> tuple[list[str], list[str], list[str], Qrels]:
    """Document ids and texts, query ids and texts (only queries with qrels), and the qrels."""
    qrels: Qrels = {}
    with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8") as f:
        next(f)  # header: query-id corpus-id score
        for line in f:
            query, doc, score = line.rstrip("\n").split("\t")
            qrels.setdefault(query, {})[doc] = int(score)
    doc_ids, docs = [], []
    with (folder / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            doc_ids.append(str(row["_id"]))
            docs.append((row.get("title", "") + " " + row.get("text", "")).strip())
    queries = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            queries[str(row["_id"])] = row["text"]
    query_ids = [q for q in qrels if q in queries]
    return doc_ids, docs, [queries[q] for q in query_ids], {q: qrels[q] for q in query_ids}


def ndcg_at_k(scores: np.ndarray, doc_ids: list[str], qrels: list[dict[str, int]], k: int = 10) -> float:
    """Mean NDCG@k as trec_eval computes it: gain = qrel score, discount log2(rank + 1)."""
    total = 0.0
    for row, relevant in zip(scores, qrels, strict=True):
        top = np.argpartition(-row, k)[:k]
        top = top[np.argsort(-row[top], kind="stable")]
        dcg = sum(relevant.get(doc_ids[i], 0) / math.log2(rank + 2) for rank, i in enumerate(top))
        ideal = sorted(relevant.values(), reverse=True)[:k]
        idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
        total += dcg / idcg if idcg > 0 else 0.0
    return total / len(qrels)


def unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return np.asarray(vectors / norms, dtype=np.float32)


class Cache:
    """Embeddings on disk, keyed by what made them and what they embed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def get(self, model_key: str, texts: Sequence[str], encode: Encode) -> np.ndarray:
        digest = hashlib.sha256(model_key.encode())
        for text in texts:
            digest.update(text.encode("utf-8") + b"\0")
        path = self.folder / f"{digest.hexdigest()[:24]}.npy"
        if path.exists():
            return np.asarray(np.load(path), dtype=np.float32)
        vectors = np.asarray(encode(texts), dtype=np.float32)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, vectors)
        os.replace(tmp, path)
        return vectors


def load_backends(names: Sequence[str]) -> tuple[dict[str, Encode], dict[str, str], Any]:
    source = embedder.resolve(None)
    sha = embedder.weights_sha256(source)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(source.path), device="cpu")
    encoders: dict[str, Encode] = {}
    keys: dict[str, str] = {}
    for name in names:
        if name == "torch":

            def encode_torch(texts: Sequence[str]) -> np.ndarray:
                vectors = model.encode(
                    list(texts), batch_size=32, convert_to_numpy=True, show_progress_bar=False
                )
                return np.asarray(vectors, dtype=np.float32)

            encoders[name] = encode_torch
            keys[name] = f"torch:{sha}"
        else:
            onnx = OnnxEncoder(source.path, sha, quantized=name == "onnx-int8")
            stat = onnx.model_path.stat()
            encoders[name] = functools.partial(onnx.encode, batch_size=32)
            keys[name] = f"{name}:{onnx.model_path}:{stat.st_size}:{stat.st_mtime_ns}"
    return encoders, keys, model


def throughput(encoders: dict[str, Encode], texts: list[str], repeats: int) -> dict[str, Any]:
    for encode in encoders.values():
        encode(texts[:64])  # warm-up: first-call allocations and thread pools
    seconds: dict[str, list[float]] = {name: [] for name in encoders}
    for _ in range(repeats):  # interleaved, so that a noisy neighbour hits every backend alike
        for name, encode in encoders.items():
            started = time.perf_counter()
            encode(texts)
            seconds[name].append(time.perf_counter() - started)
    result: dict[str, Any] = {}
    for name, runs in seconds.items():
        median = statistics.median(runs)
        result[name] = {"texts_per_s": round(len(texts) / median, 1), "seconds": [round(s, 2) for s in runs]}
    if "torch" in seconds:
        base = statistics.median(seconds["torch"])
        for name, runs in seconds.items():
            result[name]["ratio_vs_torch"] = round(base / statistics.median(runs), 2)
            # Per-round ratios show how much of the median is noise.
            result[name]["round_ratios"] = [
                round(b / s, 2) for b, s in zip(seconds["torch"], runs, strict=True)
            ]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--skip-scifact", action="store_true")
    parser.add_argument("--throughput-texts", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/searchkit-onnx-quality"))
    args = parser.parse_args()
    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    unknown = set(names) - set(BACKENDS)
    if unknown:
        raise SystemExit(f"unknown backend(s): {', '.join(sorted(unknown))}")
    encoders, keys, _ = load_backends(names)
    cache = Cache(args.cache)
    summary: dict[str, Any] = {"backends": {name: {} for name in names}}

    left, right, gold = read_stsb(DATA / "stsb" / "sts-dev.csv")
    sentences = left + right
    sts_vectors = {}
    for name in names:
        vectors = unit(cache.get(keys[name], sentences, encoders[name]))
        sts_vectors[name] = vectors
        cosine = np.sum(vectors[: len(left)] * vectors[len(left) :], axis=1)
        rho = float(spearmanr(cosine, gold).statistic)
        summary["backends"][name]["stsb_dev_spearman"] = round(rho, 5)

    if not args.skip_scifact:
        doc_ids, docs, queries, qrels = read_scifact(DATA / "scifact", "train")
        doc_vectors = {}
        for name in names:
            d = unit(cache.get(keys[name], docs, encoders[name]))
            q = unit(cache.get(keys[name], queries, encoders[name]))
            doc_vectors[name] = d
            ndcg = ndcg_at_k(q @ d.T, doc_ids, list(qrels.values()))
            summary["backends"][name]["scifact_train_ndcg@10"] = round(ndcg, 5)
        summary["scifact"] = {"split": "train", "queries": len(queries), "documents": len(docs)}

    if "torch" in names:
        for name in names:
            entry = summary["backends"][name]
            entry["stsb_delta_vs_torch"] = round(
                entry["stsb_dev_spearman"] - summary["backends"]["torch"]["stsb_dev_spearman"], 5
            )
            if not args.skip_scifact:
                entry["scifact_delta_vs_torch"] = round(
                    entry["scifact_train_ndcg@10"] - summary["backends"]["torch"]["scifact_train_ndcg@10"], 5
                )
            diff = np.abs(sts_vectors[name] - sts_vectors["torch"]).max()
            entry["stsb_max_abs_diff_vs_torch"] = float(f"{diff:.3g}")
    if "onnx" in names and "onnx-int8" in names:
        agreement: dict[str, Any] = {}
        pairs = [("stsb_sentences", sts_vectors)]
        if not args.skip_scifact:
            pairs.append(("scifact_documents", doc_vectors))
        for label, by_backend in pairs:
            cos = np.sum(by_backend["onnx"] * by_backend["onnx-int8"], axis=1)
            agreement[label] = {"mean": round(float(cos.mean()), 5), "min": round(float(cos.min()), 5)}
        summary["int8_cosine_to_fp32"] = agreement

    sample = sentences[: args.throughput_texts]
    summary["throughput"] = {"texts": len(sample), "batch_size": 32, "repeats": args.repeats}
    summary["throughput"].update(throughput(encoders, sample, args.repeats))
    summary["machine"] = {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}
    json.dump(summary, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
