"""Real folders as people keep them (issue 16): sources stay in sync with the index, every
file is accounted for, bad input is found before anything is embedded.

Through the CLI (typer's CliRunner) with the real bundled model, on real files."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from searchkit.cli import app
from searchkit.service import Index


def run(*args: Any, input: str | bytes | None = None) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def ok(*args: Any, input: str | bytes | None = None) -> Any:
    result = run(*args, input=input)
    assert result.exit_code == 0, result.output
    return result


def index_json(*args: Any, input: str | bytes | None = None) -> dict[str, Any]:
    return json.loads(ok("index", *args, "--json", input=input).stdout)  # type: ignore[no-any-return]


def items(index: Path) -> dict[str, str]:
    with Index.open(index, load=False) as opened:
        return {item["id"]: item["text"] for item in opened.export()}


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


# --- 1-4: sources stay in sync -----------------------------------------------------


def test_editing_a_txt_file_replaces_its_items(tmp_path: Path, model: Any) -> None:
    notes = write(tmp_path / "notes.txt", "alpha\nbeta\ngamma\n")
    ok("index", tmp_path / "idx", notes)
    before = {text: key for key, text in items(tmp_path / "idx").items()}
    write(notes, "beta\ngamma\n")
    report = index_json(tmp_path / "idx", notes)
    after = items(tmp_path / "idx")
    assert sorted(after.values()) == ["beta", "gamma"]  # no stale "gamma", no "alpha"
    assert {before["beta"], before["gamma"]} == set(after)  # ids by content: kept
    assert (report["deleted"], report["embedded"]) == (1, 0)


def test_a_file_gone_from_a_folder_goes_from_the_index(tmp_path: Path, model: Any) -> None:
    docs = tmp_path / "docs"
    write(docs / "keep.txt", "kept line\n")
    gone = write(docs / "sub" / "gone.md", "# Gone\n\nA document about to be deleted.\n")
    ok("index", tmp_path / "idx", docs)
    other = write(tmp_path / "elsewhere.txt", "another source\n")
    ok("index", tmp_path / "idx", other)
    gone.unlink()
    report = index_json(tmp_path / "idx", docs)
    assert sorted(items(tmp_path / "idx").values()) == ["another source", "kept line"]
    assert report["deleted"] == 1 and report["items"] == 2


def test_no_sync_keeps_what_the_files_no_longer_hold(tmp_path: Path, model: Any) -> None:
    notes = write(tmp_path / "notes.txt", "alpha\nbeta\n")
    ok("index", tmp_path / "idx", notes)
    write(notes, "beta\ngamma\n")
    ok("index", tmp_path / "idx", notes, "--no-sync")
    assert sorted(items(tmp_path / "idx").values()) == ["alpha", "beta", "gamma"]


def test_ids_do_not_depend_on_how_the_path_is_typed(
    tmp_path: Path, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "pkgdocs" / "a" / "README", "Package a does things.\n")
    write(tmp_path / "pkgdocs" / "b.txt", "Package b does other things.\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    ok("index", "idx", "../pkgdocs")
    first = items(work / "idx")
    report = index_json("idx", str(tmp_path / "pkgdocs"))
    assert items(work / "idx") == first
    assert (report["added"], report["updated"], report["unchanged"], report["items"]) == (0, 0, 2, 2)
    report = index_json("idx", "../pkgdocs/b.txt")
    assert (report["unchanged"], report["items"]) == (1, 2)


def test_two_pipes_never_collide(tmp_path: Path, model: Any) -> None:
    ok("index", tmp_path / "idx", "-", input="the first piped text\n")
    ok("index", tmp_path / "idx", "-", input="a second, different text\n")
    assert sorted(items(tmp_path / "idx").values()) == ["a second, different text", "the first piped text"]
    report = index_json(tmp_path / "idx", "-", input="the first piped text\n")
    assert (report["unchanged"], report["items"]) == (1, 2)


def test_piped_documents_never_collide(tmp_path: Path, model: Any) -> None:
    ok(
        "index",
        tmp_path / "idx",
        "-",
        "--split",
        "sentences",
        input="First document. It has two sentences.\n",
    )
    ok("index", tmp_path / "idx", "-", "--split", "sentences", input="A second document.\n")
    texts = sorted(items(tmp_path / "idx").values())
    assert texts == ["A second document.", "First document.", "It has two sentences."]


def test_piped_jsonl_without_ids_never_collides(tmp_path: Path, model: Any) -> None:
    ok("index", tmp_path / "idx", "-", input='{"text": "one"}\n')
    ok("index", tmp_path / "idx", "-", input='{"text": "two"}\n')
    assert sorted(items(tmp_path / "idx").values()) == ["one", "two"]


def test_an_index_from_before_origins_syncs_from_where_it_was_made(
    tmp_path: Path, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An item indexed before m009 (id PATH:LINE, the path as typed) is replaced on a
    re-index from the same place, not kept beside its new id."""
    import sqlite3

    monkeypatch.chdir(tmp_path)
    write(tmp_path / "docs" / "notes.txt", "alpha\nbeta\n")
    ok("index", "idx", "docs")
    db = sqlite3.connect(tmp_path / "idx" / "index.db")
    with db:  # as searchkit 0.x wrote them: keys and sources PATH:LINE as typed, no origin
        db.execute("UPDATE items SET key = 'docs/notes.txt:' || id, source = 'docs/notes.txt:' || id")
        db.execute("UPDATE items SET origin = NULL")
        db.execute("DELETE FROM _searchkit_migrations WHERE name = 'm009_origins'")
    db.close()
    report = index_json("idx", "docs")
    assert sorted(items(tmp_path / "idx").values()) == ["alpha", "beta"]
    assert (report["deleted"], report["embedded"]) == (2, 0)


