"""ONNX Runtime backends: the model's transformer exported once to ONNX, run in fp32 or int8.

A sentence-transformers folder is a transformer followed by pooling and, often, L2
normalisation. The transformer is exported to ONNX once per weights file and kept in the
cache folder (``$SEARCHKIT_CACHE``, default ``~/.cache/searchkit``); pooling and
normalisation run in numpy, read from the folder's modules.json, so that the output
matches ``SentenceTransformer.encode``. The cold path (an already-exported model: load
the session and the tokenizer, embed a query) imports neither torch nor transformers;
only exporting does.

The int8 model is dynamically quantised: MatMul weights as int8 per output channel with
7-bit range, activations quantised per batch at run time (see ``onnx_export._quantize``).
Reading the model folder is onnx_model.py; exporting and caching, onnx_export.py.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from searchkit.devices import cpu_cores
from searchkit.errors import ModelError, UsageError
from searchkit.onnx_export import BACKEND_FP32, BACKEND_INT8, OUTPUT, ensure_exported
from searchkit.onnx_model import load_tokenizer, pool, read_layout

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["BACKEND_FP32", "BACKEND_INT8", "OnnxEncoder"]

# Long texts are cut to this many characters per kept word piece before tokenising, with a
# margin of pieces for the word the cut may split (the same rule as embedder.Embedder).
_CHARS_PER_PIECE = 32
_BOUNDARY_PIECES = 16


class OnnxEncoder:
    """Embeds texts with ONNX Runtime exactly as ``SentenceTransformer.encode`` does (fp32).

    ``quantized=True`` runs the int8 model instead: faster, and close to fp32 but not equal.
    The ONNX file is exported on first use and cached by `weights_sha256`, which the
    caller must have computed from the folder's weights.

    Safe to call from several threads at once: an ONNX Runtime session runs concurrent
    ``run`` calls, a tokenizer encodes concurrently as long as its settings do not change
    (they never do after loading: the untruncated count has a tokenizer of its own), and the
    rest is NumPy on each call's own arrays.
    """

    thread_safe = True

    def __init__(
        self, model_dir: Path, weights_sha256: str, quantized: bool, threads: int | None = None
    ) -> None:
        self._layout = read_layout(Path(model_dir))
        self.backend = BACKEND_INT8 if quantized else BACKEND_FP32
        self.max_seq_length = self._layout.max_seq_length
        self.dimension = self._layout.dimension
        self.normalize = self._layout.normalize
        self.tokenizer: Tokenizer
        self.tokenizer, self._pad_id = load_tokenizer(self._layout, truncate=True)
        self._counter: Tokenizer | None = None  # untruncated twin, made on first long text
        self._counter_lock = threading.Lock()
        self.model_path = ensure_exported(self._layout, weights_sha256, quantized)
        self._session = _open_session(self.model_path, threads or cpu_cores())
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
            (hidden,) = self._session.run([OUTPUT], {name: feeds[name] for name in self._inputs})
            out[rows] = pool(np.asarray(hidden, dtype=np.float32), mask, self._layout)
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
                self._counter = load_tokenizer(self._layout, truncate=False)[0]
            return self._counter


def _open_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One batch at a time uses every core through intra-op threads; inter-op threads only
    # help graphs with parallel branches, which a transformer has not.
    options.intra_op_num_threads = threads
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
