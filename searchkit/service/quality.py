"""``searchkit eval``: how good an index's answers are.

Against labels (BEIR queries and qrels: NDCG, MRR, recall, MAP at k), or, with no labels,
an approximate index against exact search over its own stored embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from searchkit.errors import UsageError
from searchkit.evaluate import Qrels, mean_metrics
from searchkit.service.protocol import Snapshot
from searchkit.service.search import check_k, exact_nearest, nearest_ids
from searchkit.types import Mode

if TYPE_CHECKING:
    from searchkit.service.index import Index

__all__ = ["against_exact", "evaluate"]

_BATCH = 64


def evaluate(
    index: Index,
    queries: Mapping[str, str],
    qrels: Qrels,
    k: int = 10,
    mode: str | Mode = Mode.DENSE,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Search every query that has qrels and average the metrics at `k` over them.

    Item ids are the index's ids (``--id-field``); qrels for queries missing from
    `queries` are reported, not evaluated.
    """
    k = check_k(k)
    mode = Mode.parse(mode)
    ids = [q for q in qrels if q in queries and queries[q].strip()]
    if not ids:
        raise UsageError("no query in the qrels file has a text in the queries file; are they the same set?")
    rankings: dict[str, list[str]] = {}
    for start in range(0, len(ids), _BATCH):
        batch = ids[start : start + _BATCH]
        results = index.search_many([queries[q] for q in batch], k, mode=mode)
        for query, hits in zip(batch, results, strict=True):
            rankings[query] = [hit.id for hit in hits]
        if on_progress is not None:
            on_progress(len(batch))
    report: dict[str, Any] = {"queries": len(ids), "k": k, "mode": mode.value}
    report.update(mean_metrics(rankings, qrels, k))
    report["skipped"] = len(qrels) - len(ids)
    return report


def against_exact(index: Index, sample: int = 1000, k: int = 10, seed: int = 0) -> dict[str, Any]:
    """Recall@k of the index's own search against exact search, with `sample` stored items
    (their stored embeddings) as queries: what an approximate index type costs."""
    k = check_k(k)
    if isinstance(sample, bool) or not isinstance(sample, int) or sample <= 0:
        raise UsageError(f"--sample must be a positive integer, not {sample!r}")

    def read(snap: Snapshot) -> tuple[int, float]:
        all_ids = snap.store.ids()
        if len(all_ids) == 0:
            raise UsageError(f"{index.path}: the index is empty; nothing to compare")
        chosen = np.random.default_rng(seed).choice(all_ids, size=min(sample, len(all_ids)), replace=False)
        stored = snap.store.embeddings_by_ids([int(i) for i in chosen])
        vectors = np.stack([stored[int(i)] for i in chosen])
        found = nearest_ids(snap, vectors, k)
        truth = exact_nearest(snap, vectors, k)
        wanted = min(k, len(all_ids))
        overlap = [
            len({i for i, _ in a} & {i for i, _ in e}) / wanted for a, e in zip(found, truth, strict=True)
        ]
        return len(chosen), float(np.mean(overlap))

    queries, recall = index._synced(read)
    layout = index.manifest.layout
    return {
        "queries": queries,
        "k": k,
        f"recall@{k}": recall,
        "index_type": layout.kind,
        "params": dict(layout.params),
    }
