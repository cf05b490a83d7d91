"""service/search.py: filtered search against brute force, keyword search, hybrid fusion."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from searchkit import Index
from searchkit.filters import as_number
from searchkit.metrics import pairwise
from searchkit.segments.view import SegmentView
from searchkit.service import search as search_module
from searchkit.service.search import Fusion, fuse
from searchkit.types import Metric

from .conftest import TinyEmbedder

GENRES = ["news", "sport", "tech", "it's"]
MISSING = object()


def make_items(n: int = 400, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        meta: dict[str, Any] = {"genre": rng.choice(GENRES), "flag": rng.random() < 0.3}
        if rng.random() < 0.9:
            meta["year"] = rng.randint(1990, 2020)
        meta["csv_year"] = str(rng.randint(1990, 2020))  # a number as CSV stores it
        meta["price"] = round(rng.uniform(0, 20), 2)
        if i % 50 == 0:
            meta["a.b"] = 1
        items.append({"id": f"d{i}", "text": f"document {i} about {meta['genre']}", "metadata": meta})
    return items


def equal(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, bool):
        return value is wanted
    if isinstance(wanted, str):
        return isinstance(value, str) and value == wanted
    number = as_number(value) if value is not MISSING else None
    return number is not None and number == wanted


def compare(value: Any, op: str, wanted: Any) -> bool:
    if isinstance(wanted, str):
        if not isinstance(value, str):
            return False
        left, right = value, wanted
    else:
        number = as_number(value) if value is not MISSING else None
        if number is None:
            return False
        left, right = number, float(wanted)
    return {"$lt": left < right, "$lte": left <= right, "$gt": left > right, "$gte": left >= right}[op]


def matches(meta: dict[str, Any], where: dict[str, Any]) -> bool:
    """The documented semantics, in Python: the reference for the SQL."""
    for key, condition in where.items():
        if key == "$and":
            ok = all(matches(meta, w) for w in condition)
        elif key == "$or":
            ok = any(matches(meta, w) for w in condition)
        else:
            value = meta.get(key, MISSING)
            ops = condition if isinstance(condition, dict) else {"$eq": condition}
            ok = all(
                equal(value, v)
                if op == "$eq"
                else not equal(value, v)
                if op == "$ne"
                else any(equal(value, x) for x in v)
                if op == "$in"
                else not any(equal(value, x) for x in v)
                if op == "$nin"
                else compare(value, op, v)
                for op, v in ops.items()
            )
        if not ok:
            return False
    return True


FILTERS = [
    {"genre": "news"},
    {"genre": "it's"},
    {"year": {"$gte": 2010}},
    {"year": {"$gte": 2000, "$lt": 2003}},
    {"year": 2003},
    {"$or": [{"genre": "sport"}, {"year": {"$lt": 1993}}]},
    {"$and": [{"genre": {"$ne": "news"}}, {"flag": True}]},
    {"genre": {"$in": ["tech", "it's"]}},
    {"genre": {"$nin": ["news", "sport"]}},
    {"csv_year": {"$gt": 2015}},
    {"csv_year": "2001"},
    {"price": {"$lte": 2.5}},
    {"a.b": 1},
    {"genre": "news", "flag": False, "year": {"$lt": 2000}},
    {"genre": "nothing"},
]
QUERIES = ["document about news", "sport 2010", "tech", "something else entirely"]


def brute_force(
    items: list[dict[str, Any]], tiny: TinyEmbedder, query: str, where: dict[str, Any], k: int
) -> list[str]:
    chosen = [it for it in items if matches(it["metadata"], where)]
    if not chosen:
        return []
    scores = pairwise(tiny.encode([query]), tiny.encode([it["text"] for it in chosen]), Metric.COSINE)[0]
    order = np.argsort(-scores, kind="stable")[:k]
    return [chosen[i]["id"] for i in order]


@pytest.fixture(scope="module")
def items() -> list[dict[str, Any]]:
    return make_items()


@pytest.fixture(scope="module", params=["flat", "hnsw"])
def filtered_index(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, items: Any):
    tiny = TinyEmbedder()
    index = Index.create(
        tmp_path_factory.mktemp("f") / request.param, embedder=tiny, index_type=request.param
    )
    index.add(items)
    index.rebuild()  # one segment of the type (sealed alone, so few vectors would be flat)
    yield index, tiny
    index.close()


@pytest.mark.parametrize("overfetch", [False, True], ids=["planned", "overfetch"])
@pytest.mark.parametrize("where", FILTERS, ids=[str(i) for i in range(len(FILTERS))])
def test_filters_give_k_matching_hits_and_the_exact_best(
    where: dict[str, Any], overfetch: bool, filtered_index: Any, items: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, tiny = filtered_index
    if overfetch:  # force the approximate path even for few matches
        monkeypatch.setattr(search_module, "EXACT_LIMIT", 0)
    k = 10
    wanted = sum(matches(it["metadata"], where) for it in items)
    results = index.search_many(QUERIES, k=k, where=where)
    for query, hits in zip(QUERIES, results, strict=True):
        ids = [h.id for h in hits]
        truth = brute_force(items, tiny, query, where, k)
        by_id = {it["id"]: it for it in items}
        assert all(matches(by_id[i]["metadata"], where) for i in ids)
        assert len(ids) == min(k, wanted)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        if hits.exact:
            assert ids == truth
        else:
            assert len(set(ids) & set(truth)) >= 0.8 * len(truth)
    if index.manifest.layout.kind == "flat" or not overfetch:
        assert all(r.exact for r in results)  # planned exact: FAISS ID selector, or stored embeddings


def test_approximate_index_without_filter_says_so(filtered_index: Any) -> None:
    index, _ = filtered_index
    hits = index.search("tech", k=5)
    assert hits.exact == (index.manifest.layout.kind == "flat") and hits.mode.value == "dense"


def test_filters_apply_in_keyword_and_hybrid_modes(filtered_index: Any, items: Any) -> None:
    index, _ = filtered_index
    by_id = {it["id"]: it for it in items}
    for mode in ("keyword", "hybrid"):
        hits = index.search("document about sport", k=20, where={"genre": "tech"}, mode=mode)
        assert len(hits) == 20 and all(by_id[h.id]["metadata"]["genre"] == "tech" for h in hits)
        assert hits.mode.value == mode


def test_keyword_mode_needs_no_model(tmp_path: Path, tiny: TinyEmbedder) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add([{"id": "a", "text": "the quick brown fox"}, {"id": "b", "text": "lazy dogs sleep"}])
    index.close()
    with Index.open(tmp_path / "i") as opened:  # no embedder given: loading one would fail the fingerprint
        hits = opened.search("quick foxes", k=5, mode="keyword")
        assert [h.id for h in hits] == ["a"] and hits.exact and hits[0].score > 0  # porter: foxes -> fox


@pytest.mark.parametrize(
    ("query", "found"),
    [  # found: the items holding a word of the query, its FTS5 syntax read as text
        ('"', []),
        ('"unbalanced', []),
        ("NEAR(a b)", ["a"]),
        ("a*", ["a"]),
        ("-x", []),
        ("AND", ["a"]),
        ("OR OR", []),
        ("^start", ["b"]),
        ("text:quick", ["a"]),
        ("(", []),
        (")", []),
        ("*", []),
        ("NOT", ["a"]),
    ],
)
def test_fts_syntax_in_a_query_is_just_text(
    query: str, found: list[str], tmp_path: Path, tiny: TinyEmbedder
) -> None:
    with Index.create(tmp_path / "i", embedder=tiny) as index:
        index.add([{"id": "a", "text": "a quick text about AND and NOT"}, {"id": "b", "text": "start here"}])
        assert [h.id for h in index.search(query, k=5, mode="keyword")] == found
        hybrid = index.search(query, k=5, mode="hybrid")  # the dense half ranks both items
        assert sorted(h.id for h in hybrid) == ["a", "b"] and hybrid.mode.value == "hybrid"


def test_keyword_index_follows_updates_and_deletes(tmp_path: Path, tiny: TinyEmbedder) -> None:
    with Index.create(tmp_path / "i", embedder=tiny) as index:
        index.add([{"id": "a", "text": "apples and pears"}, {"id": "b", "text": "bananas"}])
        assert [h.id for h in index.search("pears", mode="keyword")] == ["a"]
        index.add([{"id": "a", "text": "cherries only"}])
        assert [h.id for h in index.search("pears", mode="keyword")] == []
        assert [h.id for h in index.search("cherries", mode="keyword")] == ["a"]
        index.delete(["a"])
        assert [h.id for h in index.search("cherries", mode="keyword")] == []
        assert index.store.fulltext_problem() is None


def test_an_index_from_before_keyword_search_gains_it(tmp_path: Path, tiny: TinyEmbedder) -> None:
    with Index.create(tmp_path / "i", embedder=tiny) as index:
        index.add([{"id": "a", "text": "old index text"}])
    conn = sqlite3.connect(tmp_path / "i" / "index.db")  # back to the m001 schema
    for trigger in ("items_fts_insert", "items_fts_delete", "items_fts_update"):
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.execute("DROP TABLE items_fts")
    conn.execute("DELETE FROM _searchkit_migrations WHERE name = 'm002_fulltext'")
    conn.commit()
    conn.close()
    with Index.open(tmp_path / "i", embedder=tiny) as index:
        assert [h.id for h in index.search("text", mode="keyword")] == ["a"]


def test_reciprocal_rank_fusion() -> None:
    dense = [(1, 0.9), (2, 0.8), (3, 0.7)]
    keyword = [(3, 12.0), (4, 11.0)]
    fused = fuse(dense, keyword, Fusion(rrf_k=60, depth=100, keyword_weight=1.0))
    assert [i for i, _ in fused] == [3, 1, 2, 4]
    assert fused[0][1] == pytest.approx(1 / 63 + 1 / 61)
    weighted = fuse(dense, keyword, Fusion(rrf_k=0, depth=100, dense_weight=1.0, keyword_weight=0.1))
    assert [i for i, _ in weighted] == [1, 2, 3, 4]
    assert [i for i, _ in fuse(dense, [], Fusion())] == [1, 2, 3]


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean", "manhattan"])
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_a_selective_filter_ranks_the_matches_from_faiss_memory_exactly(
    kind: str, metric: str, tmp_path: Path, items: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few matches: scored from the vectors FAISS holds (no SQLite read of every match, no
    ID-selector pass over every vector), then re-scored exactly: the brute-force top k."""
    tiny = TinyEmbedder()
    index = Index.create(tmp_path / "i", embedder=tiny, index_type=kind, metric=metric)
    index.add(items)

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the matches were read from SQLite or searched through a selector")

    monkeypatch.setattr(search_module, "exact_nearest", refused)
    monkeypatch.setattr(SegmentView, "search", refused)
    where = {"genre": "news"}
    chosen = [it for it in items if matches(it["metadata"], where)]
    assert 10 < len(chosen) <= search_module.EXACT_LIMIT
    for query in QUERIES:
        hits = index.search(query, k=10, where=where)
        scores = pairwise(tiny.encode([query]), tiny.encode([it["text"] for it in chosen]), Metric(metric))[0]
        order = np.lexsort((np.arange(len(chosen)), -scores))[:10]
        assert hits.exact and [h.id for h in hits] == [chosen[i]["id"] for i in order]
        assert [h.score for h in hits] == pytest.approx([scores[i] for i in order], abs=1e-5)
    index.close()


