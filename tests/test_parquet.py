"""searchkit.parquet: export to Parquet and read it back, in bounded memory, with one-line errors."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import searchkit
from searchkit import parquet
from searchkit.cli import app
from searchkit.errors import InputError, UsageError
from searchkit.readers import read_inputs
from searchkit.service import Index
from searchkit.types import Record

from .conftest import snapshot

QUERIES = ["Is it sunny?", "a football match", "cooking dinner", "stock markets fell", "a new phone"]


def content_key(path: Path, text: str, metadata: dict[str, Any]) -> str:
    """The id a row without one gets: its file, and a digest of its text and metadata."""
    digest = hashlib.sha256(
        json.dumps([text, metadata], sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()
    return f"{path}:{digest[:12]}"


def run(*args: Any, input: str | bytes | None = None) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def write_parquet(path: Path, columns: dict[str, Any], **options: Any) -> Path:
    pq.write_table(pa.table(columns), path, **options)
    return path


def read(*inputs: str | Path, **options: str) -> list[Record]:
    return list(read_inputs(inputs, **options))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, corpus: list[dict[str, Any]], model: Any) -> Path:
    """A cosine index of 60 items whose metadata has every JSON type, unicode and nesting."""
    folder = tmp_path_factory.mktemp("parquet")
    lines = []
    for n, item in enumerate(corpus[:60]):
        extra = {"n": n, "share": n / 7, "tags": [item["topic"], "x"], "nested": {"even": n % 2 == 0}}
        lines.append(json.dumps({**item, **extra, "note": None, "ünï": "çödé ✓"}, ensure_ascii=False))
    (folder / "items.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("index", folder / "idx", folder / "items.jsonl", "--metric", "cosine")
    assert result.exit_code == 0, result.output
    return folder / "idx"


@pytest.fixture(scope="module")
def exported(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("export") / "items.parquet"
    result = run("export", source, "--format", "parquet", "--vectors", "--output", target)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{target}: 60 items exported (parquet, with vectors)\n"
    return target


def hits(folder: Path) -> list[list[tuple[str, float]]]:
    with Index.open(folder) as index:
        return [[(h.id, h.score) for h in found] for found in index.search_many(QUERIES, k=10)]


# --- round trip ------------------------------------------------------------------


def test_export_then_import_embeds_nothing_and_searches_the_same(
    source: Path, exported: Path, tmp_path: Path
) -> None:
    result = run("index", tmp_path / "copy", exported, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["added"], report["embedded"], report["items"]) == (60, 0, 60)
    assert hits(tmp_path / "copy") == hits(source)
    assert snapshot(tmp_path / "copy")["items"] == snapshot(source)["items"]  # ids, texts, metadata, vectors


def test_export_schema_and_metadata(source: Path, exported: Path) -> None:
    schema = pq.read_schema(exported)
    assert schema.names == ["id", "text", "metadata", "embedding"]
    assert [schema.field(n).type for n in ("id", "text", "metadata")] == [pa.string()] * 3
    vector = schema.field("embedding").type
    assert pa.types.is_fixed_size_list(vector) and vector.list_size == 384
    assert vector.value_type == pa.float32()
    with Index.open(source, load=False) as index:
        manifest = index.manifest
        stored = list(index.export(vectors=True))
    assert {k.decode(): v.decode() for k, v in schema.metadata.items()} == {
        "searchkit.fingerprint": json.dumps(manifest.model.to_json(), ensure_ascii=False),
        "searchkit.metric": "cosine",
        "searchkit.dimension": "384",
        "searchkit.version": searchkit.__version__,
    }
    table = pq.read_table(exported)
    assert table["id"].to_pylist() == [item["id"] for item in stored]
    assert table["text"].to_pylist() == [item["text"] for item in stored]
    assert [json.loads(m) for m in table["metadata"].to_pylist()] == [item["metadata"] for item in stored]
    vectors = np.stack(table["embedding"].to_numpy(zero_copy_only=False))
    assert vectors.dtype == np.float32
    assert np.array_equal(vectors, np.array([item["embedding"] for item in stored], dtype=np.float32))


def test_export_without_vectors_has_no_embedding_column(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "rows.parquet"
    result = run("export", source, "--format", "parquet", "--output", target)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{target}: 60 items exported (parquet)\n"
    assert pq.read_schema(target).names == ["id", "text", "metadata"]


def test_import_without_vectors_embeds_the_same_vectors(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "rows.parquet"
    assert run("export", source, "--format", "parquet", "--output", target).exit_code == 0
    result = run("index", tmp_path / "copy", target, "--json")
    assert json.loads(result.stdout)["embedded"] == 60
    assert [[i for i, _ in q] for q in hits(tmp_path / "copy")] == [[i for i, _ in q] for q in hits(source)]


# --- the export command ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--format", "parquet"],
            "--format parquet needs --output FILE: a Parquet file is not written to stdout",
        ),
        (["--format", "csv"], "unknown export format 'csv': choose jsonl or parquet"),
    ],
)
def test_export_usage_errors_are_one_line(source: Path, args: list[str], message: str) -> None:
    result = run("export", source, *args)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"Error: {message}\n"


def test_jsonl_export_is_unchanged_and_can_go_to_a_file(source: Path, tmp_path: Path) -> None:
    with Index.open(source, load=False) as index:
        expected = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in index.export(vectors=True))
    assert run("export", source, "--vectors").stdout == expected
    assert run("export", source, "--vectors", "--format", "jsonl").stdout == expected
    result = run("export", source, "--vectors", "--output", tmp_path / "items.jsonl")
    assert result.stdout == f"{tmp_path / 'items.jsonl'}: 60 items exported (jsonl, with vectors)\n"
    assert (tmp_path / "items.jsonl").read_text(encoding="utf-8") == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["items.jsonl"]  # no temp file left


def test_export_writes_row_groups_in_bounded_memory(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "groups.parquet"
    with Index.open(source, load=False) as index:
        assert parquet.write_export(index, target, vectors=True, group_rows=25) == 60
    file = pq.ParquetFile(target)
    assert file.num_row_groups == 3
    assert [file.metadata.row_group(i).num_rows for i in range(3)] == [25, 25, 10]


def test_a_failed_export_leaves_the_old_file_and_no_temp_file(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "items.parquet"
    target.write_bytes(b"the old export")

    def full_disk(*args: Any) -> Any:  # once the temp file is open
        assert sorted(p.suffix for p in tmp_path.iterdir()) == [".parquet", ".tmp"]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(parquet, "_table", full_disk)
    result = run("export", source, "--format", "parquet", "--vectors", "--output", target)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: cannot write {target}: No space left on device; "
        "free disk space or fix permissions, then export again\n"
    )
    assert target.read_bytes() == b"the old export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["items.parquet"]


def test_an_interrupted_export_leaves_nothing(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(parquet, "_table", interrupted)
    with Index.open(source, load=False) as index, pytest.raises(KeyboardInterrupt):
        parquet.write_export(index, tmp_path / "items.parquet")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("missing/items.parquet", "Error: {tmp}/missing: no such folder; create it, or write elsewhere\n"),
        ("", "Error: {tmp}: is a folder; name the file to write\n"),
    ],
)
def test_export_to_a_bad_path_is_one_line(source: Path, tmp_path: Path, output: str, message: str) -> None:
    result = run("export", source, "--format", "parquet", "--output", f"{tmp_path}/{output}")
    assert result.exit_code == 1
    assert result.stderr == message.format(tmp=tmp_path)


# --- reading -----------------------------------------------------------------------


def test_other_columns_become_metadata(tmp_path: Path) -> None:
    p = write_parquet(
        tmp_path / "a.parquet",
        {
            "id": ["a", "b"],
            "text": ["first text", "second text"],
            "year": [2024, None],
            "score": [0.5, 1.5],
            "ok": [True, False],
            "tags": [["x", "y"], []],
            "place": [{"city": "Oslo", "zip": 1}, {"city": "Bergen", "zip": None}],
            "genre": pa.array(["news", "news"]).dictionary_encode(),
        },
    )
    assert read(p) == [
        Record(
            "first text",
            "a",
            {
                "year": 2024,
                "score": 0.5,
                "ok": True,
                "tags": ["x", "y"],
                "place": {"city": "Oslo", "zip": 1},
                "genre": "news",
            },
            f"{p}:1",
            origin=str(p),
        ),
        Record(
            "second text",
            "b",
            {
                "year": None,
                "score": 1.5,
                "ok": False,
                "tags": [],
                "place": {"city": "Bergen", "zip": None},
                "genre": "news",
            },
            f"{p}:2",
            origin=str(p),
        ),
    ]


def test_text_and_id_fields(tmp_path: Path, model: Any) -> None:
    p = write_parquet(
        tmp_path / "a.parquet",
        {
            "sku": [7, 8],
            "title": ["Red shoe", None],
            "body": ["For running.", "Blue hat"],
            "text": ["t", "u"],
        },
    )
    records = read(p, text_field="title,body", id_field="sku")
    assert [(r.key, r.text, r.metadata) for r in records] == [
        ("7", "Red shoe For running.", {"text": "t"}),
        ("8", "Blue hat", {"text": "u"}),
    ]
    # No 'id' column: keyed by content, as every other format's rows.
    assert [r.key for r in read(p, text_field="body")] == [
        content_key(p, "For running.", {"sku": 7, "title": "Red shoe", "text": "t"}),
        content_key(p, "Blue hat", {"sku": 8, "title": None, "text": "u"}),
    ]
    result = run("index", tmp_path / "idx", p, "--text-field", "title,body", "--id-field", "sku")
    assert result.exit_code == 0, result.output
    exported = [json.loads(line) for line in run("export", tmp_path / "idx").stdout.splitlines()]
    assert exported == [
        {"id": "7", "text": "Red shoe For running.", "metadata": {"text": "t"}},
        {"id": "8", "text": "Blue hat", "metadata": {"text": "u"}},
    ]


def test_a_metadata_column_of_json_objects_is_unpacked(tmp_path: Path) -> None:
    p = write_parquet(
        tmp_path / "a.parquet",
        {
            "text": ["one", "two", "three", "four"],
            "metadata": ['{"a": 1, "b": {"c": [true]}}', None, "not json", "[1, 2]"],
            "topic": ["x", "y", "z", "w"],
        },
    )
    assert [r.metadata for r in read(p)] == [
        {"topic": "x", "a": 1, "b": {"c": [True]}},
        {"topic": "y"},
        {"metadata": "not json", "topic": "z"},  # not an object: an ordinary field
        {"metadata": "[1, 2]", "topic": "w"},
    ]
    s = write_parquet(tmp_path / "s.parquet", {"text": ["one"], "metadata": [{"a": 1, "b": "x"}]})
    assert read(s)[0].metadata == {"a": 1, "b": "x"}


def test_format_by_suffix_option_and_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    rows = write_parquet(tmp_path / "data" / "rows.bin", {"text": ["hello"]})
    assert [r.text for r in read(rows, fmt="parquet")] == ["hello"]
    named = write_parquet(tmp_path / "data" / "b.PARQUET", {"text": ["world"]})
    assert [r.text for r in read(named)] == ["world"]
    (tmp_path / "data" / "a.txt").write_text("plain\n", encoding="utf-8")
    assert [r.text for r in read(tmp_path / "data")] == ["plain", "world"]  # .bin is not read


def test_given_embeddings_are_indexed_as_given(tmp_path: Path, model: Any) -> None:
    texts = ["The weather is lovely today.", "He drove to the stadium", "It's so sunny outside!"]
    vectors = model.encode(texts).astype(np.float64)
    p = write_parquet(
        tmp_path / "v.parquet",
        {
            "id": ["a", "b", "c"],
            "text": texts,
            "embedding": pa.array([vectors[0].tolist(), vectors[1].tolist(), None], pa.list_(pa.float64())),
        },
    )
    result = run("index", tmp_path / "idx", p, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["embedded"] == 1  # the row whose embedding is null
    with Index.open(tmp_path / "idx", load=False) as index:
        stored = {item["id"]: item["embedding"] for item in index.export(vectors=True)}
    assert np.array_equal(
        np.array([stored["a"], stored["b"]], dtype=np.float32), vectors[:2].astype(np.float32)
    )


def test_reading_is_by_batches_and_lazy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write_parquet(tmp_path / "a.parquet", {"text": [f"row {n}" for n in range(5)]})
    sizes: list[int] = []
    batches = pq.ParquetFile.iter_batches

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        for batch in batches(self, *args, **kwargs):
            sizes.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", counted)
    with p.open("rb") as stream:
        records = parquet.read_records(str(p), stream, batch_size=2)
        assert next(records).text == "row 0"
        assert sizes == [2]  # one batch read, not the file
        assert [r.text for r in records] == [f"row {n}" for n in range(1, 5)]
    assert sizes == [2, 2, 1]


def test_bad_rows_stop_the_read_at_that_row(tmp_path: Path) -> None:
    p = write_parquet(tmp_path / "a.parquet", {"text": ["one", "two", None]})
    records = iter(read_inputs([p]))
    assert [next(records).text, next(records).text] == ["one", "two"]
    with pytest.raises(InputError) as caught:
        next(records)
    assert str(caught.value) == f"{p} row 3: field 'text' is null, not a string"


BAD_FILES: list[tuple[str, Callable[[Path], Any], str]] = [
    (
        "not parquet",
        lambda p: p.write_bytes(b'{"text": "json"}\n'),
        "{p}: not a Parquet file (no Parquet footer); is it damaged, or another format?",
    ),
    (
        "empty file",
        lambda p: p.write_bytes(b""),
        "{p}: not a Parquet file (no Parquet footer); is it damaged, or another format?",
    ),
    (
        "missing text column",
        lambda p: write_parquet(p, {"id": ["a"], "body": ["hello"]}),
        "{p}: no 'text' column (columns: id, body); name the text column with --text-field",
    ),
    (
        "null text",
        lambda p: write_parquet(p, {"text": ["ok", None]}),
        "{p} row 2: field 'text' is null, not a string",
    ),
    (
        "empty text",
        lambda p: write_parquet(p, {"text": ["  "]}),
        "{p} row 1: field 'text' is empty; remove the record or fill it",
    ),
    (
        "numeric text",
        lambda p: write_parquet(p, {"text": [1.5]}),
        "{p} row 1: field 'text' is a number, not a string",
    ),
    (
        "float id",
        lambda p: write_parquet(p, {"id": [1.5], "text": ["x"]}),
        "{p} row 1: field 'id' is a number, not a string or integer",
    ),
    (
        "timestamp column",
        lambda p: write_parquet(p, {"text": ["x"], "when": pa.array([0], pa.timestamp("ms"))}),
        "{p}: column 'when' is timestamp[ms], which searchkit does not read (it reads strings, numbers, "
        "booleans, and lists or structs of them); cast it or drop it",
    ),
    (
        "strings as embedding",
        lambda p: write_parquet(p, {"text": ["x"], "embedding": [["a", "b"]]}),
        "{p} row 1: field 'embedding' must be a non-empty array of numbers (a vector of the index's model)",
    ),
    (
        "empty embedding",
        lambda p: write_parquet(p, {"text": ["x"], "embedding": pa.array([[]], pa.list_(pa.float32()))}),
        "{p} row 1: field 'embedding' must be a non-empty array of numbers (a vector of the index's model)",
    ),
]


@pytest.mark.parametrize(("name", "make", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_parquet_message(tmp_path: Path, name: str, make: Callable[[Path], Any], message: str) -> None:
    p = tmp_path / "bad.parquet"
    make(p)
    with pytest.raises(InputError) as caught:
        read(p)
    assert str(caught.value) == message.format(p=p)


def test_a_pipe_is_refused() -> None:
    class Pipe(io.BytesIO):
        def seekable(self) -> bool:
            return False

    with pytest.raises(InputError) as caught:
        list(parquet.read_records("stdin", Pipe(b"PAR1")))
    assert str(caught.value) == (
        "stdin: Parquet cannot be read from a pipe (its footer, at the end, says where the rows are); "
        "pass the file's path"
    )


CLI_BAD = [
    (
        "wrong dimension",
        {"id": ["z"], "text": ["new"], "embedding": [[0.5, 0.25]]},
        "{p}:1: embedding has 2 values, and the index's model gives 384; "
        "pass vectors of the index's model, or leave them out to embed the text",
    ),
    (
        "infinite value",
        {"id": ["z"], "text": ["new"], "embedding": [[math.inf] * 384]},
        "{p}:1: embedding holds NaN or infinity (or a float32 overflow); fix it",
    ),
    (
        "missing text column",
        {"id": ["z"], "body": ["new"]},
        "{p}: no 'text' column (columns: id, body); name the text column with --text-field",
    ),
    ("not parquet", None, "{p}: not a Parquet file (no Parquet footer); is it damaged, or another format?"),
]


@pytest.mark.parametrize(("name", "columns", "message"), CLI_BAD, ids=[b[0] for b in CLI_BAD])
def test_bad_parquet_in_the_cli_is_one_line_and_writes_nothing(
    source: Path, tmp_path: Path, name: str, columns: dict[str, Any] | None, message: str
) -> None:
    p = tmp_path / "bad.parquet"
    if columns is None:
        p.write_text("id,text\nz,new\n", encoding="utf-8")
    else:
        write_parquet(p, columns)
    before = snapshot(source)
    for index in (source, tmp_path / "new"):
        result = run("index", index, p)
        assert result.exit_code == 1 and "Traceback" not in result.stderr
        assert result.stderr == f"Error: {message.format(p=p)}\n"
    assert snapshot(source) == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bad.parquet"]  # no new index


# --- pyarrow is optional -------------------------------------------------------------


def test_without_pyarrow_one_line_says_how_to_install_it(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = write_parquet(tmp_path / "a.parquet", {"text": ["x"]})
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(
        UsageError, match=r"^reading Parquet needs pyarrow: pip install 'searchkit\[parquet\]'$"
    ):
        read(p)
    result = run("export", source, "--format", "parquet", "--output", tmp_path / "out.parquet")
    assert result.stderr == "Error: writing Parquet needs pyarrow: pip install 'searchkit[parquet]'\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.parquet"]


def test_help_and_other_commands_do_not_import_pyarrow(source: Path) -> None:
    # sqlite-utils imports pandas where it is installed (the push extra brings it), and pandas
    # imports pyarrow: not searchkit's doing, so an index is opened as without pandas.
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from searchkit.cli import app\n"
        "for args in (['--help'], ['export', '--help'], ['index', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0, args\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pyarrow'))\n"
        "sys.modules['pandas'] = None\n"
        "idx = sys.argv[1]\n"
        "for args in (['export', idx], ['export', idx, '--vectors'], ['info', idx]):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0, args\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pyarrow' or m == 'searchkit.parquet'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(source)], capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == ["[]", "[]"]
