"""The formats: one source's decoded lines in, its records out.

- ``txt``: by `unit`: one item per non-empty line (``line``), per block of lines between
  blank lines (``paragraph``), or the whole file (``file``).
- ``md`` (Markdown, reStructuredText) and ``html`` (its text, markup.py): one item per file.
- ``csv`` / ``tsv``: a header row; the text field, the id field if present, every other
  column kept as string metadata; a row of only empty fields is skipped and counted.
- ``jsonl``: one JSON object per line; ``json``: one array of objects (read whole).
- ``parquet``: one item per row (parquet.py).

Ids: a whole file's item is its resolved path; a line, paragraph or row without an id
field is ``PATH:HASH``, HASH from its content, so that an edit elsewhere in the file keeps
it, and two different pipes never share one (``stdin:HASH``). A record's ``source`` says
where it is: ``PATH:LINE``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from searchkit.errors import InputError
from searchkit.readers.fields import json_type, record_of, text_fields
from searchkit.readers.report import NotItems, Problems, ReadReport
from searchkit.types import Record

__all__ = ["UNITS", "Options", "Place", "detect", "read_lines"]

UNITS = ("line", "paragraph", "file")
Lines = Iterator[tuple[int, str]]

# A text field may be a whole document: lift the csv module's 128 KiB cap on one field.
csv.field_size_limit(1 << 30)


@dataclass(frozen=True)
class Options:
    """How the inputs are read (the CLI's options; see read_inputs)."""

    text_field: str = "text"
    id_field: str = "id"
    unit: str = "line"
    encoding: str | None = None
    delimiter: str | None = None
    skip_bad: bool = False


@dataclass(frozen=True)
class Place:
    """The source being read, as its records need it: `name` for messages, `base` for ids
    and sources (its resolved path, or ``stdin``), `origin` for the record."""

    name: str
    base: str
    origin: str | None
    problems: Problems
    report: ReadReport

    def key(self, content: Any) -> str:
        digest = hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        return f"{self.base}:{digest[:12]}"

    def record(self, text: str, line: int | None) -> Record:
        """A text's record: of the whole source (`line` None), or of a part starting at `line`.
        A whole file is keyed by its path; a piped document, as every piped text, by its
        content (two pipes never share an id)."""
        key = self.base if line is None and self.origin is not None else self.key(text)
        source = self.base if line is None else f"{self.base}:{line}"
        return Record(text, key, {}, source, origin=self.origin)


def read_lines(place: Place, lines: Lines, fmt: str, options: Options) -> Iterator[Record]:
    """The records of a text source in format `fmt` (not ``auto``: see detect)."""
    if fmt == "txt":
        yield from _TXT[options.unit](place, lines)
    elif fmt in ("md", "html"):
        yield from _document(place, lines, fmt)
    elif fmt == "jsonl":
        yield from _jsonl(place, lines, options)
    elif fmt == "json":
        yield from _json(place, lines, options)
    else:
        delimiter = options.delimiter or ("\t" if fmt == "tsv" else ",")
        yield from _table(place, lines, delimiter, options)


def detect(first: str, text_field: str) -> tuple[str, str, str | None]:
    """The format of a source whose first non-blank line is `first`, why, and for a table
    the delimiter its header shows."""
    from searchkit.markup import is_html

    line = first.strip()
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return "jsonl", "its first line is a JSON object", None
    # A JSON document spread over lines: "[", "[{", '{"key": ...'; not "[Unit]" or "{{ template }}".
    if isinstance(value, list) or line in ("[", "{") or line.startswith(("[{", '["', '{"', "[ {")):
        return "json", f"it starts with {line[0]}", None
    if is_html(line):
        return "html", "it starts as an HTML document", None
    for delimiter, fmt in (("\t", "tsv"), (",", "csv"), (";", "csv"), ("|", "csv")):
        columns = [c.strip() for c in next(csv.reader([line], delimiter=delimiter), [])]
        if len(columns) >= 2 and all(f in columns for f in text_fields(text_field)):
            shown = "" if delimiter in ",\t" else f", separated by {delimiter!r}"
            return fmt, f"its first line is a header with a {text_field!r} column{shown}", delimiter
    return "txt", "plain text", None


def _lines(place: Place, lines: Lines) -> Iterator[Record]:
    for number, line in lines:
        text = line.strip()
        if text:
            yield place.record(text, number)


def _paragraphs(place: Place, lines: Lines) -> Iterator[Record]:
    block: list[str] = []
    first = 0
    for number, line in lines:
        if line.strip():
            first = first if block else number
            block.append(line.strip())
        elif block:
            yield place.record("\n".join(block), first)
            block = []
    if block:
        yield place.record("\n".join(block), first)


def _whole(place: Place, lines: Lines) -> Iterator[Record]:
    text = "".join(line for _, line in lines).strip()
    if text:
        yield place.record(text, None)


_TXT = {"line": _lines, "paragraph": _paragraphs, "file": _whole}


def _document(place: Place, lines: Lines, fmt: str) -> Iterator[Record]:
    if fmt == "md":
        yield from _whole(place, lines)
        return
    from searchkit.markup import html_text

    text = html_text("".join(line for _, line in lines))
    if text:
        yield place.record(text, None)


def _jsonl(place: Place, lines: Lines, options: Options) -> Iterator[Record]:
    for number, line in lines:
        if not line.strip():
            continue
        where = f"{place.name} line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            place.problems.bad(InputError(f"{where}: not valid JSON ({exc.msg}); fix or remove the line"))
            continue
        # Only an escape can hold half a UTF-16 pair (decoded text cannot): look no further.
        record = _object(place, where, obj, options, number, surrogates="\\u" in line.lower())
        if record is not None:
            yield record


def _json(place: Place, lines: Lines, options: Options) -> Iterator[Record]:
    whole = "".join(line for _, line in lines)
    if not whole.strip():
        return  # an empty file, as in every other format: no records
    try:
        data = json.loads(whole)
    except json.JSONDecodeError as exc:
        raise InputError(f"{place.name} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, list):
        raise NotItems(
            f"{place.name}: a JSON file is read as an array of objects, and this holds {json_type(data)}; "
            "write one object per line as JSON Lines (.jsonl)"
        )
    for number, obj in enumerate(data, start=1):
        record = _object(place, f"{place.name} item {number}", obj, options, number, surrogates=True)
        if record is not None:
            yield record


def _object(
    place: Place, where: str, obj: Any, options: Options, number: int, surrogates: bool
) -> Record | None:
    if not isinstance(obj, dict):
        place.problems.bad(InputError(f"{where}: expected a JSON object, found {json_type(obj)}"))
        return None
    if surrogates and _has_lone_surrogate(obj):
        place.problems.bad(InputError(f"{where}: a \\ud800-\\udfff escape with no pair is not text; fix it"))
        return None
    return _row(place, where, obj, options, number)


def _row(place: Place, where: str, obj: dict[str, Any], options: Options, line: int) -> Record | None:
    try:
        record = record_of(where, obj, options.text_field, options.id_field, default_key="")
    except InputError as error:
        place.problems.bad(error)
        return None
    given = options.id_field in obj and obj[options.id_field] not in (None, "")
    key = record.key if given else place.key([record.text, record.metadata])
    return Record(record.text, key, record.metadata, f"{place.base}:{line}", record.embedding, place.origin)


def _table(place: Place, lines: Lines, delimiter: str, options: Options) -> Iterator[Record]:
    current = [0]

    def texts() -> Iterator[str]:
        for number, line in lines:
            current[0] = number
            yield line

    reader = csv.reader(texts(), delimiter=delimiter, strict=True)
    kind = "TSV" if delimiter == "\t" else "CSV"
    try:
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        _check_header(place.name, header, delimiter, options.text_field)
        ended = current[0]
        for row in reader:
            # A quoted field may span lines: a record is named by its first line.
            first, ended = ended + 1, current[0]
            if not any(field.strip() for field in row):
                if row and not place.problems.quiet:  # a blank line is no row at all
                    place.report.empty_rows += 1
                continue
            where = f"{place.name} line {first}"
            if len(row) != len(header):
                place.problems.bad(
                    InputError(
                        f"{where}: {len(row)} fields where the header has {len(header)}; "
                        "quote fields that contain the delimiter"
                    )
                )
                continue
            record = _row(place, where, dict(zip(header, row, strict=True)), options, first)
            if record is not None:
                yield record
    except csv.Error as exc:
        raise InputError(f"{place.name} line {current[0]}: malformed {kind} ({exc})") from None


def _check_header(name: str, header: list[str], delimiter: str, text_field: str) -> None:
    missing = [f for f in text_fields(text_field) if f not in header]
    if not missing:
        return
    hint = "name the text column with --text-field"
    others = [d for d in (";", "\t", "|", ",") if d != delimiter and d in delimiter.join(header)]
    if len(header) == 1 and others:
        shown = "\\t" if others[0] == "\t" else others[0]
        hint = f"its columns look separated by '{shown}': pass --delimiter '{shown}'"
    raise InputError(f"{name}: no {missing[0]!r} column (columns: {', '.join(header)}); {hint}")


def _has_lone_surrogate(obj: object) -> bool:
    """JSON can escape half a UTF-16 pair; such a string cannot be stored as UTF-8."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