# --- 5, 11, 12: documents, not only lines ------------------------------------------

README = """Debian notes for openssl
========================

Overview
--------

OpenSSL is a toolkit. It implements TLS and more.

Python 3.
"""


def test_split_makes_a_text_file_one_document(tmp_path: Path, model: Any) -> None:
    readme = write(tmp_path / "README.txt", README)
    ok("index", tmp_path / "idx", readme, "--split", "paragraphs")
    texts = sorted(items(tmp_path / "idx").values())
    assert texts == [
        "Debian notes for openssl",
        "OpenSSL is a toolkit. It implements TLS and more.",
        "Overview",
        "Python 3.",
    ]


def test_unit_paragraph_indexes_blocks(tmp_path: Path, model: Any) -> None:
    notes = write(tmp_path / "notes.txt", "first block\nstill first\n\nsecond block\n")
    ok("index", tmp_path / "idx", notes, "--unit", "paragraph")
    assert sorted(items(tmp_path / "idx").values()) == ["first block\nstill first", "second block"]


def test_sentences_never_cross_a_blank_line_or_a_heading(tmp_path: Path, model: Any) -> None:
    lines = [f"A line without a stop number {n}" for n in range(50)]
    text = "Heading\n=======\n" + "\n\n".join(lines)
    ok("index", tmp_path / "idx", "-", "--split", "sentences", input=json.dumps({"id": "d", "text": text}))
    assert sorted(items(tmp_path / "idx").values()) == sorted(["Heading", *lines])


def test_going_back_from_split_replaces_the_pieces(tmp_path: Path, model: Any) -> None:
    readme = write(tmp_path / "README.txt", README)
    ok("index", tmp_path / "idx", readme, "--split", "sentences")
    assert len(items(tmp_path / "idx")) > 1
    ok("index", tmp_path / "idx", readme, "--unit", "file")
    assert list(items(tmp_path / "idx").values()) == [README.strip()]


def test_going_back_from_split_for_items_with_ids(tmp_path: Path, model: Any) -> None:
    doc = json.dumps({"id": "d1", "text": "One sentence here. Another one there."}) + "\n"
    ok("index", tmp_path / "idx", "-", "--split", "sentences", input=doc)
    assert sorted(items(tmp_path / "idx")) == ["d1#0", "d1#1"]
    ok("index", tmp_path / "idx", "-", input=doc)
    assert list(items(tmp_path / "idx")) == ["d1"]


# --- 6: every file accounted for ----------------------------------------------------


