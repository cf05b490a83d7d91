"""An index trusts only its own model: the whole pipeline, a moved folder, indexes made before."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from searchkit import Index, ModelError, ModelMismatchError
from searchkit import embedder as embedding
from searchkit.cli import app
from searchkit.model_digest import pipeline
from searchkit.server.served import Shelf
from searchkit.store import Store

from .conftest import ROOT, snapshot
from .test_server import Server

LEGACY = ROOT / "tests" / "fixtures" / "legacy-index"
ITEMS = [
    {"id": "weather", "text": "The weather is lovely today."},
    {"id": "sunny", "text": "It's so sunny outside!"},
    {"id": "stadium", "text": "He drove to the stadium"},
]
MORE = '{"id": "rain", "text": "It rains all day."}\n'


def run(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def copy_of_default(folder: Path) -> Path:
    shutil.copytree(embedding.resolve(None).path, folder)
    return folder


def with_cls_pooling(folder: Path) -> Path:
    config = folder / "1_Pooling" / "config.json"
    data = json.loads(config.read_text())
    data.update(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    config.write_text(json.dumps(data))
    return folder


@pytest.fixture(scope="module")
def cls_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled weights with CLS pooling: other vectors from the same sha256."""
    return with_cls_pooling(copy_of_default(tmp_path_factory.mktemp("cls") / "minilm-cls"))


@pytest.fixture(scope="module")
def same_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_of_default(tmp_path_factory.mktemp("same") / "minilm-copy")


@pytest.fixture
def built(tmp_path: Path, model: embedding.Embedder) -> Path:
    with Index.create(tmp_path / "index") as index:
        index.add(ITEMS)
    return tmp_path / "index"


def assert_one_line_error(result: Any, *parts: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    for part in parts:
        assert part in result.stderr, result.stderr


def ids(hits: Any) -> list[str]:
    return [hit.id for hit in hits]


# --- the pipeline digest ---------------------------------------------------------------


def test_the_digest_covers_the_pipeline_and_not_what_sentence_transformers_ignores(
    tmp_path: Path, same_copy: Path, cls_copy: Path
) -> None:
    default = pipeline(embedding.resolve(None).path)
    assert pipeline(same_copy) == default
    assert pipeline(cls_copy).digest != default.digest
    expected = {"modules.json", "1_Pooling/config.json", "tokenizer.json", "vocab.txt"}
    assert dict(default.files).keys() >= expected
    assert "model.safetensors" not in dict(default.files)  # the weights have their own sha256

    resaved = copy_of_default(tmp_path / "resaved")
    stamps = resaved / "config_sentence_transformers.json"
    stamps.write_text(json.dumps({"__version__": {"sentence_transformers": "9.9.9"}}, indent=4))
    pooling = resaved / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps(dict(reversed(json.loads(pooling.read_text()).items())), indent=1))
    (resaved / "README.md").write_text("another model card")
    (resaved / "onnx").mkdir()
    (resaved / "onnx" / "model.onnx").write_bytes(b"other runtime")
    (resaved / "tf_model.h5").write_bytes(b"other framework")
    assert pipeline(resaved) == default

    prompted = copy_of_default(tmp_path / "prompted")
    (prompted / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": "q: "}}))
    assert pipeline(prompted).digest != default.digest


def test_the_manifest_records_the_pipeline_readably(built: Path) -> None:
    recorded = json.loads((built / "manifest.json").read_text())["model"]["pipeline"]
    default = pipeline(embedding.resolve(None).path)
    assert recorded == {"digest": default.digest, "files": dict(default.files)}
    assert recorded["files"]["1_Pooling/config.json"] == dict(default.files)["1_Pooling/config.json"]


# --- another pooling mode is another model --------------------------------------------


def test_cls_pooling_cannot_extend_a_mean_pooling_index(built: Path, cls_copy: Path, tmp_path: Path) -> None:
    before = snapshot(built)
    more = tmp_path / "more.jsonl"
    more.write_text(MORE)
    result = run("index", built, more, "--model", cls_copy)
    assert_one_line_error(
        result,
        f"{built} was built with all-MiniLM-L6-v2 (torch, sha256 53aa51172d14, pipeline",
        "not minilm-cls (torch, sha256 53aa51172d14, pipeline",
        "(1_Pooling/config.json differs); query it with its own model, or build a new index",
    )
    assert snapshot(built) == before


def test_cls_pooling_cannot_query_a_mean_pooling_index(built: Path, cls_copy: Path) -> None:
    result = run("query", built, "sunshine", "--model", cls_copy)
    assert_one_line_error(result, "1_Pooling/config.json differs")
    with pytest.raises(ModelMismatchError, match=r"1_Pooling/config.json differs"):
        Index.open(built, model=str(cls_copy))


def test_an_identical_copy_is_the_same_model(built: Path, same_copy: Path) -> None:
    with Index.open(built) as index:
        expected = index.search("Is it sunny?", k=3)
    with Index.open(built, model=str(same_copy)) as index:
        found = index.search("Is it sunny?", k=3)
        assert index.embedder.source.path == same_copy.resolve()  # loaded from where it was asked
    assert ids(found) == ids(expected) and found[0].id == "sunny"
    np.testing.assert_allclose([h.score for h in found], [h.score for h in expected], atol=1e-5)


# --- a moved model folder -----------------------------------------------------------


@pytest.fixture
def moved(tmp_path: Path, model: embedding.Embedder) -> tuple[Path, Path]:
    """An index built from a local model folder, then the folder renamed: (index, new place)."""
    folder = copy_of_default(tmp_path / "my-model")
    result = run("index", tmp_path / "index", _items_file(tmp_path), "--model", folder)
    assert result.exit_code == 0, result.output
    new_place = folder.rename(tmp_path / "models-moved")
    return tmp_path / "index", new_place


def _items_file(tmp_path: Path) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in ITEMS))
    return path


