"""ONNX Runtime backends: the model's transformer exported once to ONNX, run in fp32 or int8.

A sentence-transformers folder is a transformer followed by pooling and, often, L2
normalisation. The transformer is exported to ONNX once per weights file and kept in the
cache folder (``$SEARCHKIT_CACHE``, default ``~/.cache/searchkit``); pooling and
normalisation run in numpy, read from the folder's modules.json, so that the output
matches ``SentenceTransformer.encode``. The cold path (an already-exported model: load
the session and the tokenizer, embed a query) imports neither torch nor transformers;
only exporting does.

The int8 model is dynamically quantised: MatMul weights as int8 per output channel with
7-bit range, activations quantised per batch at run time (see ``_quantize``).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from searchkit.errors import ModelError, StorageError, UsageError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["BACKEND_FP32", "BACKEND_INT8", "OnnxEncoder", "cache_dir", "onnx_path"]

BACKEND_FP32 = "onnx"
BACKEND_INT8 = "onnx-int8"
# Part of every cached file name: bump it when the export or the quantisation changes, so that
# files written by an older searchkit are never mistaken for current ones.
_FORMAT = 1
_OPSET = 17
_OUTPUT = "token_embeddings"
# Long texts are cut to this many characters per kept word piece before tokenising, with a
# margin of pieces for the word the cut may split (the same rule as embedder.Embedder).
_CHARS_PER_PIECE = 32
_BOUNDARY_PIECES = 16
# sentence-transformers' order when one Pooling module concatenates several modes.
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens")


def cache_dir() -> Path:
    """The folder searchkit keeps derived files in: ``$SEARCHKIT_CACHE`` or ``~/.cache/searchkit``."""
    configured = os.environ.get("SEARCHKIT_CACHE", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "searchkit"


def onnx_path(weights_sha256: str, quantized: bool) -> Path:
    """Where the ONNX file for these weights and this backend is (or will be) cached."""
    backend = BACKEND_INT8 if quantized else BACKEND_FP32
    return cache_dir() / "onnx" / weights_sha256 / f"{backend}.v{_FORMAT}.onnx"


@dataclass(frozen=True)
class _Layout:
    """What the onnx backends need to know of a sentence-transformers folder."""

    name: str
    transformer_dir: Path
    max_seq_length: int
    do_lower_case: bool
    pooling: tuple[str, ...]
    normalize: bool
    dimension: int


class OnnxEncoder:
    """Embeds texts with ONNX Runtime exactly as ``SentenceTransformer.encode`` does (fp32).

    ``quantized=True`` runs the int8 model instead: faster, and close to fp32 but not equal.
    The ONNX file is exported on first use and cached by `weights_sha256`, which the
    caller must have computed from the folder's weights.
    """

    def __init__(self, model_dir: Path, weights_sha256: str, quantized: bool) -> None:
        self._layout = _read_layout(Path(model_dir))
        self.backend = BACKEND_INT8 if quantized else BACKEND_FP32
        self.max_seq_length = self._layout.max_seq_length
        self.dimension = self._layout.dimension
        self.normalize = self._layout.normalize
        self.tokenizer: Tokenizer
        self.tokenizer, self._pad_id = _load_tokenizer(self._layout, truncate=True)
        self._counter: Tokenizer | None = None  # untruncated twin, made on first long text
        self._counter_lock = threading.Lock()
        self.model_path = _ensure_exported(self._layout, weights_sha256, quantized)
        self._session = _open_session(self.model_path)
        self._inputs = [i.name for i in self._session.get_inputs()]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed `texts` in order; returns a (len(texts), dimension) float32 array."""
        if batch_size < 1:
            raise UsageError(f"batch size must be at least 1, not {batch_size}")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch([self._embeddable(t) for t in texts])
        lengths = np.array([len(e.ids) for e in encodings], dtype=np.int64)
        # Batches of similar lengths waste little on padding; longest first, as
        # sentence-transformers does, so that a memory problem shows on the first batch.
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            width = int(lengths[rows].max())
            ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for j, row in enumerate(rows):
                encoding = encodings[row]
                n = len(encoding.ids)
                ids[j, :n] = encoding.ids
                types[j, :n] = encoding.type_ids
                mask[j, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            (hidden,) = self._session.run([_OUTPUT], {name: feeds[name] for name in self._inputs})
            out[rows] = _pool(np.asarray(hidden, dtype=np.float32), mask, self._layout)
        return out

    def truncated_flags(self, texts: Sequence[str]) -> list[bool]:
        """For each text, whether it is longer than max_seq_length word pieces (and gets cut)."""
        if not texts:
            return []
        counter = self._untruncated()
        encodings = counter.encode_batch([self._embeddable(t) for t in texts])
        return [len(e.ids) > self.max_seq_length for e in encodings]

    def _embeddable(self, text: str) -> str:
        """A text that embeds exactly as `text` does, and is quick to tokenise.

        The model keeps only the first max_seq_length word pieces, but tokenising a 10 MB
        line to find them takes seconds. When a prefix already holds well over that many
        pieces, every piece the model keeps lies inside it, so the prefix embeds identically.
        """
        limit = self.max_seq_length
        if len(text) <= limit * _CHARS_PER_PIECE:
            return text
        prefix = text[: limit * _CHARS_PER_PIECE]
        pieces = len(self._untruncated().encode(prefix).ids)
        return prefix if pieces > limit + _BOUNDARY_PIECES else text

    def _untruncated(self) -> Tokenizer:
        # A second tokenizer rather than toggling truncation on the shared one: a Tokenizer's
        # settings are shared state, and encode may be called from several threads.
        with self._counter_lock:
            if self._counter is None:
                self._counter = _load_tokenizer(self._layout, truncate=False)[0]
            return self._counter


# -- reading the model folder -------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc


def _unsupported(model_dir: Path, what: str) -> ModelError:
    return ModelError(
        f"model {model_dir.name!r}: {what} is not supported by the onnx backends; use --backend torch"
    )


def _read_layout(model_dir: Path) -> _Layout:
    if not (model_dir / "config.json").exists():
        raise ModelError(f"{model_dir} is not a model folder (no config.json)")
    modules_file = model_dir / "modules.json"
    if modules_file.exists():
        modules = sorted(_read_json(modules_file), key=lambda m: int(m.get("idx", 0)))
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            raise _unsupported(model_dir, f"the module pipeline {' -> '.join(kinds)}")
        transformer_dir = model_dir / str(modules[0].get("path", ""))
        pooling_config = _read_json(model_dir / str(modules[1].get("path", "")) / "config.json")
        normalize = len(kinds) == 3
    else:
        # What sentence-transformers does with a plain transformers folder: mean pooling.
        transformer_dir, pooling_config, normalize = model_dir, {"pooling_mode": "mean"}, False
    _check_prompts(model_dir)
    st_config = _transformer_config(model_dir, transformer_dir)
    hf_config = _read_json(transformer_dir / "config.json")
    pooling = _pooling_modes(model_dir, pooling_config)
    width = pooling_config.get("embedding_dimension") or pooling_config.get("word_embedding_dimension")
    width = width or hf_config.get("hidden_size")
    if not isinstance(width, int):
        raise ModelError(f"model {model_dir.name!r} does not say its embedding dimension")
    return _Layout(
        name=model_dir.name,
        transformer_dir=transformer_dir,
        max_seq_length=_max_seq_length(model_dir, transformer_dir, st_config, hf_config),
        do_lower_case=bool(st_config.get("do_lower_case", False)),
        pooling=pooling,
        normalize=normalize,
        dimension=width * len(pooling),
    )


def _check_prompts(model_dir: Path) -> None:
    path = model_dir / "config_sentence_transformers.json"
    config = _read_json(path) if path.exists() else {}
    if config.get("model_type", "SentenceTransformer") != "SentenceTransformer":
        raise _unsupported(model_dir, f"a {config['model_type']}")
    default = config.get("default_prompt_name")
    if default is not None and (config.get("prompts") or {}).get(default):
        raise _unsupported(model_dir, f"a default prompt ({default!r})")


def _transformer_config(model_dir: Path, transformer_dir: Path) -> dict[str, Any]:
    path = transformer_dir / "sentence_bert_config.json"
    config: dict[str, Any] = _read_json(path) if path.exists() else {}
    task = config.get("transformer_task", "feature-extraction")
    if task != "feature-extraction":
        raise _unsupported(model_dir, f"transformer_task {task!r}")
    text = (config.get("modality_config") or {}).get("text", {})
    if text.get("method", "forward") != "forward" or text.get(
        "method_output_name", "last_hidden_state"
    ) not in ("last_hidden_state", None):
        raise _unsupported(model_dir, "a transformer output other than last_hidden_state")
    # Settings that change what the model sees or how it is loaded: none has a counterpart here.
    for key in (
        *("query_length", "document_length", "query_expansion", "processing_kwargs"),
        *("model_args", "tokenizer_args", "config_args", "model_kwargs", "processor_kwargs"),
    ):
        if config.get(key):
            raise _unsupported(model_dir, f"{key} in sentence_bert_config.json")
    return config


def _pooling_modes(model_dir: Path, config: dict[str, Any]) -> tuple[str, ...]:
    if "pooling_mode" in config:
        value = config["pooling_mode"]
        modes = (value,) if isinstance(value, str) else tuple(value)
    else:
        modes = tuple(mode for key, mode in _LEGACY_POOLING_KEYS.items() if config.get(key))
    if not modes:
        raise _unsupported(model_dir, "a Pooling module with no pooling mode")
    for mode in modes:
        if mode not in _POOLING_MODES:
            raise _unsupported(model_dir, f"pooling mode {mode!r} (supported: {', '.join(_POOLING_MODES)})")
    return modes


def _max_seq_length(
    model_dir: Path, transformer_dir: Path, st_config: dict[str, Any], hf_config: dict[str, Any]
) -> int:
    """The limit sentence-transformers applies: its own config, else the tokenizer's capped by the model's."""
    if isinstance(st_config.get("max_seq_length"), int):
        return int(st_config["max_seq_length"])
    positions = hf_config.get("max_position_embeddings")
    path = transformer_dir / "tokenizer_config.json"
    tokenizer_limit = _read_json(path).get("model_max_length") if path.exists() else None
    candidates = [v for v in (tokenizer_limit, positions) if isinstance(v, int) and v > 0]
    if not candidates:
        raise ModelError(f"model {model_dir.name!r} does not say its maximum sequence length")
    return min(candidates)


def _load_tokenizer(layout: _Layout, truncate: bool) -> tuple[Tokenizer, int]:
    """The folder's fast tokenizer, set up as sentence-transformers uses it, and its pad id."""
    # As embedder does: the tokenizers thread pool does not survive a fork (the HTTP
    # service, test subprocesses), and tokenising is a small part of the time anyway.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tokenizers import Tokenizer, normalizers

    path = layout.transformer_dir / "tokenizer.json"
    if not path.exists():
        raise _unsupported(layout.transformer_dir, "a model folder without tokenizer.json")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise ModelError(f"cannot load the tokenizer {path}: {exc}") from exc
    if layout.do_lower_case:
        # As sentence-transformers does for do_lower_case; lowercasing twice changes nothing.
        current = tokenizer.normalizer
        steps = [normalizers.Lowercase(), *([current] if current is not None else [])]
        tokenizer.normalizer = normalizers.Sequence(steps)
    # tokenizer.json may carry its own padding and truncation (128 for all-MiniLM-L6-v2);
    # sentence-transformers overrides both, and so must we. encode pads each batch itself.
    padding = tokenizer.padding
    tokenizer.no_padding()
    if truncate:
        tokenizer.enable_truncation(
            layout.max_seq_length, stride=0, strategy="longest_first", direction="right"
        )
    else:
        tokenizer.no_truncation()
    return tokenizer, int(padding["pad_id"]) if padding else 0


# -- pooling, as sentence_transformers' Pooling and Normalize modules do it ----------------


def _pool(hidden: np.ndarray, mask: np.ndarray, layout: _Layout) -> np.ndarray:
    weights = mask[:, :, None].astype(np.float32)
    parts: list[np.ndarray] = []
    for mode in layout.pooling:
        if mode == "cls":
            parts.append(hidden[np.arange(len(hidden)), mask.argmax(axis=1)])
        elif mode == "max":
            parts.append(np.where(weights > 0, hidden, -np.inf).max(axis=1))
        else:
            count = np.maximum(weights.sum(axis=1), 1e-9)
            total = (hidden * weights).sum(axis=1)
            parts.append(total / (count if mode == "mean" else np.sqrt(count)))
    vectors = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
    if layout.normalize:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.maximum(norms, 1e-12)
    return vectors.astype(np.float32, copy=False)


# -- the session ---------------------------------------------------------------------------


def _open_session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One batch at a time uses every core through intra-op threads; inter-op threads only
    # help graphs with parallel branches, which a transformer has not.
    options.intra_op_num_threads = _cores()
    options.inter_op_num_threads = 1
    # Idle workers sleep instead of spinning. Measured on a shared 2-core machine (2,000
    # STS-B sentences, other jobs running): int8 7.6 s spinning, 5.0 s not.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: ORT's warnings are about its own internals
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(
            f"cannot load {path}: {str(exc).strip().splitlines()[0]}; delete it to export it again"
        ) from exc


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# -- export and quantisation (torch needed here only) -------------------------------------


def _ensure_exported(layout: _Layout, weights_sha256: str, quantized: bool) -> Path:
    target = onnx_path(weights_sha256, quantized)
    if target.exists():
        return target
    fp32 = onnx_path(weights_sha256, False)
    if not fp32.exists():
        _write_atomically(fp32, lambda tmp: _export(layout, tmp))
    if quantized:
        _write_atomically(target, lambda tmp: _quantize(fp32, tmp))
    return target


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


def _export(layout: _Layout, out: Path) -> None:
    """Export the transformer to `out`: inputs (batch, sequence) -> token embeddings."""
    model = _load_for_export(layout)
    import torch

    takes_types = "token_type_ids" in inspect.signature(model.forward).parameters
    names = ["input_ids", "attention_mask", *(["token_type_ids"] if takes_types else [])]
    # A padded example, so that nothing specific to full rows is traced.
    ids = torch.tensor([[101, 7592, 2088, 102, 0, 0], [101, 7592, 2088, 2003, 2204, 102]])
    mask = (ids != 0).to(torch.int64)
    example = (ids, mask, torch.zeros_like(ids))[: len(names)]
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, _OUTPUT]}
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
                output_names=[_OUTPUT],
                dynamic_axes=axes,
                opset_version=_OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
    except Exception as exc:
        raise _unsupported(
            layout.transformer_dir, f"exporting to ONNX ({type(exc).__name__}: {exc})"
        ) from exc


def _load_for_export(layout: _Layout) -> Any:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import transformers
    except ImportError as exc:
        raise ModelError(f"exporting a model to ONNX needs torch and transformers: {exc}") from exc
    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    try:
        # Eager attention exports to plain MatMul/Softmax ops that every ONNX Runtime build runs.
        model = transformers.AutoModel.from_pretrained(
            str(layout.transformer_dir), attn_implementation="eager"
        )
    except Exception as exc:
        raise ModelError(f"cannot load model {layout.name!r} to export it: {exc}") from exc
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
