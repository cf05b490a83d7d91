"""searchkit.readers: every format, folders, stdin, and the exact message for each bad input."""

from __future__ import annotations

import inspect
import io
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from searchkit.errors import InputError, UsageError
from searchkit.readers import read_inputs
from searchkit.types import Record


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return path


def read(*inputs: str | Path, **options: str) -> list[Record]:
    return list(read_inputs(inputs, **options))


def fake_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data)))


# --- txt -------------------------------------------------------------------------


def test_txt_one_record_per_non_empty_line(tmp_path: Path) -> None:
    p = write(tmp_path / "notes.txt", "first line\n\n   \n  second line  \r\nthird")
    assert read(p) == [
        Record("first line", f"{p}:1", {}, f"{p}:1"),
        Record("second line", f"{p}:4", {}, f"{p}:4"),
        Record("third", f"{p}:5", {}, f"{p}:5"),
    ]


def test_empty_files_give_no_records(tmp_path: Path) -> None:
    for name in ("a.txt", "b.csv", "c.jsonl", "d.md", "e.tsv"):
        assert read(write(tmp_path / name, "")) == []
    assert read(write(tmp_path / "header-only.csv", "id,text\n")) == []


# --- md --------------------------------------------------------------------------


def test_md_is_one_record_per_file(tmp_path: Path) -> None:
    body = "# Title\n\nA paragraph\nover two lines.\n\n- a list\n"
    p = write(tmp_path / "doc.md", "\n" + body + "\n\n")
    assert read(p) == [Record(body.strip(), str(p), {}, str(p))]


def test_md_blank_file_gives_no_record(tmp_path: Path) -> None:
    assert read(write(tmp_path / "blank.markdown", "\n  \n\n")) == []


def test_md_files_in_a_folder_are_one_record_each(tmp_path: Path) -> None:
    a = write(tmp_path / "docs" / "a.md", "alpha\n\nmore alpha\n")
    b = write(tmp_path / "docs" / "b.markdown", "beta\n")
    assert read(tmp_path / "docs") == [
        Record("alpha\n\nmore alpha", str(a), {}, str(a)),
        Record("beta", str(b), {}, str(b)),
    ]


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
        Record("hello, world", "a1", {"lang": "en", "year": "2020"}, f"{p}:2"),
        Record(
            'line one\nline two "quoted"', "a2", {"lang": "fr", "year": "1999"}, f"{p}:4"
        ),  # named by its first line
        Record("plain", "a3", {"lang": "de", "year": ""}, f"{p}:6"),
    ]


def test_csv_without_id_column_keys_by_line(tmp_path: Path) -> None:
    p = write(tmp_path / "items.csv", "text,tag\r\nfirst,x\r\nsecond,y\r\n")
    assert read(p) == [
        Record("first", f"{p}:2", {"tag": "x"}, f"{p}:2"),
        Record("second", f"{p}:3", {"tag": "y"}, f"{p}:3"),
    ]


def test_csv_empty_id_falls_back_to_line_key(tmp_path: Path) -> None:
    p = write(tmp_path / "items.csv", "id,text\n,no id here\n7,has id\n")
    assert [r.key for r in read(p)] == [f"{p}:2", "7"]
    assert [r.metadata for r in read(p)] == [{}, {}]


def test_csv_header_names_are_stripped(tmp_path: Path) -> None:
    p = write(tmp_path / "items.csv", " id , text \n1,hi\n")
    assert read(p) == [Record("hi", "1", {}, f"{p}:2")]


@pytest.mark.parametrize("name", ["items.tsv", "items.tab"])
def test_tsv(tmp_path: Path, name: str) -> None:
    p = write(tmp_path / name, 'id\ttext\tnote\nt1\ta, b, c\tx\nt2\t"tab\tinside"\ty\n')
    assert read(p) == [
        Record("a, b, c", "t1", {"note": "x"}, f"{p}:2"),
        Record("tab\tinside", "t2", {"note": "y"}, f"{p}:3"),
    ]


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
        Record("first", "doc-1", {"tags": ["a", "b"], "meta": {"x": 1, "y": [None, True]}}, f"{p}:1"),
        Record("second", "42", {"score": 0.5}, f"{p}:2"),
        Record("third, no id", f"{p}:4", {"lang": "日本語"}, f"{p}:4"),
        Record("fourth, null id", f"{p}:5", {}, f"{p}:5"),
    ]


