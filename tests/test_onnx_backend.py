"""The onnx backends: fp32 equal to torch, int8 close to it, export cached and atomic, cold path light."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from searchkit import ModelError, StorageError, onnx_export
from searchkit import embedder as embedding
from searchkit.onnx_backend import OnnxEncoder

from .conftest import TEST_CACHE

ROOT = Path(__file__).resolve().parent.parent
# Established on STS-B dev sentences (scripts/onnx_quality.py): int8 vs fp32 mean cosine
# is about 0.992, short texts being the furthest.
INT8_MEAN_COSINE = 0.985
INT8_MIN_COSINE = 0.95

TEXTS = [
    "hello",
    "",
    "A man is playing a guitar.",
    "Ünïcödé: 北京欢迎你, café naïve façade, Ελληνικά, русский, emoji 🎉🚀, مرحبا",
    "The quick brown fox jumps over the lazy dog. " * 60,  # ~600 word pieces: truncated
    "antidisestablishmentarianism " * 300,  # past the prefix cut (256 * 32 characters)
    "x" * 20_000,  # one giant word: a single [UNK]
    "   leading and trailing whitespace\t\n",
    "Mixed-length batch member with numbers 3.14159 and URLs https://example.org/a?b=c.",
]


@pytest.fixture(scope="session")
def onnx_cache() -> Path:
    """The test runs' own cache (conftest), so that the model is exported once."""
    return TEST_CACHE


@pytest.fixture(scope="session")
def bundled() -> tuple[Path, str]:
    source = embedding.resolve(None)
    return source.path, embedding.weights_sha256(source)


