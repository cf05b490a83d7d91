"""Named fault points: the steps of a write where a test can make the process die.

``SEARCHKIT_FAULT=POINT`` makes the process kill itself (SIGKILL, as a power cut or the
OOM killer would) the first time it reaches `POINT`; ``POINT@N`` the N-th time. Before
it dies it writes ``searchkit: fault point POINT reached`` to stderr, so that a crash
test knows the kill landed where it meant, not before the write began or after it ended.
This is how SQLite tests its crash recovery; the points, in the order a write reaches them
(protocol.py):

    after-create    a first ingest made the folder and its database, nothing staged yet
    after-stage     a batch of embedded rows committed to ``pending``
    in-commit       the new vector file written, the SQLite transaction not committed
    after-commit    SQLite committed, the manifest not rewritten
    in-manifest     the new manifest written to its temporary file, not renamed
    after-manifest  the manifest renamed, the older vector files not removed
"""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["ENV", "POINTS", "reach"]

ENV = "SEARCHKIT_FAULT"
POINTS = ("after-create", "after-stage", "in-commit", "after-commit", "in-manifest", "after-manifest")
_hits: dict[str, int] = {}


def reach(point: str) -> None:
    """Called at `point`; kills the process if ``SEARCHKIT_FAULT`` names it (cheap otherwise)."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    name, _, nth = wanted.partition("@")
    if name != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] < (int(nth) if nth.isdigit() else 1):
        return
    sys.stderr.write(f"searchkit: fault point {point} reached\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
