"""Named fault points: the steps of a write where a test can make the process die.

``SEARCHKIT_FAULT=POINT`` makes the process kill itself (SIGKILL, as a power cut or the
OOM killer would) the first time it reaches `POINT`; ``POINT@N`` the N-th time. Before
it dies it writes ``searchkit: fault point POINT reached`` to stderr, so that a crash
test knows the kill landed where it meant, not before the write began or after it ended.
This is how SQLite tests its crash recovery. ``SEARCHKIT_PAUSE=POINT:PATH`` holds the process
at `POINT` instead: it creates ``PATH.reached`` and waits (up to two minutes) until `PATH`
exists, so that a test can look at an index while a write is stopped there. The points, in
the order a write reaches them (protocol.py):

    after-create        a first ingest made the folder and its database, nothing staged yet
    after-stage         a batch of embedded rows committed to ``pending``
    in-commit           the write's SQLite transaction done, not committed
    after-commit        SQLite committed, the manifest not rewritten
    in-manifest         the new manifest written to its temporary file, not renamed
    after-manifest      the manifest renamed

and those of a compaction (service/compaction.py), which a write may run after it:

    in-compaction       the new segment written to its temporary file, not renamed
    compaction-renamed  the segment file in place, the new segment list not committed
    after-compaction    the new segment list committed, the merged files not removed
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

__all__ = ["ENV", "PAUSE_ENV", "POINTS", "reach"]

ENV = "SEARCHKIT_FAULT"
PAUSE_ENV = "SEARCHKIT_PAUSE"
_PAUSE_LIMIT_S = 120.0
POINTS = (
    "after-create",
    "after-stage",
    "in-commit",
    "after-commit",
    "in-manifest",
    "after-manifest",
    "in-compaction",
    "compaction-renamed",
    "after-compaction",
)
_hits: dict[str, int] = {}


def reach(point: str) -> None:
    """Called at `point`; kills the process if ``SEARCHKIT_FAULT`` names it, holds it if
    ``SEARCHKIT_PAUSE`` does (cheap otherwise)."""
    pause = os.environ.get(PAUSE_ENV)
    if pause and pause.partition(":")[0] == point:
        _hold(Path(pause.partition(":")[2]))
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


def _hold(release: Path) -> None:
    Path(f"{release}.reached").touch()
    deadline = time.monotonic() + _PAUSE_LIMIT_S
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
