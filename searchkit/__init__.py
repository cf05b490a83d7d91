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

import importlib
from typing import TYPE_CHECKING, Any

from searchkit.errors import (
    CorruptIndexError,
    IndexFileError,
    IndexNotFoundError,
    InputError,
    LockError,
    ModelError,
    ModelMismatchError,
    SearchkitError,
    ServiceError,
    StorageError,
    UnsupportedModelError,
    UsageError,
)
from searchkit.types import CheckReport, Fingerprint, Hit, Hits, Metric, Mode, Record, WriteReport

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time these load lazily
    from searchkit.compare import Similarity, embed, similarity
    from searchkit.readers import read_inputs
    from searchkit.service import Index, build

# Loaded on first use, so that `import searchkit` (and `searchkit --help`) stays instant.
_LAZY = {
    "Index": "searchkit.service",
    "Similarity": "searchkit.compare",
    "build": "searchkit.service",
    "embed": "searchkit.compare",
    "read_inputs": "searchkit.readers",
    "similarity": "searchkit.compare",
}

__all__ = [
    "CheckReport",
    "CorruptIndexError",
    "Fingerprint",
    "Hit",
    "Hits",
    "Index",
    "IndexFileError",
    "IndexNotFoundError",
    "InputError",
    "LockError",
    "Metric",
    "Mode",
    "ModelError",
    "ModelMismatchError",
    "Record",
    "SearchkitError",
    "ServiceError",
    "Similarity",
    "StorageError",
    "UnsupportedModelError",
    "UsageError",
    "WriteReport",
    "__version__",
    "build",
    "embed",
    "read_inputs",
    "similarity",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'searchkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
