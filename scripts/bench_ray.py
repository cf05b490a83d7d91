#!/usr/bin/env python3
"""bench.py's `ray` section: the same corpus indexed locally and with --ray (issue 13).

The corpus: the first N distinct sentences of SciFact's abstracts (../shared/data/eval/scifact,
split by searchkit's own splitter), real text, embedded by the real model. Each run is a fresh
process that creates a new index of the whole corpus; the runs alternate, repeated:

- `local`: `Index.add(items)`, the default engine (ONNX Runtime on every core);
- `ray-local`: `Index.add(items, ray="local")`, which starts a Ray instance on this machine
  (its start-up is in the time) and embeds in an actor pool of one actor per core;
- `ray-cluster`: `Index.add(items, ray=ADDRESS)` on a running 3-node cluster of this machine
  (`ray.cluster_utils.Cluster`: a head and two worker nodes of 1 CPU each, loopback), started
  once before the runs (its start-up is not in the time, as a real cluster is already there).

Each run reports items/s of the whole ingest (reading, embedding, staging, committing, the
segment built) and, for Ray, items/s per actor. The target: --ray on one machine >= 0.8x local.

    .venv/bin/python scripts/bench.py --sections ray [--ray-items 20000]
    .venv/bin/python scripts/bench_ray.py --items 20000 --repeats 2     # alone, printing JSON
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
SCIFACT = ROOT.parent / "shared" / "data" / "eval" / "scifact" / "corpus.jsonl"
WAYS = ("local", "ray-local", "ray-cluster")
CLUSTER_CPUS = 3
# This checkout's searchkit for every child and every Ray worker they start (PYTHONPATH is
# inherited by the raylets, and so by the actors); Ray workers at nice 0; loopback only.
_ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    "RAY_worker_niceness": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}
DATA = (
    "corpus: the first {n:,} distinct sentences of SciFact's abstracts (searchkit's sentence splitter), "
    "real text, the real model; each run a new process and a new index; runs alternate"
)


def sentences(n: int) -> list[str]:
    from searchkit.split import split

    seen: dict[str, None] = {}
    with open(SCIFACT, encoding="utf-8") as f:
        for line in f:
            for span in split(json.loads(line)["text"], "sentences"):
                if len(span.text) > 20:
                    seen.setdefault(span.text)
                    if len(seen) == n:
                        return list(seen)
    return list(seen)


def run_once(way: str, n: int, address: str | None) -> dict[str, Any]:
    """Child: index the corpus one way into a new index; the figures as JSON."""
    from searchkit import cluster
    from searchkit.service import Index

    texts = sentences(n)
    items = ({"id": f"s{i}", "text": t} for i, t in enumerate(texts))
    ray = None if way == "local" else (cluster.LOCAL if way == "ray-local" else address)
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        started = time.perf_counter()
        with Index.create(Path(tmp) / "index") as index:
            report = index.add(items, ray=ray)
            seconds = time.perf_counter() - started
            assert report.embedded == len(texts) == len(index), (report.embedded, len(index))
    # One actor per CPU: this machine's, or the cluster's (a head and two workers, 1 CPU each).
    actors = None if ray is None else (os.cpu_count() or 1) if way == "ray-local" else CLUSTER_CPUS
    figures: dict[str, Any] = {"way": way, "items": len(texts), "seconds": seconds}
    figures["items_per_s"] = len(texts) / seconds
    if actors:
        figures["actors"] = actors
        figures["items_per_s_per_actor"] = figures["items_per_s"] / actors
    return figures


def child(way: str, n: int, address: str | None) -> dict[str, Any]:
    env = {**_ENV, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, __file__, "--child", way, "--items", str(n)]
    if address:
        command += ["--address", address]
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{way} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cluster_child(address_file: Path) -> None:
    """Child: a 3-node loopback cluster, its address written to `address_file`, until killed."""
    from ray.cluster_utils import Cluster

    made = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 256 * 1024**2, "include_dashboard": False},
    )
    for _ in range(2):
        made.add_node(num_cpus=1, object_store_memory=256 * 1024**2)
    made.wait_for_nodes()
    address_file.write_text(made.address)
    while True:
        time.sleep(3600)


def section(n: int = 20_000, repeats: int = 2) -> dict[str, Any]:
    import bench

    runs: dict[str, list[dict[str, Any]]] = {way: [] for way in WAYS}
    env = _ENV
    with tempfile.TemporaryDirectory(prefix="bench-ray-cluster-") as tmp:
        address_file = Path(tmp) / "address"
        holder = subprocess.Popen(
            [sys.executable, __file__, "--cluster", str(address_file)], env=env, cwd=ROOT
        )
        try:
            for _ in range(600):
                if address_file.exists() and address_file.read_text():
                    break
                time.sleep(0.2)
            address = address_file.read_text()
            for repeat in range(repeats):
                order = WAYS if repeat % 2 == 0 else tuple(reversed(WAYS))
                for way in order:
                    runs[way].append(child(way, n, address))
        finally:
            holder.terminate()
            holder.wait(60)
    best = {way: statistics.median(r["items_per_s"] for r in done) for way, done in runs.items()}
    table = [
        bench.row(f"ray {n:,} sentences: local ingest items/s (median of {repeats})", f"{best['local']:.0f}")
    ]
    for way in ("ray-local", "ray-cluster"):
        ratio = best[way] / best["local"]
        per_actor = statistics.median(r["items_per_s_per_actor"] for r in runs[way])
        table.append(
            bench.row(
                f"ray {n:,} sentences: {way} items/s (per actor)",
                f"{best[way]:.0f} ({per_actor:.0f})",
                baseline=f"{best['local']:.0f}",
                ratio=f"{ratio:.2f}x",
                target=">= 0.8x local" if way == "ray-local" else "",
                met=ratio >= 0.8 if way == "ray-local" else None,
            )
        )
    return {"data": DATA.format(n=n), "runs": runs, "items_per_s": best, "table": table}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", choices=WAYS)
    parser.add_argument("--address")
    parser.add_argument("--cluster", type=Path)
    args = parser.parse_args()
    if args.cluster:
        cluster_child(args.cluster)
    elif args.child:
        print(json.dumps(run_once(args.child, args.items, args.address)))
    else:
        sys.path.insert(0, str(SCRIPTS))
        print(json.dumps(section(args.items, args.repeats), indent=2))


if __name__ == "__main__":
    main()
