#!/usr/bin/env python3
"""Rebuild an index from a script, through searchkit's Python API.

In place, from the stored embeddings (nothing is embedded again):

    .venv/bin/python scripts/rebuild_index.py my-index --metric euclidean

Into a new index with another model (every text is embedded again; ids, texts and
metadata are kept, and the old index is left as it was):

    .venv/bin/python scripts/rebuild_index.py my-index --model path/to/model --to my-index-v2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from searchkit import Index, SearchkitError


def rebuild_in_place(path: Path, metric: str | None, index_type: str | None) -> None:
    with Index.open(path) as index:
        report = index.rebuild(metric=metric, index_type=index_type)
        print(
            f"{path}: {index.vectors.ntotal} vectors rebuilt for {index.metric.value} "
            f"in {report.seconds:.2f} s, nothing embedded"
        )


def reembed(path: Path, target: Path, model: str, metric: str | None, batch_size: int) -> None:
    with Index.open(path) as old:
        new = Index.create(target, model=model, metric=metric or old.metric)
        with new:
            # export() streams rows from SQLite; add() embeds and commits in batches.
            report = new.add(old.export(), batch_size=batch_size)
            print(
                f"{target}: {report.added} items re-embedded with {new.manifest.model.name} "
                f"({new.metric.value}) in {report.seconds:.1f} s; {path} is unchanged"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("--metric", help="cosine, dot, euclidean or manhattan")
    parser.add_argument("--index-type", help="flat (more with later releases)")
    parser.add_argument("--model", help="re-embed with this model into --to")
    parser.add_argument("--to", type=Path, help="the new index folder (with --model)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    try:
        if args.model or args.to:
            if not (args.model and args.to):
                parser.error("--model and --to go together")
            reembed(args.index, args.to, args.model, args.metric, args.batch_size)
        else:
            rebuild_in_place(args.index, args.metric, args.index_type)
    except SearchkitError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