@pytest.fixture(scope="session")
def reference(bundled: tuple[Path, str]) -> Any:
    """sentence-transformers itself, on torch: what the onnx backends must reproduce."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(bundled[0]), device="cpu")


@pytest.fixture(scope="session")
def fp32(onnx_cache: Path, bundled: tuple[Path, str]) -> OnnxEncoder:
    return OnnxEncoder(bundled[0], bundled[1], quantized=False)


@pytest.fixture(scope="session")
def int8(onnx_cache: Path, bundled: tuple[Path, str], fp32: OnnxEncoder) -> OnnxEncoder:
    return OnnxEncoder(bundled[0], bundled[1], quantized=True)


def test_fp32_equals_torch_on_varied_texts(fp32: OnnxEncoder, reference: Any) -> None:
    expected = reference.encode(TEXTS, batch_size=32, convert_to_numpy=True)
    got = fp32.encode(TEXTS, batch_size=4)  # mixed lengths in each batch
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 384)
    assert np.abs(got - expected).max() < 1e-5
    one_by_one = np.vstack([fp32.encode([t]) for t in TEXTS])
    assert np.abs(one_by_one - expected).max() < 1e-5


def test_fp32_keeps_input_order_and_handles_empty_input(
    fp32: OnnxEncoder, corpus: list[dict[str, Any]]
) -> None:
    texts = [row["text"] for row in corpus[:40]]
    forward = fp32.encode(texts, batch_size=7)
    backward = fp32.encode(texts[::-1], batch_size=7)
    assert np.abs(forward - backward[::-1]).max() < 1e-5
    assert fp32.encode([]).shape == (0, 384)


def test_the_tokenizer_is_the_models(fp32: OnnxEncoder, reference: Any) -> None:
    for text in TEXTS:
        expected = reference.tokenizer(text, truncation=True, max_length=256)["input_ids"]
        assert fp32.tokenizer.encode(text).ids == expected
    assert (fp32.max_seq_length, fp32.dimension) == (256, 384)


def test_truncated_flags_agree_with_the_tokenizer(fp32: OnnxEncoder, reference: Any) -> None:
    pieces = reference.tokenizer(TEXTS, truncation=False)["input_ids"]
    assert fp32.truncated_flags(TEXTS) == [len(row) > 256 for row in pieces]
    assert fp32.truncated_flags(TEXTS)[4:7] == [True, True, False]


def test_int8_is_close_to_fp32_and_ranks_alike(
    fp32: OnnxEncoder, int8: OnnxEncoder, corpus: list[dict[str, Any]]
) -> None:
    texts = [row["text"] for row in corpus[::3]] + TEXTS
    queries = ["sunny weather", "a football match", "cooking pasta at home"]
    full, quantized = fp32.encode(queries + texts), int8.encode(queries + texts)
    cosine = np.sum(full * quantized, axis=1)
    assert cosine.mean() >= INT8_MEAN_COSINE, cosine.mean()
    assert cosine.min() >= INT8_MIN_COSINE, cosine.min()
    n = len(queries)
    top = [list((v[:n] @ v[n:].T).argmax(axis=1)) for v in (full, quantized)]
    assert top[0] == top[1]
    assert int8.model_path.stat().st_size < fp32.model_path.stat().st_size


def test_export_is_cached(
    int8: OnnxEncoder, fp32: OnnxEncoder, bundled: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [fp32.model_path, int8.model_path]
    before = [path.stat().st_mtime_ns for path in files]

    def fail(*args: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "_export", fail)
    monkeypatch.setattr(onnx_export, "_quantize", fail)
    again = OnnxEncoder(bundled[0], bundled[1], quantized=True)
    assert again.model_path == int8.model_path
    assert [path.stat().st_mtime_ns for path in files] == before
    assert np.array_equal(again.encode(TEXTS[:3]), int8.encode(TEXTS[:3]))
    folder = fp32.model_path.parent
    assert sorted(p.name for p in folder.iterdir()) == ["export.v2.onnx", "onnx-int8.v2.onnx", "onnx.v2.onnx"]
    assert folder.name == bundled[1]


def test_tests_keep_out_of_the_users_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An onnx embedding in a test, in this process or a CLI subprocess, reads and writes
    the test runs' cache (conftest), never HOME's ~/.cache/searchkit."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    assert onnx_export.cache_dir() == TEST_CACHE
    embedding.load(backend="onnx").encode(["kept out of the user's cache"])
    done = subprocess.run(
        [sys.executable, "-m", "searchkit", "embed", "kept out of the user's cache", "--backend", "onnx"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert not (home / ".cache" / "searchkit").exists()
    assert list(TEST_CACHE.glob(f"onnx/*/{onnx_export.BACKEND_FP32}.v*.onnx"))


def test_a_failed_export_leaves_nothing(
    tmp_path: Path, bundled: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEARCHKIT_CACHE", str(tmp_path))
    seen: list[Path] = []

    def half_then_fail(layout: object, out: Path) -> None:
        seen.append(out)
        out.write_bytes(b"half an onnx file")
        assert not onnx_export.onnx_path("f" * 64, False).exists()  # written beside, not in place
        raise ModelError("export failed")

    monkeypatch.setattr(onnx_export, "_export", half_then_fail)
    with pytest.raises(ModelError, match="export failed"):
        OnnxEncoder(bundled[0], "f" * 64, quantized=True)
    folder = tmp_path / "onnx" / ("f" * 64)
    assert seen and seen[0].parent == folder
    assert list(folder.iterdir()) == []


def test_an_unwritable_cache_is_a_storage_error(
    tmp_path: Path, bundled: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("SEARCHKIT_CACHE", str(blocker))
    with pytest.raises(StorageError, match="cannot write to the cache folder"):
        OnnxEncoder(bundled[0], "e" * 64, quantized=False)


def test_the_cold_path_does_not_import_torch(
    int8: OnnxEncoder, fp32: OnnxEncoder, onnx_cache: Path, bundled: tuple[Path, str]
) -> None:
    code = f"""
import json, sys
from pathlib import Path
from searchkit.onnx_backend import OnnxEncoder
out = {{}}
for quantized in (False, True):
    encoder = OnnxEncoder(Path({str(bundled[0])!r}), {bundled[1]!r}, quantized=quantized)
    out[str(quantized)] = encoder.encode(["a cold query"])[0].tolist()
