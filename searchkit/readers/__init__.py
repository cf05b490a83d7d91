"""Input formats: files, folders and stdin in, one `Record` at a time out.

Readers stream (a generator per file) and know nothing of models or indexes. Every
problem is an `InputError` naming the file and line, raised before the record is
yielded, so a caller that validates first can refuse a whole input cleanly.

Formats (``--format auto`` picks by extension; stdin is jsonl when its first line
is a JSON object, else txt):

- ``txt``: one item per non-empty line; id ``<path>:<line>``.
- ``md``: one item per file (only chosen by extension, in folders); id ``<path>``.
- ``csv`` / ``tsv``: a header row; the text field, the id field if present, every
  other column kept as string metadata.
- ``jsonl``: one JSON object per line; the text field (a string), the id field if
  present (a string or an integer), every other field kept as metadata.
- ``parquet``: one item per row, read by record batches (parquet.py, with pyarrow);
  the same fields as jsonl, and a ``metadata`` column of JSON objects unpacked.

Invalid UTF-8, NUL bytes and malformed records stop the read with the line number:
searchkit never guesses at a corrupt input.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from searchkit.errors import InputError, UsageError
from searchkit.types import Record

__all__ = ["EMBEDDING_FIELD", "FORMATS", "numbers", "read_inputs", "record_of", "text_fields"]

FORMATS = ("auto", "txt", "csv", "tsv", "jsonl", "parquet")
# A JSONL field (or API key) with the item's own vector: indexed as given, not embedded.
EMBEDDING_FIELD = "embedding"
_BY_EXTENSION = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}
STDIN = "-"

# A text field may be a whole document: lift the csv module's 128 KiB cap on one field.
csv.field_size_limit(1 << 30)


def read_inputs(
    inputs: Iterable[str | Path],
    fmt: str = "auto",
    text_field: str = "text",
    id_field: str = "id",
) -> Iterator[Record]:
    """Yield the records of every input in order: files, folders (recursively) or '-'."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    for item in inputs:
        for name, stream, file_fmt in _open_inputs(str(item), fmt):
            with stream:
                yield from _read_stream(name, stream, file_fmt, text_field, id_field)


def _open_inputs(arg: str, fmt: str) -> Iterator[tuple[str, IO[bytes], str]]:
    if arg == STDIN:
        yield "stdin", sys.stdin.buffer, fmt
        return
    path = Path(arg)
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() in _BY_EXTENSION
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            known = ", ".join(sorted(_BY_EXTENSION))
            raise InputError(f"{arg}: no input files in this folder (looked for {known})")
        for file in files:
            try:
                stream = file.open("rb")
            except OSError as exc:
                raise InputError(f"{file}: cannot read ({exc.strerror})") from None
            yield str(file), stream, _BY_EXTENSION[file.suffix.lower()]
        return
    if not path.exists():
        raise InputError(f"{arg}: no such file or folder")
    if fmt == "auto":
        fmt = _BY_EXTENSION.get(path.suffix.lower(), "txt")
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise InputError(f"{arg}: cannot read ({exc.strerror})") from None
    yield str(path), stream, fmt


def _read_stream(name: str, stream: IO[bytes], fmt: str, text_field: str, id_field: str) -> Iterator[Record]:
    if fmt == "parquet":
        from searchkit.parquet import read_records  # pyarrow is loaded for Parquet inputs only

        yield from read_records(name, stream, text_field, id_field)
        return
    lines = _decoded_lines(name, stream)
    if fmt == "auto":  # only stdin gets here
        first = next(lines, None)
        if first is None:
            return
        fmt = "jsonl" if first[1].lstrip().startswith("{") else "txt"
        lines = _chain([first], lines)
    if fmt == "txt":
        yield from _read_txt(name, lines)
    elif fmt == "md":
        yield from _read_md(name, lines)
    elif fmt == "jsonl":
        yield from _read_jsonl(name, lines, text_field, id_field)
    else:
        yield from _read_table(name, lines, "\t" if fmt == "tsv" else ",", text_field, id_field)


