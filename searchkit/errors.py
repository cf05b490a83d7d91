"""The exceptions searchkit raises on purpose.

Every error a user can cause is a ``SearchkitError`` whose message is one line that
says what went wrong and what to do. The CLI and the HTTP service print that line
as it is; anything that is not a ``SearchkitError`` is a bug.

    SearchkitError
    ├── InputError          bad input data: unreadable file, malformed record, missing field
    ├── UsageError          a bad argument: unknown metric, k <= 0, unknown index type
    ├── ModelError          the model cannot be found, loaded or verified
    │   └── UnsupportedModelError   this engine (ONNX) cannot run this model; torch can
    ├── IndexFileError      an index folder that cannot be used as it is
    │   ├── IndexNotFoundError   no index at that path
    │   ├── CorruptIndexError    a file of the index is damaged or disagrees with the rest
    │   └── ModelMismatchError   the index was built with a different model
    ├── LockError           another process holds the index's write lock
    ├── ServiceError        a searchkit server cannot be reached, or refused a request
    └── StorageError        the disk refused a write: full, read-only, or failing
"""

from __future__ import annotations

__all__ = [
    "CorruptIndexError",
    "IndexFileError",
    "IndexNotFoundError",
    "InputError",
    "LockError",
    "ModelError",
    "ModelMismatchError",
    "SearchkitError",
    "ServiceError",
    "StorageError",
    "UnsupportedModelError",
    "UsageError",
]


class SearchkitError(Exception):
    """Base of every error searchkit raises for a reason the user can act on."""


class InputError(SearchkitError):
    """Input data that cannot be read as the format says."""


class UsageError(SearchkitError):
    """An argument outside what the operation accepts."""


class ModelError(SearchkitError):
    """A model that cannot be found, loaded or verified."""


class UnsupportedModelError(ModelError):
    """An engine that cannot run this model's pipeline (a prompt, a Dense module): another can.

    ``what`` names the part it cannot run, for the note that says torch runs it instead.
    """

    def __init__(self, message: str, what: str = "") -> None:
        super().__init__(message)
        self.what = what


class IndexFileError(SearchkitError):
    """An index folder that cannot be used as it is."""


class IndexNotFoundError(IndexFileError):
    """No index at the given path."""


class CorruptIndexError(IndexFileError):
    """A damaged index file, or files that disagree in a way ``check --repair`` must fix."""


class ModelMismatchError(IndexFileError):
    """The index was built with another model than the one asked for."""


class LockError(SearchkitError):
    """The index is being written by another process."""


class ServiceError(SearchkitError):
    """A searchkit server (``--server``) cannot be reached, or answered with an error."""


class StorageError(SearchkitError):
    """The filesystem refused a write; the index is as it was before it."""
