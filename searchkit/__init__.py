"""searchkit: a semantic search index for text.

sentence-transformers embeds, FAISS finds neighbours, SQLite keeps every item.

    >>> import searchkit
    >>> searchkit.similarity(["The weather is lovely today.", "It's so sunny outside!"])
    >>> index = searchkit.Index.create("my-index")
    >>> index.add([{"id": "1", "text": "He drove to the stadium"}])
    >>> index.search("football", k=5)

Heavy modules (torch, sentence_transformers, faiss) load on first use, not on import.
"""

from __future__ import annotations

__version__ = "0.1.0"

from searchkit.compare import Similarity, embed, similarity
from searchkit.errors import (
    CorruptIndexError,
    IndexFileError,
    IndexNotFoundError,
    InputError,
    LockError,
    ModelError,
    ModelMismatchError,
    SearchkitError,
    StorageError,
    UsageError,
)
from searchkit.readers import read_inputs
from searchkit.service import Index, build
from searchkit.types import CheckReport, Fingerprint, Hit, Metric, Record, WriteReport

__all__ = [
    "CheckReport",
    "CorruptIndexError",
    "Fingerprint",
    "Hit",
    "Index",
    "IndexFileError",
    "IndexNotFoundError",
    "InputError",
    "LockError",
    "Metric",
    "ModelError",
    "ModelMismatchError",
    "Record",
    "SearchkitError",
    "Similarity",
    "StorageError",
    "UsageError",
    "WriteReport",
    "__version__",
    "build",
    "embed",
    "read_inputs",
    "similarity",
]
