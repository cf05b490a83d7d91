"""The readable text of an HTML document, for indexing.

BeautifulSoup reads the document with the standard library's ``html.parser``, and is loaded
only when a document is read. Dropped: ``script``, ``style``, ``noscript``, ``template``,
``svg``, the ``head`` except its ``<title>`` (which becomes the first paragraph), comments,
CDATA and processing instructions. Each block element (``p``, ``div``, ``h1``-``h6``, ``li``,
``tr``, ``blockquote``, ``pre``...) is a paragraph of its own, one blank line from the next,
so that ``split(text, "paragraphs")`` gives one piece per block. ``<br>`` is a line break; the
cells of a table row are one line, a space apart. Whitespace in running text collapses to one
space; ``<pre>`` keeps its lines. Entities are decoded (``&nbsp;`` becomes a plain space
outside ``<pre>``); there is never more than one blank line in a row.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bs4 import Tag

__all__ = ["html_text", "is_html"]

# Their text is no part of what a reader sees; the title is taken apart, first.
_DROPPED = frozenset(("script", "style", "noscript", "template", "svg", "head", "title"))
_BLOCKS = frozenset(
    " ".join(
        (
            "address article aside blockquote body caption center dd details dialog dir div dl dt",
            "fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr html legend",
            "li main menu nav ol p pre search section summary table tbody tfoot thead tr ul",
        )
    ).split()
)
_CELLS = frozenset(("td", "th"))
_SPACES = re.compile(r"\s+")
# Whitespace and a byte-order mark before the first tag.
_LEADING = "\ufeff \t\n\r\f"


def html_text(markup: str) -> str:
    """The text of the HTML document `markup`: one paragraph per block, blank lines between."""
    from bs4 import BeautifulSoup

    # bs4 warns that a short string with no "<" or line break looks like a file name or URL;
    # it is a document here, and a line break more is only whitespace to its text.
    soup = BeautifulSoup(markup + "\n", "html.parser")
    text = _Text()
    titles = [title for title in soup.find_all("title") if title.find_parent("svg") is None]
    for root in [*titles[:1], soup]:
        _walk(root, text)
        text.end_block()
    lines = "\n\n".join(text.blocks).split("\n")
    # Blocks have no blank line at either end: only double <br> or a <pre> can make two.
    return "\n".join(line for n, line in enumerate(lines) if line or (n and lines[n - 1])).strip()


def is_html(head: str) -> bool:
    """Whether `head`, the start of a text, looks like an HTML document: ``<!DOCTYPE html`` or
    ``<html`` (any case) after whitespace, a byte-order mark, comments, an XML declaration."""
    rest = head.lstrip(_LEADING)
    while rest.startswith(("<!--", "<?")):
        close = "-->" if rest.startswith("<!--") else "?>"
        end = rest.find(close)
        if end < 0:
            return False
        rest = rest[end + len(close) :].lstrip(_LEADING)
    lower = rest[:16].lower()
    for opening in ("<!doctype html", "<html"):
        if lower.startswith(opening) and lower[len(opening) : len(opening) + 1] in ("", ">", *_LEADING):
            return True
    return False


class _Text:
    """The text of a document as it is walked: the blocks done, and the one being written."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.inline: list[str] = []
        self.verbatim = 0  # inside how many <pre>

    def add(self, string: str) -> None:
        # Line breaks in the source are spaces to a reader; only <br> and <pre> make lines.
        self.inline.append(string if self.verbatim else _SPACES.sub(" ", string))

    def open(self, name: str) -> None:
        if name == "br":
            self.inline.append("\n")
        elif name in _CELLS:
            self.inline.append(" ")
        elif name in _BLOCKS and not self.verbatim:
            self.end_block()
        if name == "pre":
            self.verbatim += 1

    def close(self, name: str) -> None:
        if name == "pre":
            self.verbatim -= 1
            if not self.verbatim:
                self.end_block(verbatim=True)
        elif name in _BLOCKS and not self.verbatim:
            self.end_block()

    def end_block(self, verbatim: bool = False) -> None:
        written = "".join(self.inline)
        self.inline = []
        if verbatim:
            block = "\n".join(line.rstrip() for line in written.splitlines()).strip("\n")
        else:
            block = "\n".join(" ".join(line.split()) for line in written.split("\n")).strip()
        if block:
            self.blocks.append(block)


def _walk(root: Tag, text: _Text) -> None:
    """Write the text under `root` into `text`; a loop, not recursion, for deeply nested tags."""
    from bs4.element import PageElement, PreformattedString, Tag

    pending: list[tuple[PageElement, bool]] = [(child, False) for child in reversed(root.contents)]
    while pending:
        node, closing = pending.pop()
        if isinstance(node, Tag):
            if closing:
                text.close(node.name)
            elif node.name not in _DROPPED:
                text.open(node.name)
                pending.append((node, True))
                pending.extend((child, False) for child in reversed(node.contents))
        elif not isinstance(node, PreformattedString):  # comments, CDATA, doctype, <?...?>
            text.add(str(node))