heavy = ("torch", "sentence_transformers", "transformers", "onnx")
out["imported"] = sorted(m for m in heavy if m in sys.modules)
print(json.dumps(out))
"""
    env = {**os.environ, "SEARCHKIT_CACHE": str(onnx_cache), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["imported"] == []
    assert np.allclose(out["False"], fp32.encode(["a cold query"])[0], atol=1e-6)
    assert np.allclose(out["True"], int8.encode(["a cold query"])[0], atol=1e-6)


@pytest.fixture(scope="session")
def pooling_variant_dir(tmp_path_factory: pytest.TempPathFactory, bundled: tuple[Path, str]) -> Path:
    """The bundled transformer with cls + max + mean_sqrt_len pooling and no Normalize."""
    folder = tmp_path_factory.mktemp("models") / "minilm-pooling-variant"
    shutil.copytree(bundled[0], folder)
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps(modules[:2]))
    pooling = {"embedding_dimension": 384, "pooling_mode": ["cls", "max", "mean_sqrt_len_tokens"]}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return folder


def test_other_pooling_modes_match_sentence_transformers(
    pooling_variant_dir: Path, fp32: OnnxEncoder, bundled: tuple[Path, str]
) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(pooling_variant_dir), device="cpu")
    # Same weights, same sha256: the cached transformer is reused, only pooling differs.
    encoder = OnnxEncoder(pooling_variant_dir, bundled[1], quantized=False)
    assert encoder.dimension == 3 * 384
    texts = TEXTS[:5]
    expected = reference.encode(texts, batch_size=2, convert_to_numpy=True)
    assert np.abs(encoder.encode(texts, batch_size=2) - expected).max() < 1e-5


def _edit(folder: Path, name: str, change: dict[str, Any] | list[Any]) -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(change))


_NORMAL_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"modules.json": [*_NORMAL_MODULES, {"idx": 2, "path": "2_Dense", "type": "x.Dense"}]},
            "the module pipeline Transformer -> Pooling -> Dense is not supported",
        ),
        ({"1_Pooling/config.json": {"pooling_mode": "lasttoken"}}, "pooling mode 'lasttoken'"),
        (
            {
                "config_sentence_transformers.json": {
                    "prompts": {"query": "q: "},
                    "default_prompt_name": "query",
                }
            },
            "a default prompt ('query')",
        ),
        ({"sentence_bert_config.json": {"transformer_task": "fill-mask"}}, "transformer_task 'fill-mask'"),
        ({"tokenizer.json": None}, "a model folder without tokenizer.json"),
    ],
)
def test_unsupported_configurations_are_refused(
    tmp_path: Path, bundled: tuple[Path, str], files: dict[str, Any], message: str
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(bundled[0], folder, ignore=shutil.ignore_patterns("*.safetensors"))
    for name, content in files.items():
        if content is None:
            (folder / name).unlink()
        else:
            _edit(folder, name, content)
    with pytest.raises(ModelError) as caught:
        OnnxEncoder(folder, "d" * 64, quantized=False)
    assert message in str(caught.value)
    assert "--backend torch" in str(caught.value) and "\n" not in str(caught.value)


def test_the_default_engine_is_called_from_several_threads_at_once(model: embedding.Embedder) -> None:
    """serve's concurrent queries run ONNX Runtime side by side (no lock around it); each
    gets exactly the vectors it would get alone, long texts and their counts too."""
    import threading

    assert model.backend == "onnx"
    texts = [f"query number {n} about {'a long topic ' * (n % 7 * 40)}".strip() for n in range(64)]
    alone = model.encode(texts)
    flags = model.truncated_flags(texts)
    results: dict[int, Any] = {}
    start = threading.Barrier(8)

    def worker(w: int) -> None:
        start.wait()
        mine = texts[w::8]
        results[w] = (model.encode(mine, batch_size=3), model.truncated_flags(mine))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w, (vectors, truncated) in results.items():
        np.testing.assert_allclose(vectors, alone[w::8], atol=1e-5)
        assert truncated == flags[w::8]
    assert any(flags) and not all(flags)
