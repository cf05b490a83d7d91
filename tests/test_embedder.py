"""Model resolution, verification and fingerprints."""

from __future__ import annotations

from pathlib import Path

import pytest

from searchkit import ModelError
from searchkit import embedder as embedding


@pytest.mark.parametrize("name", [None, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"])
def test_default_names_resolve_to_the_bundled_model(name: str | None) -> None:
    source = embedding.resolve(name)
    assert source.kind == "bundled" and source.name == "all-MiniLM-L6-v2"
    assert embedding.weights_sha256(source) == embedding.BUNDLED_SHA256


def test_fingerprint_of_the_default_model(model: embedding.Embedder) -> None:
    fp = model.fingerprint
    assert (fp.name, fp.source, fp.sha256) == (
        "all-MiniLM-L6-v2",
        "bundled",
        embedding.BUNDLED_SHA256,
    )
    assert (fp.dimension, fp.max_seq_length, fp.normalize, fp.backend) == (384, 256, True, "torch")


def test_tampered_bundled_weights_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedding, "BUNDLED_SHA256", "0" * 64)
    with pytest.raises(ModelError, match=r"fail their sha256 check .*pip install --force-reinstall"):
        embedding.resolve(None)


def test_a_local_model_folder_loads_with_its_own_fingerprint(other_model_dir: Path) -> None:
    other = embedding.load(str(other_model_dir))
    assert other.fingerprint.source == f"local:{other_model_dir}"
    assert other.fingerprint.sha256 != embedding.BUNDLED_SHA256
    assert other.fingerprint.dimension == 384
    assert other.encode(["hello"]).shape == (1, 384)


def test_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="is not a sentence-transformers model folder"):
        embedding.resolve(str(tmp_path))


def test_an_unknown_hub_model_offline_names_the_remedy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as caught:
        embedding.resolve("no-such-org/no-such-model")
    message = str(caught.value)
    assert "not in the local cache" in message and "--model PATH" in message
    assert "\n" not in message


def test_truncation_is_counted(model: embedding.Embedder) -> None:
    long_text = "word " * 400
    assert model.truncated_flags(["short text", long_text]) == [False, True]


def test_load_is_cached(model: embedding.Embedder) -> None:
    assert embedding.load() is model
    assert embedding.load("sentence-transformers/all-MiniLM-L6-v2") is model


def test_encode_of_nothing(model: embedding.Embedder) -> None:
    assert model.encode([]).shape == (0, 384)


def test_unknown_backend() -> None:
    with pytest.raises(Exception, match="unknown backend 'onnx-fast'"):
        embedding.load(None, backend="onnx-fast")


def test_a_huge_text_embeds_exactly_as_the_model_does(model: embedding.Embedder, st_model: object) -> None:
    import numpy as np

    huge = "The weather is lovely today and the stadium is full. " * 200_000  # ~10 MB
    mostly_space = "word " + " " * 20_000 + "another word at the end"
    vectors = model.encode([huge, mostly_space])
    flags = model.truncated_flags([huge, mostly_space])
    expected = st_model.encode([huge[:100_000], mostly_space])  # type: ignore[attr-defined]
    np.testing.assert_allclose(vectors, expected, atol=1e-5)  # the default engine: fp32 ONNX
    assert flags == [True, False]


# --- errors: each except clause catches what it means, and nothing else --------------


def test_a_hub_failure_that_is_not_a_missing_model_is_not_called_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("a bug in the lookup")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", broken)
    with pytest.raises(RuntimeError, match="a bug in the lookup"):
        embedding.resolve("some-org/some-model")


def test_a_name_the_hub_cannot_take_is_a_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="not in the local cache"):
        embedding.resolve("not a valid/repo name")


def test_a_model_folder_with_broken_weights_is_one_line(tmp_path: Path) -> None:
    import shutil

    folder = Path(shutil.copytree(embedding.resolve(None).path, tmp_path / "broken"))
    (folder / "model.safetensors").write_bytes(b"\0" * 4096)
    with pytest.raises(ModelError) as caught:
        embedding.load(str(folder), backend="torch")
    assert str(caught.value).startswith(f"cannot load model 'broken' from {folder}: ")
    assert "\n" not in str(caught.value)


def test_a_bug_while_loading_is_not_reported_as_a_bad_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, st_model: object
) -> None:
    import shutil

    import sentence_transformers

    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("a bug in the loader")

    folder = Path(shutil.copytree(embedding.resolve(None).path, tmp_path / "fine"))
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", broken)
    with pytest.raises(TypeError, match="a bug in the loader"):
        embedding.load(str(folder), backend="torch")
