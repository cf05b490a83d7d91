"""searchkit.readers.listing: which files a folder holds, the globs that select them, and the
report that accounts for every one of them."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from searchkit.errors import UsageError
from searchkit.readers import read_inputs
from searchkit.readers.listing import BY_EXTENSION, glob_matcher


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


# --- glob_matcher ------------------------------------------------------------------

PATHS = [
    "a.md",
    "c.md",
    "ab",
    "a",
    "notes.txt",
    "docs/a.md",
    "docs/sub/b.md",
    "a/b/c.txt",
    "b/c",
    "drafts",
    "drafts/x.md",
    "old/drafts/y.txt",
    "drafts2/z.txt",
]


@pytest.mark.parametrize(
    ("pattern", "matched"),
    [
        # Without "/", a pattern matches a name at any depth, and a folder it matches
        # covers everything inside it (as .gitignore does).
        pytest.param("*.md", ["a.md", "c.md", "docs/a.md", "docs/sub/b.md", "drafts/x.md"], id="star-ext"),
        pytest.param("drafts", ["drafts", "drafts/x.md", "old/drafts/y.txt"], id="folder-name"),
        pytest.param("drafts/", ["drafts", "drafts/x.md", "old/drafts/y.txt"], id="folder-name-slash"),
        pytest.param("?", ["a", "a/b/c.txt", "b/c"], id="one-character"),
        pytest.param(
            "[ab]*", ["a.md", "ab", "a", "docs/a.md", "docs/sub/b.md", "a/b/c.txt", "b/c"], id="set"
        ),
        pytest.param(
            "[!a]*",
            [
                "c.md",
                "notes.txt",
                "docs/a.md",
                "docs/sub/b.md",
                "a/b/c.txt",
                "b/c",
                "drafts",
                "drafts/x.md",
                "old/drafts/y.txt",
                "drafts2/z.txt",
            ],
            id="negated-set",
        ),
        # With "/", a pattern is a path from the folder given: "*" stays within one name.
        pytest.param("docs/**", ["docs/a.md", "docs/sub/b.md"], id="everything-under"),
        pytest.param("docs/*.md", ["docs/a.md"], id="one-level"),
        pytest.param(
            "**/*.txt", ["notes.txt", "a/b/c.txt", "old/drafts/y.txt", "drafts2/z.txt"], id="any-depth"
        ),
        pytest.param("old/**/*.txt", ["old/drafts/y.txt"], id="any-depth-under"),
        pytest.param("*.MD", [], id="case-sensitive"),
        pytest.param("**", PATHS, id="everything"),
    ],
)
def test_glob_matcher(pattern: str, matched: list[str]) -> None:
    matches = glob_matcher([pattern])
    assert [path for path in PATHS if matches(path)] == matched


def test_glob_matcher_of_several_patterns_matches_any() -> None:
    matches = glob_matcher(["*.txt", "docs/**"])
    assert [path for path in PATHS if matches(path)] == [
        "notes.txt",
        "docs/a.md",
        "docs/sub/b.md",
        "a/b/c.txt",
        "old/drafts/y.txt",
        "drafts2/z.txt",
    ]
    assert [path for path in PATHS if glob_matcher([])(path)] == []


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        pytest.param(
            "[a-c].md",
            "b.md",
            True,
            id="range",
        ),
        pytest.param(
            "[a-c].md",
            "-.md",
            False,
            id="range-is-no-dash",
        ),
        pytest.param(
            "a[!x]c",
            "a/c",
            False,
            id="negated-set-stays-in-a-name",
        ),
        pytest.param(
            "/drafts",
            "old/drafts/y.txt",
            False,
            id="leading-slash-anchors",
        ),
        pytest.param("a?c", "a/c", False, id="question-mark-stays-in-a-name"),
        pytest.param("a*c", "a/c", False, id="star-stays-in-a-name"),
        pytest.param("a**c", "a/b/c", True, id="double-star-crosses-folders"),
        pytest.param("a.md", "xa.md", False, id="whole-names-only"),
        pytest.param("docs", "docs2/a.md", False, id="folder-names-whole"),
        pytest.param("notes(1).txt", "notes(1).txt", True, id="regex-characters-are-literal"),
        pytest.param("a+b", "aab", False, id="plus-is-literal"),
    ],
)
def test_glob_edges(pattern: str, path: str, expected: bool) -> None:
    assert glob_matcher([pattern])(path) is expected


@pytest.mark.parametrize("pattern", ["", "  "])
def test_an_empty_glob_is_a_usage_error(tmp_path: Path, pattern: str) -> None:
    message = "an empty --include/--exclude pattern matches nothing; give a glob such as '*.md'"
    with pytest.raises(UsageError) as included:
        read_inputs([tmp_path], include=[pattern])
    with pytest.raises(UsageError) as excluded:
        read_inputs([tmp_path], exclude=["*.md", pattern])
    assert str(included.value) == str(excluded.value) == message


# --- include / exclude -------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for name in (
        "a.md",
        "b.txt",
        "build/g.txt",
        "docs/e.md",
        "docs/sub/f.txt",
        "drafts/c.md",
        "drafts/d.txt",
    ):
        write(root / name, f"{name}\n")
    return root


@pytest.mark.parametrize(
    ("include", "exclude", "texts", "excluded"),
    [
        pytest.param(
            [],
            [],
            ["a.md", "b.txt", "build/g.txt", "docs/e.md", "docs/sub/f.txt", "drafts/c.md", "drafts/d.txt"],
            [],
            id="all",
        ),
        # An excluded folder is pruned: counted once, not once per file in it.
        pytest.param(
            [],
            ["drafts"],
            ["a.md", "b.txt", "build/g.txt", "docs/e.md", "docs/sub/f.txt"],
            ["drafts/"],
            id="exclude-a-folder",
        ),
        pytest.param(
            [],
            ["drafts", "build/"],
            ["a.md", "b.txt", "docs/e.md", "docs/sub/f.txt"],
            ["build/", "drafts/"],
            id="exclude-two-folders",
        ),
        # "docs/**" is what is in docs: the subfolder is pruned, the file counted.
        pytest.param(
            [],
            ["docs/**"],
            ["a.md", "b.txt", "build/g.txt", "drafts/c.md", "drafts/d.txt"],
            ["docs/sub/", "docs/e.md"],
            id="exclude-under-a-folder",
        ),
        pytest.param(
            [],
            ["*.txt"],
            ["a.md", "docs/e.md", "drafts/c.md"],
            ["b.txt", "build/g.txt", "docs/sub/f.txt", "drafts/d.txt"],
            id="exclude-files",
        ),
        # An include selects files: every other file is counted, folders are still walked.
        pytest.param(
            ["*.md"],
            [],
            ["a.md", "docs/e.md", "drafts/c.md"],
            ["b.txt", "build/g.txt", "docs/sub/f.txt", "drafts/d.txt"],
            id="include-files",
        ),
        pytest.param(
            ["docs"],
            [],
            ["docs/e.md", "docs/sub/f.txt"],
            ["a.md", "b.txt", "build/g.txt", "drafts/c.md", "drafts/d.txt"],
            id="include-a-folder",
        ),
        # Exclude wins over include.
        pytest.param(
            ["*.md"],
            ["drafts"],
            ["a.md", "docs/e.md"],
            ["drafts/", "b.txt", "build/g.txt", "docs/sub/f.txt"],
            id="include-and-exclude",
        ),
        pytest.param(
            ["*.md", "b.txt"],
            ["docs/sub"],
            ["a.md", "b.txt", "docs/e.md", "drafts/c.md"],
            ["build/g.txt", "docs/sub/", "drafts/d.txt"],
            id="several-of-each",
        ),
    ],
)
def test_include_and_exclude(
    tree: Path, include: list[str], exclude: list[str], texts: list[str], excluded: list[str]
) -> None:
    reading = read_inputs([tree], include=include, exclude=exclude)
    assert [record.text for record in reading] == texts
    names = [name.removeprefix(f"{tree}/") for name in reading.report.skipped.get("excluded", [])]
    assert names == excluded
    assert set(reading.report.skipped) <= {"excluded"}
    assert (reading.report.files_used, reading.report.files_skipped) == (len(texts), len(excluded))
    on_disk = sum(len(files) for _, _, files in os.walk(tree))
    pruned = [name for name in excluded if name.endswith("/")]
    in_pruned = sum(len(files) for name in pruned for _, _, files in os.walk(tree / name))
    assert len(texts) + len(excluded) == on_disk - in_pruned + len(pruned)


def test_globs_apply_inside_the_folder_given_not_to_files_named(tmp_path: Path) -> None:
    named = write(tmp_path / "notes.txt", "named\n")
    write(tmp_path / "docs" / "a.txt", "in a folder\n")
    reading = read_inputs([named, tmp_path / "docs"], exclude=["*.txt"])
    assert [record.text for record in reading] == ["named"]
    assert reading.report.skipped == {"excluded": [str(tmp_path / "docs" / "a.txt")]}


def test_globs_are_relative_to_the_folder_given(tmp_path: Path) -> None:
    """A pattern with "/" starts at the folder given, wherever that folder is."""
    write(tmp_path / "docs" / "docs" / "a.md", "deeper docs\n")
    write(tmp_path / "docs" / "b.md", "top\n")
    reading = read_inputs([tmp_path / "docs"], exclude=["docs/**"])
    assert [record.text for record in reading] == ["top"]
    assert reading.report.skipped == {"excluded": [str(tmp_path / "docs" / "docs" / "a.md")]}


# --- what the walk skips, and the report ---------------------------------------------


def test_every_file_on_disk_is_used_or_skipped(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    write(root / "a.txt", "alpha\n")
    write(root / "b.md", "# B\n")
    write(root / "c.rst", "Title\n=====\n\nbody\n")
    write(root / "d.html", "<!DOCTYPE html><html><body><p>hi</p></body></html>\n")
    write(root / "README", "plain words\n")
    write(root / "README.Debian", "debian notes\n")
    write(root / "e.txt.gz", gzip.compress(b"zipped\n"))
    write(root / "data", '{"text": "j"}\n')
    write(root / "image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(root / "empty.txt", "")
    write(root / "blank.md", "\n \n")
    write(root / ".hidden", "x\n")
    write(root / ".git" / "config", "[core]\n")
    write(root / ".git" / "HEAD", "ref\n")
    write(root / "build" / "x.txt", "x\n")
    write(root / "build" / "y" / "z.txt", "z\n")
    write(root / "sub" / "more.txt", "more\n")
    reading = read_inputs([root], exclude=["build"])
    reading.check()
    records = list(reading)
    report = reading.report
    assert report.used == {"txt": 3, "md": 2, "html": 1, "txt by content": 2, "jsonl by content": 1}
    assert report.skipped == {
        "hidden": [f"{root / '.git'}/", str(root / ".hidden")],
        "excluded": [f"{root / 'build'}/"],
        "empty": [str(root / "blank.md"), str(root / "empty.txt")],
        "binary": [str(root / "image.png")],
    }
    # Each hidden or excluded folder is one entry: .git and build hold 2 files each.
    on_disk = sum(len(files) for _, _, files in os.walk(root))
    assert report.files_used + report.files_skipped == on_disk - 4 + 2
    assert [Path(record.origin or "").name for record in records] == [
        "README",
        "README.Debian",
        "a.txt",
        "b.md",
        "c.rst",
        "d.html",
        "data",
        "e.txt.gz",
        "more.txt",
    ]
    assert reading.sync.files == [record.origin for record in records]
    assert report.notes == []


def test_report_lines(tmp_path: Path) -> None:
    root = tmp_path / "small"
    write(root / "a.txt", "alpha\n")
    write(root / "b.txt", "beta\n")
    write(root / "c.md", "# C\n")
    write(root / "d.jsonl", '{"text": "ok"}\n{"text": 1}\n')
    write(root / "empty.txt", "")
    write(root / "notes", "plain\n")
    write(root / "pic.png", b"\x00PNG")
    write(root / "t.csv", "text,tag\nx,1\n,\n")
    for name in (".a", ".b", ".c", ".d"):
        write(root / name, "hidden\n")
    license = write(tmp_path / "LICENSE", "Permission is granted.\n")
    reading = read_inputs([root, license], skip_bad=True)
    reading.check()
    assert len(list(reading)) == 7
    assert reading.report.lines() == [
        "files: 7 used (2 txt, 2 txt by content, 1 md, 1 jsonl, 1 csv), 6 skipped",
        f"  skipped 4 hidden: {root / '.a'}, {root / '.b'}, {root / '.c'}, and 1 more",
        f"  skipped 1 empty: {root / 'empty.txt'}",
        f"  skipped 1 binary: {root / 'pic.png'}",
        "1 all-empty table row(s) skipped",
        f"skipped (--skip-bad): {root / 'd.jsonl'} line 2: field 'text' is a number, not a string",
        f"{license}: read as txt (plain text); --format chooses another",
    ]
    assert reading.report.to_json() == {
        "files_used": {"txt": 2, "md": 1, "jsonl": 1, "txt by content": 2, "csv": 1},
        "files_skipped": {
            "hidden": [str(root / name) for name in (".a", ".b", ".c", ".d")],
            "empty": [str(root / "empty.txt")],
            "binary": [str(root / "pic.png")],
        },
        "records_skipped": [f"{root / 'd.jsonl'} line 2: field 'text' is a number, not a string"],
        "empty_rows": 1,
        "notes": [f"{license}: read as txt (plain text); --format chooses another"],
    }


def test_report_lines_when_nothing_was_read() -> None:
    from searchkit.readers import ReadReport

    assert ReadReport().lines() == []


def test_report_lines_are_the_same_checked_or_not(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    write(root / "a.txt", "a\n")
    write(root / "b.csv", "text\nrow\n,\n")
    write(root / ".hidden", "x\n")
    checked = read_inputs([root])
    checked.check()
    list(checked)
    alone = read_inputs([root])
    list(alone)
    assert (
        checked.report.lines()
        == alone.report.lines()
        == [
            "files: 2 used (1 txt, 1 csv), 1 skipped",
            f"  skipped 1 hidden: {root / '.hidden'}",
            "1 all-empty table row(s) skipped",
        ]
    )


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        pytest.param("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "binary", id="jpeg"),
        pytest.param("x.txt", b"text with a NUL\x00 byte\n", "binary", id="nul-in-txt"),
        pytest.param("x.txt.gz", gzip.compress(b"\x00\x01\x02\x03"), "binary", id="binary-inside-gz"),
        pytest.param("x.txt.gz", gzip.compress(b""), "empty", id="empty-inside-gz"),
        pytest.param("x.md", b"", "empty", id="empty"),
        pytest.param("x.md", b" \n\t\n", "empty", id="whitespace-only"),
        pytest.param("tool", b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary", id="elf"),
    ],
)
def test_what_a_folder_walk_skips(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    root = tmp_path / "docs"
    write(root / "keep.txt", "kept\n")
    write(root / name, content)
    reading = read_inputs([root])
    assert [record.text for record in reading] == ["kept"]
    assert reading.report.skipped == {reason: [str(root / name)]}


def test_text_with_a_wide_byte_order_mark_is_not_binary(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    write(root / "notes", "\ufeffwide text\n".encode("utf-16-le"))
    reading = read_inputs([root])
    assert [record.text for record in reading] == ["wide text"]
    assert reading.report.used == {"txt by content": 1}


@pytest.mark.parametrize(
    ("content", "used", "text"),
    [
        pytest.param('\n\n{"text": "json line"}\n', "jsonl by content", "json line", id="jsonl"),
        pytest.param("id,text\n1,a row\n", "csv by content", "a row", id="csv"),
        pytest.param("text\tlang\na tsv row\ten\n", "tsv by content", "a tsv row", id="tsv"),
        pytest.param('[{"text": "in an array"}]\n', "json by content", "in an array", id="json"),
        pytest.param("<!DOCTYPE html>\n<p>a page</p>\n", "html by content", "a page", id="html"),
        pytest.param("Copyright the project.\n", "txt by content", "Copyright the project.", id="txt"),
    ],
)
def test_a_file_in_a_folder_without_a_known_extension_is_read_by_content(
    tmp_path: Path, content: str, used: str, text: str
) -> None:
    root = tmp_path / "docs"
    write(root / "copyright", content)
    reading = read_inputs([root])
    assert [record.text for record in reading] == [text]
    assert reading.report.used == {used: 1}
    assert reading.report.notes == []


def test_by_extension_knows_every_format_but_auto() -> None:
    from searchkit.readers import FORMATS

    assert sorted(set(BY_EXTENSION.values())) == sorted(set(FORMATS) - {"auto"})
