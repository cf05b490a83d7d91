"""Binding lists of values to SQL: a bounded number at a time, as plain Python values."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["IN_CHUNK", "chunks"]

# SQLite's default limit on bound parameters is 32766 on current builds; stay far below.
IN_CHUNK = 900


def chunks(values: Sequence[Any] | npt.NDArray[Any]) -> Iterator[list[Any]]:
    """Plain Python values (sqlite3 binds no numpy ints), a bounded number at a time."""
    for start in range(0, len(values), IN_CHUNK):
        part = values[start : start + IN_CHUNK]
        yield part.tolist() if isinstance(part, np.ndarray) else list(part)
