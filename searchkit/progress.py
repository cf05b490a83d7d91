"""A one-line progress display for long writes: items, items/s and ETA, on a terminal only.

Piped or redirected output stays quiet, so scripts and logs see only the report.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Call with the number of items just done; `close()` clears the line."""

    def __init__(self, total: int | None = None, stream: TextIO | None = None, interval: float = 0.25):
        self.total = total
        self.stream = stream if stream is not None else sys.stderr  # looked up now: it may be swapped
        self.enabled = self.stream.isatty()
        self.interval = interval
        self.done = 0
        self.started = time.monotonic()
        self._shown = 0.0

    def __call__(self, items: int) -> None:
        self.done += items
        now = time.monotonic()
        if not self.enabled or now - self._shown < self.interval:
            return
        self._shown = now
        rate = self.done / max(now - self.started, 1e-9)
        line = f"  {self.done:,} items  {rate:,.0f} items/s"
        if self.total and self.total > self.done and rate > 0:
            line += f"  ETA {_clock((self.total - self.done) / rate)}"
        self.stream.write("\r" + line.ljust(60))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r" + " " * 60 + "\r")
            self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
