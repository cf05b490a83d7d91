"""Attention fusion: fused where the graph matches, refused where it would compute otherwise."""

from __future__ import annotations

import collections
import hashlib
from pathlib import Path

import numpy as np
import pytest

from searchkit import embedder as embedding
from searchkit import onnx_export
from searchkit.onnx_fusion import fuse_attention


def _ops(path: Path) -> collections.Counter[str]:
    import onnx

    return collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)


@pytest.fixture(scope="module")
def export(model: embedding.Embedder) -> Path:
    """The bundled model's transformer as torch exported it (beside the fused file)."""
    path = model.engine.model_path.parent / model.engine.model_path.name.replace("onnx.", "export.", 1)
    assert path.exists()
    return path


def test_the_default_model_runs_fused_attention(model: embedding.Embedder, export: Path) -> None:
    fused, plain = _ops(model.engine.model_path), _ops(export)
    assert fused["Attention"] == 6 and plain["Attention"] == 0  # one per layer of MiniLM-L6
    assert plain["Softmax"] == 6 and fused["Softmax"] == 0
    assert sum(fused.values()) < sum(plain.values()) / 2


def test_fused_and_plain_give_the_same_vectors(model: embedding.Embedder, export: Path) -> None:
    from searchkit.onnx_backend import OnnxEncoder

    engine = model.engine
    plain = OnnxEncoder(model.source.path, model.fingerprint.sha256, quantized=False)
    plain._session = type(engine._session)(str(export), providers=["CPUExecutionProvider"])
    texts = ["A man is playing a guitar.", "hello", "Mixed lengths, so that one row is padded " * 5]
    assert np.abs(engine.encode(texts, batch_size=3) - plain.encode(texts, batch_size=3)).max() < 1e-5


def test_a_fusion_that_changes_the_output_is_refused(export: Path, tmp_path: Path) -> None:
    # 6 heads of 64 instead of 12 of 32: a valid Attention op with the wrong scale and split;
    # only the output check can tell.
    target = tmp_path / "fused.onnx"
    assert fuse_attention(export, target, num_heads=6) is False
    assert not target.exists()
    assert fuse_attention(export, target, num_heads=5) is False  # 384 does not split in 5
    assert not target.exists()


def test_a_graph_without_the_pattern_is_left_alone(export: Path, tmp_path: Path) -> None:
    import onnx

    model = onnx.load(str(export))
    for node in model.graph.node:
        node.name = node.name.replace("/key/", "/k_proj/")
    renamed = tmp_path / "renamed.onnx"
    onnx.save(model, str(renamed))
    assert fuse_attention(renamed, tmp_path / "fused.onnx", num_heads=12) is False
    assert not (tmp_path / "fused.onnx").exists()


def test_an_unfusable_export_is_used_as_it_is(
    tmp_path: Path, model: embedding.Embedder, export: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEARCHKIT_CACHE", str(tmp_path))
    sha = model.fingerprint.sha256
    cached = onnx_export.onnx_path(sha, quantized=False)
    cached.parent.mkdir(parents=True)
    (cached.parent / export.name).write_bytes(export.read_bytes())  # no torch export again
    monkeypatch.setattr("searchkit.onnx_fusion.fuse_attention", lambda *args: False)
    layout = model.engine._layout
    assert onnx_export.ensure_exported(layout, sha, quantized=False) == cached
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (cached, export)]
    assert digest[0] == digest[1]
