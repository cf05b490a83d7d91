"""Split a text into sentences or paragraphs, with character offsets. No model, no download.

The text is read line by line first. A blank line ends a paragraph, and a sentence with it.
A heading is a piece of its own and ends the paragraph before it: a Markdown ATX heading
(``# Title``; the piece is the title, without the ``#`` marks) or a setext/reStructuredText
one, a line of text underlined (and maybe overlined) with three or more of one punctuation
character (``=====``, ``-----``, ``~~~~~``). A line with no letter or digit (``=====``,
``* * *``) is decoration: it is part of no piece, and ends the paragraph it is in. ``none``
gives the text from its first to its last line with a letter or digit, or nothing.

Within a paragraph, a sentence ends at ``.``, ``!``, ``?`` or ``…`` (with any closing quotes
or brackets after it) followed by whitespace and a character that may start a sentence; or
at a CJK full stop or full-width ``!``/``?`` (with or without a space after it). A period
does not end a sentence after a known abbreviation (``Dr.``, ``e.g.``, ``U.S.``), after a
single capital (an initial, ``J. Smith``), inside a number (``3.14``), or before a
lower-case word. Korean and other scripts without letter case end a sentence at any of
these marks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["MODES", "Span", "check_mode", "split"]

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
# A Markdown ATX heading: up to three spaces, one to six "#", the title, maybe closing "#"s.
_ATX = re.compile(r"[ \t]{0,3}#{1,6}(?:\s+(?P<title>.*?))??(?:\s+#+)?\s*")
# A setext or reStructuredText underline (or overline): one punctuation character, 3+ times.
_UNDERLINE = re.compile(r"\s*([=\-~^*#+_'\":.`])\1{2,}\s*")
_VISIBLE = re.compile(r"\S")


@dataclass(frozen=True)
class Span:
    """One piece of a text: `text` is ``source[start:end]``."""

    text: str
    start: int
    end: int


class _Line(NamedTuple):
    start: int
    end: int
    kind: str  # "blank", "decoration", "heading" (start and end are its title's) or "text"


def check_mode(mode: str) -> None:
    """A UsageError for a split mode that is not one of MODES (before any input is read)."""
    from searchkit.errors import UsageError

    if mode not in MODES:
        raise UsageError(f"unknown split mode {mode!r}: choose one of {', '.join(MODES)}")


def split(text: str, mode: str = "sentences") -> list[Span]:
    """The non-empty pieces of `text` for `mode` (``none``, ``sentences``, ``paragraphs``)."""
    if mode not in MODES:
        raise ValueError(f"unknown split mode {mode!r}: choose one of {', '.join(MODES)}")
    if mode == "none":
        content = [(start, end) for start, end in _line_bounds(text) if _has_word(text[start:end])]
        return list(_trimmed(text, [(content[0][0], content[-1][1])] if content else []))
    blocks = _blocks(_lines(text))
    if mode == "paragraphs":
        return list(_trimmed(text, ((start, end) for start, end, _ in blocks)))
    return list(_trimmed(text, _sentences(text, blocks)))


def _line_bounds(text: str) -> list[tuple[int, int]]:
    """Where each line of `text` starts and ends, without its line break."""
    bounds = []
    start = 0
    for end in [m.start() for m in re.finditer("\n", text)] + [len(text)]:
        bounds.append((start, end))
        start = end + 1
    return bounds


def _lines(text: str) -> list[_Line]:
    bounds = _line_bounds(text)
    underlined = [_UNDERLINE.fullmatch(text, start, end) is not None for start, end in bounds[1:]]
    return [
        _line(text, start, end, below)
        for (start, end), below in zip(bounds, [*underlined, False], strict=True)
    ]


def _line(text: str, start: int, end: int, underlined: bool) -> _Line:
    line = text[start:end]
    if not line.strip():
        return _Line(start, end, "blank")
    if not _has_word(line):
        return _Line(start, end, "decoration")
    atx = _ATX.fullmatch(text, start, end)
    if atx is not None:  # a line with a letter or digit has them in its title
        return _Line(atx.start("title"), atx.end("title"), "heading")
    return _Line(start, end, "heading" if underlined else "text")


def _has_word(line: str) -> bool:
    return any(c.isalnum() for c in line)


def _blocks(lines: list[_Line]) -> list[tuple[int, int, bool]]:
    """Paragraphs (runs of text lines) and headings, in order, with whether each is a heading."""
    blocks = []
    run: list[_Line] = []
    for line in [*lines, _Line(0, 0, "blank")]:
        if line.kind == "text":
            run.append(line)
            continue
        if run:
            blocks.append((run[0].start, run[-1].end, False))
            run = []
        if line.kind == "heading":
            blocks.append((line.start, line.end, True))
    return blocks


def _sentences(text: str, blocks: list[tuple[int, int, bool]]) -> Iterator[tuple[int, int]]:
    for start, end, heading in blocks:
        if heading:
            yield start, end
        else:
            yield from _between(start, end, _sentence_ends(text, start, end))


def _sentence_ends(text: str, start: int, end: int) -> Iterator[int]:
    for match in _END.finditer(text, start, end):
        if _ends_sentence(text, match.start(), match.end(), end):
            yield match.end()


def _ends_sentence(text: str, mark: int, end: int, stop: int) -> bool:
    if text[mark] in _CJK_STOPS:
        return True
    following = _VISIBLE.search(text, end, stop)
    if following is None:
        return True
    nxt = following.group()
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


def _between(start: int, end: int, cuts: Iterator[int]) -> Iterator[tuple[int, int]]:
    for cut in cuts:
        yield start, cut
        start = cut
    yield start, end


def _trimmed(text: str, ranges: Iterable[tuple[int, int]]) -> Iterator[Span]:
    for start, end in ranges:
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            begin = start + lead
            yield Span(stripped, begin, begin + len(stripped))
