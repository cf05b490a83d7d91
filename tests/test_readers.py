"""searchkit.readers: every format, folders, stdin, ids, check() and --skip-bad, and the exact
message for each bad input. The folder walk and its globs are in test_listing.py."""

from __future__ import annotations

import gzip
import hashlib
import inspect
import io
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from searchkit.errors import InputError, UsageError
from searchkit.readers import Reading, read_inputs
from searchkit.types import Record

SKIP_HINT = "; or pass --skip-bad to skip bad files and records"
UTF8_HINT = "re-encode the file as UTF-8, or name its encoding with --encoding (e.g. cp1252, euc-kr)"
# The --skip-bad hint ends a message when skipping would let the read go on: always for a bad
# record (the file's other records), for a bad file when other inputs or a folder are read.


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def read(*inputs: str | Path, **options: Any) -> list[Record]:
    return list(read_inputs(inputs, **options))


def fake_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data)))


def base(p: Path | str) -> tuple[str, str | None]:
    """(what ids and sources start with, the record's origin) of a file, or of ``"stdin"``."""
    return ("stdin", None) if p == "stdin" else (str(Path(p).resolve()), str(Path(p).resolve()))


def key(p: Path | str, content: Any) -> str:
    """The id of an item without an id field: its file and a hash of its content."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return f"{base(p)[0]}:{digest[:12]}"


def line(p: Path | str, text: str, number: int) -> Record:
    """A txt line's (or paragraph's) record."""
    where, origin = base(p)
    return Record(text, key(p, text), {}, f"{where}:{number}", origin=origin)


def row(p: Path | str, text: str, number: int, metadata: dict[str, Any], id: str | None = None) -> Record:
    """A table row's or JSON object's record: its own id, else one from its text and metadata."""
    where, origin = base(p)
    given = id if id is not None else key(p, [text, metadata])
    return Record(text, given, metadata, f"{where}:{number}", origin=origin)


def whole(p: Path | str, text: str) -> Record:
    """A whole file's record: its id and source are the file; a piped document's id is
    ``stdin:HASH``, as every piped text's (two pipes never share one)."""
    where, origin = base(p)
    return Record(text, where if origin else key(p, text), {}, where, origin=origin)


# --- txt -------------------------------------------------------------------------


def test_txt_one_record_per_non_empty_line(tmp_path: Path) -> None:
    p = write(tmp_path / "notes.txt", "first line\n\n   \n  second line  \r\nthird")
    assert read(p) == [line(p, "first line", 1), line(p, "second line", 4), line(p, "third", 5)]


def test_empty_files_give_no_records(tmp_path: Path) -> None:
    for name in ("a.txt", "b.csv", "c.jsonl", "d.md", "e.tsv", "f.html", "g.rst", "h"):
        assert read(write(tmp_path / name, "")) == []
    assert read(write(tmp_path / "header-only.csv", "id,text\n")) == []
    assert read(write(tmp_path / "blank.txt", "\n  \n\t\n")) == []


def test_an_empty_json_file_gives_no_records(tmp_path: Path) -> None:
    assert read(write(tmp_path / "empty.json", "")) == []


# --- unit ------------------------------------------------------------------------

PARAGRAPHS = "\n\nfirst line\n  second line\n\n\nthird para\n  \nfourth\n"


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        pytest.param(
            "line",
            [("first line", 3), ("second line", 4), ("third para", 7), ("fourth", 9)],
            id="line",
        ),
        pytest.param(
            "paragraph",
            [("first line\nsecond line", 3), ("third para", 7), ("fourth", 9)],
            id="paragraph",
        ),
    ],
)
def test_unit_line_and_paragraph(tmp_path: Path, unit: str, expected: list[tuple[str, int]]) -> None:
    p = write(tmp_path / "notes.txt", PARAGRAPHS)
    assert read(p, unit=unit) == [line(p, text, number) for text, number in expected]


def test_unit_file(tmp_path: Path) -> None:
    p = write(tmp_path / "notes.txt", PARAGRAPHS)
    assert read(p, unit="file") == [whole(p, "first line\n  second line\n\n\nthird para\n  \nfourth")]


def test_unit_applies_to_txt_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = write(tmp_path / "a.md", "one\n\ntwo\n")
    c = write(tmp_path / "a.csv", "text\none\ntwo\n")
    assert read(m, c, unit="line") == [
        whole(m, "one\n\ntwo"),
        row(c, "one", 2, {}),
        row(c, "two", 3, {}),
    ]
    fake_stdin(monkeypatch, b"piped\n\ntext\n")
    assert read("-", unit="file") == [whole("stdin", "piped\n\ntext")]


@pytest.mark.parametrize("unit", ["word", "lines", "", "FILE"])
def test_unknown_unit_is_a_usage_error(unit: str) -> None:
    with pytest.raises(UsageError) as info:
        read_inputs(["-"], unit=unit)
    assert str(info.value) == f"unknown unit {unit!r}: choose one of line, paragraph, file"


# --- md, rst, html ---------------------------------------------------------------


def test_md_is_one_record_per_file(tmp_path: Path) -> None:
    body = "# Title\n\nA paragraph\nover two lines.\n\n- a list\n"
    p = write(tmp_path / "doc.md", "\n" + body + "\n\n")
    assert read(p) == [whole(p, body.strip())]


def test_rst_is_read_as_one_document(tmp_path: Path) -> None:
    p = write(tmp_path / "intro.rst", "Intro\n=====\n\nThe rst text.\n")
    assert read(p) == [whole(p, "Intro\n=====\n\nThe rst text.")]


def test_md_blank_file_gives_no_record(tmp_path: Path) -> None:
    assert read(write(tmp_path / "blank.markdown", "\n  \n\n")) == []


def test_md_files_in_a_folder_are_one_record_each(tmp_path: Path) -> None:
    a = write(tmp_path / "docs" / "a.md", "alpha\n\nmore alpha\n")
    b = write(tmp_path / "docs" / "b.markdown", "beta\n")
    assert read(tmp_path / "docs") == [whole(a, "alpha\n\nmore alpha"), whole(b, "beta")]


@pytest.mark.parametrize("name", ["page.html", "page.htm", "page.xhtml"])
def test_html_is_its_text_one_record_per_file(tmp_path: Path, name: str) -> None:
    p = write(
        tmp_path / name,
        "<!DOCTYPE html><html><head><title>The title</title><style>p {}</style></head>"
        "<body><h1>Python</h1><p>Snakes &amp; ladders.</p><script>x()</script></body></html>\n",
    )
    assert read(p) == [whole(p, "The title\n\nPython\n\nSnakes & ladders.")]


def test_html_without_text_gives_no_record(tmp_path: Path) -> None:
    assert read(write(tmp_path / "page.html", "<html><body><script>x()</script></body></html>")) == []


# --- csv / tsv -------------------------------------------------------------------


