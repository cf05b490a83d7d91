"""searchkit/analysis.py: what the keyword index holds for a text, what a query looks for,
and what a page marks."""

from __future__ import annotations

import itertools
import re
import sqlite3

import pytest

from searchkit import analysis
from searchkit.analysis import (
    DEFAULT,
    MAX_TERMS,
    TOKENIZE,
    WORDS,
    analyze,
    has_cjk,
    optional_terms,
    spans,
    terms,
)
from searchkit.errors import UsageError

LATIN = [
    "The weather is lovely today.",
    "Café, naïve façade: 42 résumés!",
    "Ελληνικά και русский текст",
    "snake_case and dash-case, 3.14",
    "",
]


@pytest.mark.parametrize("text", LATIN)
def test_text_without_cjk_is_indexed_as_it_is(text: str) -> None:
    assert not has_cjk(text)
    assert analyze(text) is None  # items.analyzed NULL: the index holds the text itself


@pytest.mark.parametrize(
    ("text", "analysed"),
    [
        ("나는 축구를 좋아한다.", "나 나는 는 축 축구 구 구를 를 좋 좋아 아 아한 한 한다 다 ."),
        ("足球", "足 足球 球"),
        ("私はサッカー", "私 私は は はサ サ サッ ッ ッカ カ カー ー"),
        ("iPhone을 샀다 (2024)", "iPhone 을 샀 샀다 다 (2024)"),
        ("a 球 b", "a 球 b"),  # a run of one character is itself
    ],
)
def test_cjk_runs_become_their_characters_and_bigrams(text: str, analysed: str) -> None:
    assert analyze(text) == analysed
    assert analyze(text, WORDS) is None


def test_a_latin_query_looks_for_its_words_as_before() -> None:
    # Lowercased, each once, in order: what fts_query quoted before CJK support.
    assert terms("Quick quick FOXES, 42 times") == ["quick", "foxes", "42", "times"]
    assert terms('a "quoted" NEAR(x)') == ["a", "quoted", "near", "x"]
    assert terms("") == []


def test_a_cjk_query_looks_for_its_units() -> None:
    assert terms("축구") == ["축", "축구", "구"]
    assert terms("足球 football") == ["足", "足球", "球", "football"]
    assert terms("축구", WORDS) == ["축구"]  # the whole run, as unicode61 saw it
    assert terms("가" * 500) == ["가", "가가"]
    assert len(terms("".join(chr(0xAC00 + i) for i in range(500)))) == MAX_TERMS
    assert len(terms(" ".join(f"w{i}" for i in range(500)))) == MAX_TERMS


@pytest.mark.parametrize(
    "text",
    [
        "나는 축구를 좋아한다.",
        "ﾃﾞｰﾀベース々〇",  # half-width Katakana, the iteration mark, ideographic zero
        "𠀀𠀁 漢字・かな",  # supplementary ideographs; the middle dot is punctuation
        "ㄱㄴ ᄀᄁ",  # compatibility and conjoining Jamo
        "mixed English 日本語 text",
    ],
)
def test_every_unit_is_one_token_to_the_index(text: str) -> None:
    """unicode61 must not cut a unit further, or a query's unit would not match it."""
    analysed = analyze(text)
    assert analysed is not None
    conn = sqlite3.connect(":memory:")
    conn.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize='{TOKENIZE}')")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'row')")
    conn.execute("INSERT INTO t (x) VALUES (?)", (analysed,))
    indexed = {row[0] for row in conn.execute("SELECT term FROM v")}
    wanted = {t for t in terms(text) if has_cjk(t)}
    assert wanted <= indexed
    conn.close()


@pytest.mark.parametrize(
    ("chars", "cjk"),
    [  # the scripts' edges, U+3007 (ideographic zero), half-width Katakana, supplementary Han
        ("가힣ᄀㄱあアーｶ一鿿々\u3007豈𠀀ꥠힰ", True),
        # punctuation (U+FF0C: full-width comma), spaces, other letters, a combining mark
        ("aé・。\uff0c 1ω\u3000\uff01\u3099", False),
    ],
)
def test_which_characters_are_analysed(chars: str, cjk: bool) -> None:
    assert [has_cjk(c) for c in chars] == [cjk] * len(chars)


def _marked(text: str, query: str) -> list[str]:
    return [text[a:b] for a, b in spans(text, query)]


@pytest.mark.parametrize(
    ("text", "query", "marked"),
    [
        ("The quick foxes jumped.", "fox jumping", ["foxes", "jumped"]),  # stems, as the index
        ("나는 축구를 좋아한다.", "축구", ["축구"]),
        ("구름 아래 축구", "축구", ["축구"]),  # not 구름's 구: the query holds 구 only inside 축구
        ("我喜欢踢足球和打篮球。", "球", ["球", "球"]),  # a query of one character marks it
        ("我喜欢踢足球和打篮球。", "足球", ["足球"]),
        ("私はサッカーが好きです。", "サッカー", ["サッカー"]),
        ("今天天气很好，阳光明媚。", "天气 阳光", ["天气", "阳光"]),  # noqa: RUF001 (a Chinese comma)
        ("nothing here", "축구", []),
    ],
)
def test_spans_mark_what_a_query_matches(text: str, query: str, marked: list[str]) -> None:
    assert _marked(text, query) == marked


def test_spans_are_ordered_and_disjoint() -> None:
    found = spans("축구를 축구 축구공", "축구를 축구공")
    assert found == sorted(found)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(found))


def test_single_characters_of_longer_runs_are_optional() -> None:
    assert optional_terms("축구") == {"축", "구"}
    assert optional_terms("球 足球") == {"足"}  # 球 is a query run of its own: never left out
    assert optional_terms("soccer") == set() == optional_terms("축구", WORDS)


def test_an_unknown_analysis_is_refused() -> None:
    with pytest.raises(UsageError, match=re.escape("unknown keyword analysis 'nope'")):
        terms("x", "nope")
    assert DEFAULT in analysis.ANALYSES and WORDS in analysis.ANALYSES