# --- keyword search in Chinese, Japanese and Korean (analysis.py) ----------------------------

# The table of issue 15: each text must be found by keyword search for each query.
CJK_ROWS = [
    ("zh1", "我喜欢踢足球和打篮球。", "足球"),
    ("zh2", "今天天气很好，阳光明媚。", "天气"),  # noqa: RUF001 (a Chinese comma)
    ("ja", "私はサッカーが好きです。", "サッカー"),
    ("ko1", "나는 축구를 좋아한다.", "축구"),
    ("ko2", "나는 축구를 좋아한다.", "축구를"),
]


@pytest.fixture
def cjk_index(tmp_path: Path, tiny: TinyEmbedder) -> Any:
    with Index.create(tmp_path / "cjk", embedder=tiny) as index:
        index.add([{"id": key, "text": text} for key, text, _ in CJK_ROWS[:4]])
        index.add([{"id": "en", "text": "I like soccer and basketball."}])
        yield index


@pytest.mark.parametrize(("key", "query"), [(k, q) for k, _, q in CJK_ROWS], ids=[k for k, _, _ in CJK_ROWS])
@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_cjk_text_is_found_by_the_words_a_person_types(
    cjk_index: Any, key: str, query: str, mode: str
) -> None:
    wanted = "ko1" if key == "ko2" else key
    hits = cjk_index.search(query, k=5, mode=mode)
    assert hits[0].id == wanted
    if mode == "keyword":
        assert [h.id for h in hits] == [wanted]  # nothing else holds those characters


