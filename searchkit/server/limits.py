"""What one request may ask of the service. Each limit answers a 4xx with a JSON error.

Stdlib only: the CLI's client batches its queries by these numbers without loading fastapi.
"""

from __future__ import annotations

__all__ = [
    "MAX_BATCH",
    "MAX_BODY_BYTES",
    "MAX_DIMENSION",
    "MAX_DOCUMENTS",
    "MAX_IDS",
    "MAX_K",
    "MAX_TEXT_CHARS",
    "WRITE_LOCK_TIMEOUT_S",
    "too_large_message",
]

# A body is refused (413) from its Content-Length, or as soon as a chunked one passes this,
# before it is read whole.
MAX_BODY_BYTES = 10 * 1024 * 1024
# Queries per search, texts per /embed and per side of /similarity: one embedding call.
MAX_BATCH = 256
# Documents per upsert: one write, durable when its response returns.
MAX_DOCUMENTS = 1_000
MAX_IDS = 10_000
# The model reads only its first max_seq_length word pieces; longer texts are cut by
# the model anyway (and counted), this bounds the tokenizer's work per text.
MAX_TEXT_CHARS = 100_000
MAX_K = 1_000
# Values in a document's own embedding: the widest sentence-transformers models give 4,096.
MAX_DIMENSION = 8_192
# A write waits this long for another process (e.g. `searchkit index`) to finish its
# write before it answers 503.
WRITE_LOCK_TIMEOUT_S = 30.0


def too_large_message(max_bytes: int = MAX_BODY_BYTES) -> str:
    return f"request body over {max_bytes // (1024 * 1024)} MB; send fewer or shorter documents per request"