def test_source_is_path_and_line_even_when_the_name_contains_line(tmp_path: Path) -> None:
    p = write(tmp_path / "my line notes.jsonl", '{"id": "a", "text": "x"}\n')
    q = write(tmp_path / "a line b.csv", "text\ny\n")
    assert [r.source for r in read(p, q)] == [f"{p}:1", f"{q}:2"]


# --- format selection ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected_keys"),
    [
        ("x.txt", ["{p}:1", "{p}:2"]),
        ("x.text", ["{p}:1", "{p}:2"]),
        ("x.TXT", ["{p}:1", "{p}:2"]),
        ("x.unknown", ["{p}:1", "{p}:2"]),
        ("x", ["{p}:1", "{p}:2"]),
        ("x.md", ["{p}"]),
        ("x.markdown", ["{p}"]),
        ("x.jsonl", ["j1", "j2"]),
        ("x.ndjson", ["j1", "j2"]),
        ("x.JSONL", ["j1", "j2"]),
    ],
)
def test_auto_detection_by_extension(tmp_path: Path, name: str, expected_keys: list[str]) -> None:
    p = write(tmp_path / name, '{"id": "j1", "text": "one"}\n{"id": "j2", "text": "two"}\n')
    assert [r.key for r in read(p)] == [k.format(p=p) for k in expected_keys]


@pytest.mark.parametrize(("name", "expected"), [("x.csv", ["c1"]), ("x.tsv", ["t1"]), ("x.tab", ["t1"])])
def test_auto_detection_of_tables(tmp_path: Path, name: str, expected: list[str]) -> None:
    delimiter = "," if name.endswith(".csv") else "\t"
    p = write(tmp_path / name, f"id{delimiter}text\n{expected[0]}{delimiter}hello\n")
    assert [(r.key, r.text) for r in read(p)] == [(expected[0], "hello")]


def test_format_override_beats_the_extension(tmp_path: Path) -> None:
    p = write(tmp_path / "data.txt", '{"id": "a", "text": "from json"}\n')
    assert read(p, fmt="jsonl") == [Record("from json", "a", {}, f"{p}:1")]
    assert read(p, fmt="txt") == [Record('{"id": "a", "text": "from json"}', f"{p}:1", {}, f"{p}:1")]
    c = write(tmp_path / "table.dat", "id\ttext\nk\tv\n")
    assert read(c, fmt="tsv") == [Record("v", "k", {}, f"{c}:2")]
    j = write(tmp_path / "lines.jsonl", "id,text\nk,v\n")
    assert read(j, fmt="csv") == [Record("v", "k", {}, f"{j}:2")]


def test_custom_text_and_id_fields(tmp_path: Path) -> None:
    j = write(tmp_path / "a.jsonl", '{"uid": 5, "body": "the body", "text": "kept", "id": "meta"}\n')
    assert read(j, text_field="body", id_field="uid") == [
        Record("the body", "5", {"text": "kept", "id": "meta"}, f"{j}:1")
    ]
    c = write(tmp_path / "a.csv", "uid,body,text\nu1,the body,kept\n")
    assert read(c, text_field="body", id_field="uid") == [
        Record("the body", "u1", {"text": "kept"}, f"{c}:2")
    ]


def test_several_text_fields_join_as_beir_does(tmp_path: Path) -> None:
    """--text-field title,text: (title + " " + text).strip(), as BEIR and MTEB embed a document."""
    j = write(
        tmp_path / "corpus.jsonl",
        '{"_id": "d1", "title": "A title", "text": "the body", "metadata": {}}\n'
        '{"_id": "d2", "title": "", "text": "no title"}\n'
        '{"_id": "d3", "text": "title missing"}\n'
        '{"_id": "d4", "title": "only a title", "text": null}\n',
    )
    got = read(j, text_field="title,text", id_field="_id")
    assert [(r.key, r.text) for r in got] == [
        ("d1", "A title the body"),
        ("d2", "no title"),
        ("d3", "title missing"),
        ("d4", "only a title"),
    ]
    assert got[0].metadata == {"metadata": {}}
    c = write(tmp_path / "a.csv", "id,title,text\n1,T,body\n")
    assert [r.text for r in read(c, text_field="title,text")] == ["T body"]
    with pytest.raises(InputError, match="fields 'title,text' are all empty"):
        read(write(tmp_path / "e.jsonl", '{"title": " ", "text": ""}\n'), text_field="title,text")
    with pytest.raises(InputError, match="none of the fields title, text"):
        read(write(tmp_path / "n.jsonl", '{"body": "x"}\n'), text_field="title,text")
    with pytest.raises(InputError, match="field 'title' is a number, not a string"):
        read(write(tmp_path / "t.jsonl", '{"title": 5, "text": "x"}\n'), text_field="title,text")
    with pytest.raises(InputError, match="no 'title' column"):
        read(write(tmp_path / "b.csv", "id,text\n1,x\n"), text_field="title,text")