def test_csv_header_text_id_and_string_metadata(tmp_path: Path) -> None:
    p = write(
        tmp_path / "items.csv",
        "id,text,lang,year\n"
        'a1,"hello, world",en,2020\n'
        "\n"
        'a2,"line one\nline two ""quoted""",fr,1999\n'
        "a3,plain,de,\n",
    )
    assert read(p) == [
        row(p, "hello, world", 2, {"lang": "en", "year": "2020"}, id="a1"),
        row(p, 'line one\nline two "quoted"', 4, {"lang": "fr", "year": "1999"}, id="a2"),  # its first line
        row(p, "plain", 6, {"lang": "de", "year": ""}, id="a3"),
    ]


def test_csv_without_id_column_keys_by_content(tmp_path: Path) -> None:
    p = write(tmp_path / "items.csv", "text,tag\r\nfirst,x\r\nsecond,y\r\n")
    assert read(p) == [row(p, "first", 2, {"tag": "x"}), row(p, "second", 3, {"tag": "y"})]


def test_csv_empty_id_falls_back_to_a_content_key(tmp_path: Path) -> None:
    p = write(tmp_path / "items.csv", "id,text\n,no id here\n7,has id\n")
    assert read(p) == [row(p, "no id here", 2, {}), row(p, "has id", 3, {}, id="7")]


def test_csv_header_names_are_stripped(tmp_path: Path) -> None:
    p = write(tmp_path / "items.csv", " id , text \n1,hi\n")
    assert read(p) == [row(p, "hi", 2, {}, id="1")]


@pytest.mark.parametrize("name", ["items.tsv", "items.tab"])
def test_tsv(tmp_path: Path, name: str) -> None:
    p = write(tmp_path / name, 'id\ttext\tnote\nt1\ta, b, c\tx\nt2\t"tab\tinside"\ty\n')
    assert read(p) == [
        row(p, "a, b, c", 2, {"note": "x"}, id="t1"),
        row(p, "tab\tinside", 3, {"note": "y"}, id="t2"),
    ]


@pytest.mark.parametrize(
    ("delimiter", "separator"),
    [pytest.param(";", ";", id="semicolon"), pytest.param("\\t", "\t", id="tab-typed-as-backslash-t")],
)
def test_csv_delimiter(tmp_path: Path, delimiter: str, separator: str) -> None:
    p = write(tmp_path / "items.csv", f"id{separator}text{separator}tag\n1{separator}a, b{separator}x\n")
    assert read(p, delimiter=delimiter) == [row(p, "a, b", 2, {"tag": "x"}, id="1")]


def test_a_delimiter_also_applies_to_tsv(tmp_path: Path) -> None:
    p = write(tmp_path / "items.tsv", "id|text\n1|a\tb\n")
    assert read(p, delimiter="|") == [row(p, "a\tb", 2, {}, id="1")]


@pytest.mark.parametrize("delimiter", ["ab", "", "\\n", ";;"])
def test_a_delimiter_is_one_character(delimiter: str) -> None:
    with pytest.raises(UsageError) as info:
        read_inputs(["-"], delimiter=delimiter)
    assert str(info.value) == f"--delimiter takes one character (or \\t), not {delimiter!r}"


def test_all_empty_csv_rows_are_skipped_and_counted_once(tmp_path: Path) -> None:
    """A row of only empty fields is no item (and counted); a blank line is no row at all."""
    p = write(tmp_path / "items.csv", "text,tag\none,x\n,\n\n , \ntwo,y\n")
    reading = read_inputs([p])
    reading.check()
    assert list(reading) == [row(p, "one", 2, {"tag": "x"}), row(p, "two", 6, {"tag": "y"})]
    assert reading.report.empty_rows == 2
    assert reading.report.lines() == ["2 all-empty table row(s) skipped"]  # one file: no files line
    unchecked = read_inputs([p])
    assert len(list(unchecked)) == 2
    assert unchecked.report.empty_rows == 2


# --- jsonl -----------------------------------------------------------------------


def test_jsonl_string_and_integer_ids_and_nested_metadata(tmp_path: Path) -> None:
    lines = [
        {"id": "doc-1", "text": "first", "tags": ["a", "b"], "meta": {"x": 1, "y": [None, True]}},
        {"id": 42, "text": "second", "score": 0.5},
        {"text": "third, no id", "lang": "日本語"},
        {"id": None, "text": "fourth, null id"},
    ]
    p = write(
        tmp_path / "items.jsonl",
        "\n".join(json.dumps(obj, ensure_ascii=False) for obj in lines[:2])
        + "\n\n"
        + "\n".join(json.dumps(obj, ensure_ascii=False) for obj in lines[2:])
        + "\n",
    )
    assert read(p) == [
        row(p, "first", 1, {"tags": ["a", "b"], "meta": {"x": 1, "y": [None, True]}}, id="doc-1"),
        row(p, "second", 2, {"score": 0.5}, id="42"),
        row(p, "third, no id", 4, {"lang": "日本語"}),
        row(p, "fourth, null id", 5, {}),
    ]


def test_source_is_path_and_line_even_when_the_name_contains_line(tmp_path: Path) -> None:
    p = write(tmp_path / "my line notes.jsonl", '{"id": "a", "text": "x"}\n')
    q = write(tmp_path / "a line b.csv", "text\ny\n")
    assert read(p, q) == [row(p, "x", 1, {}, id="a"), row(q, "y", 2, {})]


def test_a_lone_surrogate_escape_is_skipped_and_its_pair_is_text(tmp_path: Path) -> None:
    p = write(tmp_path / "s.jsonl", '{"text": "fine \\ud83d\\ude00"}\n{"text": "half \\ud800"}\n')
    reading = read_inputs([p], skip_bad=True)
    assert list(reading) == [row(p, "fine \U0001f600", 1, {})]
    assert reading.report.bad == [f"{p} line 2: a \\ud800-\\udfff escape with no pair is not text; fix it"]


# --- json ------------------------------------------------------------------------


def test_json_array_of_objects(tmp_path: Path) -> None:
    """Items are numbered in the array, as the messages name them ("item 2")."""
    p = write(tmp_path / "items.json", '[\n {"id": "a", "text": "x", "k": 1},\n {"text": "y"}\n]\n')
    assert read(p) == [row(p, "x", 1, {"k": 1}, id="a"), row(p, "y", 2, {})]


def test_an_empty_json_array_gives_no_records(tmp_path: Path) -> None:
    assert read(write(tmp_path / "items.json", "[]\n")) == []


@pytest.mark.parametrize(
    ("content", "holds"),
    [
        pytest.param('{"text": "one document"}\n', "an object", id="object"),
        pytest.param('"just text"\n', "a string", id="string"),
        pytest.param("3\n", "a number", id="number"),
        pytest.param("null\n", "null", id="null"),
    ],
)
def test_json_that_is_not_an_array_is_refused(tmp_path: Path, content: str, holds: str) -> None:
    p = write(tmp_path / "items.json", content)
    with pytest.raises(InputError) as info:
        read(p)
    assert str(info.value) == (
        f"{p}: a JSON file is read as an array of objects, and this holds {holds}; "
        "write one object per line as JSON Lines (.jsonl)"
    )


