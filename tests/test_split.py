from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from searchkit import Index
from searchkit.errors import InputError, UsageError
from searchkit.split import MODES, Span, split

from .conftest import TinyEmbedder

CASES = [
    # abbreviations, initials, decimals, times
    (
        "Dr. Smith went to Washington. He arrived at 3.30 p.m. on Monday.",
        ["Dr. Smith went to Washington.", "He arrived at 3.30 p.m. on Monday."],
    ),
    (
        "The U.S. economy grew 2.5% in Q3. Analysts, e.g. those at J. P. Morgan, agreed.",
        ["The U.S. economy grew 2.5% in Q3.", "Analysts, e.g. those at J. P. Morgan, agreed."],
    ),
    (
        "See Fig. 2 for details. I said no. Then I left.",
        ["See Fig. 2 for details.", "I said no.", "Then I left."],
    ),
    ("It costs approx. three dollars. Pay now", ["It costs approx. three dollars.", "Pay now"]),
    ("Mix A with B, i.e. water. Stir.", ["Mix A with B, i.e. water.", "Stir."]),
    ("Version 1.2.3 is out. Get it!", ["Version 1.2.3 is out.", "Get it!"]),
    # quotes, brackets, ellipses, several marks
    (
        '"Is it raining?" she asked. "No." He left... Then it rained!',
        ['"Is it raining?" she asked.', '"No."', "He left...", "Then it rained!"],
    ),
    ("Results (see Table 1.) were clear. Next.", ["Results (see Table 1.) were clear.", "Next."]),
    ("Really?! Yes. “Quoted.” Done", ["Really?!", "Yes.", "“Quoted.”", "Done"]),
    # Korean: no letter case, the same marks
    (
        "오늘은 날씨가 좋다. 내일은 비가 온대요. 정말? 네!",
        ["오늘은 날씨가 좋다.", "내일은 비가 온대요.", "정말?", "네!"],
    ),
    # Chinese / Japanese full stops, no spaces
    (
        "今天天气很好。明天会下雨！真的吗？是的。",  # noqa: RUF001 (full-width marks on purpose)
        ["今天天气很好。", "明天会下雨！", "真的吗？", "是的。"],  # noqa: RUF001
    ),
    ("「行こう。」と彼は言った。", ["「行こう。」", "と彼は言った。"]),
    # no end mark, blank
    ("no end mark here", ["no end mark here"]),
    ("   ", []),
    ("", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_sentences(text: str, expected: list[str]) -> None:
    assert [span.text for span in split(text)] == expected


def test_offsets_point_into_the_source() -> None:
    text = "  First one.  Second one?\n\tThird!  "
    spans = split(text)
    assert [(s.start, s.end) for s in spans] == [(2, 12), (14, 25), (27, 33)]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_paragraphs() -> None:
    text = "Line one.\nstill one.\n\n  Two. Two again.\n \n\n\nThree"
    assert [s.text for s in split(text, "paragraphs")] == [
        "Line one.\nstill one.",
        "Two. Two again.",
        "Three",
    ]


def test_none_is_the_whole_text_trimmed() -> None:
    assert [(s.text, s.start) for s in split("  a. B.  ", "none")] == [("a. B.", 2)]


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown split mode 'words'"):
        split("a", "words")


# --- lines: blank lines, headings and decoration ----------------------------------------------

README = """\
Frobnicator for Debian
======================

Overview
--------
The frobnicator turns widgets into gadgets. It reads its settings from
/etc/frob.conf, e.g. the widget size. Run it as root!

Features:
 * fast start
 * small memory use

Installing from source
needs a C compiler

Report bugs with reportbug
"""

MARKDOWN = """\
# Frob

Frob turns widgets into gadgets. Fast.
## Usage ##
Run `frob` in a shell.
###### Six levels deep
#hashtag is no heading
####### nor are seven
"""

RST = """\
=========
 Reference
=========

Options
~~~~~~~
-v  talk more.
-q  talk less.

* * *

Done
"""


def texts(source: str, mode: str) -> list[str]:
    return [span.text for span in split(source, mode)]


def test_a_readme_without_periods_is_cut_at_blank_lines_and_headings() -> None:
    assert texts(README, "sentences") == [
        "Frobnicator for Debian",
        "Overview",
        "The frobnicator turns widgets into gadgets.",
        "It reads its settings from\n/etc/frob.conf, e.g. the widget size.",
        "Run it as root!",
        "Features:\n * fast start\n * small memory use",
        "Installing from source\nneeds a C compiler",
        "Report bugs with reportbug",
    ]


def test_markdown_headings_are_pieces_without_their_marks() -> None:
    assert texts(MARKDOWN, "sentences") == [
        "Frob",
        "Frob turns widgets into gadgets.",
        "Fast.",
        "Usage",
        "Run `frob` in a shell.",
        "Six levels deep",
        "#hashtag is no heading\n####### nor are seven",
    ]


def test_rst_overlined_and_underlined_titles() -> None:
    assert texts(RST, "sentences") == ["Reference", "Options", "-v  talk more.", "-q  talk less.", "Done"]


def test_a_heading_ends_a_paragraph_and_is_one_itself() -> None:
    assert texts(README, "paragraphs") == [
        "Frobnicator for Debian",
        "Overview",
        "The frobnicator turns widgets into gadgets. It reads its settings from\n"
        "/etc/frob.conf, e.g. the widget size. Run it as root!",
        "Features:\n * fast start\n * small memory use",
        "Installing from source\nneeds a C compiler",
        "Report bugs with reportbug",
    ]
    assert texts(MARKDOWN, "paragraphs") == [
        "Frob",
        "Frob turns widgets into gadgets. Fast.",
        "Usage",
        "Run `frob` in a shell.",
        "Six levels deep",
        "#hashtag is no heading\n####### nor are seven",
    ]
    assert texts(RST, "paragraphs") == ["Reference", "Options", "-v  talk more.\n-q  talk less.", "Done"]


def test_heading_offsets() -> None:
    spans = split("Intro\n## Usage ##\nTitle\n-----\n", "sentences")
    assert [(s.text, s.start, s.end) for s in spans] == [("Intro", 0, 5), ("Usage", 9, 14), ("Title", 18, 23)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an underline needs three characters, all the same; a shorter one is decoration still
        ("Not a title\n--\nnext line", ["Not a title", "next line"]),
        ("Before\nTitle\n^^^\nAfter", ["Before", "Title", "After"]),
        ("Before\nTitle\n=-=\nAfter", ["Before\nTitle", "After"]),
        ("Title\n```\ncode", ["Title", "code"]),
        # a blank line is any whitespace, \r\n line ends included
        ("one\r\n \t\r\ntwo", ["one", "two"]),
        ("A sentence that goes on\n\nand on.", ["A sentence that goes on", "and on."]),
    ],
)
def test_lines_that_cut(text: str, expected: list[str]) -> None:
    assert texts(text, "sentences") == expected


@pytest.mark.parametrize("text", ["========", "-----\n\n* * *\n", "  ~~~  \n...\n", "#\n##\n", ""])
def test_decoration_alone_gives_no_piece(text: str) -> None:
    for mode in MODES:
        assert split(text, mode) == []


def test_decoration_is_no_part_of_any_piece() -> None:
    text = "a line\n* * *\nanother line\n===\n"
    assert texts(text, "sentences") == ["a line", "another line"]
    assert texts(text, "paragraphs") == ["a line", "another line"]
    # none keeps the text whole: only leading and trailing decoration goes
    assert texts("=====\n" + text, "none") == ["a line\n* * *\nanother line"]


ALL_TEXTS = [
    *(text for text, _ in CASES),
    README,
    MARKDOWN,
    RST,
    "  First one.  Second one?\n\tThird!  ",
    "Line one.\nstill one.\n\n  Two. Two again.\n \n\n\nThree",
    "=====\n\n--\n # x #\nTitle\n'''''\n\r\n",
]


@pytest.mark.parametrize("text", ALL_TEXTS)
def test_pieces_point_into_the_source_in_every_mode(text: str) -> None:
    for mode in MODES:
        assert_pieces_are_sound(text, split(text, mode))
    for mode in ("sentences", "paragraphs"):
        assert not any("\n\n" in span.text for span in split(text, mode))


def assert_pieces_are_sound(text: str, spans: list[Span]) -> None:
    last_end = 0
    for span in spans:
        assert span.text and span.text == span.text.strip()
        assert text[span.start : span.end] == span.text
        assert span.start >= last_end
        last_end = span.end


def source_lines(text: str) -> list[tuple[int, int, str]]:
    lines, start = [], 0
    for line in text.split("\n"):
        lines.append((start, start + len(line), line))
        start += len(line) + 1
    return lines


@given(st.text(alphabet=st.sampled_from(list("ab A.!?。\n\"'”) 3가=-\t")), max_size=80))
def test_pieces_skip_blank_and_decoration_lines_and_cover_every_other_character(text: str) -> None:
    for mode in ("sentences", "paragraphs"):
        spans = split(text, mode)
        assert_pieces_are_sound(text, spans)
        assert not any("\n\n" in span.text for span in spans)
        covered = {i for span in spans for i in range(span.start, span.end)}
        for start, end, line in source_lines(text):
            if any(c.isalnum() for c in line):
                assert {i for i in range(start, end) if not text[i].isspace()} <= covered
            else:  # blank or decoration: inside no piece
                assert not covered & set(range(start, end))


# --- through the index: Index.add(split=...) and `searchkit index --split` ------------------

DOC = "Dr. Smith arrived. He was late! Nobody minded."


def pieces_of(index: Index) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in index.export()}


