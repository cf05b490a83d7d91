#!/usr/bin/env python3
"""Kill a real `searchkit index` process (SIGKILL) at random moments; verify nothing is lost.

Each trial copies a committed base index, starts `searchkit index` on a large upsert
(changed texts for some ids, many new ids), kills it after a random delay, and then checks:

- `check` is clean (it, like any open, finishes an interrupted write by itself);
- the items are exactly the set before the write or exactly the set after it, never a mix;
- no id is duplicated, every item has its vector, and searching an item's exact text
  finds that item first;
- re-running the ingest completes to exactly the expected set, and `check` stays clean.

Trials of the "create" kind kill the very first ingest of a new index instead: the index
then either holds nothing committed (the next run finishes it, reusing what was staged)
or is complete.

The random delays find what no one thought of; tests/test_faults.py kills at each named
fault point of the write protocol (searchkit/faults.py) instead, so every step is proven.

A tiny random sentence-transformers model (real BERT code, 1 layer, 32 dimensions) keeps
the ingest fast; semantics do not matter here.

    .venv/bin/python scripts/crash_stress.py --trials 25
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "red",
    "green",
    "blue",
    "amber",
    "river",
    "mountain",
    "valley",
    "forest",
    "desert",
    "ocean",
    "island",
    "harbor",
    "bridge",
    "tower",
    "castle",
    "garden",
    "meadow",
]


def make_tiny_model(folder: Path, seed: int = 0) -> Path:
    """Save a small random BERT as a sentence-transformers model folder (once)."""
    model_dir = folder / "model"
    if (model_dir / "modules.json").exists():
        return model_dir
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    from searchkit.embedder import resolve

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(resolve(None).path))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    hf = folder / "hf"
    BertModel(config).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    word = Transformer(str(hf), max_seq_length=64)
    modules = [word, Pooling(32, "mean"), Normalize()]
    SentenceTransformer(modules=modules, device="cpu").save(str(model_dir))
    return model_dir


def sentence(rng: random.Random, n: int) -> str:
    return f"{n} " + " ".join(rng.choice(WORDS) for _ in range(8)) + f" {rng.randrange(10**6)}"


def write_jsonl(path: Path, items: dict[str, str]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for key, text in items.items():
            f.write(json.dumps({"id": key, "text": text}) + "\n")


def make_inputs(
    folder: Path, base: int, new: int, changed: int, seed: int
) -> tuple[dict[str, str], dict[str, str]]:
    """(items before, items after): the upsert changes `changed` texts and adds `new` ids."""
    rng = random.Random(seed)
    before = {f"b{i}": sentence(rng, i) for i in range(base)}
    update = {f"b{i}": sentence(rng, i) + " changed" for i in rng.sample(range(base), changed)}
    update.update({f"n{i}": sentence(rng, base + i) for i in range(new)})
    write_jsonl(folder / "base.jsonl", before)
    write_jsonl(folder / "update.jsonl", update)
    return before, {**before, **update}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "searchkit", *args]


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def run_to_end(*args: str) -> float:
    started = time.monotonic()
    done = subprocess.run(cli(*args), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise AssertionError(f"searchkit {args[0]} failed: {done.stderr.strip()[-500:]}")
    return time.monotonic() - started


def kill_after(delay: float, *args: str) -> bool:
    """Start the command, SIGKILL it after `delay` s; True if it was still running."""
    proc = subprocess.Popen(cli(*args), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def kill_at(point: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command with the fault point `point` armed (searchkit/faults.py): it kills
    itself there. The caller checks it did (-SIGKILL, and its line on stderr)."""
    return subprocess.run(
        cli(*args), env={**env(), "SEARCHKIT_FAULT": point}, capture_output=True, text=True, timeout=300
    )


def items_of(folder: Path) -> dict[str, str]:
    from searchkit import Index

    with Index.open(folder) as index:
        exported = list(index.export())
    keys = [e["id"] for e in exported]
    if len(keys) != len(set(keys)):
        raise AssertionError("duplicated ids")
    return {e["id"]: e["text"] for e in exported}


