"""Exporting a model's transformer to ONNX, once per weights file, and quantising it.

Files live in the cache folder (``$SEARCHKIT_CACHE``, default ``~/.cache/searchkit``), named
by the weights' sha256 and a format number, and are written through a temporary file so
that no reader sees half of one. Torch and transformers are imported here only, and only
when a file has to be made.

The export takes some seconds, once per model, so it says so on stderr before it starts:
the one line this library prints, as it cannot wait for a caller to print a note
(``Embedder.note``) after loading.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from searchkit.errors import ModelError, StorageError
from searchkit.onnx_model import ModelLayout, unsupported

__all__ = ["BACKEND_FP32", "BACKEND_INT8", "OUTPUT", "cache_dir", "ensure_exported", "known_as", "onnx_path"]

BACKEND_FP32 = "onnx"
BACKEND_INT8 = "onnx-int8"
# Part of every cached file name: bump it when the export or the quantisation changes, so that
# files written by an older searchkit are never mistaken for current ones.
_FORMAT = 2
_OPSET = 17
OUTPUT = "token_embeddings"
# The name the model being loaded goes by (embedder.py knows it; a folder's name may not be
# it: the bundled model's folder is "model").
_model_name: ContextVar[str | None] = ContextVar("searchkit_model_name", default=None)


@contextlib.contextmanager
def known_as(name: str) -> Iterator[None]:
    """Within it, an export names the model `name` (on stderr and in errors)."""
    token = _model_name.set(name)
    try:
        yield
    finally:
        _model_name.reset(token)


def cache_dir() -> Path:
    """The folder searchkit keeps derived files in: ``$SEARCHKIT_CACHE`` or ``~/.cache/searchkit``."""
    configured = os.environ.get("SEARCHKIT_CACHE", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "searchkit"


def onnx_path(weights_sha256: str, quantized: bool) -> Path:
    """Where the ONNX file for these weights and this backend is (or will be) cached."""
    return _cached(weights_sha256, BACKEND_INT8 if quantized else BACKEND_FP32)


def _cached(weights_sha256: str, kind: str) -> Path:
    return cache_dir() / "onnx" / weights_sha256 / f"{kind}.v{_FORMAT}.onnx"


def ensure_exported(layout: ModelLayout, weights_sha256: str, quantized: bool) -> Path:
    """The cached ONNX file for these weights and backend, made first if it is missing.

    Three files: ``export`` (the transformer as torch exports it), ``onnx`` (the export
    with its attention fused where onnx_fusion can, else the export itself) and
    ``onnx-int8`` (quantised from the export: quantising fused attention would leave
    its products in fp32).
    """
    target = onnx_path(weights_sha256, quantized)
    if target.exists():
        return target
    export = _cached(weights_sha256, "export")
    if not export.exists():
        print(
            f"searchkit: first use of {_name(layout)} with ONNX Runtime: exporting it once "
            "(about 10 s); later runs load the export",
            file=sys.stderr,
            flush=True,
        )
        _write_atomically(export, lambda tmp: _export(layout, tmp))
    if quantized:
        _write_atomically(target, lambda tmp: _quantize(export, tmp))
    else:
        _write_atomically(target, lambda tmp: _fuse_or_copy(layout, export, tmp))
    return target


def _name(layout: ModelLayout) -> str:
    return _model_name.get() or layout.name


def _fuse_or_copy(layout: ModelLayout, export: Path, out: Path) -> None:
    from searchkit.onnx_fusion import fuse_attention

    heads = layout.num_heads
    if heads is None or not fuse_attention(export, out, heads):
        shutil.copyfile(export, out)


def _write_atomically(target: Path, produce: Callable[[Path], None]) -> None:
    """Write `target` through a temporary file beside it, so that no reader sees half a file.

    Two processes exporting at once both succeed: each renames a complete file into place.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(handle)
    except OSError as exc:
        raise StorageError(f"cannot write to the cache folder {target.parent}: {exc}") from exc
    tmp = Path(name)
    try:
        produce(tmp)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.chmod(0o644)  # mkstemp makes it private; the cache is shared like any other
        os.replace(tmp, target)
    except OSError as exc:
        raise StorageError(f"cannot write {target}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _export(layout: ModelLayout, out: Path) -> None:
    """Export the transformer to `out`: inputs (batch, sequence) -> token embeddings."""
    model = _load_for_export(layout)
    import torch

    takes_types = "token_type_ids" in inspect.signature(model.forward).parameters
    names = ["input_ids", "attention_mask", *(["token_type_ids"] if takes_types else [])]
    # A padded example, so that nothing specific to full rows is traced.
    ids = torch.tensor([[101, 7592, 2088, 102, 0, 0], [101, 7592, 2088, 2003, 2204, 102]])
    mask = (ids != 0).to(torch.int64)
    example = (ids, mask, torch.zeros_like(ids))[: len(names)]
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, OUTPUT]}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The TorchScript exporter warns that it is legacy; unlike the new one, it needs
            # no extra packages (onnxscript).
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _with_additive_mask(model),
                example,
                str(out),
                input_names=names,
                output_names=[OUTPUT],
                dynamic_axes=axes,
                opset_version=_OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
    except Exception as exc:
        raise unsupported(layout.transformer_dir, f"exporting to ONNX ({type(exc).__name__}: {exc})") from exc


def _load_for_export(layout: ModelLayout) -> Any:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import transformers
    except ImportError as exc:
        raise ModelError(f"exporting a model to ONNX needs torch and transformers: {exc}") from exc
    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    # Its "Loading weights" bar would explain nothing: the line ensure_exported printed does.
    bars = transformers.logging.is_progress_bar_enabled()
    transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        # Eager attention exports to plain MatMul/Softmax ops that every ONNX Runtime build runs.
        model = transformers.AutoModel.from_pretrained(
            str(layout.transformer_dir), attn_implementation="eager"
        )
    except Exception as exc:
        raise ModelError(f"cannot load model {_name(layout)!r} to export it: {exc}") from exc
    finally:
        if bars:
            transformers.logging.enable_progress_bar()  # type: ignore[no-untyped-call]
    return model.eval()


def _with_additive_mask(model: Any) -> Any:
    """`model` taking a 0/1 attention mask and returning its last hidden state, ready to trace."""
    import torch

    class Transformer(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            # An additive 4-D mask, which transformers passes through as it is: its own mask
            # builder branches in Python on the mask's values, and a trace would freeze those
            # branches to the example batch (the export then gives wrong vectors).
            blocked = 1.0 - attention_mask[:, None, None, :].to(torch.float32)
            bias = blocked * torch.finfo(torch.float32).min
            kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
            return self.inner(input_ids=input_ids, attention_mask=bias, **kwargs).last_hidden_state

    return Transformer(model)


def _quantize(fp32: Path, out: Path) -> None:
    """Dynamic int8 quantisation of the MatMul weights, per output channel, 7-bit range.

    Per-tensor weight scales (ORT's default) cost the most: mean cosine to fp32 falls to
    about 0.96 on STS-B sentences, against 0.992 per channel. The 7-bit range avoids the
    int16 overflow of u8 x s8 products on AVX2 CPUs without VNNI. The embedding tables
    (Gather) stay fp32: they are lookups, and quantising them saves memory, not time.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # "consider pre-processing" goes to the root logger
    try:
        quantize_dynamic(
            fp32,
            out,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            op_types_to_quantize=["MatMul"],
        )
    finally:
        logging.disable(previous)
