"""A damaged ``index.db`` reported as CorruptIndexError, never as a bare sqlite3 error."""

from __future__ import annotations

import functools
import inspect
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from searchkit.errors import CorruptIndexError

__all__ = ["damaged", "guarded"]

F = TypeVar("F", bound=Callable[..., Any])


class _OnFile(Protocol):
    path: Path  # the database file, named in the message


def damaged(exc: sqlite3.DatabaseError, path: Path) -> CorruptIndexError:
    return CorruptIndexError(f"{path}: the database is damaged ({exc}); restore it from a backup")


def guarded(fn: F) -> F:
    """Report a damaged database file as CorruptIndexError (lazy generators included).

    Only SQLITE_CORRUPT / SQLITE_NOTADB arrive as a bare ``sqlite3.DatabaseError``;
    its subclasses (OperationalError: full, locked, read-only) pass through.
    """

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(self: _OnFile, *args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(self, *args, **kwargs)
            except sqlite3.DatabaseError as exc:
                if type(exc) is not sqlite3.DatabaseError:
                    raise
                raise damaged(exc, self.path) from None

        return generator  # type: ignore[return-value]

    @functools.wraps(fn)
    def call(self: _OnFile, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:
                raise
            raise damaged(exc, self.path) from None

    return call  # type: ignore[return-value]