def test_a_cjk_query_finds_latin_words_beside_it(cjk_index: Any) -> None:
    assert sorted(h.id for h in cjk_index.search("soccer 축구", k=5, mode="keyword")) == ["en", "ko1"]
    assert cjk_index.store.fulltext_problem() is None


def test_words_analysis_is_what_searchkit_did_before(cjk_index: Any) -> None:
    """The issue's table on the analysis before CJK support: only 축구를, the whole word, is found."""
    cjk_index.store.set_analysis("words")
    found = {q: [h.id for h in cjk_index.search(q, k=5, mode="keyword")] for _, _, q in CJK_ROWS}
    assert found == {"足球": [], "天气": [], "サッカー": [], "축구": [], "축구를": ["ko1"]}
    assert cjk_index.store.fulltext_problem() is None
    cjk_index.store.set_analysis("cjk-bigrams+unigrams")
    assert [h.id for h in cjk_index.search("축구", k=5, mode="keyword")] == ["ko1"]


def test_cjk_items_follow_updates_and_deletes(cjk_index: Any) -> None:
    cjk_index.add([{"id": "ko1", "text": "오늘은 비가 온다."}])
    assert [h.id for h in cjk_index.search("축구", mode="keyword")] == []
    assert [h.id for h in cjk_index.search("비가", mode="keyword")] == ["ko1"]
    cjk_index.delete(["ko1"])
    assert [h.id for h in cjk_index.search("비가", mode="keyword")] == []
    assert cjk_index.store.fulltext_problem() is None


def test_check_repair_analyses_a_cjk_row_written_by_another_tool(tmp_path: Path, tiny: TinyEmbedder) -> None:
    with Index.create(tmp_path / "i", embedder=tiny) as index:
        index.add([{"id": "a", "text": "나는 축구를 좋아한다."}])
    conn = sqlite3.connect(tmp_path / "i" / "index.db")  # as a tool that knows no analysis would
    conn.execute("UPDATE items SET analyzed = NULL")
    conn.commit()
    conn.close()
    with Index.open(tmp_path / "i", embedder=tiny) as index:
        assert [h.id for h in index.search("축구", mode="keyword")] == []
        report = index.check()
        assert [p for p in report.problems if p.startswith("keyword index")] == [
            "keyword index: 1 row(s) whose analysed text (items.analyzed) is not their text's "
            "'cjk-bigrams+unigrams' analysis"
        ]
        assert index.check(repair=True).repaired
        assert index.check().ok
        assert [h.id for h in index.search("축구", mode="keyword")] == ["a"]
