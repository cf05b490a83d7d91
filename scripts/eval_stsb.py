#!/usr/bin/env python3
"""STS-B through the CLI: `searchkit embed --input F --output X.npy`, then cosine Spearman.

MTEB publishes 0.8203 for all-MiniLM-L6-v2 on the test split. Reads the data from
../shared/data/eval/stsb (never copied into the repo).

    .venv/bin/python scripts/eval_stsb.py [--split test|dev] [--backend torch]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "eval" / "stsb"
PUBLISHED = {"test": 0.8203}


def read_pairs(path: Path) -> tuple[list[str], list[str], list[float]]:
    left, right, gold = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        cols = line.rstrip("\n").split("\t")
        gold.append(float(cols[4]))
        left.append(cols[5])
        right.append(cols[6])
    return left, right, gold


def embed_with_cli(texts: list[str], folder: Path, name: str, backend: str) -> np.ndarray:
    source, out = folder / f"{name}.txt", folder / f"{name}.npy"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    cmd = [str(ROOT / ".venv" / "bin" / "searchkit"), "embed", "--input", str(source), "--output", str(out)]
    subprocess.run([*cmd, "--backend", backend], check=True, stdout=subprocess.DEVNULL)
    vectors = np.load(out)
    if vectors.shape[0] != len(texts):
        raise SystemExit(f"{name}: {vectors.shape[0]} vectors for {len(texts)} texts")
    return vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["test", "dev"], default="test")
    parser.add_argument("--backend", default="torch")
    args = parser.parse_args()
    left, right, gold = read_pairs(DATA / f"sts-{args.split}.csv")
    # STS-B sentences never contain newlines, so one text per line is exact.
    assert not any("\n" in t or not t.strip() for t in left + right)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        a = embed_with_cli(left, Path(tmp), "left", args.backend)
        b = embed_with_cli(right, Path(tmp), "right", args.backend)
    cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    rho = float(spearmanr(cosine, gold).statistic)
    result = {
        "split": args.split,
        "pairs": len(gold),
        "backend": args.backend,
        "cosine_spearman": round(rho, 4),
        "published": PUBLISHED.get(args.split),
        "seconds": round(time.perf_counter() - started, 1),
    }
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
