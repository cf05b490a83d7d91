"""Search: dense (embeddings), keyword (BM25) and hybrid (both, fused), with metadata filters.

Everything runs inside one snapshot of the index (``Index._synced``, a `Snapshot`): the filter's
matches, the FAISS search and the rows come from the same generation.

Filters are planned from the number of items they match, counted in SQLite first (from
the field indexes where the filter's fields have them, store/fields.py):

- none match: no hits (exact);
- a flat index: FAISS searches only the matching ids (an ID selector): exact;
- an approximate index and at most ``EXACT_LIMIT`` matches: exact search over their
  stored embeddings (cheaper than walking the graph past non-matching items);
- more matches: the approximate index, over-fetching in proportion to how rare the
  matches are, growing the fetch until enough candidates match or the index is
  exhausted; if that still finds fewer than k, exact search over the matches.

So a query returns k hits whenever k items match, and the hits are the exact best
among the matches whenever ``exact`` says so.

Grouped by parent (documents indexed with ``--split``), a query ranks parents by their
best piece: it ranks pieces as above, deeper and deeper (x4) until k parents appear or
the pieces run out. A parent outside the ranked pieces scores at most the last of them,
so the k parents found are the best k whenever the piece ranking was exact.

Hybrid search fuses the dense and the keyword rankings by reciprocal rank fusion
(Cormack et al. 2009): score = sum over rankings of weight / (RRF_K + rank).
The settings were chosen on SciFact's train queries (scripts/tune_fusion.py); a query in
a CJK script weighs the keyword ranking more (chosen on KorSTS dev: `Fusion`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from searchkit.analysis import has_cjk
from searchkit.errors import UsageError
from searchkit.filters import Where, compile_where
from searchkit.metrics import Matrix, pairwise, prepare
from searchkit.types import Hit, Hits, Metric, Mode

if TYPE_CHECKING:
    from searchkit.service.protocol import Snapshot

__all__ = ["EXACT_LIMIT", "Fusion", "by_parent", "exact_nearest", "nearest_ids", "search"]

MAX_K = 10_000
# Up to this many matching items, a filtered query on an approximate index is answered
# exactly from the stored embeddings (about 15 MB of float32 vectors to read).
EXACT_LIMIT = 10_000
# How many times the over-fetch may grow (x4 each) before falling back to exact search.
_GROWTHS = 6
_EXACT_BATCH = 4096
# Grouped by parent, the first ranking looks this many pieces deep per parent wanted.
_PIECES_PER_PARENT = 8


@dataclass(frozen=True)
class Fusion:
    """Reciprocal rank fusion settings: each ranking contributes weight / (rrf_k + rank)
    for its first `depth` items.

    Chosen on SciFact train (809 queries, scripts/tune_fusion.py): NDCG@10 is flat at
    0.733-0.735 for rrf_k 1-3, keyword weight 1.1-1.25 and depth 50-200 (dense alone 0.660,
    BM25 alone 0.701, the textbook rrf_k=60 with equal weights 0.710); these are its middle.
    A small rrf_k trusts the top of each ranking, where both rankers are most precise.
    """

    rrf_k: float = 2
    depth: int = 100
    dense_weight: float = 1.0
    keyword_weight: float = 1.1
    # For a query with Chinese, Japanese or Korean characters (analysis.has_cjk). Chosen on
    # KorSTS dev (scripts/eval_korsts.py --cjk-weights) with the default model, which is
    # English-only (dense NDCG@10 0.564, keyword 0.910): hybrid 0.872 at 1.1, 0.909 at 3,
    # 0.910 at 4 and 6, 0.911 at 10 and 20; 6 is the middle of that plateau that keeps hybrid
    # at least as good as keyword. A model that knows these languages would want less (not
    # measured: none is bundled).
    cjk_keyword_weight: float = 6.0

    def for_query(self, query: str) -> Fusion:
        """The settings for `query`: `cjk_keyword_weight` for a query in a CJK script."""
        if not has_cjk(query):
            return self
        return replace(self, keyword_weight=self.cjk_keyword_weight)


DEFAULT_FUSION = Fusion()
Scored = list[tuple[int, float]]  # (row id, score), best first


def search(
    snapshots: Callable[[Callable[[Snapshot], list[Hits]]], list[Hits]],
    encode: Callable[[list[str]], Matrix],
    queries: Sequence[str],
    k: int = 10,
    where: Mapping[str, Any] | str | None = None,
    mode: str | Mode = Mode.DENSE,
    fusion: Fusion = DEFAULT_FUSION,
    group_by_parent: bool = False,
) -> list[Hits]:
    """The `k` best items for each query under `mode`, among those `where` selects;
    with `group_by_parent`, the `k` best parents, each shown by its best piece.

    `encode` embeds the queries (the index's model, loaded only for a dense or hybrid
    search); `snapshots` runs a read on one `Snapshot` of the index (``Index._synced``)."""
    k = check_k(k)
    texts = check_queries(queries)
    mode = Mode.parse(mode)
    compile_where(where)  # a bad filter is refused before the model loads
    vectors = encode(texts) if mode is not Mode.KEYWORD else None

    def rank(snap: Snapshot, n: int) -> list[tuple[Scored, bool]]:
        """The best `n` (row id, score) per query, and whether exactly the best."""
        # Inside the snapshot: its field indexes answer what they can (filters.py).
        compiled = compile_where(where, snap.store.indexed_fields()) if where else None
        if mode is Mode.KEYWORD:
            return [(snap.store.keyword(t, n, compiled), True) for t in texts]
        assert vectors is not None
        depth = n if mode is Mode.DENSE else max(n, fusion.depth)
        ranked = _dense(snap, vectors, depth, compiled)
        if mode is Mode.HYBRID:
            ranked = [
                (fuse(dense, snap.store.keyword(t, depth, compiled), fusion.for_query(t))[:n], exact)
                for t, (dense, exact) in zip(texts, ranked, strict=True)
            ]
        return ranked

    def read(snap: Snapshot) -> list[Hits]:
        if not group_by_parent:
            return _hits(snap, rank(snap, k), mode)
        depth = min(MAX_K, k * _PIECES_PER_PARENT)
        while True:
            ranked = rank(snap, depth)
            grouped = [by_parent(hits, k) for hits in _hits(snap, ranked, mode)]
            done = all(len(g) >= k or len(r) < depth for g, (r, _) in zip(grouped, ranked, strict=True))
            if done or depth >= MAX_K:
                return grouped
            depth = min(MAX_K, depth * 4)

    return snapshots(read)


def by_parent(hits: Hits, k: int) -> Hits:
    """The first `k` parents among `hits` (best first), each as its best piece: the hit's
    id is the parent's (``metadata["parent"]``; an item indexed whole is its own parent)."""
    best: list[Hit] = []
    seen: set[str] = set()
    for hit in hits:
        parent = hit.metadata.get("parent")
        parent = parent if isinstance(parent, str) else hit.id
        if parent not in seen:
            seen.add(parent)
            best.append(Hit(len(best) + 1, parent, hit.score, hit.text, hit.metadata))
            if len(best) == k:
                break
    return Hits(best, exact=hits.exact, mode=hits.mode)