def _chain(head: list[tuple[int, str]], rest: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    yield from head
    yield from rest


def _decoded_lines(name: str, stream: IO[bytes]) -> Iterator[tuple[int, str]]:
    """(line number, text) with the newline kept; strict UTF-8, no NUL bytes."""
    for number, raw in enumerate(stream, start=1):
        if b"\x00" in raw:
            raise InputError(
                f"{name} line {number}: contains NUL bytes; is it a binary file? searchkit reads UTF-8 text"
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{name} line {number}: invalid UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                f"{exc.start + 1}); re-encode the file as UTF-8"
            ) from None
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        yield number, text


def _read_txt(name: str, lines: Iterator[tuple[int, str]]) -> Iterator[Record]:
    for number, line in lines:
        text = line.strip()
        if text:
            yield Record(text=text, key=f"{name}:{number}", metadata={}, source=f"{name}:{number}")


def _read_md(name: str, lines: Iterator[tuple[int, str]]) -> Iterator[Record]:
    text = "".join(line for _, line in lines).strip()
    if text:
        yield Record(text=text, key=name, metadata={}, source=name)


def _read_jsonl(
    name: str, lines: Iterator[tuple[int, str]], text_field: str, id_field: str
) -> Iterator[Record]:
    for number, line in lines:
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({exc.msg}); fix or remove the line") from None
        if not isinstance(obj, dict):
            raise InputError(f"{where}: expected a JSON object, found {_json_type(obj)}")
        if "\\u" in line.lower() and _has_lone_surrogate(obj):
            raise InputError(f"{where}: a \\ud800-\\udfff escape with no pair is not text; fix the escape")
        yield record_of(where, obj, text_field, id_field, default_key=f"{name}:{number}")


def _read_table(
    name: str, lines: Iterator[tuple[int, str]], delimiter: str, text_field: str, id_field: str
) -> Iterator[Record]:
    numbered = iter(lines)
    current = [0]

    def texts() -> Iterator[str]:
        for number, line in numbered:
            current[0] = number
            yield line

    reader = csv.reader(texts(), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        missing = [f for f in text_fields(text_field) if f not in header]
        if missing:
            raise InputError(
                f"{name}: no {missing[0]!r} column (columns: {', '.join(header)}); "
                "name the text column with --text-field"
            )
        ended = current[0]
        for row in reader:
            # A quoted field may span lines: a record is named by its first line.
            first, ended = ended + 1, current[0]
            where = f"{name} line {first}"
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                raise InputError(
                    f"{where}: {len(row)} fields where the header has {len(header)}; "
                    "quote fields that contain the delimiter"
                )
            obj = dict(zip(header, row, strict=True))
            yield record_of(where, obj, text_field, id_field, f"{name}:{first}")
    except csv.Error as exc:
        raise InputError(f"{name} line {current[0]}: malformed {_table_name(delimiter)} ({exc})") from None


def _table_name(delimiter: str) -> str:
    return "TSV" if delimiter == "\t" else "CSV"


def text_fields(text_field: str) -> list[str]:
    """``--text-field title,text``: several fields, joined with a space."""
    return [f.strip() for f in text_field.split(",") if f.strip()] or [text_field]


def record_of(where: str, obj: dict[str, Any], text_field: str, id_field: str, default_key: str) -> Record:
    """The record of one parsed row or object (`where` names it in errors): its text field(s),
    its id field, its ``embedding``, every other field as metadata."""
    fields = text_fields(text_field)
    if len(fields) == 1:
        text = _text(where, obj, fields[0])
    else:
        # As BEIR and MTEB embed a document: (title + " " + text).strip(); a missing or
        # null field counts as empty, as long as one of them is there.
        if not any(f in obj for f in fields):
            raise InputError(f"{where}: none of the fields {', '.join(fields)}; name them with --text-field")
        text = " ".join(_text(where, obj, f, optional=True) for f in fields).strip()
        if not text:
            raise InputError(f"{where}: fields {text_field!r} are all empty; remove the record or fill one")
    key = default_key
    if id_field in obj and obj[id_field] not in (None, ""):
        raw_id = obj[id_field]
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
            raise InputError(f"{where}: field {id_field!r} is {_json_type(raw_id)}, not a string or integer")
        key = str(raw_id)
    metadata = {k: v for k, v in obj.items() if k not in fields and k != id_field}
    embedding = metadata.pop(EMBEDDING_FIELD, None)
    if embedding is not None:
        embedding = numbers(embedding, f"{where}: field {EMBEDDING_FIELD!r}")
    return Record(text=text, key=key, metadata=metadata, source=default_key, embedding=embedding)


def numbers(value: Any, what: str) -> tuple[float, ...]:
    """An ``embedding`` field as floats: a non-empty array of numbers, or (from Python) a
    one-dimensional NumPy array of them, as ``model.encode`` returns (its length and
    finiteness are checked against the index when it is staged)."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", 0) == 1 and value.dtype.kind in "fiu":
        if not len(value):
            raise InputError(f"{what} must be a non-empty array of numbers (a vector of the index's model)")
        # Kept as an array: a million vectors as Python floats would cost minutes and gigabytes.
        return value  # type: ignore[no-any-return]
    if (
        not isinstance(value, list)
        or not value
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)
    ):
        raise InputError(f"{what} must be a non-empty array of numbers (a vector of the index's model)")
    return tuple(float(v) for v in value)


def _text(where: str, obj: dict[str, Any], field: str, optional: bool = False) -> str:
    if field not in obj or (optional and obj[field] is None):
        if optional:
            return ""
        raise InputError(f"{where}: no {field!r} field; name the text field with --text-field")
    text = obj[field]
    if not isinstance(text, str):
        raise InputError(f"{where}: field {field!r} is {_json_type(text)}, not a string")
    if not text.strip() and not optional:
        raise InputError(f"{where}: field {field!r} is empty; remove the record or fill it")
    return text


def _has_lone_surrogate(obj: object) -> bool:
    """JSON can escape half a UTF-16 pair; such a string cannot be stored as UTF-8."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _json_type(value: object) -> str:
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }
    for kind, label in names.items():
        if isinstance(value, kind):
            return label
    return "a number"