# --- format selection ------------------------------------------------------------

JSONL = '{"id": "j1", "text": "one"}\n{"id": "j2", "text": "two"}\n'


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("x.txt", "lines"),
        ("x.text", "lines"),
        ("x.TXT", "lines"),
        ("x.md", "whole"),
        ("x.markdown", "whole"),
        ("x.rst", "whole"),
        ("x.jsonl", "jsonl"),
        ("x.ndjson", "jsonl"),
        ("x.JSONL", "jsonl"),
        # No known extension: the content decides (a JSON object on the first line).
        ("x.unknown", "jsonl"),
        ("x", "jsonl"),
        ("README.Debian", "jsonl"),
    ],
)
def test_auto_detection_by_extension(tmp_path: Path, name: str, kind: str) -> None:
    p = write(tmp_path / name, JSONL)
    expected = {
        "lines": [line(p, '{"id": "j1", "text": "one"}', 1), line(p, '{"id": "j2", "text": "two"}', 2)],
        "whole": [whole(p, JSONL.strip())],
        "jsonl": [row(p, "one", 1, {}, id="j1"), row(p, "two", 2, {}, id="j2")],
    }
    assert read(p) == expected[kind]


@pytest.mark.parametrize(("name", "delimiter"), [("x.csv", ","), ("x.tsv", "\t"), ("x.tab", "\t")])
def test_auto_detection_of_tables(tmp_path: Path, name: str, delimiter: str) -> None:
    p = write(tmp_path / name, f"id{delimiter}text\nk1{delimiter}hello\n")
    assert read(p) == [row(p, "hello", 2, {}, id="k1")]


def test_gz_is_read_by_the_name_inside(tmp_path: Path) -> None:
    t = write(tmp_path / "notes.txt.gz", gzip.compress(b"zipped line\n"))
    j = write(tmp_path / "items.jsonl.gz", gzip.compress(b'{"id": "z", "text": "zipped"}\n'))
    assert read(t, j) == [line(t, "zipped line", 1), row(j, "zipped", 1, {}, id="z")]


@pytest.mark.parametrize(
    ("name", "content", "expected", "note"),
    [
        pytest.param(
            "items",
            "\n\n" + JSONL,
            lambda p: [row(p, "one", 3, {}, id="j1"), row(p, "two", 4, {}, id="j2")],
            "jsonl (its first line is a JSON object)",
            id="jsonl-after-blank-lines",
        ),
        pytest.param(
            "table",
            "id,text\nk,hello\n",
            lambda p: [row(p, "hello", 2, {}, id="k")],
            "csv (its first line is a header with a 'text' column)",
            id="csv",
        ),
        pytest.param(
            "page",
            "<!doctype html>\n<p>Hello</p>\n",
            lambda p: [whole(p, "Hello")],
            "html (it starts as an HTML document)",
            id="html",
        ),
        pytest.param(
            "copyright",
            "Copyright the project.\nAll rights reserved.\n",
            lambda p: [line(p, "Copyright the project.", 1), line(p, "All rights reserved.", 2)],
            "txt (plain text)",
            id="txt",
        ),
    ],
)
def test_a_file_named_directly_without_a_known_extension_is_read_by_content_and_says_so(
    tmp_path: Path, name: str, content: str, expected: Any, note: str
) -> None:
    p = write(tmp_path / name, content)
    reading = read_inputs([p])
    assert list(reading) == expected(p)
    assert reading.report.notes == [f"{p}: read as {note}; --format chooses another"]
    assert reading.report.used == {f"{note.split()[0]} by content": 1}


def test_format_override_beats_the_extension(tmp_path: Path) -> None:
    p = write(tmp_path / "data.txt", '{"id": "a", "text": "from json"}\n')
    assert read(p, fmt="jsonl") == [row(p, "from json", 1, {}, id="a")]
    assert read(p, fmt="txt") == [line(p, '{"id": "a", "text": "from json"}', 1)]
    c = write(tmp_path / "table.dat", "id\ttext\nk\tv\n")
    assert read(c, fmt="tsv") == [row(c, "v", 2, {}, id="k")]
    j = write(tmp_path / "lines.jsonl", "id,text\nk,v\n")
    assert read(j, fmt="csv") == [row(j, "v", 2, {}, id="k")]
    m = write(tmp_path / "page.txt", "<p>markup</p>\n")
    assert read(m, fmt="html") == [whole(m, "markup")]
    reading = read_inputs([write(tmp_path / "plain", "words\n")], fmt="txt")
    assert list(reading) == [line(tmp_path / "plain", "words", 1)]
    assert reading.report.notes == []  # chosen, not guessed


def test_custom_text_and_id_fields(tmp_path: Path) -> None:
    j = write(tmp_path / "a.jsonl", '{"uid": 5, "body": "the body", "text": "kept", "id": "meta"}\n')
    assert read(j, text_field="body", id_field="uid") == [
        row(j, "the body", 1, {"text": "kept", "id": "meta"}, id="5")
    ]
    c = write(tmp_path / "a.csv", "uid,body,text\nu1,the body,kept\n")
    assert read(c, text_field="body", id_field="uid") == [row(c, "the body", 2, {"text": "kept"}, id="u1")]


def test_several_text_fields_join_as_beir_does(tmp_path: Path) -> None:
    """--text-field title,text: (title + " " + text).strip(), as BEIR and MTEB embed a document."""
    j = write(
        tmp_path / "corpus.jsonl",
        '{"_id": "d1", "title": "A title", "text": "the body", "metadata": {}}\n'
        '{"_id": "d2", "title": "", "text": "no title"}\n'
        '{"_id": "d3", "text": "title missing"}\n'
        '{"_id": "d4", "title": "only a title", "text": null}\n',
    )
    assert read(j, text_field="title,text", id_field="_id") == [
        row(j, "A title the body", 1, {"metadata": {}}, id="d1"),
        row(j, "no title", 2, {}, id="d2"),
        row(j, "title missing", 3, {}, id="d3"),
        row(j, "only a title", 4, {}, id="d4"),
    ]
    c = write(tmp_path / "a.csv", "id,title,text\n1,T,body\n")
    assert read(c, text_field="title,text") == [row(c, "T body", 2, {}, id="1")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        pytest.param(
            "e.jsonl",
            '{"title": " ", "text": ""}\n',
            "{p} line 1: fields 'title,text' are all empty; remove the record or fill one",
            id="all-empty",
        ),
        pytest.param(
            "n.jsonl",
            '{"body": "x"}\n',
            "{p} line 1: none of the fields title, text; name them with --text-field",
            id="none-there",
        ),
        pytest.param(
            "t.jsonl",
            '{"title": 5, "text": "x"}\n',
            "{p} line 1: field 'title' is a number, not a string",
            id="not-a-string",
        ),
    ],
)
def test_several_text_fields_bad_records(tmp_path: Path, name: str, content: str, message: str) -> None:
    p = write(tmp_path / name, content)
    reading = read_inputs([p], text_field="title,text", skip_bad=True)
    assert list(reading) == []
    assert reading.report.bad == [message.format(p=p)]