def fuse(dense: Scored, keyword: Scored, fusion: Fusion = DEFAULT_FUSION) -> Scored:
    """Reciprocal rank fusion of two rankings; ties broken by the dense ranking, then id."""
    scores: dict[int, float] = {}
    for ranking, weight in ((dense, fusion.dense_weight), (keyword, fusion.keyword_weight)):
        for rank, (id_, _) in enumerate(ranking[: fusion.depth], start=1):
            scores[id_] = scores.get(id_, 0.0) + weight / (fusion.rrf_k + rank)
    dense_rank = {id_: n for n, (id_, _) in enumerate(dense)}
    order = sorted(scores, key=lambda i: (-scores[i], dense_rank.get(i, len(dense)), i))
    return [(i, scores[i]) for i in order]


def _hits(snap: Snapshot, ranked: list[tuple[Scored, bool]], mode: Mode) -> list[Hits]:
    rows = snap.store.items_by_ids(sorted({i for scored, _ in ranked for i, _ in scored}))
    results = []
    for scored, exact in ranked:
        hits = [
            Hit(rank, rows[i].key, score, rows[i].text, rows[i].metadata)
            for rank, (i, score) in enumerate(((i, s) for i, s in scored if i in rows), start=1)
        ]
        results.append(Hits(hits, exact=exact, mode=mode))
    return results


# --- dense ----------------------------------------------------------------------


def _dense(snap: Snapshot, vectors: Matrix, k: int, where: Where | None) -> list[tuple[Scored, bool]]:
    """Inside a snapshot: the k best (row id, exact score) per query, and whether exact."""
    if snap.vectors.ntotal == 0:
        return [([], True) for _ in vectors]
    flat = snap.vectors.exact
    if where is None:
        return [(scored, flat) for scored in nearest_ids(snap, vectors, k)]
    allowed = snap.store.matching_ids(where)
    if len(allowed) == 0:
        return [([], True) for _ in vectors]
    if len(allowed) <= EXACT_LIMIT and (stored := snap.vectors.exact_vectors(allowed)) is not None:
        return [(scored, True) for scored in _nearest_among(snap, vectors, k, allowed, stored)]
    if flat:
        return [(scored, True) for scored in nearest_ids(snap, vectors, k, allowed)]
    if len(allowed) <= EXACT_LIMIT:
        return [(scored, True) for scored in exact_nearest(snap, vectors, k, allowed)]
    return _overfetch(snap, vectors, k, allowed)


def nearest_ids(snap: Snapshot, vectors: Matrix, k: int, allowed: np.ndarray | None = None) -> list[Scored]:
    """FAISS's candidates (over-fetched as the layout asks), re-scored exactly, top k."""
    fetch = min(MAX_K, k * snap.manifest.layout.overfetch)
    _, ids = snap.vectors.search(prepare(vectors, snap.metric), fetch, allowed)
    return [
        _rescore(snap, vector, [int(i) for i in row if i >= 0], k)
        for vector, row in zip(vectors, ids, strict=True)
    ]


