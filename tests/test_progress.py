"""The progress line: shown on a terminal, silent when piped."""

from __future__ import annotations

import io
import re
from pathlib import Path

from searchkit.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_shows_items_rate_and_eta() -> None:
    out = Terminal()
    progress = Progress(total=1000, stream=out, interval=0)
    progress(256)
    progress(256)
    line = out.getvalue().split("\r")[-1]
    assert "512 items" in line and "items/s" in line and "ETA 0:" in line
    progress.close()
    assert out.getvalue().endswith("\r")


def test_progress_is_silent_when_piped() -> None:
    out = io.StringIO()
    progress = Progress(total=10, stream=out, interval=0)
    progress(5)
    progress.close()
    assert out.getvalue() == ""


def test_progress_without_a_total_shows_items_and_no_eta() -> None:
    """Stdin is not read ahead: its count and rate are shown, never a made-up ETA."""
    out = Terminal()
    progress = Progress(total=None, stream=out, interval=0)
    progress(300)
    line = out.getvalue().split("\r")[-1]
    assert "300 items" in line and "ETA" not in line


def test_piped_input_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    """`... | searchkit index INDEX -` with stderr on a terminal: the progress line is there."""
    import os
    import pty
    import subprocess
    import sys

    data = tmp_path / "in.txt"
    data.write_text("".join(f"piped line number {n}\n" for n in range(600)))
    leader, follower = pty.openpty()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "searchkit", "index", str(tmp_path / "idx"), "-"]
    with data.open("rb") as stdin:
        process = subprocess.Popen(command, stdin=stdin, stdout=subprocess.DEVNULL, stderr=follower, env=env)
    os.close(follower)
    seen = b""
    while True:  # until the child closes its end of the terminal
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    assert process.wait(timeout=300) == 0
    os.close(leader)
    assert re.search(rb"[\d,]+ items +[\d,]+ items/s", seen), seen
