"""searchkit.readers.decoding: byte-order marks, named encodings, .gz, binary sniffing, the exact errors."""

from __future__ import annotations

import gzip
import io
import os
import random
import zlib
from pathlib import Path
from typing import IO, cast

import pytest

from searchkit.errors import InputError, UsageError
from searchkit.readers import decoding
from searchkit.readers.decoding import check_encoding, inner_name, looks_binary, open_bytes, text_lines

BOMS = {
    "utf-8": b"\xef\xbb\xbf",
    "utf-16-le": b"\xff\xfe",
    "utf-16-be": b"\xfe\xff",
    "utf-32-le": b"\xff\xfe\x00\x00",
    "utf-32-be": b"\x00\x00\xfe\xff",
}
UTF8_HINT = "re-encode the file as UTF-8, or name its encoding with --encoding (e.g. cp1252, euc-kr)"
# Korean, accents, a character outside the BMP (a UTF-16 surrogate pair), CRLF, an empty line, no final "\n".
TEXT = "안녕하세요 café\r\nnaïve résumé 😀\n\n마지막 줄"
TEXT_LINES = [(1, "안녕하세요 café\r\n"), (2, "naïve résumé 😀\n"), (3, "\n"), (4, "마지막 줄")]
# What EUC-KR and CP949 can encode: Hangul and ASCII.
KOREAN = "안녕하세요\r\n똠방각하 search\n\n마지막 줄"
KOREAN_LINES = [(1, "안녕하세요\r\n"), (2, "똠방각하 search\n"), (3, "\n"), (4, "마지막 줄")]