# --- BOM -------------------------------------------------------------------------


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    bom = b"\xef\xbb\xbf"
    t = write(tmp_path / "a.txt", bom + "héllo\nworld\n".encode())
    c = write(tmp_path / "a.csv", bom + b"id,text\n1,hi\n")
    j = write(tmp_path / "a.jsonl", bom + b'{"id": "j", "text": "hi"}\n')
    assert [r.text for r in read(t)] == ["héllo", "world"]
    assert read(c) == [Record("hi", "1", {}, f"{c}:2")]
    assert read(j) == [Record("hi", "j", {}, f"{j}:1")]


def test_bom_only_stripped_on_the_first_line(tmp_path: Path) -> None:
    t = write(tmp_path / "a.txt", b"one\n\xef\xbb\xbftwo\n")
    assert [r.text for r in read(t)] == ["one", "\ufefftwo"]


# --- folders ---------------------------------------------------------------------


def test_folder_is_recursive_sorted_and_skips_hidden_and_unknown(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    b = write(root / "b.txt", "b one\n\nb three\n")
    a = write(root / "a.md", "alpha\n")
    write(root / "sub" / "c.jsonl", '{"id": "c1", "text": "gamma"}\n')
    d = write(root / "sub" / "deeper" / "d.csv", "text\ndelta\n")
    write(root / ".hidden.txt", "secret\n")
    write(root / ".git" / "notes.txt", "git internals\n")
    write(root / "sub" / ".cache" / "e.md", "cached\n")
    write(root / "image.png", b"\x89PNG\r\n\x1a\n\x00\x00")
    write(root / "notes.rst", "restructured\n")
    records = read(root)
    assert [(r.key, r.text) for r in records] == [
        (str(a), "alpha"),
        (f"{b}:1", "b one"),
        (f"{b}:3", "b three"),
        ("c1", "gamma"),
        (f"{d}:2", "delta"),
    ]


def test_folder_uses_each_files_extension_not_the_format_option(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    write(root / "a.jsonl", '{"id": "j", "text": "json"}\n')
    t = write(root / "b.txt", "plain\n")
    assert [r.key for r in read(root, fmt="txt")] == ["j", f"{t}:1"]


def test_hidden_folder_given_explicitly_is_read(tmp_path: Path) -> None:
    p = write(tmp_path / ".data" / "a.txt", "visible\n")
    assert read(tmp_path / ".data") == [Record("visible", f"{p}:1", {}, f"{p}:1")]


def test_several_inputs_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write(tmp_path / "a.txt", "from a\n")
    b = write(tmp_path / "b.txt", "from b\n")
    fake_stdin(monkeypatch, b"from stdin\n")
    assert [r.text for r in read(b, "-", a)] == ["from b", "from stdin", "from a"]


# --- stdin -----------------------------------------------------------------------


def test_stdin_auto_detects_jsonl(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b'  {"id": "s1", "text": "one", "k": [1]}\n\n{"text": "two"}\n')
    assert read("-") == [
        Record("one", "s1", {"k": [1]}, "stdin:1"),
        Record("two", "stdin:3", {}, "stdin:3"),
    ]


def test_stdin_auto_detects_txt(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b'first\n{"text": "not json mode"}\n')
    assert read("-") == [
        Record("first", "stdin:1", {}, "stdin:1"),
        Record('{"text": "not json mode"}', "stdin:2", {}, "stdin:2"),
    ]


def test_stdin_with_bom_is_still_jsonl(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b'\xef\xbb\xbf{"id": "b", "text": "bom"}\n')
    assert read("-") == [Record("bom", "b", {}, "stdin:1")]


def test_stdin_with_explicit_format(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b"id,text\nx,from csv\n")
    assert read("-", fmt="csv") == [Record("from csv", "x", {}, "stdin:2")]


def test_empty_stdin_gives_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b"")
    assert read("-") == []


def test_stdin_errors_name_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b'{"text": "ok"}\n{"text": 1}\n')
    with pytest.raises(InputError) as info:
        read("-")
    assert str(info.value) == "stdin line 2: field 'text' is a number, not a string"


