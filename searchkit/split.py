"""Split a text into sentences or paragraphs, with character offsets. No model, no download.

A sentence ends at ``.``, ``!``, ``?`` or ``…`` (with any closing quotes or brackets after
it) followed by whitespace and a character that may start a sentence; or at a CJK full
stop or full-width ``!``/``?`` (with or without a space after it). A period does not end a sentence
after a known abbreviation (``Dr.``, ``e.g.``, ``U.S.``), after a single capital (an
initial, ``J. Smith``), inside a number (``3.14``), or before a lower-case word. Korean
and other scripts without letter case end a sentence at any of these marks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["MODES", "Span", "split"]

MODES = ("none", "sentences", "paragraphs")

# Lower-case, without the final period; dotted ones are matched as a whole token.
_ABBREVIATIONS = frozenset(
    " ".join(
        (
            "mr mrs ms dr prof sr jr st mt vs etc al inc ltd co corp dept univ approx ca cf resp",
            "viz esp est gen jan feb mar apr jun jul aug sep sept oct nov dec col lt sgt capt rev",
            "hon e.g i.e u.s u.k u.n a.m p.m ph.d b.a m.a m.sc b.sc",
        )
    ).split()
)
# Abbreviations only before a number: "Fig. 2", "No. 5" (but "I said no. Then").
_BEFORE_NUMBERS = frozenset(" ".join(("fig figs eq eqs no nos vol vols", "pp p ch sec ref tab")).split())
# Escaped: the CJK full stop, full-width ! and ?; closing quotes and brackets, CJK ones too.
_CJK_STOPS = "\u3002\uff01\uff1f"
_CLOSERS = "\"')]}\u00bb\u201d\u2019\u300d\u300f\u3011"
# A candidate end: the mark(s), closing quotes/brackets, then whitespace or a CJK stop.
_END = re.compile(rf"(?:[.!?\u2026]+[{re.escape(_CLOSERS)}]*(?=\s)|[{_CJK_STOPS}]+[{re.escape(_CLOSERS)}]*)")
_PARAGRAPH = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Span:
    """One piece of a text: `text` is ``source[start:end]``."""

    text: str
    start: int
    end: int


def split(text: str, mode: str = "sentences") -> list[Span]:
    """The non-empty pieces of `text` for `mode` (``none``, ``sentences``, ``paragraphs``)."""
    if mode not in MODES:
        raise ValueError(f"unknown split mode {mode!r}: choose one of {', '.join(MODES)}")
    if mode == "none":
        return list(_trimmed(text, [(0, len(text))]))
    if mode == "paragraphs":
        return list(_trimmed(text, _between(text, (m.start() for m in _PARAGRAPH.finditer(text)))))
    return list(_trimmed(text, _between(text, _sentence_ends(text))))


def _sentence_ends(text: str) -> Iterator[int]:
    for match in _END.finditer(text):
        if _ends_sentence(text, match.start(), match.end()):
            yield match.end()


def _ends_sentence(text: str, mark: int, end: int) -> bool:
    if text[mark] in _CJK_STOPS:
        return True
    following = text[end:].lstrip()
    if not following:
        return True
    nxt = following[0]
    if text[mark:end] == ".":  # a bare period; one before a closing quote ends a sentence
        word = _word_before(text, mark).lower()
        if word in _ABBREVIATIONS or (word in _BEFORE_NUMBERS and nxt.isdigit()):
            return False
        if len(word) == 1 and word.isalpha() and text[mark - 1].isupper():
            return False  # an initial: "J. Smith"
    # A lower-case start continues the sentence ("approx. three", "ratio 3.5 vs. 2");
    # scripts without case (Korean, CJK) and digits or quotes may start a new one.
    return not nxt.islower()


def _word_before(text: str, mark: int) -> str:
    """The token before a period: letters and inner periods (``e.g``, ``U.S``, ``Dr``)."""
    start = mark
    while start > 0 and (text[start - 1].isalpha() or text[start - 1] == "."):
        start -= 1
    return text[start:mark].lstrip(".")


def _between(text: str, cuts: Iterator[int]) -> Iterator[tuple[int, int]]:
    start = 0
    for cut in cuts:
        yield start, cut
        start = cut
    yield start, len(text)


def _trimmed(text: str, ranges: Iterator[tuple[int, int]] | list[tuple[int, int]]) -> Iterator[Span]:
    for start, end in ranges:
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            begin = start + lead
            yield Span(stripped, begin, begin + len(stripped))
