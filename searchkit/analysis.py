"""Keyword analysis: the terms that the keyword index (FTS5, store/fulltext.py) holds for a
text, and those a query looks for. Query and document go through the same functions.

FTS5's ``unicode61`` tokenizer (with Porter stemming) cuts text at spaces and punctuation,
right for European languages and wrong for Chinese and Japanese, which put no spaces between
words, and for Korean, which glues particles to them (축구를: "football" + object marker).
So runs of Han, Hiragana, Katakana and Hangul are split here, in Python (Python's sqlite3
cannot register an FTS5 tokenizer), and everything else is left to ``unicode61`` as before:

- ``cjk-bigrams+unigrams`` (the default): each CJK run becomes its characters and its
  overlapping bigrams, interleaved (足球场: 足 足球 球 球场 场), as Lucene's CJKBigramFilter with
  ``outputUnigrams``. A word typed as a query then matches wherever it occurs, particles or
  no particles, without a dictionary. On KorSTS dev as paraphrase retrieval
  (scripts/eval_korsts.py) keyword NDCG@10 was 0.845 with unicode61 words, 0.896 with
  bigrams alone, 0.910 with bigrams and unigrams, and 0.914 with Kiwi's Korean morphemes
  (kiwipiepy), about one query in 261 ahead for a dependency, a model to load (a second
  in every process) and Korean alone; these need nothing and serve Chinese and Japanese too.
- ``words``: no CJK analysis at all, what searchkit did before migration m008.

`analyze` gives the text the index holds for an item (None for a text without CJK
characters: its text is indexed as it is, exactly as before), `terms` those a query looks
for, and `spans` where a query's terms occur in a text (to mark them on a page).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator

from searchkit.errors import UsageError

__all__ = [
    "ANALYSES",
    "DEFAULT",
    "MAX_TERMS",
    "TOKENIZE",
    "WORDS",
    "Splitter",
    "analyze",
    "has_cjk",
    "optional_terms",
    "spans",
    "terms",
]

# The scripts split here, as code point ranges: Hangul Jamo, Hiragana and Katakana (with the
# prolonged sound mark, less the middle dot), Hangul compatibility Jamo, Katakana phonetic
# extensions, CJK Ext. A, the iteration mark and ideographic zero, the unified ideographs,
# Hangul Jamo ext. A, syllables and ext. B, compatibility ideographs, half-width Katakana,
# and the supplementary ideographs. Every one is a letter or number to unicode61, so a unit
# made of them stays one token there.
_RANGES = (
    ("\u1100", "\u11ff"),
    ("\u3005", "\u3005"),
    ("\u3007", "\u3007"),
    ("\u3041", "\u3096"),
    ("\u309d", "\u309f"),
    ("\u30a1", "\u30fa"),
    ("\u30fc", "\u30ff"),
    ("\u3131", "\u318e"),
    ("\u31f0", "\u31ff"),
    ("\u3400", "\u4dbf"),
    ("\u4e00", "\u9fff"),
    ("\ua960", "\ua97f"),
    ("\uac00", "\ud7a3"),
    ("\ud7b0", "\ud7ff"),
    ("\uf900", "\ufaff"),
    ("\uff66", "\uff9f"),
    ("\U00020000", "\U0003134f"),
)
_CLASS = "".join(a if a == b else f"{a}-{b}" for a, b in _RANGES)
_RUN = re.compile(f"[{_CLASS}]+")
# The keyword index's FTS5 tokenizer (m002): Porter stemming over unicode61, diacritics folded.
TOKENIZE = "porter unicode61 remove_diacritics 2"
# A query's words, as before CJK support: FTS5 reads each as a quoted string.
_WORD = re.compile(r"\w+", re.UNICODE)
# Terms beyond this many are dropped from a query: an OR query costs more with each term
# and gains little. (Was 64 words; CJK units come two per character.)
MAX_TERMS = 128

# A splitter turns one run of CJK characters into its units: (term, start, end) in the run.
Splitter = Callable[[str], list[tuple[str, int, int]]]
WORDS = "words"
DEFAULT = "cjk-bigrams+unigrams"


def _unigrams_and_bigrams(run: str) -> list[tuple[str, int, int]]:
    units = []
    for i, char in enumerate(run):
        units.append((char, i, i + 1))
        if i + 1 < len(run):
            units.append((run[i : i + 2], i, i + 2))
    return units


# The analyses an index may record (state 'analysis'), by name; None: no CJK analysis.
# The name is stored in the index: change what one does only under a new name (and a
# migration that re-analyses the items).
ANALYSES: dict[str, Splitter | None] = {WORDS: None, DEFAULT: _unigrams_and_bigrams}


def has_cjk(text: str) -> bool:
    """Whether `text` holds a character of the scripts analysed here."""
    return _RUN.search(text) is not None


def analyze(text: str, analysis: str = DEFAULT) -> str | None:
    """What the keyword index holds for `text`: each CJK run replaced by its units, the
    rest of the text as it is (unicode61 reads it as before); None when that is `text`
    itself (no CJK character, or an analysis without CJK splitting)."""
    split = _splitter(analysis)
    if split is None or not has_cjk(text):
        return None
    parts: list[str] = []
    last = 0
    for match in _RUN.finditer(text):
        parts.append(text[last : match.start()].strip())
        parts.append(" ".join(term for term, _, _ in split(match.group())))
        last = match.end()
    parts.append(text[last:].strip())
    return " ".join(p for p in parts if p)


def terms(query: str, analysis: str = DEFAULT) -> list[str]:
    """The distinct terms a keyword query for `query` looks for, in order (at most
    MAX_TERMS): its words lowercased, and its CJK runs' units."""
    found: list[str] = []
    for kind, term, _, _ in _tokens(query, _splitter(analysis)):
        if kind != "cjk-run":
            found.append(term.lower())
    return list(dict.fromkeys(found))[:MAX_TERMS]