def test_several_text_fields_missing_column(tmp_path: Path) -> None:
    p = write(tmp_path / "b.csv", "id,text\n1,x\n")
    with pytest.raises(InputError) as info:
        read(p, text_field="title,text")
    assert str(info.value) == (
        f"{p}: no 'title' column (columns: id, text); name the text column with --text-field"
    )


# --- BOM -------------------------------------------------------------------------


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    bom = b"\xef\xbb\xbf"
    t = write(tmp_path / "a.txt", bom + "héllo\nworld\n".encode())
    c = write(tmp_path / "a.csv", bom + b"id,text\n1,hi\n")
    j = write(tmp_path / "a.jsonl", bom + b'{"id": "j", "text": "hi"}\n')
    assert read(t, c, j) == [
        line(t, "héllo", 1),
        line(t, "world", 2),
        row(c, "hi", 2, {}, id="1"),
        row(j, "hi", 1, {}, id="j"),
    ]


def test_bom_only_stripped_on_the_first_line(tmp_path: Path) -> None:
    t = write(tmp_path / "a.txt", b"one\n\xef\xbb\xbftwo\n")
    assert read(t) == [line(t, "one", 1), line(t, "\ufefftwo", 2)]


def test_utf16_with_a_bom_and_a_named_encoding(tmp_path: Path) -> None:
    u = write(tmp_path / "u.txt", "\ufeffsnowman ☃\n".encode("utf-16-le"))
    k = write(tmp_path / "k.txt", "안녕하세요\n".encode("euc-kr"))
    assert read(u) == [line(u, "snowman ☃", 1)]
    assert read(k, encoding="EUC-KR") == [line(k, "안녕하세요", 1)]


# --- folders ---------------------------------------------------------------------


def test_folder_is_recursive_in_name_order_and_reads_what_is_text(tmp_path: Path) -> None:
    """A folder's files come in name order, then its subfolders' in name order; hidden files
    and folders and binary files are skipped; .rst and files without a known extension are read."""
    root = tmp_path / "corpus"
    b = write(root / "b.txt", "b one\n\nb three\n")
    a = write(root / "a.md", "alpha\n")
    c = write(root / "sub" / "c.jsonl", '{"id": "c1", "text": "gamma"}\n')
    d = write(root / "sub" / "deeper" / "d.csv", "text\ndelta\n")
    write(root / ".hidden.txt", "secret\n")
    write(root / ".git" / "notes.txt", "git internals\n")
    write(root / "sub" / ".cache" / "e.md", "cached\n")
    write(root / "image.png", b"\x89PNG\r\n\x1a\n\x00\x00")
    rst = write(root / "notes.rst", "restructured\n")
    readme = write(root / "README.Debian", "debian notes\n")
    z = write(root / "z.txt", "last at the top\n")
    reading = read_inputs([root])
    assert list(reading) == [
        line(readme, "debian notes", 1),
        whole(a, "alpha"),
        line(b, "b one", 1),
        line(b, "b three", 3),
        whole(rst, "restructured"),
        line(z, "last at the top", 1),
        row(c, "gamma", 1, {}, id="c1"),
        row(d, "delta", 2, {}),
    ]
    assert reading.report.skipped == {
        "hidden": [f"{root / '.git'}/", str(root / ".hidden.txt"), f"{root / 'sub' / '.cache'}/"],
        "binary": [str(root / "image.png")],
    }
    assert reading.report.notes == []  # what files in a folder are read as is said by the counts


