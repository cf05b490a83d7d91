"""The bytes of an input file (or stdin) as numbered lines of text.

What decides the encoding, first match wins: a byte-order mark (UTF-8, UTF-16 or
UTF-32, little or big endian; the mark is dropped), else the ``--encoding`` the user
named, else strict UTF-8. searchkit never guesses: bytes that do not decode, and NUL
characters, stop the read with an `InputError` naming the file, the line and the
column (for UTF-8 a byte column, as the bytes cannot be shown as text; for other
encodings the characters before the bad byte on its line, plus one).

Everything streams: UTF-8 line by line as the file holds it, other encodings through
an incremental decoder in 64 KiB chunks, so no file is ever held whole in memory.
``name.gz`` files are decompressed on the fly; `inner_name` gives the name that
decides their format, and `looks_binary` lets a folder walk skip what is not text.
"""

from __future__ import annotations

import codecs
import gzip
import zlib
from collections.abc import Iterable, Iterator
from functools import partial
from itertools import chain
from pathlib import Path
from typing import IO, cast

from searchkit.errors import InputError, UsageError

__all__ = ["check_encoding", "file_encoding", "inner_name", "looks_binary", "open_bytes", "text_lines"]

_EXAMPLES = "name a Python codec, e.g. cp1252, euc-kr, cp949, latin-1"
# (mark, codec, label). UTF-32 LE first: FF FE 00 00 also starts with the UTF-16 LE mark.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32 BE"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 BE"),
)
# Text in these encodings is full of NUL bytes: only their mark tells it from binary.
_WIDE_BOMS = (codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_UTF8 = ("utf-8", "utf-8-sig")
_CHUNK = 1 << 16
# Control bytes that real text does hold (tab, newlines, form feed, vertical tab, the
# escape of ANSI colours) are left out: the rest are the mark of a binary file.
_CONTROLS = bytes([*range(0x20), 0x7F]).translate(None, b"\t\n\r\f\v\x1b")
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def check_encoding(encoding: str | None) -> str | None:
    """The canonical name of a codec (``"EUC-KR"`` -> ``"euc_kr"``); None stays None."""
    if encoding is None:
        return None
    try:
        info = codecs.lookup(encoding)
    except (LookupError, ValueError):
        raise UsageError(f"unknown encoding {encoding!r}: {_EXAMPLES}") from None
    if not info._is_text_encoding:  # base64, rot13, zlib: codecs that do not decode to text
        raise UsageError(f"{encoding!r} is not a text encoding: {_EXAMPLES}")
    return info.name


def file_encoding(path: Path, encoding: str | None) -> str | None:
    """What a file is read with when the user named `encoding`: UTF-8 where the whole file
    is valid UTF-8 (a legacy encoding's text almost never is), else `encoding`; so that
    ``--encoding latin-1`` reads a folder of UTF-8 files with a few Latin-1 ones right.
    (A byte-order mark still decides first: text_lines.)"""
    if encoding is None or encoding in _UTF8:
        return encoding
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open_bytes(path) as stream:
            while chunk := stream.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return encoding
    except (OSError, *_GZIP_ERRORS):
        return encoding  # reading it again says what is wrong
    return None


def open_bytes(path: Path) -> IO[bytes]:
    """The bytes of a file, decompressed when its name ends in ``.gz``."""
    try:
        if path.suffix.lower() == ".gz":
            return cast(IO[bytes], gzip.open(path, "rb"))
        return path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None


def inner_name(path: Path) -> str:
    """The file name that decides the format: ``notes.txt.gz`` -> ``notes.txt``."""
    return path.stem if path.suffix.lower() == ".gz" else path.name


def looks_binary(head: bytes) -> bool:
    """Whether the first bytes of a file (up to 8 KiB, decompressed) are not text."""
    if head.startswith(_WIDE_BOMS):
        return False
    if b"\x00" in head:
        return True
    controls = len(head) - len(head.translate(None, _CONTROLS))
    return controls * 10 > len(head)


def text_lines(name: str, stream: IO[bytes], encoding: str | None = None) -> Iterator[tuple[int, str]]:
    """(line number from 1, text with its ``"\\n"`` kept) of a byte stream, seekable or not.

    Lines end at ``"\\n"`` only (a ``"\\r"`` stays in the text); the last may have no
    ``"\\n"``. `name` names the input in errors; `encoding` is used when there is no
    byte-order mark.
    """
    encoding = check_encoding(encoding)
    try:
        head = _read_head(stream, 4)
        skip, codec, label, hint = _encoding_of(head, encoding)
        if codec == "utf-8":
            yield from _utf8_lines(name, chain(_head_lines(head[skip:], stream), stream))
        else:
            chunks = chain([head[skip:]], iter(partial(stream.read, _CHUNK), b""))
            yield from _decoded_lines(name, chunks, codec, label, hint)
    except _GZIP_ERRORS as exc:
        raise InputError(f"{name}: not a valid gzip file ({exc}); check it with gunzip -t") from None


def _encoding_of(head: bytes, encoding: str | None) -> tuple[int, str, str, str]:
    """(length of the byte-order mark, codec, its name in errors, what to do about one)."""
    for mark, codec, label in _BOMS:
        if head.startswith(mark):
            return len(mark), codec, label, f"the file starts with a {label} byte-order mark; re-encode it"
    if encoding is None or encoding in _UTF8:
        return 0, "utf-8", "UTF-8", ""  # the UTF-8 messages say what to do
    return 0, encoding, encoding, "check --encoding"


def _read_head(stream: IO[bytes], size: int) -> bytes:
    # A pipe or a raw stream may return fewer bytes than asked before its end.
    head = b""
    while len(head) < size:
        more = stream.read(size - len(head))
        if not more:
            break
        head += more
    return head


def _head_lines(head: bytes, stream: IO[bytes]) -> list[bytes]:
    """The lines in the bytes read ahead, the last completed from the stream."""
    *whole, part = head.split(b"\n")
    lines = [line + b"\n" for line in whole]
    last = part + stream.readline()
    return [*lines, last] if last else lines


def _utf8_lines(name: str, raws: Iterable[bytes]) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(raws, start=1):
        if b"\x00" in raw:
            raise InputError(
                f"{name} line {number}: contains NUL bytes; is it a binary file? searchkit reads UTF-8 text"
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{name} line {number}: invalid UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                f"{exc.start + 1}); re-encode the file as UTF-8, or name its encoding with --encoding "
                "(e.g. cp1252, euc-kr)"
            ) from None
        yield number, text


def _decoded_lines(
    name: str, chunks: Iterator[bytes], codec: str, label: str, hint: str
) -> Iterator[tuple[int, str]]:
    decoder = codecs.getincrementaldecoder(codec)()
    number = 1
    pending: list[str] = []  # the start of a line that goes on in the next chunk
    # None ends the stream: the decoder then refuses a last character cut short.
    for chunk in chain(chunks, [None]):
        try:
            text = decoder.decode(chunk or b"", final=chunk is None)
        except UnicodeDecodeError as exc:
            raise _undecodable(name, number, "".join(pending), exc, codec, label, hint) from None
        *whole, part = text.split("\n")
        if whole:
            whole[0] = "".join([*pending, whole[0]])
            pending = []
        for line in whole:
            yield number, _without_nul(name, number, line + "\n", label)
            number += 1
        if part:
            pending.append(part)
    if pending:
        yield number, _without_nul(name, number, "".join(pending), label)


def _without_nul(name: str, number: int, line: str, label: str) -> str:
    if "\x00" in line:
        raise InputError(
            f"{name} line {number}: contains NUL bytes; is it a binary file? searchkit read it as {label}"
        )
    return line


def _undecodable(
    name: str, number: int, pending: str, exc: UnicodeDecodeError, codec: str, label: str, hint: str
) -> InputError:
    """Where the bad byte is: the decoder's error counts from the bytes it had not yet
    turned into text, which decode cleanly up to it."""
    before = pending + exc.object[: exc.start].decode(codec, errors="replace")
    number += before.count("\n")
    column = len(before) - before.rfind("\n")
    byte = exc.object[exc.start]
    return InputError(
        f"{name} line {number}: bytes that are not {label} (byte 0x{byte:02x} at column {column}); {hint}"
    )
