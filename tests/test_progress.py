"""The progress line: shown on a terminal, silent when piped."""

from __future__ import annotations

import io
from pathlib import Path

from searchkit.progress import Progress, estimate_items


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


def test_estimate_counts_lines_and_gives_up_on_stdin(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("1\n2\n3\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.jsonl").write_text("{}\n{}\n")
    assert estimate_items([str(tmp_path / "a.txt"), str(tmp_path / "d")]) == 5
    assert estimate_items([str(tmp_path / "a.txt"), "-"]) is None
    # Split into pieces, a line makes an unknown number of items: no total, so no false ETA.
    assert estimate_items([str(tmp_path / "a.txt")], split="sentences") is None