def lines_of(path: Path, encoding: str | None = None) -> list[tuple[int, str]]:
    with open_bytes(path) as stream:
        return list(text_lines(str(path), stream, encoding))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class Trickle(io.RawIOBase):
    """A stream that cannot seek and gives one byte per read, as a slow pipe may."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        byte = self._data.read(1)
        buffer[: len(byte)] = byte
        return len(byte)


# --- UTF-8 -------------------------------------------------------------------------


def test_utf8_lines_keep_their_newline(tmp_path: Path) -> None:
    p = write(tmp_path / "a.txt", TEXT.encode())
    assert lines_of(p) == TEXT_LINES


def test_utf8_bom_is_dropped_from_the_first_line_only(tmp_path: Path) -> None:
    p = write(tmp_path / "a.txt", BOMS["utf-8"] + "héllo\n\ufeffworld\n".encode())
    assert lines_of(p) == [(1, "héllo\n"), (2, "\ufeffworld\n")]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", []),
        (b"\n", [(1, "\n")]),
        (b"a", [(1, "a")]),
        (b"a\nb", [(1, "a\n"), (2, "b")]),
        (b"a\nbc\nd", [(1, "a\n"), (2, "bc\n"), (3, "d")]),
        (b"\n\n\n\n\n", [(1, "\n"), (2, "\n"), (3, "\n"), (4, "\n"), (5, "\n")]),
        (BOMS["utf-8"], []),
        (BOMS["utf-8"] + b"x", [(1, "x")]),
        (BOMS["utf-16-le"], []),
    ],
    ids=[
        "empty",
        "newline",
        "one-byte",
        "short",
        "newlines-in-head",
        "blank-lines",
        "bom-only",
        "bom-x",
        "utf16-bom",
    ],
)
def test_short_inputs_around_the_bytes_read_ahead(
    tmp_path: Path, data: bytes, expected: list[tuple[int, str]]
) -> None:
    assert lines_of(write(tmp_path / "a.txt", data)) == expected


# --- byte-order marks --------------------------------------------------------------


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_wide_encodings_are_read_by_their_byte_order_mark(tmp_path: Path, codec: str) -> None:
    p = write(tmp_path / "a.txt", BOMS[codec] + TEXT.encode(codec))
    assert lines_of(p) == TEXT_LINES


def test_a_byte_order_mark_wins_over_the_encoding_named(tmp_path: Path) -> None:
    p = write(tmp_path / "a.txt", BOMS["utf-16-be"] + TEXT.encode("utf-16-be"))
    assert lines_of(p, encoding="cp1252") == TEXT_LINES


def test_utf32_le_mark_is_not_read_as_utf16_le(tmp_path: Path) -> None:
    # FF FE 00 00 starts with the UTF-16 LE mark: taken as that, "ab" would be a NUL then garbage.
    p = write(tmp_path / "a.txt", BOMS["utf-32-le"] + "ab\n".encode("utf-32-le"))
    assert lines_of(p) == [(1, "ab\n")]


# --- named encodings ---------------------------------------------------------------


def test_cp1252_with_its_encoding(tmp_path: Path) -> None:
    p = write(tmp_path / "a.txt", b"caf\xe9 \x96 na\xefve\r\nsecond\n")
    assert lines_of(p, encoding="cp1252") == [(1, "café \u2013 naïve\r\n"), (2, "second\n")]


def test_cp1252_without_its_encoding_is_refused_as_utf8(tmp_path: Path) -> None:
    p = write(tmp_path / "a.txt", b"caf\xe9 \x96 na\xefve\n")
    with pytest.raises(InputError) as info:
        lines_of(p)
    assert str(info.value) == f"{p} line 1: invalid UTF-8 (byte 0xe9 at column 4); {UTF8_HINT}"


@pytest.mark.parametrize("codec", ["euc-kr", "cp949"])
def test_korean_legacy_encodings(tmp_path: Path, codec: str) -> None:
    p = write(tmp_path / "a.txt", "한국어 검색\n둘째 줄\n".encode(codec))
    assert lines_of(p, encoding=codec) == [(1, "한국어 검색\n"), (2, "둘째 줄\n")]


def test_cp949_only_syllables_need_cp949(tmp_path: Path) -> None:
    # 똠 is in CP949 (Microsoft's extension) but not in EUC-KR.
    p = write(tmp_path / "a.txt", "첫 줄\n똠방각하\n".encode("cp949"))
    assert lines_of(p, encoding="cp949") == [(1, "첫 줄\n"), (2, "똠방각하\n")]
    with pytest.raises(InputError) as info:
        lines_of(p, encoding="euc-kr")
    assert (
        str(info.value) == f"{p} line 2: bytes that are not euc_kr (byte 0x8c at column 1); check --encoding"
    )


def test_utf8_named_as_the_encoding_is_read_as_utf8(tmp_path: Path) -> None:
    p = write(tmp_path / "a.txt", b"ok\n\xff\n")
    for name in ("utf-8", "UTF8", "utf-8-sig"):
        with pytest.raises(InputError) as info:
            lines_of(p, encoding=name)
        assert str(info.value) == f"{p} line 2: invalid UTF-8 (byte 0xff at column 1); {UTF8_HINT}"


# --- bad inputs --------------------------------------------------------------------

INVALID_UTF8 = [
    pytest.param(b"fine\nbad \xff here\n", "line 2: invalid UTF-8 (byte 0xff at column 5)", id="0xff"),
    pytest.param(b'{"text": "caf\xe9"}\n', "line 1: invalid UTF-8 (byte 0xe9 at column 14)", id="latin1"),
    pytest.param(b"ok\nend \xe2\x82", "line 2: invalid UTF-8 (byte 0xe2 at column 5)", id="cut-at-end"),
    pytest.param(b"ab\xff", "line 1: invalid UTF-8 (byte 0xff at column 3)", id="in-bytes-read-ahead"),
    pytest.param(b"a\xc0\xafb\n", "line 1: invalid UTF-8 (byte 0xc0 at column 2)", id="overlong"),
    pytest.param(b"x\n\xed\xa0\x80\n", "line 2: invalid UTF-8 (byte 0xed at column 1)", id="surrogate"),
    pytest.param(b"one\r\ntwo\r\n\x80", "line 3: invalid UTF-8 (byte 0x80 at column 1)", id="crlf"),
    # The column counts from after the mark.
    pytest.param(BOMS["utf-8"] + b"\xc3(", "line 1: invalid UTF-8 (byte 0xc3 at column 1)", id="after-bom"),
]


@pytest.mark.parametrize(("data", "message"), INVALID_UTF8)
def test_invalid_utf8_names_line_and_column(tmp_path: Path, data: bytes, message: str) -> None:
    p = write(tmp_path / "a.txt", data)
    with pytest.raises(InputError) as info:
        lines_of(p)
    assert str(info.value) == f"{p} {message}; {UTF8_HINT}"


def bom_hint(label: str) -> str:
    return f"the file starts with a {label} byte-order mark; re-encode it"


# Past the first 64 KiB chunk: line 9000 of 11-byte lines starts at byte 98,989.
LONG_CP1252 = b"".join(b"line %05d\n" % i for i in range(1, 9000)) + b"line \x81\n" + b"more\n" * 10

UNDECODABLE = [
    pytest.param(
        b"ok\nab\x81c\n",
        "cp1252",
        "line 2: bytes that are not cp1252 (byte 0x81 at column 3); check --encoding",
        id="cp1252-undefined",
    ),
    pytest.param(
        LONG_CP1252,
        "cp1252",
        "line 9000: bytes that are not cp1252 (byte 0x81 at column 6); check --encoding",
        id="cp1252-in-a-later-chunk",
    ),
    pytest.param(
        "가나\n다라마".encode("euc-kr") + b"\xb0\xff",
        "euc-kr",
        "line 2: bytes that are not euc_kr (byte 0xb0 at column 4); check --encoding",
        id="euc-kr-bad-trail-byte",
    ),
    pytest.param(
        BOMS["utf-16-le"] + "ab\ncd".encode("utf-16-le") + b"\x00\xd8" + "x".encode("utf-16-le"),
        None,
        f"line 2: bytes that are not UTF-16 LE (byte 0x00 at column 3); {bom_hint('UTF-16 LE')}",
        id="utf16-lone-surrogate",
    ),
    pytest.param(
        BOMS["utf-16-be"] + "ab\n".encode("utf-16-be") + b"c",
        None,
        f"line 2: bytes that are not UTF-16 BE (byte 0x63 at column 1); {bom_hint('UTF-16 BE')}",
        id="utf16-odd-length",
    ),
    pytest.param(
        BOMS["utf-32-be"] + "ab\nc".encode("utf-32-be") + b"\x00\x11\x00\x00",
        None,
        f"line 2: bytes that are not UTF-32 BE (byte 0x00 at column 2); {bom_hint('UTF-32 BE')}",
        id="utf32-beyond-unicode",
    ),
]


@pytest.mark.parametrize(("data", "encoding", "message"), UNDECODABLE)
def test_undecodable_bytes_name_line_and_column(
    tmp_path: Path, data: bytes, encoding: str | None, message: str
) -> None:
    p = write(tmp_path / "a.txt", data)
    with pytest.raises(InputError) as info:
        lines_of(p, encoding)
    assert str(info.value) == f"{p} {message}"


def test_lines_before_an_error_are_yielded(tmp_path: Path) -> None:
    p = write(tmp_path / "a.txt", b"one\ntwo\n\xff\n")
    with open_bytes(p) as stream:
        lines = text_lines(str(p), stream, "cp1252")
        assert [next(lines), next(lines), next(lines)] == [(1, "one\n"), (2, "two\n"), (3, "ÿ\n")]
    with open_bytes(p) as stream:
        lines = text_lines(str(p), stream)
        assert [next(lines), next(lines)] == [(1, "one\n"), (2, "two\n")]
        with pytest.raises(InputError, match="line 3: invalid UTF-8"):
            next(lines)


NUL_BYTES = [
    pytest.param(b"fine\nnul\x00byte\n", "searchkit reads UTF-8 text", id="utf8"),
    pytest.param(
        BOMS["utf-16-le"] + "fine\nnul\x00char\n".encode("utf-16-le"),
        "searchkit read it as UTF-16 LE",
        id="utf16",
    ),
    pytest.param(
        BOMS["utf-32-be"] + "fine\n\x00".encode("utf-32-be"), "searchkit read it as UTF-32 BE", id="last-line"
    ),
]


@pytest.mark.parametrize(("data", "tail"), NUL_BYTES)
def test_nul_bytes_are_refused(tmp_path: Path, data: bytes, tail: str) -> None:
    p = write(tmp_path / "a.txt", data)
    with pytest.raises(InputError) as info:
        lines_of(p)
    assert str(info.value) == f"{p} line 2: contains NUL bytes; is it a binary file? {tail}"


def test_nul_in_a_named_encoding(tmp_path: Path) -> None:
    p = write(tmp_path / "a.txt", b"caf\xe9\x00\n")
    with pytest.raises(InputError) as info:
        lines_of(p, "latin-1")
    assert (
        str(info.value)
        == f"{p} line 1: contains NUL bytes; is it a binary file? searchkit read it as iso8859-1"
    )


# --- binary files ------------------------------------------------------------------

PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00"


@pytest.mark.parametrize(
    ("head", "binary"),
    [
        (PNG_HEAD, True),
        (random.Random(0).randbytes(8192), True),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", True),
        (b"text\x00more text", True),
        (bytes(range(1, 9)) * 10 + b"mostly control bytes", True),
        (b"a" * 89 + b"\x01" * 11, True),
        (b"a" * 90 + b"\x01" * 10, False),
        (BOMS["utf-16-le"] + TEXT.encode("utf-16-le"), False),
        (BOMS["utf-16-be"] + TEXT.encode("utf-16-be"), False),
        (BOMS["utf-32-le"] + TEXT.encode("utf-32-le"), False),
        (BOMS["utf-32-be"] + TEXT.encode("utf-32-be"), False),
        (BOMS["utf-8"] + b"a\x00b", True),
        (TEXT.encode(), False),
        (b"tabs\tand\r\nform\x0cfeeds\x0b and \x1b[31mcolours\x1b[0m\n", False),
        ("한국어 검색".encode("euc-kr"), False),
        (b"", False),
    ],
    ids=[
        "png",
        "random",
        "elf",
        "one-nul",
        "controls",
        "11%-controls",
        "10%-controls",
        "utf16-le",
        "utf16-be",
        "utf32-le",
        "utf32-be",
        "utf8-bom-with-nul",
        "utf8",
        "whitespace-and-escapes",
        "euc-kr",
        "empty",
    ],
)
def test_looks_binary(head: bytes, binary: bool) -> None:
    assert looks_binary(head) is binary


# --- .gz ---------------------------------------------------------------------------


def test_gz_is_decompressed(tmp_path: Path) -> None:
    p = write(tmp_path / "notes.txt.gz", gzip.compress(TEXT.encode()))
    assert lines_of(p) == TEXT_LINES
    wide = write(tmp_path / "wide.txt.GZ", gzip.compress(BOMS["utf-16-le"] + TEXT.encode("utf-16-le")))
    assert lines_of(wide) == TEXT_LINES
    korean = write(tmp_path / "ko.txt.gz", gzip.compress("한국어\n".encode("euc-kr")))
    assert lines_of(korean, "euc-kr") == [(1, "한국어\n")]


def test_a_gz_head_decides_binary(tmp_path: Path) -> None:
    p = write(tmp_path / "image.png.gz", gzip.compress(PNG_HEAD))
    with open_bytes(p) as stream:
        assert looks_binary(stream.read(8192)) is True


def test_other_files_are_not_decompressed(tmp_path: Path) -> None:
    data = gzip.compress(b"x")
    p = write(tmp_path / "a.gzip", data)
    with open_bytes(p) as stream:
        assert stream.read() == data


GZIP_TEXT = "".join(f"line {i}\n" for i in range(1000)).encode()
GZIPPED = gzip.compress(GZIP_TEXT, mtime=0)


def cuts_a_character(data: bytes, at: int, codec: str) -> bool:
    try:
        data[:at].decode(codec)
    except UnicodeDecodeError:
        return True
    return False


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"hello\nworld\n", "Not a gzipped file (b'he')"),
        (GZIPPED[:-10], "Compressed file ended before the end-of-stream marker was reached"),
        (flipped(GZIPPED, 11), "Error -3 while decompressing data: invalid code lengths set"),
        (GZIPPED[:-8] + bytes(4) + GZIPPED[-4:], f"CRC check failed 0x0 != {hex(zlib.crc32(GZIP_TEXT))}"),
        (GZIPPED + b"garbage", "Not a gzipped file (b'ga')"),
    ],
    ids=["not-gzip", "truncated", "corrupt-deflate", "bad-crc", "trailing-garbage"],
)
def test_corrupt_gz_is_an_input_error(tmp_path: Path, data: bytes, reason: str) -> None:
    p = write(tmp_path / "notes.txt.gz", data)
    with pytest.raises(InputError) as info:
        lines_of(p)
    assert str(info.value) == f"{p}: not a valid gzip file ({reason}); check it with gunzip -t"


def test_open_bytes_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    for missing in (tmp_path / "missing.txt", tmp_path / "missing.txt.gz"):
        with pytest.raises(InputError) as info:
            open_bytes(missing)
        assert str(info.value) == f"{missing}: cannot read (No such file or directory)"
    with pytest.raises(InputError) as info:
        open_bytes(tmp_path)
    assert str(info.value) == f"{tmp_path}: cannot read (Is a directory)"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("notes.txt.gz", "notes.txt"),
        ("changelog.Debian.gz", "changelog.Debian"),
        ("a.txt", "a.txt"),
        ("corpus/data.JSONL.GZ", "data.JSONL"),
        ("README", "README"),
        ("archive.tar.gz", "archive.tar"),
        (".gz", ".gz"),
    ],
)
def test_inner_name(path: str, name: str) -> None:
    assert inner_name(Path(path)) == name


# --- encodings named by the user ---------------------------------------------------


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        (None, None),
        ("cp1252", "cp1252"),
        ("windows-1252", "cp1252"),
        ("EUC-KR", "euc_kr"),
        ("cp949", "cp949"),
        ("latin-1", "iso8859-1"),
        ("UTF8", "utf-8"),
        ("utf-16le", "utf-16-le"),
    ],
)
def test_check_encoding_gives_the_canonical_name(given: str | None, canonical: str | None) -> None:
    assert check_encoding(given) == canonical


EXAMPLES = "name a Python codec, e.g. cp1252, euc-kr, cp949, latin-1"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("xyz", f"unknown encoding 'xyz': {EXAMPLES}"),
        ("", f"unknown encoding '': {EXAMPLES}"),
        ("utf\x008", f"unknown encoding 'utf\\x008': {EXAMPLES}"),
        ("base64", f"'base64' is not a text encoding: {EXAMPLES}"),
        ("rot13", f"'rot13' is not a text encoding: {EXAMPLES}"),
    ],
)
def test_check_encoding_refuses_what_is_not_a_text_codec(given: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        check_encoding(given)
    assert str(info.value) == message


def test_text_lines_refuses_an_unknown_encoding() -> None:
    with pytest.raises(UsageError, match="unknown encoding 'klingon'"):
        list(text_lines("stdin", io.BytesIO(b"x\n"), "klingon"))


# --- streams that cannot seek ------------------------------------------------------


def test_a_pipe_with_a_utf16_mark(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, BOMS["utf-16-be"] + TEXT.encode("utf-16-be"))  # well under a pipe's buffer
    os.close(write_end)
    with os.fdopen(read_end, "rb") as stream:
        assert not stream.seekable()
        assert list(text_lines("stdin", stream)) == TEXT_LINES


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (TEXT.encode(), None),
        (BOMS["utf-8"] + TEXT.encode(), None),
        (BOMS["utf-16-le"] + TEXT.encode("utf-16-le"), None),
        (BOMS["utf-32-be"] + TEXT.encode("utf-32-be"), None),
        (KOREAN.encode("cp949"), "cp949"),
    ],
    ids=["utf8", "utf8-bom", "utf16-le", "utf32-be", "cp949"],
)
def test_a_stream_that_gives_one_byte_at_a_time(data: bytes, encoding: str | None) -> None:
    stream = Trickle(data)
    assert not stream.seekable()
    expected = KOREAN_LINES if encoding else TEXT_LINES
    assert list(text_lines("stdin", cast(IO[bytes], stream), encoding)) == expected


# --- large inputs ------------------------------------------------------------------


def test_large_utf16_input_across_chunks(tmp_path: Path) -> None:
    """200,000 lines: one with a surrogate pair cut in two by a chunk boundary, one longer than two chunks."""
    before = [f"{i:07d} 가나\n" for i in range(2978)]  # 11 UTF-16 units a line: 32,758 in all
    # The decoder gets the 2 bytes after the mark, then 64 KiB chunks: the first boundary is at byte
    # 4 + 65,536, and the emoji (4 bytes) starts 2 bytes before it.
    straddling = "x" * 10 + "😀 across\r\n"
    long_line = "é" * 150_000 + "\n"
    after = [f"줄 {i} café\n" for i in range(2978, 199_998)]
    lines = [*before, straddling, long_line, *after[:-1], after[-1].rstrip("\n")]
    data = BOMS["utf-16-le"] + "".join(lines).encode("utf-16-le")
    assert data.index("😀".encode("utf-16-le")) == 4 + decoding._CHUNK - 2
    p = write(tmp_path / "big.txt", data)

    got = lines_of(p)

    assert len(got) == 200_000
    assert got[0] == (1, "0000000 가나\n")
    assert got[2978] == (2979, "xxxxxxxxxx😀 across\r\n")
    assert got[2979] == (2980, long_line)
    assert got[2980] == (2981, "줄 2978 café\n")
    assert got[-1] == (200_000, "줄 199997 café")
    assert got == list(enumerate(lines, start=1))


def test_large_euc_kr_input_across_chunks(tmp_path: Path) -> None:
    lines = [f"{i} {'가나다라'[: i % 4 + 1]} 검색\n" for i in range(50_000)]
    data = "".join(lines).encode("euc-kr")
    # The decoder gets the 4 bytes read ahead, then 64 KiB chunks; some boundaries cut a syllable.
    boundaries = range(4, len(data), decoding._CHUNK)
    assert len(boundaries) > 10
    assert any(cuts_a_character(data, at, "euc-kr") for at in boundaries)
    p = write(tmp_path / "big.txt", data)
    assert lines_of(p, "euc-kr") == list(enumerate(lines, start=1))


def test_file_encoding_reads_utf8_files_as_utf8_and_the_rest_as_named(tmp_path: Path) -> None:
    utf8 = tmp_path / "new.txt"
    utf8.write_bytes("déjà vu\n".encode())
    legacy = tmp_path / "old.txt"
    legacy.write_bytes("José Müller\n".encode("latin-1"))
    packed = tmp_path / "old.txt.gz"
    packed.write_bytes(gzip.compress("Müller\n".encode("latin-1")))
    assert decoding.file_encoding(utf8, "iso8859-1") is None
    assert decoding.file_encoding(legacy, "iso8859-1") == "iso8859-1"
    assert decoding.file_encoding(packed, "iso8859-1") == "iso8859-1"
    assert decoding.file_encoding(legacy, None) is None  # nothing named: strict UTF-8