# --- laziness --------------------------------------------------------------------


def test_reading_is_lazy_records_before_a_bad_line_come_first(tmp_path: Path) -> None:
    p = write(tmp_path / "a.jsonl", '{"id": "1", "text": "a"}\n{"id": "2", "text": "b"}\nnot json\n')
    records = read_inputs([p])
    assert inspect.isgenerator(records)
    assert next(records).key == "1"
    assert next(records).key == "2"
    with pytest.raises(InputError, match=re.escape(f"{p} line 3: not valid JSON")):
        next(records)


def test_reading_is_lazy_across_files(tmp_path: Path) -> None:
    good = write(tmp_path / "good.txt", "fine\n")
    bad = write(tmp_path / "bad.txt", b"\xff\n")
    records = read_inputs([good, bad])
    assert next(records).text == "fine"
    with pytest.raises(InputError, match=re.escape(f"{bad} line 1: invalid UTF-8")):
        next(records)


def test_no_error_before_iteration(tmp_path: Path) -> None:
    records = read_inputs([tmp_path / "missing.txt"], fmt="xml")
    with pytest.raises(UsageError):
        next(records)


# --- bad inputs ------------------------------------------------------------------

BAD_INPUTS = [
    pytest.param(
        "a.txt",
        b"fine\nbad \xff here\n",
        "auto",
        "{p} line 2: invalid UTF-8 (byte 0xff at column 5); re-encode the file as UTF-8",
        id="invalid-utf8",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": "ok"}\n{"text": "caf\xe9"}\n',
        "auto",
        "{p} line 2: invalid UTF-8 (byte 0xe9 at column 14); re-encode the file as UTF-8",
        id="latin1-in-jsonl",
    ),
    pytest.param(
        "a.txt",
        b"fine\nnul\x00byte\n",
        "auto",
        "{p} line 2: contains NUL bytes; is it a binary file? searchkit reads UTF-8 text",
        id="nul-bytes",
    ),
    pytest.param(
        "a.csv",
        b"id,text\n1,hello\n2,hello, world\n",
        "auto",
        "{p} line 3: 3 fields where the header has 2; quote fields that contain the delimiter",
        id="ragged-csv-row",
    ),
    pytest.param(
        "a.csv",
        b"id,text\n1\n",
        "auto",
        "{p} line 2: 1 fields where the header has 2; quote fields that contain the delimiter",
        id="short-csv-row",
    ),
    pytest.param(
        "a.tsv",
        b"id\ttext\n1\ta\tb\n",
        "auto",
        "{p} line 2: 3 fields where the header has 2; quote fields that contain the delimiter",
        id="ragged-tsv-row",
    ),
    pytest.param(
        "a.csv",
        b"id,body,lang\n1,hello,en\n",
        "auto",
        "{p}: no 'text' column (columns: id, body, lang); name the text column with --text-field",
        id="header-without-text",
    ),
    pytest.param(
        "a.csv",
        b'text\n"a"b\n',
        "auto",
        "{p} line 2: malformed CSV (',' expected after '\"')",
        id="csv-bad-quote",
    ),
    pytest.param(
        "a.csv",
        b'id,text\n1,"never closed\nstill open\n',
        "auto",
        "{p} line 3: malformed CSV (unexpected end of data)",
        id="csv-unclosed-quote",
    ),
    pytest.param(
        "a.tsv",
        b'text\n"a"b\n',
        "auto",
        "{p} line 2: malformed TSV ('\t' expected after '\"')",
        id="tsv-bad-quote",
    ),
    pytest.param(
        "a.csv",
        b"id,text\n1,\n",
        "auto",
        "{p} line 2: field 'text' is empty; remove the record or fill it",
        id="csv-empty-text",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": "ok"}\n{"text": \n',
        "auto",
        "{p} line 2: not valid JSON (Expecting value); fix or remove the line",
        id="jsonl-not-json",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": "ok",}\n',
        "auto",
        "{p} line 1: not valid JSON (Expecting property name enclosed in double quotes); "
        "fix or remove the line",
        id="jsonl-trailing-comma",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": "a"} {"text": "b"}\n',
        "auto",
        "{p} line 1: not valid JSON (Extra data); fix or remove the line",
        id="jsonl-two-objects-one-line",
    ),
    pytest.param(
        "a.jsonl",
        b'["text", "a"]\n',
        "auto",
        "{p} line 1: expected a JSON object, found an array",
        id="jsonl-array",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": "ok"}\n\n"just a string"\n',
        "auto",
        "{p} line 3: expected a JSON object, found a string",
        id="jsonl-string",
    ),
    pytest.param(
        "a.jsonl",
        b"3.5\n",
        "auto",
        "{p} line 1: expected a JSON object, found a number",
        id="jsonl-number",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": 12}\n',
        "auto",
        "{p} line 1: field 'text' is a number, not a string",
        id="text-number",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": null}\n',
        "auto",
        "{p} line 1: field 'text' is null, not a string",
        id="text-null",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": ["a"]}\n',
        "auto",
        "{p} line 1: field 'text' is an array, not a string",
        id="text-array",
    ),
    pytest.param(
        "a.jsonl",
        b'{"body": "x"}\n',
        "auto",
        "{p} line 1: no 'text' field; name the text field with --text-field",
        id="text-missing",
    ),
    pytest.param(
        "a.jsonl",
        b'{"text": " \\n\\t "}\n',
        "auto",
        "{p} line 1: field 'text' is empty; remove the record or fill it",
        id="text-empty",
    ),
    pytest.param(
        "a.jsonl",
        b'{"id": true, "text": "x"}\n',
        "auto",
        "{p} line 1: field 'id' is a boolean, not a string or integer",
        id="id-boolean",
    ),
    pytest.param(
        "a.jsonl",
        b'{"id": {"a": 1}, "text": "x"}\n',
        "auto",
        "{p} line 1: field 'id' is an object, not a string or integer",
        id="id-object",
    ),
    pytest.param(
        "a.jsonl",
        b'{"id": 1.5, "text": "x"}\n',
        "auto",
        "{p} line 1: field 'id' is a number, not a string or integer",
        id="id-float",
    ),
    pytest.param(
        "a.jsonl",
        b'{"id": [1], "text": "x"}\n',
        "auto",
        "{p} line 1: field 'id' is an array, not a string or integer",
        id="id-array",
    ),
    pytest.param(
        "a.txt",
        b'{"text": 1}\n',
        "jsonl",
        "{p} line 1: field 'text' is a number, not a string",
        id="format-override-applies-to-checks",
    ),
]


