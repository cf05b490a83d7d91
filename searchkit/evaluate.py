"""Retrieval metrics (trec_eval's definitions) and the BEIR files they are computed from.

For one query, `ranking` is the list of returned item ids, best first, and `qrels`
maps item ids to graded relevance (> 0 is relevant). At cut-off k:

- NDCG@k: sum of gain / log2(rank + 1) over the top k, gain = the qrel score, divided
  by the same sum over the qrels sorted by score (the ideal ranking);
- MRR@k: 1 / the rank of the first relevant item in the top k (0 when none);
- recall@k: relevant items in the top k / all relevant items;
- MAP@k: the sum of precision@rank at each relevant item in the top k / all relevant items.

These are the numbers pytrec_eval gives (``ndcg_cut``, ``recall``, ``map_cut``) and that
BEIR and MTEB publish; tests/test_evaluate.py checks them against pytrec_eval.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from searchkit.errors import InputError

__all__ = ["METRICS", "Qrels", "mean_metrics", "query_metrics", "read_qrels", "read_queries"]

Qrels = dict[str, dict[str, int]]
METRICS = ("ndcg", "mrr", "recall", "map")


def query_metrics(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> dict[str, float]:
    """NDCG, MRR, recall and MAP at `k` of one ranking."""
    relevant = {doc: gain for doc, gain in qrels.items() if gain > 0}
    top = list(dict.fromkeys(ranking))[:k]  # a repeated id counts once, at its first rank
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(top, start=1))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(gain / math.log2(rank + 1) for rank, gain in enumerate(ideal, start=1))
    found = 0
    precision_sum = 0.0
    first = 0
    for rank, doc in enumerate(top, start=1):
        if doc in relevant:
            found += 1
            precision_sum += found / rank
            first = first or rank
    total = len(relevant)
    return {
        "ndcg": dcg / idcg if idcg > 0 else 0.0,
        "mrr": 1.0 / first if first else 0.0,
        "recall": found / total if total else 0.0,
        "map": precision_sum / total if total else 0.0,
    }


def mean_metrics(rankings: Mapping[str, Sequence[str]], qrels: Qrels, k: int) -> dict[str, float]:
    """Each metric at `k`, averaged over the queries of `rankings` (all of them in `qrels`)."""
    totals = dict.fromkeys(METRICS, 0.0)
    for query, ranking in rankings.items():
        for name, value in query_metrics(ranking, qrels[query], k).items():
            totals[name] += value
    n = max(1, len(rankings))
    return {f"{name}@{k}": totals[name] / n for name in METRICS}


def read_queries(path: Path) -> dict[str, str]:
    """BEIR ``queries.jsonl``: one ``{"_id", "text"}`` object a line."""
    queries: dict[str, str] = {}
    for number, line in _lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path} line {number}: expected a JSON object")
        key = row.get("_id", row.get("id"))
        text = row.get("text")
        if isinstance(key, bool) or not isinstance(key, (str, int)) or not isinstance(text, str):
            raise InputError(f'{path} line {number}: expected {{"_id": ..., "text": "..."}}')
        queries[str(key)] = text
    return queries


def read_qrels(path: Path) -> Qrels:
    """BEIR qrels: ``query-id<TAB>corpus-id<TAB>score`` lines after a header (TREC's
    four-column ``query 0 doc score`` lines are read too)."""
    qrels: Qrels = {}
    for number, line in _lines(path):
        cols = line.split("\t") if "\t" in line else line.split()
        if len(cols) == 4:
            cols = [cols[0], cols[2], cols[3]]
        if len(cols) != 3:
            raise InputError(f"{path} line {number}: expected query-id, corpus-id and score")
        query, doc, score = (c.strip() for c in cols)
        try:
            grade = int(float(score))
        except ValueError:
            if number == 1:
                continue  # the header
            raise InputError(f"{path} line {number}: score {score!r} is not a number") from None
        qrels.setdefault(query, {})[doc] = grade
    return qrels


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8-sig") as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    yield number, line.rstrip("\r\n")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 ({exc.reason})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