def test_a_moved_model_folder_is_named_as_the_remedy(moved: tuple[Path, Path], tmp_path: Path) -> None:
    index, _ = moved
    before = snapshot(index)
    assert_one_line_error(
        run("query", index, "sunshine"),
        f"{index} was built with the model folder {tmp_path / 'my-model'}, which is not there any more; "
        "pass --model with the folder's new place",
    )
    assert snapshot(index) == before


def test_model_path_loads_a_moved_folder(moved: tuple[Path, Path], tmp_path: Path) -> None:
    index, new_place = moved
    result = run("query", index, "Is it sunny?", "--model", new_place, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["hits"][0]["id"] == "sunny"
    with Index.open(index, model=str(new_place)) as opened:
        assert opened.search("He went to a football match", k=1)[0].id == "stadium"
        assert opened.embedder.source.path == new_place.resolve()

    more = tmp_path / "more.jsonl"
    more.write_text(MORE)
    result = run("index", index, more, "--model", new_place)
    assert result.exit_code == 0, result.output
    assert len(snapshot(index)["items"]) == 4


def test_model_path_must_be_the_same_model(moved: tuple[Path, Path], cls_copy: Path) -> None:
    index, _ = moved
    result = run("query", index, "sunshine", "--model", cls_copy)
    assert_one_line_error(result, "1_Pooling/config.json differs")


def test_serve_loads_every_matching_index_from_model_path_and_refuses_the_others(
    moved: tuple[Path, Path], tmp_path: Path, other_model_dir: Path
) -> None:
    index, new_place = moved
    with Index.create(tmp_path / "other", model=str(other_model_dir)) as other:
        other.add(ITEMS[:1])
    shelf = Shelf.open([index], model=str(new_place))
    try:
        assert shelf.get("index").search(["Is it sunny?"], 1, None, "dense", False)[0][0].id == "sunny"
        assert shelf.embedder.source.path == new_place.resolve()
    finally:
        shelf.close()
    with pytest.raises(ModelMismatchError, match=rf"^{tmp_path / 'other'} was built with other-minilm"):
        Shelf.open([index, tmp_path / "other"], model=str(new_place))


def test_serve_takes_the_moved_folder(moved: tuple[Path, Path]) -> None:
    index, new_place = moved
    server = Server(index, *map(Path, ["--model", str(new_place)]), token=None)  # extra arguments
    try:
        status, body = server.call("POST", "/indexes/index/search", {"query": "Is it sunny?", "k": 1})
        assert status == 200 and body["hits"][0]["id"] == "sunny", body
    finally:
        assert server.stop() in (0, -signal.SIGTERM), "".join(server.log)


# --- indexes made before pipeline digests (tests/fixtures/legacy-index, by 384e01e) ----


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(LEGACY, tmp_path / "legacy"))