def test_folder_uses_each_files_extension_not_the_format_option(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    j = write(root / "a.jsonl", '{"id": "j", "text": "json"}\n')
    t = write(root / "b.txt", "plain\n")
    e = write(root / "c", "id,text\nk,by content\n")
    assert read(root, fmt="txt") == [
        row(j, "json", 1, {}, id="j"),
        line(t, "plain", 1),
        row(e, "by content", 2, {}, id="k"),
    ]


def test_hidden_folder_or_file_given_explicitly_is_read(tmp_path: Path) -> None:
    p = write(tmp_path / ".data" / "a.txt", "visible\n")
    h = write(tmp_path / ".hidden.txt", "named\n")
    assert read(tmp_path / ".data", h) == [line(p, "visible", 1), line(h, "named", 1)]


def test_several_inputs_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write(tmp_path / "a.txt", "from a\n")
    b = write(tmp_path / "b.txt", "from b\n")
    fake_stdin(monkeypatch, b"from stdin\n")
    assert read(b, "-", a) == [line(b, "from b", 1), line("stdin", "from stdin", 1), line(a, "from a", 1)]


def test_folder_without_files(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(InputError) as info:
        read(root)
    assert str(info.value) == f"{root}: no files in this folder"


def test_folder_with_only_skipped_files_gives_no_records_and_says_why(tmp_path: Path) -> None:
    root = tmp_path / "skipped"
    write(root / ".hidden.txt", "x\n")
    write(root / ".git" / "a.txt", "y\n")
    write(root / "photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    write(root / "empty.txt", "")
    reading = read_inputs([root])
    assert list(reading) == []
    assert reading.report.skipped == {
        "hidden": [f"{root / '.git'}/", str(root / ".hidden.txt")],
        "empty": [str(root / "empty.txt")],
        "binary": [str(root / "photo.jpg")],
    }


def test_an_empty_folder_after_one_with_skipped_files(tmp_path: Path) -> None:
    write(tmp_path / "first" / ".hidden", "x\n")
    write(tmp_path / "first" / "a.txt", "a\n")
    (tmp_path / "second").mkdir()
    with pytest.raises(InputError) as info:
        read(tmp_path / "first", tmp_path / "second")
    assert str(info.value) == f"{tmp_path / 'second'}: no files in this folder"


# --- stdin -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected", "note"),
    [
        pytest.param(
            b'\n  \n  {"id": "s1", "text": "one", "k": [1]}\n\n{"text": "two"}\n',
            [row("stdin", "one", 3, {"k": [1]}, id="s1"), row("stdin", "two", 5, {})],
            "jsonl (its first line is a JSON object)",
            id="jsonl-after-blank-lines",
        ),
        pytest.param(
            b"id,text,tag\nx,from csv,t\n",
            [row("stdin", "from csv", 2, {"tag": "t"}, id="x")],
            "csv (its first line is a header with a 'text' column)",
            id="csv-header-with-text",
        ),
        pytest.param(
            b"text\tlang\nfrom tsv\ten\n",
            [row("stdin", "from tsv", 2, {"lang": "en"})],
            "tsv (its first line is a header with a 'text' column)",
            id="tsv",
        ),
        pytest.param(
            b'[{"id": "a", "text": "x"},\n {"text": "y"}]\n',
            [row("stdin", "x", 1, {}, id="a"), row("stdin", "y", 2, {})],
            "json (it starts with [)",
            id="json-array",
        ),
        pytest.param(
            b"<!DOCTYPE html>\n<html><body><p>Hi there</p></body></html>\n",
            [whole("stdin", "Hi there")],
            "html (it starts as an HTML document)",
            id="html",
        ),
        pytest.param(
            b'first\n{"text": "not json mode"}\ntext,more\n',
            [
                line("stdin", "first", 1),
                line("stdin", '{"text": "not json mode"}', 2),
                line("stdin", "text,more", 3),
            ],
            "txt (plain text)",
            id="plain-text",
        ),
        pytest.param(
            b"name,body\nx,y\n",
            [line("stdin", "name,body", 1), line("stdin", "x,y", 2)],
            "txt (plain text)",
            id="header-without-the-text-column",
        ),
        pytest.param(
            b'\xef\xbb\xbf{"id": "b", "text": "bom"}\n',
            [row("stdin", "bom", 1, {}, id="b")],
            "jsonl (its first line is a JSON object)",
            id="jsonl-with-a-bom",
        ),
    ],
)
def test_stdin_is_read_by_content_and_says_so(
    monkeypatch: pytest.MonkeyPatch, data: bytes, expected: list[Record], note: str
) -> None:
    fake_stdin(monkeypatch, data)
    reading = read_inputs(["-"])
    assert list(reading) == expected
    assert reading.report.notes == [f"stdin: read as {note}; --format chooses another"]
    assert reading.report.used == {f"{note.split()[0]} by content": 1}


def test_stdin_detection_uses_the_text_field(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b"id,body\n1,the body\n")
    reading = read_inputs(["-"], text_field="body")
    assert list(reading) == [row("stdin", "the body", 2, {}, id="1")]
    assert reading.report.notes == [
        "stdin: read as csv (its first line is a header with a 'body' column); --format chooses another"
    ]


def test_stdin_json_object_over_several_lines_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b'{"text":\n "one document"}\n')
    reading = read_inputs(["-"])
    with pytest.raises(InputError) as info:
        list(reading)
    assert str(info.value) == (
        "stdin: a JSON file is read as an array of objects, and this holds an object; "
        "write one object per line as JSON Lines (.jsonl)"
    )
    assert reading.report.notes == ["stdin: read as json (it starts with {); --format chooses another"]


@pytest.mark.parametrize("separator", [";", "|"])
def test_stdin_csv_detected_by_another_delimiter_is_read_with_it(
    monkeypatch: pytest.MonkeyPatch, separator: str
) -> None:
    fake_stdin(monkeypatch, f"id{separator}text\n1{separator}hello\n".encode())
    assert read("-") == [row("stdin", "hello", 2, {}, id="1")]


def test_stdin_with_explicit_format(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b"id,text\nx,from csv\n")
    reading = read_inputs(["-"], fmt="csv")
    assert list(reading) == [row("stdin", "from csv", 2, {}, id="x")]
    assert reading.report.notes == []
    assert reading.report.used == {"csv": 1}


@pytest.mark.parametrize("data", [b"", b"\n\n  \n"])
def test_empty_stdin_gives_nothing(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    fake_stdin(monkeypatch, data)
    reading = read_inputs(["-"])
    assert list(reading) == []
    assert reading.report.notes == []


def test_stdin_errors_name_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b'{"text": "ok"}\n{"text": 1}\n')
    with pytest.raises(InputError) as info:
        read("-")
    assert str(info.value) == f"stdin line 2: field 'text' is a number, not a string{SKIP_HINT}"


def test_stdin_bad_records_are_skipped_with_skip_bad(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b'{"text": "ok"}\n{"text": 1}\n{"text": "also ok"}\n')
    reading = read_inputs(["-"], skip_bad=True)
    reading.check()
    assert list(reading) == [row("stdin", "ok", 1, {}), row("stdin", "also ok", 3, {})]
    assert reading.report.bad == ["stdin line 2: field 'text' is a number, not a string"]
    assert reading.total is None


# --- ids -------------------------------------------------------------------------


def test_content_keys_survive_edits_elsewhere_in_the_file(tmp_path: Path) -> None:
    p = write(tmp_path / "notes.txt", "alpha\nbeta\ngamma\n")
    before = read(p)
    write(p, "a new first line\nalpha\nbeta, edited\ngamma\n")
    after = read(p)
    assert after == [
        line(p, "a new first line", 1),
        line(p, "alpha", 2),
        line(p, "beta, edited", 3),
        line(p, "gamma", 4),
    ]
    assert [r.key for r in before if r.text != "beta"] == [after[1].key, after[3].key]


def test_content_keys_of_rows_survive_edits_elsewhere(tmp_path: Path) -> None:
    p = write(tmp_path / "items.csv", "text,tag\none,x\ntwo,y\n")
    first = read(p)
    write(p, "text,tag\nzero,w\none,x\ntwo,changed\n")
    assert read(p) == [
        row(p, "zero", 2, {"tag": "w"}),
        row(p, "one", 3, {"tag": "x"}),
        row(p, "two", 4, {"tag": "changed"}),
    ]
    assert read(p)[1].key == first[0].key
    assert read(p)[2].key != first[1].key  # its metadata is part of its content


def test_duplicate_lines_share_one_key(tmp_path: Path) -> None:
    p = write(tmp_path / "notes.txt", "same\nother\nsame\n")
    assert read(p) == [line(p, "same", 1), line(p, "other", 2), line(p, "same", 3)]
    assert read(p)[0].key == read(p)[2].key


def test_one_line_in_two_files_has_two_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write(tmp_path / "a.txt", "same\n")
    b = write(tmp_path / "b.txt", "same\n")
    fake_stdin(monkeypatch, b"same\n")
    assert [r.key for r in read(a, b, "-")] == [key(a, "same"), key(b, "same"), key("stdin", "same")]


def test_a_path_typed_relative_or_absolute_gives_the_same_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "docs" / "notes.txt", "one\ntwo\n")
    write(tmp_path / "docs" / "page.md", "# Page\n")
    write(tmp_path / "docs" / "rows.csv", "text\nrow\n")
    monkeypatch.chdir(tmp_path / "docs")
    absolute = read(
        tmp_path / "docs" / "notes.txt", tmp_path / "docs" / "page.md", tmp_path / "docs" / "rows.csv"
    )
    assert read("notes.txt", "page.md", "rows.csv") == absolute
    assert read("./notes.txt", "../docs/page.md", "rows.csv") == absolute
    monkeypatch.chdir(tmp_path)
    folder = read_inputs(["docs"])
    assert list(folder) == read(tmp_path / "docs") == absolute
    assert folder.sync.folders == [str((tmp_path / "docs").resolve())]
    assert folder.sync.files == list(dict.fromkeys(r.origin for r in absolute))