def test_each_sentence_becomes_an_item_with_its_parent_and_offsets(tmp_path: Path, tiny: Any) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    report = index.add([{"id": "doc", "text": DOC, "lang": "en"}], split="sentences")
    assert report.added == 3
    items = pieces_of(index)
    assert list(items) == ["doc#0", "doc#1", "doc#2"]
    assert [i["text"] for i in items.values()] == ["Dr. Smith arrived.", "He was late!", "Nobody minded."]
    for position, item in enumerate(items.values()):
        meta = item["metadata"]
        assert (meta["parent"], meta["position"], meta["lang"]) == ("doc", position, "en")
        assert DOC[meta["start"] : meta["end"]] == item["text"]
    assert index.search("He was late!", k=1)[0].id == "doc#1"


def test_a_shorter_text_loses_its_old_pieces_and_an_unchanged_one_embeds_nothing(
    tmp_path: Path, tiny: Any
) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add([{"id": "doc", "text": DOC}, {"id": "doc#notes", "text": "not a piece. Kept."}])
    assert set(pieces_of(index)) == {"doc", "doc#notes"}
    report = index.add([{"id": "doc", "text": DOC}], split="sentences")
    # the whole-text item "doc" is replaced by its pieces; "doc#notes" is no piece of it
    assert (report.added, report.deleted) == (3, 1)
    assert set(pieces_of(index)) == {"doc#0", "doc#1", "doc#2", "doc#notes"}
    embedded = tiny.texts_embedded
    again = index.add([{"id": "doc", "text": DOC}], split="sentences")
    assert (again.unchanged, again.deleted, tiny.texts_embedded) == (3, 0, embedded)
    shorter = index.add([{"id": "doc", "text": "Only one now."}], split="sentences")
    assert (shorter.updated, shorter.deleted) == (1, 2)
    assert set(pieces_of(index)) == {"doc#0", "doc#notes"}
    assert index.vectors.ntotal == len(index) == 2
    assert {h.id for h in index.search("He was late!", k=10)} == {"doc#0", "doc#notes"}
    assert index.check().ok