def verify(folder: Path, allowed: list[dict[str, str]], sample: int, rng: random.Random) -> str:
    """Raise AssertionError unless the index is clean and holds one of `allowed`; say which."""
    from searchkit import Index
    from searchkit.service import check

    report = check(folder)
    if not report.ok:
        raise AssertionError(f"check found problems: {report.problems}")
    items = items_of(folder)
    matches = [n for n, expected in enumerate(allowed) if items == expected]
    if not matches:
        raise AssertionError(f"{len(items)} items match neither the state before nor after the write")
    with Index.open(folder) as index:
        if index.vectors.ntotal != len(items):
            raise AssertionError(f"{index.vectors.ntotal} vectors for {len(items)} items")
        keys = rng.sample(sorted(items), min(sample, len(items)))
        for key, hits in zip(keys, index.search_many([items[k] for k in keys], k=1), strict=True):
            if not hits or hits[0].id != key:
                raise AssertionError(f"searching the exact text of {key} did not find it first")
    return ["before", "after"][matches[0]] if len(allowed) == 2 else "after"


def trial(
    work: Path,
    model: Path,
    base_index: Path,
    before: dict[str, str],
    after: dict[str, str],
    delay: float,
    kind: str,
    rng: random.Random,
) -> dict[str, Any]:
    folder = work / f"trial-{kind}"
    shutil.rmtree(folder, ignore_errors=True)
    for stale in work.glob(f".{folder.name}.creating-*"):
        shutil.rmtree(stale)
    if kind == "upsert":
        shutil.copytree(base_index, folder)
        args = ("index", str(folder), str(work / "update.jsonl"))
        states = [before, after]
    else:
        args = ("index", str(folder), str(work / "base.jsonl"), "--model", str(model))
        states = [before]
    killed = kill_after(delay, *args)
    if kind == "create" and not (folder / "manifest.json").exists():
        state = "absent"
    else:
        state = verify(folder, states, sample=20, rng=rng)
    run_to_end(*args)
    final = verify(folder, [after if kind == "upsert" else before], sample=20, rng=rng)
    if final != "after":
        raise AssertionError("the resumed ingest did not reach the expected set")
    leftovers = list(work.glob(f".{folder.name}.creating-*"))
    if leftovers:
        raise AssertionError(f"abandoned staging folders left behind: {leftovers}")
    return {"kind": kind, "delay_s": round(delay, 2), "killed": killed, "state_after_kill": state}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=25)
    parser.add_argument("--base", type=int, default=3000, help="items committed before the write")
    parser.add_argument("--new", type=int, default=20000, help="new ids in the killed write")
    parser.add_argument("--changed", type=int, default=500, help="changed texts in the killed write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="searchkit-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    model = make_tiny_model(work / "tiny")
    before, after = make_inputs(work, args.base, args.new, args.changed, args.seed)
    base_index = work / "base-index"
    shutil.rmtree(base_index, ignore_errors=True)
    run_to_end("index", str(base_index), str(work / "base.jsonl"), "--model", str(model))
    calibration = work / "calibration"
    shutil.copytree(base_index, calibration)
    upsert_time = run_to_end("index", str(calibration), str(work / "update.jsonl"))
    create_time = run_to_end(
        "index", str(work / "calibration-create"), str(work / "base.jsonl"), "--model", str(model)
    )
    print(f"uninterrupted: upsert {upsert_time:.1f} s, create {create_time:.1f} s", flush=True)
    failures = 0
    results = []
    for n in range(args.trials):
        kind = "create" if n % 5 == 4 else "upsert"
        span = upsert_time if kind == "upsert" else create_time
        delay = rng.uniform(0.1 * span, 1.02 * span)
        try:
            result = trial(work, model, base_index, before, after, delay, kind, rng)
            result["ok"] = True
        except AssertionError as exc:
            failures += 1
            result = {"kind": kind, "delay_s": round(delay, 2), "ok": False, "error": str(exc)}
        results.append(result)
        print(json.dumps(result), flush=True)
    states = [r.get("state_after_kill") for r in results if r.get("ok")]
    print(
        f"{args.trials} trials, {failures} failed; state after kill: "
        + ", ".join(f"{s} {states.count(s)}" for s in ("before", "after", "absent") if states.count(s))
    )
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
