"""The CLI through typer's CliRunner: outputs, formats, and the bad-input table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from searchkit.cli import app

from .conftest import CORPUS, line_key, snapshot

TUTORIAL = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium"]


def run(*args: Any, input: str | bytes | None = None) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


@pytest.fixture(scope="module")
def demo_index(tmp_path_factory: pytest.TempPathFactory, model: Any) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "demo"
    result = run("index", folder, CORPUS)
    assert result.exit_code == 0, result.output
    return folder


def test_similarity_json_is_the_tutorial_table(model: Any) -> None:
    result = run("similarity", *TUTORIAL, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["metric"] == "cosine" and data["rows"] == TUTORIAL == data["columns"]
    assert np.round(data["scores"], 4).tolist() == [
        [1.0, 0.666, 0.1058],
        [0.666, 1.0, 0.1471],
        [0.1058, 0.1471, 1.0],
    ]


def test_similarity_with_to_for_people(model: Any) -> None:
    result = run(
        "similarity",
        "I've already seen this movie",
        "I like soccer",
        "he is a basketball player",
        "--to",
        "I don't want to watch this movie again",
        "--to",
        "I like baseball",
        "--to",
        "My name is roach",
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "cosine similarity"
    assert lines[2].split()[-3:] == ["0.6584", "0.1095", "0.2218"]
    assert lines[3].split()[-3:] == ["0.1317", "0.7686", "0.1979"]
    assert lines[4].split()[-3:] == ["0.1149", "0.2156", "0.1521"]


@pytest.mark.parametrize("metric", ["dot", "euclidean", "manhattan"])
def test_similarity_other_metrics(metric: str, st_model: Any) -> None:
    """The reference is sentence-transformers' own model.similarity with that function."""
    result = run("similarity", *TUTORIAL, "--metric", metric, "--json")
    assert result.exit_code == 0, result.output
    embeddings = st_model.encode(TUTORIAL)
    previous = st_model.similarity_fn_name
    try:
        st_model.similarity_fn_name = metric  # SimilarityFunction's values: dot, euclidean, manhattan
        expected = st_model.similarity(embeddings, embeddings).numpy()
    finally:
        st_model.similarity_fn_name = previous
    np.testing.assert_allclose(json.loads(result.stdout)["scores"], expected, atol=1e-4)


def test_embed_writes_npy_in_input_order(tmp_path: Path, st_model: Any) -> None:
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(TUTORIAL) + "\n", encoding="utf-8")
    out = tmp_path / "x.npy"
    result = run("embed", "--input", source, "--output", out)
    assert result.exit_code == 0, result.output
    vectors = np.load(out)
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    np.testing.assert_allclose(vectors, st_model.encode(TUTORIAL), atol=1e-5)  # fp32 ONNX by default