def test_paragraph_pieces_in_an_index(tmp_path: Path, tiny: Any) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add([{"id": "p", "text": "One. Still one.\n\nTwo."}], split="paragraphs")
    assert [i["text"] for i in pieces_of(index).values()] == ["One. Still one.", "Two."]


def test_a_field_the_split_sets_is_refused_and_nothing_changes(tmp_path: Path, tiny: Any) -> None:
    index = Index.create(tmp_path / "i", embedder=tiny)
    index.add([{"id": "a", "text": "Kept. As is."}], split="sentences")
    before = pieces_of(index)
    with pytest.raises(InputError, match="field 'parent' is set by --split"):
        index.add([{"id": "b", "text": "New. Text.", "parent": "x"}], split="sentences")
    assert pieces_of(index) == before
    with pytest.raises(UsageError, match="unknown split mode 'words'"):
        index.add([{"id": "b", "text": "x"}], split="words")


def test_cli_split(tmp_path: Path, model: Any) -> None:
    from typer.testing import CliRunner

    from searchkit.cli import app

    source = tmp_path / "docs.jsonl"
    source.write_text(json.dumps({"id": "d1", "text": DOC}) + "\n", encoding="utf-8")
    out = CliRunner().invoke(app, ["index", str(tmp_path / "i"), str(source), "--split", "sentences"])
    assert out.exit_code == 0, out.output
    assert "3 added" in out.output
    out = CliRunner().invoke(app, ["query", str(tmp_path / "i"), "Was he on time?", "-k", "1", "--json"])
    assert json.loads(out.output)["hits"][0]["id"] == "d1#1"
    bad = CliRunner().invoke(app, ["index", str(tmp_path / "i"), str(source), "--split", "words"])
    assert bad.exit_code == 1 and "unknown split mode 'words'" in bad.output


