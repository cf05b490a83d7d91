"""Input formats: files, folders and stdin in, one `Record` at a time out.

Readers stream and know nothing of models or indexes. Three parts: listing.py (which
files a folder holds, and why any is skipped), decoding.py (bytes to lines: byte-order
marks, --encoding, .gz), formats.py (lines to records, and the ids they get).

`read_inputs` gives a `Reading`: iterate it for the records. Its `check()` reads every
file once first, so that a bad record stops the write before anything is embedded (with
--skip-bad, bad files and records are skipped instead, each named with its reason), and
so that the number of items is known for the progress display. Its `report` says which
files were used or skipped and why; its `sync` which files and folders were read whole,
for the write to make the index hold what they hold now.

Invalid text, NUL bytes and malformed records stop the read with the line number:
searchkit never guesses at a corrupt input.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from itertools import chain
from pathlib import Path
from typing import IO

from searchkit.errors import InputError, UsageError
from searchkit.readers.decoding import check_encoding, file_encoding, open_bytes, text_lines
from searchkit.readers.fields import EMBEDDING_FIELD, numbers, record_of, text_fields
from searchkit.readers.formats import UNITS, Options, Place, detect, read_lines
from searchkit.readers.listing import STDIN, Source, Walk
from searchkit.readers.report import BadRecord, NotItems, Problems, ReadReport, SourceSync
from searchkit.types import Record

Lines = Iterator[tuple[int, str]]

__all__ = [
    "EMBEDDING_FIELD",
    "FORMATS",
    "STDIN",
    "UNITS",
    "ReadReport",
    "Reading",
    "SourceSync",
    "numbers",
    "read_inputs",
    "record_of",
    "text_fields",
]

FORMATS = ("auto", "txt", "md", "html", "csv", "tsv", "jsonl", "json", "parquet")


def read_inputs(
    inputs: Iterable[str | Path],
    fmt: str = "auto",
    text_field: str = "text",
    id_field: str = "id",
    *,
    unit: str = "line",
    encoding: str | None = None,
    delimiter: str | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    skip_bad: bool = False,
) -> Reading:
    """The records of every input in order: files, folders (recursively) or '-' (stdin).

    `fmt` (``auto``: by extension, else by content) applies to files and stdin named
    directly; files in folders go by their own extension or content. `unit` is what one
    item of a ``txt`` source is: a ``line``, a ``paragraph`` or the whole ``file``.
    `encoding` decodes files without a byte-order mark (UTF-8 by default); `delimiter`
    separates CSV fields; `include`/`exclude` are globs on paths inside a folder."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if unit not in UNITS:
        raise UsageError(f"unknown unit {unit!r}: choose one of {', '.join(UNITS)}")
    if delimiter is not None and len(delimiter.replace("\\t", "\t")) != 1:
        raise UsageError(f"--delimiter takes one character (or \\t), not {delimiter!r}")
    options = Options(
        text_field=text_field,
        id_field=id_field,
        unit=unit,
        encoding=check_encoding(encoding),
        delimiter=delimiter.replace("\\t", "\t") if delimiter else None,
        skip_bad=skip_bad,
    )
    return Reading(list(inputs), fmt, options, include, exclude)