# --- check() and the report ------------------------------------------------------


def test_reading_is_iterable_and_lazy_records_before_a_bad_line_come_first(tmp_path: Path) -> None:
    p = write(tmp_path / "a.jsonl", '{"id": "1", "text": "a"}\n{"id": "2", "text": "b"}\nnot json\n')
    reading = read_inputs([p])
    assert isinstance(reading, Reading)
    assert not inspect.isgenerator(reading)
    records = iter(reading)
    assert inspect.isgenerator(records)
    assert next(records) == row(p, "a", 1, {}, id="1")
    assert next(records) == row(p, "b", 2, {}, id="2")
    with pytest.raises(InputError) as info:
        next(records)
    assert (
        str(info.value) == f"{p} line 3: not valid JSON (Expecting value); fix or remove the line{SKIP_HINT}"
    )


def test_reading_is_lazy_across_files(tmp_path: Path) -> None:
    good = write(tmp_path / "docs" / "a-good.txt", "fine\n")
    bad = write(tmp_path / "docs" / "b-bad.txt", b"\xff\n")
    records = iter(read_inputs([tmp_path / "docs"]))
    assert next(records) == line(good, "fine", 1)
    with pytest.raises(InputError) as info:
        next(records)
    assert str(info.value) == f"{bad} line 1: invalid UTF-8 (byte 0xff at column 1); {UTF8_HINT}{SKIP_HINT}"


def test_check_raises_before_any_record_is_given(tmp_path: Path) -> None:
    good = write(tmp_path / "good.txt", "fine\n")
    bad = write(tmp_path / "bad.txt", b"fine too\n\xff\n")
    reading = read_inputs([good, bad])
    with pytest.raises(InputError) as info:
        reading.check()
    assert str(info.value) == f"{bad} line 2: invalid UTF-8 (byte 0xff at column 1); {UTF8_HINT}{SKIP_HINT}"
    assert reading.total is None