def test_embed_json_lines(model: Any) -> None:
    result = run("embed", "first text", "second text", "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["first text", "second text"]
    assert all(len(r["embedding"]) == 384 for r in rows)


def test_embed_from_stdin(model: Any) -> None:
    result = run("embed", "--input", "-", "--json", input="one\ntwo\n\nthree\n")
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == [
        "one",
        "two",
        "three",
    ]


def test_query_json_lines(demo_index: Path) -> None:
    result = run("query", demo_index, "Is it going to rain?", "a pasta recipe", "-k", "3", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["query"] for r in rows] == ["Is it going to rain?", "a pasta recipe"]
    first = rows[0]["hits"]
    assert [h["rank"] for h in first] == [1, 2, 3]
    assert set(first[0]) == {"rank", "id", "score", "text", "metadata"}
    assert first[0]["metadata"]["topic"] == "weather"
    assert rows[1]["hits"][0]["metadata"]["topic"] == "food"
    assert first[0]["score"] >= first[1]["score"] >= first[2]["score"]


def test_query_from_input_file(demo_index: Path, tmp_path: Path) -> None:
    queries = tmp_path / "q.txt"
    queries.write_text("sunny weather\nbasketball\n", encoding="utf-8")
    result = run("query", demo_index, "--input", queries, "-k", "2", "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["query"] for r in rows] == ["sunny weather", "basketball"]
    assert all(len(r["hits"]) == 2 for r in rows)


def test_query_where_and_modes(demo_index: Path) -> None:
    where = json.dumps({"topic": {"$in": ["food", "sport"]}})
    for mode in ("dense", "keyword", "hybrid"):
        result = run(
            "query", demo_index, "a hot afternoon", "-k", "4", "--where", where, "--mode", mode, "--json"
        )
        assert result.exit_code == 0, result.output
        row = json.loads(result.stdout)
        assert row["mode"] == mode and row["exact"] is True
        assert row["hits"] and all(h["metadata"]["topic"] in ("food", "sport") for h in row["hits"])
    people = run("query", demo_index, "rain", "--where", '{"topic": "nothing"}')
    assert people.stdout.splitlines() == ["Query: rain  [dense, exact]", "  (no hits: no item matches)"]


def test_query_for_people(demo_index: Path) -> None:
    result = run("query", demo_index, "It's so sunny outside!", "-k", "1")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "Query: It's so sunny outside!  [dense, exact]"
    assert "weather-002" in result.stdout and "1.0000" in result.stdout


def test_info_and_export(demo_index: Path) -> None:
    info = json.loads(run("info", demo_index, "--json").stdout)
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    assert info["counts"]["items"] == len(lines)
    assert info["model"]["name"] == "all-MiniLM-L6-v2" and info["metric"] == "cosine"
    people = run("info", demo_index).stdout
    assert f"items:      {len(lines)}" in people
    exported = [json.loads(line) for line in run("export", demo_index).stdout.splitlines()]
    assert [e["id"] for e in exported] == [json.loads(line)["id"] for line in lines]
    assert set(exported[0]) == {"id", "text", "metadata"}
    with_vectors = json.loads(run("export", demo_index, "--vectors").stdout.splitlines()[0])
    assert len(with_vectors["embedding"]) == 384


FORMATS = {
    "items.txt": "The weather is lovely today.\n\nHe drove to the stadium\n",
    "items.csv": 'id,text,genre\nw1,"Rain, then sun.",weather\ns1,He drove to the stadium,sport\n',
    "items.tsv": "id\ttext\tgenre\nw1\tRain, then sun.\tweather\ns1\tHe drove to the stadium\tsport\n",
    "items.jsonl": '{"id": "w1", "text": "Rain, then sun.", "genre": "weather"}\n'
    '{"id": 7, "text": "He drove to the stadium", "genre": "sport", "year": 2024}\n',
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_index_every_format(name: str, tmp_path: Path, model: Any) -> None:
    source = tmp_path / name
    source.write_text(FORMATS[name], encoding="utf-8")
    result = run("index", tmp_path / "idx", source)
    assert result.exit_code == 0, result.output
    assert "2 added" in result.stdout
    items = [json.loads(line) for line in run("export", tmp_path / "idx").stdout.splitlines()]
    if name == "items.txt":
        assert [i["id"] for i in items] == [
            line_key(source, "The weather is lovely today."),
            line_key(source, "He drove to the stadium"),
        ]
    else:
        assert items[0]["id"] == "w1" and items[0]["metadata"]["genre"] == "weather"
    hits = json.loads(run("query", tmp_path / "idx", "stadium", "-k", "1", "--json").stdout)["hits"]
    assert hits[0]["text"] == "He drove to the stadium"


def test_index_a_folder_and_stdin(tmp_path: Path, model: Any) -> None:
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "a.txt").write_text("line one\nline two\n", encoding="utf-8")
    (tmp_path / "docs" / "sub" / "note.md").write_text("# Note\n\nA whole document.\n", encoding="utf-8")
    result = run("index", tmp_path / "idx", tmp_path / "docs")
    assert result.exit_code == 0 and "3 added" in result.stdout
    result = run("index", tmp_path / "idx", "-", input='{"id": "s", "text": "from stdin"}\n')
    assert result.exit_code == 0 and "1 added" in result.stdout
    ids = {json.loads(line)["id"] for line in run("export", tmp_path / "idx").stdout.splitlines()}
    assert ids == {
        line_key(tmp_path / "docs" / "a.txt", "line one"),
        line_key(tmp_path / "docs" / "a.txt", "line two"),
        f"{tmp_path}/docs/sub/note.md",
        "s",
    }


def test_reindexing_unchanged_input_changes_nothing(demo_index: Path) -> None:
    before = snapshot(demo_index)
    result = run("index", demo_index, CORPUS)
    assert result.exit_code == 0
    assert "0 added, 0 updated, 364 unchanged" in result.stdout and "0 embedded" in result.stdout
    after = snapshot(demo_index)
    assert after["items"] == before["items"]


def test_delete(tmp_path: Path, model: Any) -> None:
    source = tmp_path / "items.jsonl"
    source.write_text(FORMATS["items.jsonl"], encoding="utf-8")
    run("index", tmp_path / "idx", source)
    result = run("delete", tmp_path / "idx", "w1")
    assert result.exit_code == 0 and "1 deleted (1 items left)" in result.stdout
    assert [json.loads(line)["id"] for line in run("export", tmp_path / "idx").stdout.splitlines()] == ["7"]


def test_a_metadata_only_change_is_an_update(tmp_path: Path, model: Any) -> None:
    """Issue 11.1: same id and text, another tag: it was '1 unchanged' and the tag was lost."""
    source = tmp_path / "items.jsonl"
    source.write_text('{"id": "a", "text": "hello world", "tag": "x"}\n', encoding="utf-8")
    assert run("index", tmp_path / "idx", source).exit_code == 0
    source.write_text('{"id": "a", "text": "hello world", "tag": "y"}\n', encoding="utf-8")
    result = run("index", tmp_path / "idx", source)
    assert result.exit_code == 0, result.output
    assert "0 added, 1 updated (1 metadata only, not embedded), 0 unchanged" in result.stdout
    assert "0 embedded" in result.stdout
    exported = [json.loads(line) for line in run("export", tmp_path / "idx").stdout.splitlines()]
    assert exported == [{"id": "a", "text": "hello world", "metadata": {"tag": "y"}}]
    found = run("query", tmp_path / "idx", "hello", "--where", '{"tag": "y"}', "--json")
    assert [h["id"] for h in json.loads(found.stdout)["hits"]] == ["a"]


def test_delete_of_a_split_document_deletes_its_pieces(tmp_path: Path, model: Any) -> None:
    source = tmp_path / "doc.jsonl"
    source.write_text('{"id": "d", "text": "One sentence. Another sentence. A third."}\n', encoding="utf-8")
    assert run("index", tmp_path / "idx", source, "--split", "sentences").exit_code == 0
    result = run("delete", tmp_path / "idx", "d")
    assert result.exit_code == 0, result.output
    assert "3 deleted (0 items left)" in result.stdout
    assert "3 of them piece(s) of 1 document(s) indexed with --split" in result.stdout
    assert run("export", tmp_path / "idx").stdout == ""


def test_jsonl_items_with_their_own_vectors(tmp_path: Path, model: Any) -> None:
    texts = ["The weather is lovely today.", "He drove to the stadium"]
    vectors = model.encode(texts)
    source = tmp_path / "vectors.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": f"v{n}", "text": t, "embedding": v.tolist()}) + "\n"
            for n, (t, v) in enumerate(zip(texts, vectors, strict=True))
        ),
        encoding="utf-8",
    )
    result = run("index", tmp_path / "idx", source, "--json")
    assert result.exit_code == 0, result.output
    assert (json.loads(result.stdout)["added"], json.loads(result.stdout)["embedded"]) == (2, 0)
    found = json.loads(run("query", tmp_path / "idx", "sunny weather", "--json", "-k", "1").stdout)
    assert found["hits"][0]["id"] == "v0" and "embedding" not in found["hits"][0]["metadata"]
    bad_line = json.dumps({"id": "bad", "text": "x", "embedding": [0.1, 0.2]})
    source.write_text(bad_line + "\n", encoding="utf-8")
    bad = run("index", tmp_path / "idx", source)
    assert bad.exit_code == 1
    assert bad.stderr == (
        f"Error: {source}:1: embedding has 2 values, and the index's model gives 384; "
        "pass vectors of the index's model, or leave them out to embed the text\n"
    )


