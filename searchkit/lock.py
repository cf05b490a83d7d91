"""One writer per index: an advisory ``flock`` on ``INDEX/lock``.

The kernel drops the lock when its process dies, kill -9 included, so a crashed
writer never leaves a stale lock behind. Readers take no lock.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from searchkit.errors import LockError

__all__ = ["WriteLock"]

LOCK_FILE = "lock"


class WriteLock:
    def __init__(
        self,
        folder: Path,
        timeout: float = 60.0,
        on_wait: Callable[[], None] | None = None,
        name: str = LOCK_FILE,
    ):
        self.path = folder / name
        self.timeout = timeout
        self.on_wait = on_wait
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        if not self._still_there(fd):
            # A failed first ingest removes its folder, lock file included: a lock taken on
            # the removed file excludes no one, so start again on the path as it is now.
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _still_there(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def acquire(self) -> WriteLock:
        deadline = time.monotonic() + self.timeout
        warned = False
        while not self.try_acquire():
            if not warned and self.on_wait is not None:
                self.on_wait()
                warned = True
            if time.monotonic() >= deadline:
                raise LockError(
                    f"{self.path.parent}: another process is writing to this index "
                    f"(waited {self.timeout:.0f} s); try again when it has finished"
                )
            time.sleep(0.05)
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriteLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