def recorded_model(folder: Path) -> dict[str, Any]:
    manifest = json.loads((folder / "manifest.json").read_text())["model"]
    store = Store(folder / "index.db", 384)
    try:
        assert store.config["model"] == manifest  # the source of truth says the same
    finally:
        store.close()
    return dict(manifest)


def test_a_legacy_index_opens_and_answers(legacy: Path, model: embedding.Embedder) -> None:
    assert "pipeline" not in recorded_model(legacy)
    with Index.open(legacy) as index:
        assert ids(index.search("Is it sunny?", k=3))[0] == "sunny"
        assert ids(index.search("football", k=1)) == ["stadium"]
    result = run("query", legacy, "Is it sunny?", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hits"][0]["id"] == "sunny"
    assert "pipeline" not in recorded_model(legacy)  # reading writes nothing


def test_a_legacy_index_refuses_another_pipeline(legacy: Path, cls_copy: Path, tmp_path: Path) -> None:
    before = snapshot(legacy)
    with pytest.raises(ModelMismatchError) as caught:
        Index.open(legacy, model=str(cls_copy))
    assert "\n" not in str(caught.value) and "1_Pooling/config.json differs" in str(caught.value)
    more = tmp_path / "more.jsonl"
    more.write_text(MORE)
    assert_one_line_error(run("index", legacy, more, "--model", cls_copy), "1_Pooling/config.json differs")
    assert snapshot(legacy) == before


def test_a_legacy_index_accepts_its_model_and_records_the_digest_on_the_next_write(
    legacy: Path, same_copy: Path, tmp_path: Path
) -> None:
    with Index.open(legacy, model=str(same_copy)) as index:
        assert index.search("Is it sunny?", k=1)[0].id == "sunny"
    more = tmp_path / "more.jsonl"
    more.write_text(MORE)
    result = run("index", legacy, more)
    assert result.exit_code == 0, result.output
    default = pipeline(embedding.resolve(None).path)
    assert recorded_model(legacy)["pipeline"] == {"digest": default.digest, "files": dict(default.files)}
    assert run("check", legacy).exit_code == 0
    with Index.open(legacy) as index:
        assert index.manifest.model.pipeline == default.digest
        assert ids(index.search("Is it raining?", k=1)) == ["rain"]


def test_a_legacy_index_records_the_digest_on_a_rebuild(legacy: Path, model: embedding.Embedder) -> None:
    with Index.open(legacy) as index:
        index.rebuild(metric="dot")
    assert recorded_model(legacy)["pipeline"]["digest"] == pipeline(embedding.resolve(None).path).digest
    assert run("check", legacy).exit_code == 0


def legacy_local(tmp_path: Path, model: embedding.Embedder) -> tuple[Path, Path]:
    """An index built from a local folder, its fingerprint stripped back to the old format."""
    folder = copy_of_default(tmp_path / "local-model")
    index = tmp_path / "local-index"
    with Index.create(index, model=str(folder)) as opened:
        opened.add(ITEMS)
    manifest = json.loads((index / "manifest.json").read_text())
    del manifest["model"]["pipeline"]
    (index / "manifest.json").write_text(json.dumps(manifest))
    store = Store(index / "index.db", 384)
    config = store.config
    del config["model"]["pipeline"]
    store.set_config(config)
    store.close()
    return index, folder


def test_a_legacy_local_index_is_held_to_its_folder_then_to_its_weights_once_gone(
    tmp_path: Path, model: embedding.Embedder, cls_copy: Path, same_copy: Path
) -> None:
    index, folder = legacy_local(tmp_path, model)
    assert "pipeline" not in recorded_model(index)
    with pytest.raises(ModelMismatchError, match=r"1_Pooling/config\.json differs"):
        Index.open(index, model=str(cls_copy))
    shutil.rmtree(folder)
    gone = "pass --model with the folder's new place"
    with pytest.raises(ModelError, match=gone), Index.open(index) as opened:
        opened.search("sunshine")
    # Nothing left to compare the pipeline with: the weights decide, as they did before.
    with Index.open(index, model=str(same_copy)) as opened:
        assert opened.search("Is it sunny?", k=1)[0].id == "sunny"
