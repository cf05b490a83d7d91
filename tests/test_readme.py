"""The README's console examples, run: the commands it shows give the output it shows.

A fenced block of language ``console`` is an example: a line starting with ``$ `` is a
command (a trailing backslash continues it on the next line), the lines after it up to the
next command are its output, stdout and stderr together as a terminal shows them. In the
output, ``...`` matches any text within a line, and a line that is only ``...`` matches any
number of lines. Each block runs in a fresh folder holding a copy of ``data/``, its commands
one after another in that folder, ``searchkit`` and ``sqlite-utils`` those of this venv.
Examples that must not run here (servers, ``./scripts/...``) go in ``bash`` or ``sh`` blocks.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from searchkit import embedder as embedding

from .conftest import ROOT

README = ROOT / "README.md"
ELLIPSIS = "..."
# What a console example may run: this project's commands, and a pager's worth of shell.
PROGRAMS = {"searchkit", "sqlite-utils", "head"}


@dataclass(frozen=True)
class Command:
    line: int  # in README.md, 1-based
    text: str  # the command, continuation lines joined
    expected: list[str]


@dataclass(frozen=True)
class Block:
    line: int
    commands: list[Command]


def console_blocks(text: str) -> list[Block]:
    """Every ```console block of `text`, with its commands and their expected output."""
    blocks: list[Block] = []
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        if lines[n].strip() != "```console":
            n += 1
            continue
        start, body = n + 1, []
        n += 1
        while n < len(lines) and lines[n].strip() != "```":
            body.append((n + 1, lines[n]))
            n += 1
        blocks.append(Block(start, _commands(body)))
        n += 1
    return blocks


def _commands(body: list[tuple[int, str]]) -> list[Command]:
    commands: list[Command] = []
    i = 0
    while i < len(body):
        number, line = body[i]
        if not line.startswith("$ "):
            # Output before any command: a malformed block, reported by the test below.
            commands.append(Command(number, "", [line]))
            i += 1
            continue
        parts = [line[2:]]
        while parts[-1].endswith("\\") and i + 1 < len(body):
            i += 1
            parts.append(body[i][1])
        i += 1
        expected = []
        while i < len(body) and not body[i][1].startswith("$ "):
            expected.append(body[i][1])
            i += 1
        commands.append(Command(number, "\n".join(parts), _trimmed(expected)))
    return commands


def _trimmed(lines: list[str]) -> list[str]:
    lines = [line.rstrip() for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether `actual` is `expected`, with ``...`` as described above."""
    memo: dict[tuple[int, int], bool] = {}

    def at(i: int, j: int) -> bool:
        if (i, j) not in memo:
            if i == len(expected):
                memo[i, j] = j == len(actual)
            elif expected[i].strip() == ELLIPSIS:
                memo[i, j] = at(i + 1, j) or (j < len(actual) and at(i, j + 1))
            else:
                memo[i, j] = j < len(actual) and _line_matches(expected[i], actual[j]) and at(i + 1, j + 1)
        return memo[i, j]

    return at(0, 0)


def _line_matches(expected: str, actual: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.split(ELLIPSIS))
    return re.fullmatch(pattern, actual) is not None


BLOCKS = console_blocks(README.read_text(encoding="utf-8"))


def run(command: Command, folder: Path, env: dict[str, str]) -> tuple[int, list[str]]:
    # The status of a pipeline is its last command's: `searchkit export | head` ends the export early.
    done = subprocess.run(
        ["bash", "-c", command.text],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    return done.returncode, _trimmed(done.stdout.splitlines())


@pytest.fixture(scope="module")
def environment(model: embedding.Embedder) -> dict[str, str]:
    """The environment of the examples: this venv's commands first on PATH, no model hub, and
    the model exported beforehand (`model`), so that no first-use line shows in an output."""
    venv_bin = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": os.pathsep.join([venv_bin, os.environ.get("PATH", "")]),
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",  # stdout and stderr interleaved as on a terminal
    }


def test_the_readme_has_console_examples_that_can_run() -> None:
    assert len(BLOCKS) >= 6, "the README lost its console examples"
    for block in BLOCKS:
        assert block.commands, f"README.md:{block.line}: a console block with no command"
        for command in block.commands:
            where = f"README.md:{command.line}"
            assert command.text, f"{where}: output before any `$ ` command"
            for words in _pipeline(command.text):
                assert words and words[0] in PROGRAMS, f"{where}: `{words}` in a console block; use ```bash"
                assert words[:2] != ["searchkit", "serve"], f"{where}: a server in a console block"


def _pipeline(text: str) -> list[list[str]]:
    """The words of each command of a shell line (split at ``|``, ``;``, ``&&``, ``||``)."""
    lexer = shlex.shlex(text.replace("\\\n", " "), posix=True, punctuation_chars=True)
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in ("|", ";", "&&", "||"):
            commands.append([])
        else:
            commands[-1].append(token)
    return commands


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}" for b in BLOCKS])
def test_console_example(block: Block, tmp_path: Path, environment: dict[str, str]) -> None:
    shutil.copytree(ROOT / "data", tmp_path / "data")
    for command in block.commands:
        status, output = run(command, tmp_path, environment)
        where = f"README.md:{command.line}: $ {command.text}"
        shown = "\n".join(output)
        assert matches(command.expected, output), (
            f"{where}\n--- the README shows:\n" + "\n".join(command.expected) + f"\n--- it prints:\n{shown}"
        )
        fails = any(line.startswith("Error:") for line in command.expected)
        assert status == 0 or fails, f"{where}: exit status {status}\n{shown}"


@pytest.mark.parametrize(
    ("expected", "actual", "same"),
    [
        (["a"], ["a"], True),
        (["a"], ["b"], False),
        (["a ... c"], ["a b c"], True),
        (["a ... c"], ["a c"], False),  # the spaces around ... are text
        (["a...c"], ["ac"], True),
        (["...", "z"], ["x", "y", "z"], True),
        (["...", "z"], ["z"], True),
        (["a", "..."], ["a"], True),
        (["a", "...", "z"], ["a", "b", "c"], False),
        (["a"], ["a", "b"], False),
        (["x (1.5 s)"], ["x (1.5 s)"], True),  # no regex in the README's text
        (["x (1.5 s)"], ["x (105 s)"], False),
    ],
)
def test_ellipsis_matching(expected: list[str], actual: list[str], same: bool) -> None:
    assert matches(expected, actual) is same