def _nearest_among(snap: Snapshot, vectors: Matrix, k: int, ids: np.ndarray, stored: Matrix) -> list[Scored]:
    """The exact top k of the few `ids` a filter selected, from their vectors as FAISS holds
    them (`stored`, in memory): cheaper than walking a graph past the rest, or than FAISS
    testing each of a million ids against a selector, or than reading them from SQLite
    (10,000 matches at 1M items: 55-70 ms). Ranked in float32, twice as many as wanted are
    then re-scored from the stored embeddings, as every search is."""
    # `stored` is prepared (normalised for cosine): against prepared queries cosine is a dot.
    metric = Metric.DOT if snap.metric is Metric.COSINE else snap.metric
    scores = pairwise(prepare(vectors, snap.metric), stored, metric, dtype=np.float32)
    fetch = min(len(ids), 2 * k)
    results = []
    for vector, row in zip(vectors, scores, strict=True):
        best = np.argpartition(-row, fetch - 1)[:fetch] if fetch < len(ids) else np.arange(len(ids))
        results.append(_rescore(snap, vector, [int(i) for i in ids[best]], k))
    return results


def _rescore(snap: Snapshot, vector: Matrix, candidates: list[int], k: int) -> Scored:
    """Exact scores from the stored embeddings: FAISS's L2 path works on the squared
    expansion, whose rounding shows near zero distance, and quantised codes are lossy."""
    if not candidates:
        return []
    stored = snap.store.embeddings_by_ids(candidates)
    ids = [i for i in candidates if i in stored]
    if not ids:
        return []
    scores = pairwise(vector[None, :], np.stack([stored[i] for i in ids]), snap.metric)[0]
    order = np.lexsort((np.asarray(ids), -scores))[:k]
    return [(ids[j], float(scores[j])) for j in order]


def exact_nearest(snap: Snapshot, vectors: Matrix, k: int, allowed: np.ndarray | None = None) -> list[Scored]:
    """Brute force over the stored embeddings (of `allowed`, or of every item): exact top k."""
    best_ids = np.zeros((len(vectors), 0), dtype=np.int64)
    best_scores = np.zeros((len(vectors), 0), dtype=np.float64)
    batches = snap.store.iter_embeddings(
        None if allowed is None else [int(i) for i in allowed], batch=_EXACT_BATCH
    )
    for ids, stored in batches:
        scores = pairwise(vectors, stored, snap.metric)
        best_scores = np.concatenate([best_scores, scores], axis=1)
        best_ids = np.concatenate([best_ids, np.broadcast_to(ids, scores.shape)], axis=1)
        if best_scores.shape[1] > k:
            keep = np.argsort(-best_scores, axis=1, kind="stable")[:, :k]
            best_scores = np.take_along_axis(best_scores, keep, axis=1)
            best_ids = np.take_along_axis(best_ids, keep, axis=1)
    results = []
    for ids_row, scores_row in zip(best_ids, best_scores, strict=True):
        order = np.lexsort((ids_row, -scores_row))[:k]
        results.append([(int(ids_row[j]), float(scores_row[j])) for j in order])
    return results


def _overfetch(snap: Snapshot, vectors: Matrix, k: int, allowed: np.ndarray) -> list[tuple[Scored, bool]]:
    """Many matches on an approximate index: fetch more candidates the rarer the matches,
    growing until enough of them match; exact search for a query that stays short."""
    total = snap.vectors.ntotal
    want = min(len(allowed), k * snap.manifest.layout.overfetch)
    fetch = min(total, MAX_K, int(np.ceil(1.5 * want * total / len(allowed))))
    prepared = prepare(vectors, snap.metric)
    results: list[tuple[Scored, bool] | None] = [None] * len(vectors)
    todo = list(range(len(vectors)))
    for _ in range(_GROWTHS):
        _, ids = snap.vectors.search(prepared[todo], fetch)
        short = []
        for n, row in zip(todo, ids, strict=True):
            matching = [int(i) for i in row[np.isin(row, allowed)]]
            if len(matching) >= want or (fetch >= total and len(matching) >= k):
                # Every match among the candidates: re-scored exactly, that is exact.
                results[n] = (_rescore(snap, vectors[n], matching, k), len(matching) == len(allowed))
            else:
                short.append(n)
        todo = short
        if not todo or fetch >= min(total, MAX_K):
            break
        fetch = min(total, MAX_K, fetch * 4)
    if todo:
        for n, scored in zip(todo, exact_nearest(snap, vectors[todo], k, allowed), strict=True):
            results[n] = (scored, True)
    return [r for r in results if r is not None]


# --- arguments ----------------------------------------------------------------------


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise UsageError(f"k must be a positive integer, not {k!r}")
    if k > MAX_K:
        raise UsageError(f"k must be at most {MAX_K}, not {k}")
    return k


def check_queries(queries: Sequence[str]) -> list[str]:
    if isinstance(queries, str):
        queries = [queries]
    queries = list(queries)
    if not queries:
        raise UsageError("no query given; pass a query text or --input FILE")
    for query in queries:
        if not isinstance(query, str) or not query.strip():
            raise UsageError("queries must be non-empty strings")
    return queries