def test_every_file_of_a_folder_is_used_or_skipped_with_its_reason(tmp_path: Path, model: Any) -> None:
    docs = tmp_path / "pkgdocs"
    write(docs / "openssl" / "README.Debian", "OpenSSL for Debian: configuration notes.\n")
    write(docs / "openssl" / "copyright", "Copyright the OpenSSL project.\n")
    write(
        docs / "openssl" / "changelog.Debian.gz", gzip.compress(b"openssl (3.0) unstable; urgency=medium\n")
    )
    write(
        docs / "python3" / "index.html",
        "<html><body><h1>Python</h1><p>Snakes &amp; ladders.</p></body></html>",
    )
    write(docs / "python3" / "intro.rst", "Intro\n=====\n\nThe rst text.\n")
    write(docs / "python3" / "logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    write(docs / "python3" / "empty.txt", "")
    write(docs / ".git" / "config", "[core]\n")
    write(docs / "drafts" / "draft.txt", "a draft\n")
    report = index_json(tmp_path / "idx", docs, "--exclude", "drafts")
    read = report["read"]
    assert read["files_used"] == {"txt by content": 3, "html": 1, "md": 1}
    names = {reason: sorted(Path(n).name for n in found) for reason, found in read["files_skipped"].items()}
    assert names == {
        "binary": ["logo.png"],
        "empty": ["empty.txt"],
        "excluded": ["drafts"],
        "hidden": [".git"],
    }
    on_disk = sum(len(files) for _, _, files in os.walk(docs))  # .git and drafts hold a file each
    assert sum(read["files_used"].values()) + sum(len(n) for n in read["files_skipped"].values()) == on_disk
    texts = set(items(tmp_path / "idx").values())
    assert "openssl (3.0) unstable; urgency=medium" in texts  # .gz of text
    assert "Python\n\nSnakes & ladders." in texts  # HTML's text, not its markup
    assert "Intro\n=====\n\nThe rst text." in texts


def test_the_report_names_skipped_files(tmp_path: Path, model: Any) -> None:
    write(tmp_path / "docs" / "a.txt", "text\n")
    write(tmp_path / "docs" / "b.bin", b"\x00\x01\x02\x03" * 10)
    result = ok("index", tmp_path / "idx", tmp_path / "docs")
    assert "files: 1 used (1 txt), 1 skipped" in result.stdout
    assert f"skipped 1 binary: {tmp_path / 'docs' / 'b.bin'}" in result.stdout


def test_include_reads_only_matching_files(tmp_path: Path, model: Any) -> None:
    write(tmp_path / "docs" / "a.md", "markdown\n")
    write(tmp_path / "docs" / "deep" / "b.md", "deep markdown\n")
    write(tmp_path / "docs" / "c.txt", "plain\n")
    ok("index", tmp_path / "idx", tmp_path / "docs", "--include", "*.md")
    assert sorted(items(tmp_path / "idx").values()) == ["deep markdown", "markdown"]


# --- 7, 10: bad input ---------------------------------------------------------------


def test_one_bad_file_is_skipped_with_skip_bad(tmp_path: Path, model: Any) -> None:
    docs = tmp_path / "docs"
    write(docs / "good.txt", "a good line\n")
    write(docs / "bad.jsonl", '{"text": "fine"}\n{not json\n')
    write(docs / "worse.txt", b"caf\xe9\n")
    result = run("index", tmp_path / "idx", docs)
    assert result.exit_code == 1
    assert "bad.jsonl line 2: not valid JSON" in result.output and "--skip-bad" in result.output
    assert not (tmp_path / "idx").exists()
    result = ok("index", tmp_path / "idx", docs, "--skip-bad")
    assert sorted(items(tmp_path / "idx").values()) == ["a good line", "fine"]
    assert "bad.jsonl line 2: not valid JSON" in result.stdout
    assert "worse.txt line 1: invalid UTF-8" in result.stdout


def test_utf16_with_a_bom_and_legacy_encodings(tmp_path: Path, model: Any) -> None:
    write(tmp_path / "utf16.txt", "\ufeff한국어 문장입니다\nsecond line\n".encode("utf-16-le"))
    write(tmp_path / "korean.txt", "오래된 인코딩의 파일\n".encode("euc-kr"))
    ok("index", tmp_path / "idx", tmp_path / "utf16.txt")
    ok("index", tmp_path / "idx", tmp_path / "korean.txt", "--encoding", "euc-kr")
    assert sorted(items(tmp_path / "idx").values()) == [
        "second line",
        "오래된 인코딩의 파일",
        "한국어 문장입니다",
    ]
    result = run("index", tmp_path / "idx2", tmp_path / "korean.txt")
    assert result.exit_code == 1 and "--encoding" in result.output


def test_encoding_reads_the_legacy_files_of_a_mostly_utf8_folder(tmp_path: Path, model: Any) -> None:
    """As in Debian's doc folder: UTF-8 files, and a few old changelogs in Latin-1."""
    write(tmp_path / "docs" / "new.txt", "déjà vu in UTF-8\n")
    write(tmp_path / "docs" / "changelog", "Fixed by José Müller\n".encode("latin-1"))
    ok("index", tmp_path / "idx", tmp_path / "docs", "--encoding", "latin-1")
    assert sorted(items(tmp_path / "idx").values()) == ["Fixed by José Müller", "déjà vu in UTF-8"]


def test_content_that_only_looks_like_json_is_text(tmp_path: Path, model: Any) -> None:
    write(tmp_path / "docs" / "dirmngr.service", "[Unit]\nDescription=GnuPG network certificate daemon\n")
    write(tmp_path / "docs" / "template", "{{ name }} is a template\n")
    ok("index", tmp_path / "idx", tmp_path / "docs")
    assert sorted(items(tmp_path / "idx").values()) == [
        "Description=GnuPG network certificate daemon",
        "[Unit]",
        "{{ name }} is a template",
    ]


def test_a_bad_last_line_stops_before_any_embedding(
    tmp_path: Path, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("index", tmp_path / "idx", write(tmp_path / "seed.txt", "seed\n"))
    lines = "".join(json.dumps({"text": f"line {n}"}) + "\n" for n in range(600)) + "{oops\n"
    data = write(tmp_path / "big.jsonl", lines)
    loaded: list[str] = []

    def no_model(*args: Any, **kwargs: Any) -> Any:
        loaded.append("model")
        raise AssertionError("the model was loaded for an input with a bad line")

    monkeypatch.setattr("searchkit.service.index.load_model", no_model)
    result = run("index", tmp_path / "idx", data)
    assert result.exit_code == 1 and "big.jsonl line 601: not valid JSON" in result.output
    assert loaded == [] and list(items(tmp_path / "idx").values()) == ["seed"]


# --- 8, 9: spreadsheets and guessing -------------------------------------------------


def test_csv_all_empty_rows_are_skipped_and_counted(tmp_path: Path, model: Any) -> None:
    sheet = write(tmp_path / "sheet.csv", "id,text,genre,year\nr1,A row of text,news,2020\n,,,\n,,,\n")
    report = index_json(tmp_path / "idx", sheet)
    assert report["items"] == 1 and report["read"]["empty_rows"] == 2


def test_csv_delimiter(tmp_path: Path, model: Any) -> None:
    sheet = write(tmp_path / "sheet.csv", "id;text;genre\nr1;Semicolons, as Excel writes them;news\n")
    result = run("index", tmp_path / "idx", sheet)
    assert result.exit_code == 1 and "--delimiter ';'" in result.output
    ok("index", tmp_path / "idx", sheet, "--delimiter", ";")
    assert items(tmp_path / "idx") == {"r1": "Semicolons, as Excel writes them"}


def test_piped_csv_is_read_as_csv_and_says_so(tmp_path: Path, model: Any) -> None:
    result = ok("index", tmp_path / "idx", "-", input="id,text\nr1,a piped row\n")
    assert items(tmp_path / "idx") == {"r1": "a piped row"}
    assert "stdin: read as csv" in result.stdout


def test_piped_jsonl_after_a_blank_line(tmp_path: Path, model: Any) -> None:
    ok("index", tmp_path / "idx", "-", input='\n\n{"id": "j1", "text": "json after blanks"}\n')
    assert items(tmp_path / "idx") == {"j1": "json after blanks"}


def test_json_array_of_objects(tmp_path: Path, model: Any) -> None:
    data = write(
        tmp_path / "items.json", json.dumps([{"id": "a", "text": "first"}, {"id": "b", "text": "second"}])
    )
    ok("index", tmp_path / "idx", data)
    assert items(tmp_path / "idx") == {"a": "first", "b": "second"}
    single = write(tmp_path / "one.json", json.dumps({"id": "a", "text": "first"}))
    result = run("index", tmp_path / "idx", single)
    assert result.exit_code == 1 and "JSON Lines (.jsonl)" in result.output
    # In a folder, a JSON file of data (a config, a benchmark's figures) is skipped and said so.
    write(tmp_path / "folder" / "items.json", json.dumps([{"id": "c", "text": "third"}]))
    write(tmp_path / "folder" / "settings.json", json.dumps({"theme": "dark"}))
    report = index_json(tmp_path / "idx", tmp_path / "folder")
    assert report["read"]["files_skipped"] == {
        "JSON files not an array of objects (items go in .jsonl)": [
            str(tmp_path / "folder" / "settings.json")
        ]
    }
    assert items(tmp_path / "idx") == {"a": "first", "b": "second", "c": "third"}


# --- 13: feedback -------------------------------------------------------------------


def test_most_texts_truncated_suggests_split(tmp_path: Path, model: Any) -> None:
    long = " ".join(["word"] * 400)
    data = write(
        tmp_path / "long.jsonl", "".join(json.dumps({"text": f"{n} {long}"}) + "\n" for n in range(3))
    )
    result = ok("index", tmp_path / "idx", data)
    assert "--split sentences" in result.stdout


def test_split_totals_are_known_before_the_write(tmp_path: Path) -> None:
    from searchkit.readers import read_inputs

    readme = write(tmp_path / "README.txt", README)
    reading = read_inputs([readme], unit="file")
    reading.check("paragraphs")
    assert reading.total == 4
    reading = read_inputs([readme, "-"])
    reading.check()
    assert reading.total is None  # stdin is not read ahead
