"""evaluate.py and `searchkit eval`: trec_eval's metrics, checked against pytrec_eval."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import pytrec_eval  # the independent implementation (dev extra): a hard import, never a silent skip
from typer.testing import CliRunner

from searchkit import Index
from searchkit.cli import app
from searchkit.evaluate import mean_metrics, query_metrics, read_qrels, read_queries

from .conftest import CORPUS, TinyEmbedder

MEASURES = {"ndcg_cut.10", "recip_rank", "recall.10", "map_cut.10"}


def reference(
    rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]], k: int = 10
) -> dict[str, float]:
    """pytrec_eval on the same rankings: each run holds only the top k, scored by rank."""
    run = {q: {doc: float(len(r) - n) for n, doc in enumerate(r[:k])} for q, r in rankings.items()}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, MEASURES).evaluate(run)
    names = {
        "ndcg_cut_10": "ndcg@10",
        "recip_rank": "mrr@10",
        "recall_10": "recall@10",
        "map_cut_10": "map@10",
    }
    out = dict.fromkeys(names.values(), 0.0)
    for query in rankings:
        for theirs, ours in names.items():
            # A query with an empty run is absent from pytrec_eval's answer: it scores 0 (trec_eval -c).
            out[ours] += per_query.get(query, {}).get(theirs, 0.0) / len(rankings)
    return out


def random_case(seed: int) -> tuple[dict[str, list[str]], dict[str, dict[str, int]]]:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(60)]
    qrels: dict[str, dict[str, int]] = {}
    rankings: dict[str, list[str]] = {}
    for q in range(40):
        judged = rng.sample(docs, rng.randint(1, 15))
        qrels[f"q{q}"] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        if not any(qrels[f"q{q}"].values()):
            qrels[f"q{q}"][judged[0]] = 1
        rankings[f"q{q}"] = rng.sample(docs, rng.randint(0, 20))
    return rankings, qrels


@pytest.mark.parametrize("seed", range(5))
def test_metrics_equal_pytrec_eval(seed: int) -> None:
    rankings, qrels = random_case(seed)
    ours = mean_metrics(rankings, qrels, 10)
    theirs = reference(rankings, qrels)
    for name, value in theirs.items():
        assert ours[name] == pytest.approx(value, abs=1e-6), name


def test_one_query_by_hand() -> None:
    got = query_metrics(["a", "x", "b", "y"], {"a": 1, "b": 2, "c": 1, "z": 0}, k=3)
    idcg = 2 + 1 / 1.584962500721156 + 1 / 2
    assert got["ndcg"] == pytest.approx((1 + 2 / 2) / idcg)
    assert got["mrr"] == 1.0
    assert got["recall"] == pytest.approx(2 / 3)
    assert got["map"] == pytest.approx((1 + 2 / 3) / 3)


def test_beir_files(tmp_path: Path) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"_id": "1", "text": "first", "metadata": {}}\n{"_id": 2, "text": "second"}\n')
    qrels = tmp_path / "test.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n1\tA\t1\n1\tB\t2\n2\tC\t0\n")
    assert read_queries(queries) == {"1": "first", "2": "second"}
    assert read_qrels(qrels) == {"1": {"A": 1, "B": 2}, "2": {"C": 0}}


@pytest.fixture(scope="module")
def topics(tmp_path_factory: pytest.TempPathFactory, model: Any) -> tuple[Path, Path, Path]:
    """The demo corpus as a BEIR set: a query per topic, every item of that topic relevant."""
    folder = tmp_path_factory.mktemp("eval")
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    asks = {
        "weather": "what will the weather be like",
        "food": "cooking a meal",
        "sports": "a match and its score",
    }
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": t, "text": q}) + "\n" for t, q in asks.items())
        + '{"_id": "x", "text": "no"}\n'
    )
    lines = ["query-id\tcorpus-id\tscore"] + [
        f"{r['topic']}\t{r['id']}\t1" for r in rows if r["topic"] in asks
    ]
    (folder / "qrels.tsv").write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["index", str(folder / "idx"), str(CORPUS)])
    assert result.exit_code == 0, result.output
    return folder / "idx", folder / "queries.jsonl", folder / "qrels.tsv"


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_eval_cli_agrees_with_pytrec_eval(topics: tuple[Path, Path, Path], mode: str) -> None:
    index, queries, qrels = topics
    args = ["eval", str(index), "--queries", str(queries), "--qrels", str(qrels), "--mode", mode, "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["queries"] == 3 and report["k"] == 10 and report["mode"] == mode
    labels, texts = read_qrels(qrels), read_queries(queries)
    with Index.open(index) as opened:
        hits = opened.search_many([texts[q] for q in labels], k=10, mode=mode)
    rankings = {q: [h.id for h in found] for q, found in zip(labels, hits, strict=True)}
    for name, value in reference(rankings, labels).items():
        assert report[name] == pytest.approx(value, abs=1e-4), name
    if mode == "dense":
        assert report["ndcg@10"] > 0.8  # the topics are easy


def test_against_exact(tmp_path: Path) -> None:
    tiny = TinyEmbedder()
    items = [{"id": str(i), "text": f"item {i}"} for i in range(300)]
    for kind in ("flat", "hnsw"):
        with Index.create(tmp_path / kind, embedder=tiny, index_type=kind) as index:
            index.add(items)
    result = CliRunner().invoke(
        app, ["eval", str(tmp_path / "flat"), "--against-exact", "--sample", "50", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["queries"] == 50 and report["recall@10"] == 1.0 and report["index_type"] == "flat"
    people = CliRunner().invoke(app, ["eval", str(tmp_path / "hnsw"), "--against-exact", "--sample", "50"])
    assert people.exit_code == 0 and "recall@10:" in people.stdout and "hnsw" in people.stdout