# --- query --group-by-parent ---------------------------------------------------------------


class TopicEmbedder(TinyEmbedder):
    """Texts starting with "a", "b" or "c" point near one axis each (a little noise apart),
    so that every "a" piece is closer to an "a" query than any other piece."""

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        noise = super().encode(texts) * 0.01
        axes = np.eye(self.dimension, dtype=np.float32)[[max(0, "abc".find(t[:1].lower())) for t in texts]]
        return axes + noise


def test_parents_are_ranked_by_their_best_piece_even_when_one_parent_fills_the_top(tmp_path: Path) -> None:
    embedder = TopicEmbedder()
    index = Index.create(tmp_path / "i", embedder=embedder, metric="dot")
    long_a = " ".join(f"A sentence number {n}." for n in range(100))  # 100 pieces, all near "a"
    index.add(
        [
            {"id": "A", "text": long_a},
            {"id": "B", "text": "B one. B two."},
            {"id": "C", "text": "C only."},
        ],
        split="sentences",
    )
    index.add([{"id": "whole", "text": "c whole item, not split"}])  # an item indexed whole
    assert len(index) == 100 + 2 + 1 + 1
    query = "a query"
    hits = index.search(query, k=3, group_by_parent=True)
    assert hits.exact
    # brute force: each parent scored by its best piece
    vector = embedder.encode([query])[0]
    best: dict[str, float] = {}
    for item in index.export(vectors=True):
        parent = item["metadata"].get("parent", item["id"])
        best[parent] = max(best.get(parent, -np.inf), float(np.dot(vector, item["embedding"])))
    expected = sorted(best, key=lambda p: -best[p])[:3]
    assert [h.id for h in hits] == expected and expected[0] == "A"
    assert [h.score for h in hits] == pytest.approx([best[p] for p in expected], abs=1e-5)
    assert hits[0].text.startswith("A sentence number") and hits[0].metadata["parent"] == "A"
    assert [h.rank for h in hits] == [1, 2, 3]
    everything = index.search(query, k=10, group_by_parent=True)
    assert sorted(h.id for h in everything) == ["A", "B", "C", "whole"]  # fewer parents than k


def test_group_by_parent_composes_with_filters_and_the_cli(tmp_path: Path, model: Any) -> None:
    from typer.testing import CliRunner

    from searchkit.cli import app

    source = tmp_path / "docs.jsonl"
    docs = [
        {"id": "rain", "text": "It will rain tomorrow. Bring an umbrella.", "kind": "weather"},
        {"id": "sun", "text": "The sun is out. It is warm.", "kind": "weather"},
        {"id": "pasta", "text": "Boil the pasta. Add salt to the water.", "kind": "food"},
    ]
    source.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    runner = CliRunner()
    built = runner.invoke(app, ["index", str(tmp_path / "i"), str(source), "--split", "sentences"])
    assert built.exit_code == 0, built.output
    args = ["query", str(tmp_path / "i"), "Will it rain?", "-k", "2", "--group-by-parent", "--json"]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    hits = json.loads(out.output)["hits"]
    assert [h["id"] for h in hits] == ["rain", "sun"]
    assert hits[0]["text"] == "It will rain tomorrow." and hits[0]["metadata"]["position"] == 0
    out = runner.invoke(app, [*args, "--where", '{"kind": "food"}'])
    assert [h["id"] for h in json.loads(out.output)["hits"]] == ["pasta"]