# --- bad inputs: one line on stderr, exit 1, no traceback, the index unchanged ---------


@pytest.fixture(scope="module")
def other_index(tmp_path_factory: pytest.TempPathFactory, other_model_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("other") / "idx"
    result = run("index", folder, "--model", other_model_dir, "-", input="built by another model\n")
    assert result.exit_code == 0, result.output
    return folder


BAD = [
    # (name, files to write, arguments with {idx} {other} {tmp}, expected message start)
    ("empty input", {"empty.txt": b""}, ["index", "{idx}", "{tmp}/empty.txt"], "nothing to index"),
    (
        "missing text field",
        {"a.csv": b"id,body\n1,hello\n"},
        ["index", "{idx}", "{tmp}/a.csv"],
        "{tmp}/a.csv: no 'text' column (columns: id, body); name the text column with --text-field",
    ),
    (
        "malformed jsonl",
        {"a.jsonl": b'{"text": "ok"}\n{"text": \n'},
        ["index", "{idx}", "{tmp}/a.jsonl"],
        "{tmp}/a.jsonl line 2: not valid JSON",
    ),
    (
        "jsonl array",
        {"a.jsonl": b'["text"]\n'},
        ["index", "{idx}", "{tmp}/a.jsonl"],
        "{tmp}/a.jsonl line 1: expected a JSON object, found an array",
    ),
    (
        "invalid utf-8",
        {"a.txt": b"fine\nbad \xff\n"},
        ["index", "{idx}", "{tmp}/a.txt"],
        "{tmp}/a.txt line 2: invalid UTF-8 (byte 0xff at column 5)",
    ),
    (
        "binary file",
        {"a.txt": b"\x00\x01\x02"},
        ["index", "{idx}", "{tmp}/a.txt"],
        "{tmp}/a.txt line 1: contains NUL bytes",
    ),
    (
        "missing input",
        {},
        ["index", "{idx}", "{tmp}/nope.txt"],
        "{tmp}/nope.txt: no such file or folder",
    ),
    (
        "unknown metric",
        {"a.txt": b"x\n"},
        ["index", "{tmp}/new", "{tmp}/a.txt", "--metric", "cosh"],
        "unknown metric 'cosh': choose one of cosine, dot, euclidean, manhattan",
    ),
    (
        "metric change",
        {"a.txt": b"x\n"},
        ["index", "{idx}", "{tmp}/a.txt", "--metric", "dot"],
        "{idx} uses the cosine metric, not dot",
    ),
    (
        "unknown index type",
        {"a.txt": b"x\n"},
        ["index", "{tmp}/new", "{tmp}/a.txt", "--index-type", "lsh"],
        "unknown index type 'lsh'",
    ),
    ("k zero", {}, ["query", "{idx}", "weather", "-k", "0"], "k must be a positive integer, not 0"),
    (
        "k negative",
        {},
        ["query", "{idx}", "weather", "-k", "-3"],
        "k must be a positive integer, not -3",
    ),
    ("no query", {}, ["query", "{idx}"], "no query given"),
    ("missing index", {}, ["query", "{tmp}/nothing", "weather"], "{tmp}/nothing: no index here"),
    (
        "not an index",
        {"folder/x.txt": b"x"},
        ["info", "{tmp}/folder"],
        "{tmp}/folder: not a searchkit index",
    ),
    (
        "another model's index",
        {},
        ["query", "{other}", "weather", "--model", "all-MiniLM-L6-v2"],
        "{other} was built with other-minilm",
    ),
    (
        "another model for index",
        {"a.txt": b"x\n"},
        ["index", "{other}", "{tmp}/a.txt", "--model", "all-MiniLM-L6-v2"],
        "{other} was built with other-minilm",
    ),
    (
        "unknown model",
        {},
        ["similarity", "a", "--model", "no-such-org/no-such-model"],
        "model 'no-such-org/no-such-model' is not in the local cache",
    ),
    ("bad npy path", {}, ["embed", "a", "--output", "{tmp}/x.txt"], "--output must end in .npy"),
    (
        "ragged csv",
        {"a.csv": b"id,text\n1,hello,extra\n"},
        ["index", "{idx}", "{tmp}/a.csv"],
        "{tmp}/a.csv line 2: 3 fields where the header has 2",
    ),
    (
        "text not a string",
        {"a.jsonl": b'{"text": 5}\n'},
        ["index", "{idx}", "{tmp}/a.jsonl"],
        "{tmp}/a.jsonl line 1: field 'text' is a number, not a string",
    ),
    (
        "nul bytes mid-file",
        {"a.txt": b"fine\nfi\x00ne\n"},
        ["index", "{idx}", "{tmp}/a.txt"],
        "{tmp}/a.txt line 2: contains NUL bytes",
    ),
    (
        "missing model folder",
        {},
        ["index", "{tmp}/new", "-", "--model", "{tmp}/no-model"],
        "no model folder at {tmp}/no-model",
    ),
    (
        "where not json",
        {},
        ["query", "{idx}", "weather", "--where", '{{"topic": '],
        "--where is not valid JSON (Expecting value at character 10)",
    ),
    (
        "where unknown operator",
        {},
        ["query", "{idx}", "weather", "--where", '{{"topic": {{"$like": "w%"}}}}'],
        "--where: unknown operator '$like'",
    ),
    (
        "where wrong type",
        {},
        ["query", "{idx}", "weather", "--where", '{{"year": {{"$gt": [1]}}}}'],
        "--where: $gt takes a string, number or boolean, not an array",
    ),
    ("unknown mode", {}, ["query", "{idx}", "weather", "--mode", "fuzzy"], "unknown search mode 'fuzzy'"),
    ("eval without labels", {}, ["eval", "{idx}"], "eval needs --queries FILE and --qrels FILE"),
    (
        "eval missing qrels",
        {"q.jsonl": b'{"_id": "1", "text": "rain"}\n'},
        ["eval", "{idx}", "--queries", "{tmp}/q.jsonl", "--qrels", "{tmp}/none.tsv"],
        "{tmp}/none.tsv: no such file",
    ),
    (
        "eval disjoint files",
        {"q.jsonl": b'{"_id": "1", "text": "rain"}\n', "r.tsv": b"query-id\tcorpus-id\tscore\n2\tx\t1\n"},
        ["eval", "{idx}", "--queries", "{tmp}/q.jsonl", "--qrels", "{tmp}/r.tsv"],
        "no query in the qrels file has a text in the queries file",
    ),
    (
        "batch size zero",
        {"a.txt": b"x\n"},
        ["index", "{idx}", "{tmp}/a.txt", "--batch-size", "0"],
        "batch size must be a positive integer, not 0",
    ),
]


@pytest.mark.parametrize(("name", "files", "args", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gives_one_clean_line_and_changes_nothing(
    name: str,
    files: dict[str, bytes],
    args: list[str],
    message: str,
    tmp_path: Path,
    demo_index: Path,
    other_index: Path,
    model: Any,
) -> None:
    def fill(s: str) -> str:
        return s.format(idx=demo_index, other=other_index, tmp=tmp_path)

    for rel, content in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(content)
    before = snapshot(demo_index), snapshot(other_index)
    listing = sorted(p.name for p in tmp_path.iterdir())
    result = run(*[fill(a) for a in args])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Error: " + fill(message)), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert (snapshot(demo_index), snapshot(other_index)) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # no new index folder


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run("--debug", "query", tmp_path / "nothing", "x")
    assert result.exit_code == 1
    assert result.exception is not None and "no index here" in str(result.exception)


def test_every_command_has_help() -> None:
    for name in ("similarity", "embed", "index", "query", "info", "export", "delete"):
        result = run(name, "--help")
        assert result.exit_code == 0 and "Usage:" in result.stdout, name


def test_usage_errors_exit_2() -> None:
    assert run("query").exit_code == 2
    assert run("query", "x", "-k", "many").exit_code == 2


def test_a_corrupt_vectors_file_is_a_clean_error(demo_index: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(demo_index, copy)
    assert run("compact", copy).exit_code == 0  # every vector in one segment file
    (vectors,) = copy.glob("segment-*.faiss")
    vectors.write_bytes(b"not a faiss file" * 50)
    for args in (["query", copy, "weather"], ["info", copy]):
        result = run(*args)
        assert result.exit_code == 1 and "Traceback" not in result.stderr
        assert result.stderr.startswith(f"Error: {vectors}: the FAISS file is damaged")
        assert result.stderr.rstrip().endswith("run searchkit check --repair")
    assert run("check", copy, "--repair").exit_code == 0
    assert run("query", copy, "weather", "--json").exit_code == 0


def test_a_huge_line_is_indexed_and_its_truncation_reported(tmp_path: Path, model: Any) -> None:
    source = tmp_path / "huge.txt"
    source.write_text(
        "short line\n" + "a very long line about the weather " * 300_000 + "\n", encoding="utf-8"
    )
    result = run("index", tmp_path / "idx", source, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["added"], report["truncated"]) == (2, 1)
    assert run("query", tmp_path / "idx", "weather", "-k", "1").exit_code == 0