def optional_terms(query: str, analysis: str = DEFAULT) -> set[str]:
    """The terms of `query` that a search may leave out where they are common: its single
    CJK characters inside longer runs (a query run of one character is never optional).

    In a run's units the characters add recall (a stem shared by two forms of a word: 추고,
    춘다) but a common one ranks nothing and costs the most: FTS5 scores every item that holds
    any term, and 는 or 다 is in most Korean texts (fulltext.py drops those in over 5% of the
    items: as good on KorSTS dev, and a third of the time at 100,000 items)."""
    tokens = list(_tokens(query, _splitter(analysis)))
    whole = {term for kind, term, _, _ in tokens if kind == "cjk-run"}
    return {term for kind, term, _, _ in tokens if kind == "cjk" and len(term) == 1 and term not in whole}


def spans(text: str, query: str, analysis: str = DEFAULT) -> list[tuple[int, int]]:
    """Where `query`'s terms occur in `text`: (start, end) character offsets, in order, not
    overlapping; what a page marks in a keyword or hybrid hit.

    Words match as the index matches them (Porter stems: "foxes" marks "fox"). CJK text is
    marked where a unit of two or more characters of the query occurs, or a query run of
    one character: a character that the query only holds inside a longer run is not marked
    alone (a query of 축구 marks 축구를's 축구, not every 구 of the text).
    """
    split = _splitter(analysis)
    query_tokens = list(_tokens(query, split))
    wanted = {t for kind, t, _, _ in query_tokens if kind == "cjk" and len(t) > 1}
    wanted |= {t for kind, t, _, _ in query_tokens if kind == "cjk-run" and len(t) == 1}
    text_tokens = list(_tokens(text, split))
    words = [t for kind, t, _, _ in query_tokens + text_tokens if kind == "word"]
    stems = _stems(words)
    wanted_words = {stems[t] for kind, t, _, _ in query_tokens if kind == "word"}
    found = [
        (start, end)
        for kind, term, start, end in text_tokens
        if (kind == "word" and stems[term] in wanted_words) or (kind == "cjk" and term in wanted)
    ]
    return _merged(found)


def _splitter(analysis: str) -> Splitter | None:
    if analysis not in ANALYSES:
        known = ", ".join(sorted(ANALYSES))
        raise UsageError(f"unknown keyword analysis {analysis!r} (this searchkit knows {known})")
    return ANALYSES[analysis]


def _tokens(text: str, split: Splitter | None) -> Iterator[tuple[str, str, int, int]]:
    """(kind, term, start, end) of `text`: ``word`` (outside CJK runs, or every word
    without a splitter), ``cjk-run`` (a whole run) and then its ``cjk`` units."""
    last = 0
    runs = _RUN.finditer(text) if split is not None else iter(())
    for match in runs:
        yield from _words(text, last, match.start())
        yield "cjk-run", match.group(), match.start(), match.end()
        assert split is not None
        for term, start, end in split(match.group()):
            yield "cjk", term, match.start() + start, match.start() + end
        last = match.end()
    yield from _words(text, last, len(text))


def _words(text: str, start: int, end: int) -> Iterator[tuple[str, str, int, int]]:
    for match in _WORD.finditer(text, start, end):
        yield "word", match.group(), match.start(), match.end()


def _stems(words: list[str]) -> dict[str, str]:
    """Each word as FTS5's tokenizer (the index's: porter over unicode61) indexes it."""
    unique = list(dict.fromkeys(words))
    stems = {w: w.lower() for w in unique}
    if not unique:
        return stems
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(f"CREATE VIRTUAL TABLE t USING fts5(w, tokenize='{TOKENIZE}')")
        conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        conn.executemany("INSERT INTO t (rowid, w) VALUES (?, ?)", enumerate(unique))
        by_row: dict[int, list[str]] = {}
        for doc, term in conn.execute("SELECT doc, term FROM v ORDER BY doc, offset"):
            by_row.setdefault(doc, []).append(term)
    finally:
        conn.close()
    for n, word in enumerate(unique):
        stems[word] = " ".join(by_row.get(n, [word.lower()]))
    return stems


def _merged(found: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