class Reading:
    """The records of some inputs (iterate once), with what reading them found."""

    def __init__(
        self,
        inputs: list[str | Path],
        fmt: str,
        options: Options,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> None:
        self.options = options
        self.report = ReadReport()
        self.sync = SourceSync()
        self.total: int | None = None  # items, once check() has counted them
        self._walk = Walk(inputs, fmt, self.report, include, exclude)
        self._problems = Problems(self.report, skip=options.skip_bad)
        self._sources: list[Source] | None = None
        self._bad: set[str] = set()
        self._formats: dict[str, str] = {}  # each source's format, as read
        self._encodings: dict[str, str | None] = {}  # each file's, under --encoding

    def check(self, split: str = "none") -> None:
        """Read every file once, before anything is embedded: the first bad record raises
        (or, with --skip-bad, is recorded and skipped), and `total` counts the items (the
        pieces, with `split`). Stdin cannot be read twice: it is checked as it is read."""
        from searchkit.split import split as split_text

        self._sources = list(self._walk.sources())
        total: int | None = 0
        for source in self._sources:
            if source.path is None:
                total = None
                continue
            items = 0
            for record in self._whole(source):
                items += len(split_text(record.text, split)) if split != "none" else 1
            if source.name not in self._bad:
                self.report.use(self._formats[source.name])
                total = None if total is None else total + items
        self.total = total

    def __iter__(self) -> Iterator[Record]:
        checked = self._sources is not None
        for source in self._sources if self._sources is not None else self._walk.sources():
            if source.name in self._bad:
                continue
            # A checked file's bad records are in the report already.
            self._problems.quiet = checked and source.path is not None
            yield from self._whole(source)
            if source.name in self._bad:
                continue
            if not checked or source.path is None:
                self.report.use(self._formats[source.name])
            if source.origin is not None:
                self.sync.files.append(source.origin)
        self.sync.folders = list(self._walk.folders)

    def _whole(self, source: Source) -> Iterator[Record]:
        """The records of one source; a bad file raises, or with --skip-bad is skipped whole."""
        try:
            yield from self._records(source)
        except InputError as error:
            self._skip_file(source, error)

    def _skip_file(self, source: Source, error: InputError) -> None:
        if isinstance(error, NotItems) and source.folder is not None:
            if source.name not in self._bad:
                self._bad.add(source.name)
                self.report.skip(source.name, NotItems.reason)
            return
        if not self.options.skip_bad:
            if isinstance(error, BadRecord) or not self._walk.several:
                raise error
            # Others could go on without it.
            raise InputError(f"{error}; or pass --skip-bad to skip bad files and records") from None
        if source.name not in self._bad:
            self._bad.add(source.name)
            self.report.skip(source.name, "bad")
            self.report.bad.append(str(error))
            if source.origin is not None:
                self.sync.kept.append(source.origin)

    def _records(self, source: Source) -> Iterator[Record]:
        place = Place(source.name, source.origin or "stdin", source.origin, self._problems, self.report)
        if source.fmt == "parquet":
            from searchkit.parquet import read_records  # pyarrow is loaded for Parquet inputs only

            self._formats[source.name] = "parquet"
            with _opened(source) as stream:
                text_field, id_field = self.options.text_field, self.options.id_field
                for n, record in enumerate(read_records(source.name, stream, text_field, id_field), start=1):
                    yield _keyed(place, record, n)
            return
        encoding = self.options.encoding
        if source.path is not None:  # once per file: finding out reads it whole
            if source.name not in self._encodings:
                self._encodings[source.name] = file_encoding(source.path, encoding)
            encoding = self._encodings[source.name]
        with _opened(source) as stream:
            lines = text_lines(source.name, stream, encoding)
            fmt, lines, delimiter = self._formatted(source, lines)
            options = self.options
            if delimiter and not options.delimiter:  # a header that says its separator
                options = replace(options, delimiter=delimiter)
            yield from read_lines(place, lines, fmt, options)

    def _formatted(self, source: Source, lines: Lines) -> tuple[str, Lines, str | None]:
        """`lines`, with the source's format settled first: by content when it is ``auto``
        (the first non-blank line decides; what it chose is said for a source named directly)."""
        if source.fmt != "auto":
            self._formats[source.name] = source.fmt
            return source.fmt, lines, None
        head: list[tuple[int, str]] = []
        for numbered in lines:
            head.append(numbered)
            if numbered[1].strip():
                break
        if not head or not head[-1][1].strip():
            self._formats[source.name] = "txt"
            return "txt", iter(head), None  # blank: nothing to read
        fmt, why, delimiter = detect(head[-1][1], self.options.text_field)
        if source.folder is None:
            self.report.note(f"{source.name}: read as {fmt} ({why}); --format chooses another")
        self._formats[source.name] = f"{fmt} by content"
        return fmt, chain(head, lines), delimiter


def _keyed(place: Place, record: Record, number: int) -> Record:
    """A Parquet row's record with the ids and sources every other format gives."""
    key = record.key or place.key([record.text, record.metadata])
    return Record(record.text, key, record.metadata, f"{place.base}:{number}", record.embedding, place.origin)


def _opened(source: Source) -> AbstractContextManager[IO[bytes]]:
    if source.path is None:
        return nullcontext(sys.stdin.buffer)  # stdin is read, never closed
    return open_bytes(source.path)
