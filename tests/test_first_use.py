"""The first use of a model with ONNX Runtime exports it once, and says so in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

LINE = (
    "searchkit: first use of all-MiniLM-L6-v2 with ONNX Runtime: exporting it once (about 10 s); "
    "later runs load the export"
)


def embed(cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEARCHKIT_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "searchkit", "embed", "hello", "--json", *extra]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


@pytest.mark.slow
def test_first_use_says_it_exports_once_and_shows_no_bar(tmp_path: Path) -> None:
    cache = tmp_path / "cache"  # empty: this run exports the model
    first = embed(cache)
    assert first.returncode == 0, first.stderr
    assert first.stderr.splitlines() == [LINE]  # the line, once, and no "Loading weights" bar
    assert "Loading weights" not in first.stderr + first.stdout
    assert list(cache.glob("onnx/*/export.v*.onnx"))

    again = embed(cache)
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    assert again.stdout == first.stdout

    # The int8 backend quantises the export it finds, in a second or two: no line.
    int8 = embed(cache, "--backend", "onnx-int8")
    assert int8.returncode == 0, int8.stderr
    assert int8.stderr == ""