def test_options_are_checked_at_once_files_when_read(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    with pytest.raises(UsageError):
        read_inputs([missing], fmt="xml")
    reading = read_inputs([missing])  # nothing is read yet
    with pytest.raises(InputError) as info:
        reading.check()
    assert str(info.value) == f"{missing}: no such file or folder"


def mixed_folder(root: Path) -> None:
    write(root / "a.txt", "One. Two. Three.\nFour.\n")
    write(root / "b.md", "# Head\n\nPara one. Still one.\n\nPara two.\n")
    write(root / "c.csv", "text,tag\nRow one. Row two.,x\n,\n")
    write(root / "d.jsonl", '{"text": "ok"}\n{"text": 5}\n{"text": "fine. Good."}\n')
    write(root / "sub" / "README", "plain words\n")
    write(root / "sub" / ".hidden", "x\n")


def test_check_then_iterate_gives_what_iterating_alone_gives(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    mixed_folder(root)
    alone = read_inputs([root], skip_bad=True)
    records = list(alone)
    checked = read_inputs([root], skip_bad=True)
    checked.check()
    assert (
        list(checked)
        == records
        == [
            line(root / "a.txt", "One. Two. Three.", 1),
            line(root / "a.txt", "Four.", 2),
            whole(root / "b.md", "# Head\n\nPara one. Still one.\n\nPara two."),
            row(root / "c.csv", "Row one. Row two.", 2, {"tag": "x"}),
            row(root / "d.jsonl", "ok", 1, {}),
            row(root / "d.jsonl", "fine. Good.", 3, {}),
            line(root / "sub" / "README", "plain words", 1),
        ]
    )
    assert checked.report == alone.report
    assert checked.sync == alone.sync
    assert checked.report.bad == [f"{root / 'd.jsonl'} line 2: field 'text' is a number, not a string"]
    assert checked.report.empty_rows == 1


@pytest.mark.parametrize(("split", "total"), [("none", 7), ("sentences", 14), ("paragraphs", 9)])
def test_check_counts_the_items_and_their_pieces(tmp_path: Path, split: str, total: int) -> None:
    """Items: a.txt 2, b.md 1, c.csv 1, d.jsonl 2 (a bad one skipped), README 1. Sentences:
    3 + 1, heading + 2 + 1, 2, 1 + 2, 1. Paragraphs: one per item, but 3 in b.md."""
    root = tmp_path / "docs"
    mixed_folder(root)
    reading = read_inputs([root], skip_bad=True)
    assert reading.total is None
    reading.check(split)
    assert reading.total == total


def test_no_total_with_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write(tmp_path / "a.txt", "one\n")
    fake_stdin(monkeypatch, b"piped\n")
    reading = read_inputs([a, "-"])
    reading.check()
    assert reading.total is None
    assert list(reading) == [line(a, "one", 1), line("stdin", "piped", 1)]
    assert reading.report.used == {"txt": 1, "txt by content": 1}


def test_skip_bad_skips_bad_records_and_bad_files_and_names_them(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    a = write(root / "a.jsonl", '{"text": "ok"}\n{"text": 5}\nnot json\n{"text": "fine"}\n')
    b = write(root / "b.txt", b"good\n\xff\n")
    c = write(root / "c.csv", "text\none\n")
    e = write(tmp_path / "e.txt", "named directly\n")
    reading = read_inputs([root, e], skip_bad=True)
    reading.check()
    assert list(reading) == [
        row(a, "ok", 1, {}),
        row(a, "fine", 4, {}),
        row(c, "one", 2, {}),
        line(e, "named directly", 1),
    ]
    assert reading.report.bad == [
        f"{a} line 2: field 'text' is a number, not a string",
        f"{a} line 3: not valid JSON (Expecting value); fix or remove the line",
        f"{b} line 2: invalid UTF-8 (byte 0xff at column 1); {UTF8_HINT}",
    ]
    assert reading.report.skipped == {"bad": [str(b)]}
    assert reading.report.used == {"jsonl": 1, "csv": 1, "txt": 1}
    assert reading.sync.files == [str(a), str(c), str(e)]
    assert reading.sync.folders == [str(root)]
    assert reading.sync.kept == [str(b)]


def test_total_leaves_out_a_bad_file_skipped_whole(tmp_path: Path) -> None:
    good = write(tmp_path / "docs" / "a.txt", "one\ntwo\n")
    write(tmp_path / "docs" / "b.txt", b"counted\n\xff\n")
    reading = read_inputs([tmp_path / "docs"], skip_bad=True)
    reading.check()
    assert list(reading) == [line(good, "one", 1), line(good, "two", 2)]
    assert reading.total == 2


def test_sync_is_filled_as_the_reading_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write(tmp_path / "docs" / "a.txt", "a\n")
    fake_stdin(monkeypatch, b"piped\n")
    reading = read_inputs([tmp_path / "docs", "-"])
    reading.check()
    assert reading.sync.files == []
    list(reading)
    assert reading.sync.files == [str(a)]  # stdin is no file to sync
    assert reading.sync.folders == [str(tmp_path / "docs")]
    assert reading.sync.kept == []


# --- bad inputs ------------------------------------------------------------------

# (name, content, format, what a bad one skips with --skip-bad: the file or the record, message)
BAD_INPUTS = [
    pytest.param(
        "a.txt",
        b"fine\nbad \xff here\n",
        "auto",
        "file",
        f"{{p}} line 2: invalid UTF-8 (byte 0xff at column 5); {UTF8_HINT}",
        id="invalid-utf8",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": "ok"}\n{"text": "caf\xe9"}\n',
        "auto",
        "file",
        f"{{p}} line 2: invalid UTF-8 (byte 0xe9 at column 14); {UTF8_HINT}",
        id="latin1-in-jsonl",
    ),
    pytest.param(
        "a.txt",
        b"fine\nnul\x00byte\n",
        "auto",
        "file",
        "{p} line 2: contains NUL bytes; is it a binary file? searchkit reads UTF-8 text",
        id="nul-bytes",
    ),
    pytest.param(
        "a.csv",
        b"id,text\n1,hello\n2,hello, world\n",
        "auto",
        "record",
        "{p} line 3: 3 fields where the header has 2; quote fields that contain the delimiter",
        id="ragged-csv-row",
    ),
    pytest.param(
        "a.csv",
        b"id,text\n1\n",
        "auto",
        "record",
        "{p} line 2: 1 fields where the header has 2; quote fields that contain the delimiter",
        id="short-csv-row",
    ),
    pytest.param(
        "a.tsv",
        b"id\ttext\n1\ta\tb\n",
        "auto",
        "record",
        "{p} line 2: 3 fields where the header has 2; quote fields that contain the delimiter",
        id="ragged-tsv-row",
    ),
    pytest.param(
        "a.csv",
        b"id,body,lang\n1,hello,en\n",
        "auto",
        "file",
        "{p}: no 'text' column (columns: id, body, lang); name the text column with --text-field",
        id="header-without-text",
    ),
    pytest.param(
        "a.csv",
        b"id;text;lang\n1;hello;en\n",
        "auto",
        "file",
        "{p}: no 'text' column (columns: id;text;lang); "
        "its columns look separated by ';': pass --delimiter ';'",
        id="header-with-semicolons",
    ),
    pytest.param(
        "a.csv",
        b"id|text\n1|hello\n",
        "auto",
        "file",
        "{p}: no 'text' column (columns: id|text); its columns look separated by '|': pass --delimiter '|'",
        id="header-with-pipes",
    ),
    pytest.param(
        "a.csv",
        b"id\ttext\n1\thello\n",
        "auto",
        "file",
        "{p}: no 'text' column (columns: id\ttext); "
        "its columns look separated by '\\t': pass --delimiter '\\t'",
        id="header-with-tabs",
    ),
    pytest.param(
        "a.csv",
        b'text\n"a"b\n',
        "auto",
        "file",
        "{p} line 2: malformed CSV (',' expected after '\"')",
        id="csv-bad-quote",
    ),
    pytest.param(
        "a.csv",
        b'id,text\n1,"never closed\nstill open\n',
        "auto",
        "file",
        "{p} line 3: malformed CSV (unexpected end of data)",
        id="csv-unclosed-quote",
    ),
    pytest.param(
        "a.tsv",
        b'text\n"a"b\n',
        "auto",
        "file",
        "{p} line 2: malformed TSV ('\t' expected after '\"')",
        id="tsv-bad-quote",
    ),
    pytest.param(
        "a.csv",
        b"id,text\n1,\n",
        "auto",
        "record",
        "{p} line 2: field 'text' is empty; remove the record or fill it",
        id="csv-empty-text",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": "ok"}\n{"text": \n',
        "auto",
        "record",
        "{p} line 2: not valid JSON (Expecting value); fix or remove the line",
        id="jsonl-not-json",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": "ok",}\n',
        "auto",
        "record",
        "{p} line 1: not valid JSON (Expecting property name enclosed in double quotes); "
        "fix or remove the line",
        id="jsonl-trailing-comma",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": "a"} {"text": "b"}\n',
        "auto",
        "record",
        "{p} line 1: not valid JSON (Extra data); fix or remove the line",
        id="jsonl-two-objects-one-line",
    ),
    pytest.param(
        "a.jsonl",
        b'["text", "a"]\n',
        "auto",
        "record",
        "{p} line 1: expected a JSON object, found an array",
        id="jsonl-array",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": "ok"}\n\n"just a string"\n',
        "auto",
        "record",
        "{p} line 3: expected a JSON object, found a string",
        id="jsonl-string",
    ),
    pytest.param(
        "a.jsonl",
        b"3.5\n",
        "auto",
        "record",
        "{p} line 1: expected a JSON object, found a number",
        id="jsonl-number",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": 12}\n',
        "auto",
        "record",
        "{p} line 1: field 'text' is a number, not a string",
        id="text-number",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": null}\n',
        "auto",
        "record",
        "{p} line 1: field 'text' is null, not a string",
        id="text-null",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": ["a"]}\n',
        "auto",
        "record",
        "{p} line 1: field 'text' is an array, not a string",
        id="text-array",
    ),
    pytest.param(
        "a.jsonl",
        b'{"body": "x"}\n',
        "auto",
        "record",
        "{p} line 1: no 'text' field; name the text field with --text-field",
        id="text-missing",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": " \\n\\t "}\n',
        "auto",
        "record",
        "{p} line 1: field 'text' is empty; remove the record or fill it",
        id="text-empty",
    ),
    pytest.param(
        "a.jsonl",
        b'{"id": true, "text": "x"}\n',
        "auto",
        "record",
        "{p} line 1: field 'id' is a boolean, not a string or integer",
        id="id-boolean",
    ),
    pytest.param(
        "a.jsonl",
        b'{"id": {"a": 1}, "text": "x"}\n',
        "auto",
        "record",
        "{p} line 1: field 'id' is an object, not a string or integer",
        id="id-object",
    ),
    pytest.param(
        "a.jsonl",
        b'{"id": 1.5, "text": "x"}\n',
        "auto",
        "record",
        "{p} line 1: field 'id' is a number, not a string or integer",
        id="id-float",
    ),
    pytest.param(
        "a.jsonl",
        b'{"id": [1], "text": "x"}\n',
        "auto",
        "record",
        "{p} line 1: field 'id' is an array, not a string or integer",
        id="id-array",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": "fine \\ud83d\\ude00"}\n{"text": "half \\ud800"}\n',
        "auto",
        "record",
        "{p} line 2: a \\ud800-\\udfff escape with no pair is not text; fix it",
        id="lone-surrogate",
    ),
    pytest.param(
        "a.json",
        b'[{"text": "ok"},\n 1]\n',
        "auto",
        "record",
        "{p} item 2: expected a JSON object, found a number",
        id="json-item-not-an-object",
    ),
    pytest.param(
        "a.json",
        b'[{"text": "ok"}, {"text": 7}]\n',
        "auto",
        "record",
        "{p} item 2: field 'text' is a number, not a string",
        id="json-item-text-number",
    ),
    pytest.param(
        "a.json",
        b'[\n{"text": "ok"},\n',
        "auto",
        "file",
        "{p} line 3: not valid JSON (Expecting value)",
        id="json-cut-short",
    ),
    pytest.param(
        "a.json",
        b'{"text": "one"}\n',
        "auto",
        "file",
        "{p}: a JSON file is read as an array of objects, and this holds an object; "
        "write one object per line as JSON Lines (.jsonl)",
        id="json-not-an-array",
    ),
    pytest.param(
        "a.txt",
        b'{"text": 1}\n',
        "jsonl",
        "record",
        "{p} line 1: field 'text' is a number, not a string",
        id="format-override-applies-to-checks",
    ),
]


@pytest.mark.parametrize(("name", "content", "fmt", "level", "message"), BAD_INPUTS)
def test_bad_input_message(
    tmp_path: Path, name: str, content: bytes, fmt: str, level: str, message: str
) -> None:
    p = write(tmp_path / name, content)
    with pytest.raises(InputError) as info:
        read(p, fmt=fmt)
    # The file is the only input: skipping a bad record lets the read go on, skipping it would not.
    assert str(info.value) == message.format(p=p) + (SKIP_HINT if level == "record" else "")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("name", "content", "fmt", "level", "message"), BAD_INPUTS)
def test_bad_input_is_skipped_with_skip_bad(
    tmp_path: Path, name: str, content: bytes, fmt: str, level: str, message: str
) -> None:
    """A bad record is skipped and the rest of its file read; a bad file is skipped whole
    (its items in the index are kept as they were)."""
    p = write(tmp_path / name, content)
    reading = read_inputs([p], fmt=fmt, skip_bad=True)
    reading.check()
    records = list(reading)
    assert reading.report.bad == [message.format(p=p)]
    if level == "file":
        assert (records, reading.report.skipped, reading.sync.kept, reading.sync.files) == (
            [],
            {"bad": [str(p)]},
            [str(p)],
            [],
        )
    else:
        assert (reading.report.skipped, reading.sync.kept, reading.sync.files) == ({}, [], [str(p)])


BAD_FILE = ("bad.txt", b"\xff\n", f"line 1: invalid UTF-8 (byte 0xff at column 1); {UTF8_HINT}")
BAD_RECORD = ("bad.jsonl", b'{"text": 1}\n', "line 1: field 'text' is a number, not a string")


@pytest.mark.parametrize(
    ("layout", "bad", "checked", "hinted"),
    [
        pytest.param("alone", BAD_FILE, True, False, id="file-alone-checked"),
        pytest.param("alone", BAD_FILE, False, False, id="file-alone"),
        pytest.param("alone", BAD_RECORD, True, True, id="record-alone-checked"),
        pytest.param("alone", BAD_RECORD, False, True, id="record-alone"),
        pytest.param("two-files", BAD_FILE, True, True, id="file-of-two-checked"),
        pytest.param("two-files", BAD_FILE, False, True, id="file-of-two"),
        pytest.param("two-files", BAD_RECORD, True, True, id="record-of-two-checked"),
        pytest.param("two-files", BAD_RECORD, False, True, id="record-of-two"),
        pytest.param("folder", BAD_FILE, True, True, id="file-in-a-folder-checked"),
        pytest.param("folder", BAD_FILE, False, True, id="file-in-a-folder"),
        pytest.param("folder", BAD_RECORD, True, True, id="record-in-a-folder-checked"),
        pytest.param("folder", BAD_RECORD, False, True, id="record-in-a-folder"),
    ],
)
def test_the_skip_bad_hint_when_skipping_lets_the_read_go_on(
    tmp_path: Path, layout: str, bad: tuple[str, bytes, str], checked: bool, hinted: bool
) -> None:
    name, content, message = bad
    folder = tmp_path / "docs"
    p = write(folder / name, content)
    good = write(folder / "a-good.txt", "fine\n")
    inputs = {"alone": [p], "two-files": [good, p], "folder": [folder]}[layout]
    reading = read_inputs(inputs)
    with pytest.raises(InputError) as info:
        if checked:
            reading.check()
        list(reading)
    assert str(info.value) == f"{p} {message}" + (SKIP_HINT if hinted else "")


@pytest.mark.parametrize("fmt", ["xml", "markdown", "JSONL", ""])
def test_unknown_format_is_a_usage_error(tmp_path: Path, fmt: str) -> None:
    p = write(tmp_path / "a.txt", "x\n")
    with pytest.raises(UsageError) as info:
        read(p, fmt=fmt)
    assert (
        str(info.value)
        == f"unknown format {fmt!r}: choose one of auto, txt, md, html, csv, tsv, jsonl, json, parquet"
    )


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(InputError) as info:
        read(missing)
    assert str(info.value) == f"{missing}: no such file or folder"


@pytest.fixture
def unreadable(monkeypatch: pytest.MonkeyPatch) -> set[Path]:
    """Paths whose open() fails as without read permission (tests may run as root)."""
    paths: set[Path] = set()
    real_open = Path.open

    def guarded_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self in paths:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded_open)
    return paths


def test_unreadable_file(tmp_path: Path, unreadable: set[Path]) -> None:
    p = write(tmp_path / "locked.txt", "secret\n")
    unreadable.add(p)
    with pytest.raises(InputError) as info:
        read(p)
    assert str(info.value) == f"{p}: cannot read (Permission denied)"


def test_unreadable_file_in_a_folder(tmp_path: Path, unreadable: set[Path]) -> None:
    a = write(tmp_path / "docs" / "a.txt", "readable\n")
    b = write(tmp_path / "docs" / "b.txt", "secret\n")
    unreadable.add(b)
    records = iter(read_inputs([tmp_path / "docs"]))
    assert next(records) == line(a, "readable", 1)
    with pytest.raises(InputError) as info:
        next(records)
    assert str(info.value) == f"{b}: cannot read (Permission denied){SKIP_HINT}"


def test_unreadable_file_in_a_folder_is_skipped_with_skip_bad(tmp_path: Path, unreadable: set[Path]) -> None:
    a = write(tmp_path / "docs" / "a.txt", "readable\n")
    b = write(tmp_path / "docs" / "b.txt", "secret\n")
    unreadable.add(b)
    reading = read_inputs([tmp_path / "docs"], skip_bad=True)
    reading.check()
    assert list(reading) == [line(a, "readable", 1)]
    assert reading.report.bad == [f"{b}: cannot read (Permission denied)"]
    assert reading.report.skipped == {"bad": [str(b)]}
    assert reading.sync.kept == [str(b)]
