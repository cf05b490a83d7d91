"""A sentence-transformers model folder as the ONNX backends read it, and what they do after
the transformer: its tokenizer set up as sentence-transformers sets it up, and its pooling
and normalisation (read from modules.json) in numpy.

Only the pipelines sentence-transformers' `encode` gives plain vectors for are supported
(Transformer -> Pooling [-> Normalize], no prompts); anything else is refused with an
`UnsupportedModelError` that points at ``--backend torch`` (where the backend was not asked
for, embedder.load falls back to torch by itself).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from searchkit.errors import ModelError, UnsupportedModelError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["ModelLayout", "load_tokenizer", "pool", "read_layout", "unsupported"]

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


@dataclass(frozen=True)
class ModelLayout:
    """What the onnx backends need to know of a sentence-transformers folder."""

    name: str
    transformer_dir: Path
    max_seq_length: int
    do_lower_case: bool
    pooling: tuple[str, ...]
    normalize: bool
    dimension: int
    num_heads: int | None = None  # attention heads, where config.json says (for onnx_fusion)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc


def unsupported(model_dir: Path, what: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"model {model_dir.name!r}: {what} is not supported by the onnx backends; use --backend torch",
        what,
    )


def read_layout(model_dir: Path) -> ModelLayout:
    if not (model_dir / "config.json").exists():
        raise ModelError(f"{model_dir} is not a model folder (no config.json)")
    modules_file = model_dir / "modules.json"
    if modules_file.exists():
        modules = sorted(_read_json(modules_file), key=lambda m: int(m.get("idx", 0)))
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            raise unsupported(model_dir, f"the module pipeline {' -> '.join(kinds)}")
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
    return ModelLayout(
        name=model_dir.name,
        transformer_dir=transformer_dir,
        max_seq_length=_max_seq_length(model_dir, transformer_dir, st_config, hf_config),
        do_lower_case=bool(st_config.get("do_lower_case", False)),
        pooling=pooling,
        normalize=normalize,
        dimension=width * len(pooling),
        num_heads=heads if isinstance(heads := hf_config.get("num_attention_heads"), int) else None,
    )


def _check_prompts(model_dir: Path) -> None:
    path = model_dir / "config_sentence_transformers.json"
    config = _read_json(path) if path.exists() else {}
    if config.get("model_type", "SentenceTransformer") != "SentenceTransformer":
        raise unsupported(model_dir, f"a {config['model_type']}")
    default = config.get("default_prompt_name")
    if default is not None and (config.get("prompts") or {}).get(default):
        raise unsupported(model_dir, f"a default prompt ({default!r})")


def _transformer_config(model_dir: Path, transformer_dir: Path) -> dict[str, Any]:
    path = transformer_dir / "sentence_bert_config.json"
    config: dict[str, Any] = _read_json(path) if path.exists() else {}
    task = config.get("transformer_task", "feature-extraction")
    if task != "feature-extraction":
        raise unsupported(model_dir, f"transformer_task {task!r}")
    text = (config.get("modality_config") or {}).get("text", {})
    if text.get("method", "forward") != "forward" or text.get(
        "method_output_name", "last_hidden_state"
    ) not in ("last_hidden_state", None):
        raise unsupported(model_dir, "a transformer output other than last_hidden_state")
    # Settings that change what the model sees or how it is loaded: none has a counterpart here.
    for key in (
        *("query_length", "document_length", "query_expansion", "processing_kwargs"),
        *("model_args", "tokenizer_args", "config_args", "model_kwargs", "processor_kwargs"),
    ):
        if config.get(key):
            raise unsupported(model_dir, f"{key} in sentence_bert_config.json")
    return config


def _pooling_modes(model_dir: Path, config: dict[str, Any]) -> tuple[str, ...]:
    if "pooling_mode" in config:
        value = config["pooling_mode"]
        modes = (value,) if isinstance(value, str) else tuple(value)
    else:
        modes = tuple(mode for key, mode in _LEGACY_POOLING_KEYS.items() if config.get(key))
    if not modes:
        raise unsupported(model_dir, "a Pooling module with no pooling mode")
    for mode in modes:
        if mode not in _POOLING_MODES:
            raise unsupported(model_dir, f"pooling mode {mode!r} (supported: {', '.join(_POOLING_MODES)})")
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


def load_tokenizer(layout: ModelLayout, truncate: bool) -> tuple[Tokenizer, int]:
    """The folder's fast tokenizer, set up as sentence-transformers uses it, and its pad id."""
    # As embedder does: the tokenizers thread pool does not survive a fork (the HTTP
    # service, test subprocesses), and tokenising is a small part of the time anyway.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tokenizers import Tokenizer, normalizers

    path = layout.transformer_dir / "tokenizer.json"
    if not path.exists():
        raise unsupported(layout.transformer_dir, "a model folder without tokenizer.json")
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


def pool(hidden: np.ndarray, mask: np.ndarray, layout: ModelLayout) -> np.ndarray:
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