@pytest.mark.parametrize(("name", "content", "fmt", "message"), BAD_INPUTS)
def test_bad_input_message(tmp_path: Path, name: str, content: bytes, fmt: str, message: str) -> None:
    p = write(tmp_path / name, content)
    with pytest.raises(InputError) as info:
        read(p, fmt=fmt)
    assert str(info.value) == message.format(p=p)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("fmt", ["xml", "md", "JSONL", ""])
def test_unknown_format_is_a_usage_error(tmp_path: Path, fmt: str) -> None:
    p = write(tmp_path / "a.txt", "x\n")
    message = f"unknown format {fmt!r}: choose one of auto, txt, csv, tsv, jsonl, parquet"
    with pytest.raises(UsageError, match=f"^{re.escape(message)}$"):
        read(p, fmt=fmt)


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(InputError, match=f"^{re.escape(f'{missing}: no such file or folder')}$"):
        read(missing)


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
    records = read_inputs([tmp_path / "docs"])
    assert next(records).key == f"{a}:1"
    with pytest.raises(InputError) as info:
        next(records)
    assert str(info.value) == f"{b}: cannot read (Permission denied)"


@pytest.mark.parametrize(
    "files",
    [
        pytest.param({}, id="empty"),
        pytest.param({".hidden.txt": "x", ".git/a.txt": "y", "photo.jpg": "z"}, id="only-skipped"),
    ],
)
def test_folder_without_input_files(tmp_path: Path, files: dict[str, str]) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    for name, content in files.items():
        write(root / name, content)
    message = (
        f"{root}: no input files in this folder "
        "(looked for .csv, .jsonl, .markdown, .md, .ndjson, .parquet, .tab, .text, .tsv, .txt)"
    )
    with pytest.raises(InputError) as info:
        read(root)
    assert str(info.value) == message


def test_a_lone_surrogate_escape_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "s.jsonl"
    p.write_text('{"text": "fine \\ud83d\\ude00"}\n{"text": "half \\ud800"}\n', encoding="utf-8")
    records = read_inputs([p])
    assert next(records).text == "fine \U0001f600"
    with pytest.raises(InputError) as caught:
        next(records)
    assert (
        str(caught.value) == f"{p} line 2: a \\ud800-\\udfff escape with no pair is not text; fix the escape"
    )
