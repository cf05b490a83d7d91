"""scripts/setup.sh asks for the CPU build of torch on any Linux machine, and says which it got.

The script runs for real in a copy of the repo whose ``.venv/bin/python`` is a stand-in that
records every command it is given (no package is installed): what pip is asked for, in which
order, is what this checks. The stand-in answers as a machine would: PyTorch's CPU index
reachable or not, the torch that came a CPU or a CUDA build."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

STAND_IN = r"""#!/usr/bin/env bash
echo "$*" >> "$SETUP_LOG"
case "$*" in
    *"--index-url"*) [ "${CPU_INDEX_DOWN:-}" = 1 ] && exit 1; exit 0 ;;
    *"import torch"*) echo "$TORCH_BUILD"; exit 0 ;;
    *) exit 0 ;;
esac
"""


def run_setup(tmp_path: Path, torch_build: str, cpu_index_down: bool) -> tuple[list[str], str]:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    python = repo / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(STAND_IN)
    python.chmod(0o755)
    bin_dir = tmp_path / "bin"  # a chromium on PATH: setup must not reach for apt-get here
    bin_dir.mkdir()
    (bin_dir / "chromium").write_text("#!/bin/sh\n")
    (bin_dir / "chromium").chmod(0o755)
    log = tmp_path / "commands.log"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SETUP_LOG": str(log),
        "TORCH_BUILD": torch_build,
        "CPU_INDEX_DOWN": "1" if cpu_index_down else "",
    }
    done = subprocess.run(
        ["bash", str(repo / "scripts" / "setup.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines(), done.stderr


def pip_installs(commands: list[str]) -> list[str]:
    return [c for c in commands if c.startswith("-m pip install")]


def test_torch_comes_from_the_cpu_index_before_anything_else(tmp_path: Path) -> None:
    commands, stderr = run_setup(tmp_path, "2.13.0+cpu ", cpu_index_down=False)
    installs = pip_installs(commands)
    assert CPU_INDEX in installs[0] and "torch==2.13.0" in installs[0]
    assert "--retries 0" in installs[0] and "--timeout" in installs[0]
    assert "-e .[dev,parquet,ray,push]" in installs[1] and len(installs) == 2
    assert "setup: torch 2.13.0+cpu is the CPU build" in stderr


def test_without_the_cpu_index_it_falls_back_to_the_plain_pin(tmp_path: Path) -> None:
    commands, stderr = run_setup(tmp_path, "2.13.0+cpu ", cpu_index_down=True)
    installs = pip_installs(commands)
    assert CPU_INDEX in installs[0]
    assert installs[1].endswith("torch==2.13.0") and CPU_INDEX not in installs[1]
    assert "-e .[dev,parquet,ray,push]" in installs[2]
    assert "is the CPU build" in stderr


@pytest.mark.parametrize("cpu_index_down", [False, True])
def test_a_cuda_build_is_said_loudly(tmp_path: Path, cpu_index_down: bool) -> None:
    _, stderr = run_setup(tmp_path, "2.13.0 12.8", cpu_index_down=cpu_index_down)
    assert "setup: WARNING: torch 2.13.0 is a CUDA build (CUDA 12.8)" in stderr
    assert "is the CPU build" not in stderr
