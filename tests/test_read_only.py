"""An index in a folder this user cannot write: searches, listings and check work; every
write fails with one line and changes nothing. The folder and its files are made chmod a-w;
run as root (as CI is), the processes that use it start without CAP_DAC_OVERRIDE, so that
root too obeys the mode bits. (chattr +i needed CAP_LINUX_IMMUTABLE and a filesystem that
has the flag, which containers often lack: the tests skipped there.)"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from searchkit import Index

from .conftest import snapshot
from .test_lifecycle import searchkit_cli

READ_ONLY = "the folder is read-only to this user; searches still work, writes need write access"
Preexec = Callable[[], None] | None
_PR_CAPBSET_DROP = 24  # linux/prctl.h
_CAP_DAC_OVERRIDE = 1  # linux/capability.h: write (and read) any file whatever its mode


def _without_dac_override() -> None:
    """In the child, before exec: drop CAP_DAC_OVERRIDE from the bounding set, so that the
    program it runs, even as root, lacks it (CAP_DAC_READ_SEARCH still lets it read)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_CAPBSET_DROP, _CAP_DAC_OVERRIDE, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE) failed")


def _can_write(folder: Path, preexec: Preexec) -> bool:
    """Whether a child started with `preexec` may create a file in `folder`."""
    probe = f"open({str(folder / 'probe')!r}, 'w')"
    try:
        done = subprocess.run([sys.executable, "-c", probe], preexec_fn=preexec, capture_output=True)
    except subprocess.SubprocessError as exc:  # preexec failed: no CAP_SETPCAP
        pytest.skip(f"as root, unable to drop CAP_DAC_OVERRIDE ({exc}): no way to keep root from writing")
    (folder / "probe").unlink(missing_ok=True)
    return done.returncode == 0


@contextmanager
def frozen(folder: Path) -> Iterator[Preexec]:
    """`folder` and its files unwritable, until the block ends, to the processes started
    with the preexec_fn this yields."""
    preexec = _without_dac_override if os.geteuid() == 0 else None
    paths = [folder, *sorted(folder.iterdir())]
    modes = {p: p.stat().st_mode for p in paths}
    for path in paths:
        path.chmod(modes[path] & ~0o222)
    try:
        assert not _can_write(folder, preexec), "the folder is still writable"
        yield preexec
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


@pytest.fixture
def built(tmp_path: Path, tiny_model_dir: Path) -> Path:
    source = tmp_path / "docs.jsonl"
    rows = [
        {"id": f"d{i}", "text": f"document {i} about {topic}", "topic": topic}
        for i, topic in enumerate(["cats", "dogs", "rain", "sun", "cats", "dogs"])
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    folder = tmp_path / "idx"
    done = searchkit_cli("index", folder, source, "--model", tiny_model_dir)
    assert done.returncode == 0, done.stderr
    return folder


READS: list[tuple[str, ...]] = [
    ("query", "{idx}", "document about cats", "-k", "3", "--json"),
    ("query", "{idx}", "cats", "--mode", "hybrid", "--where", '{"topic": "cats"}', "--json"),
    ("info", "{idx}", "--json"),
    ("export", "{idx}", "--vectors"),
]


def _run(command: tuple[str, ...], folder: Path, preexec: Preexec = None) -> subprocess.CompletedProcess[str]:
    return searchkit_cli(*(part.replace("{idx}", str(folder)) for part in command), preexec=preexec)


def test_reads_answer_as_before(built: Path) -> None:
    before = [_run(command, built) for command in READS]
    assert all(done.returncode == 0 for done in before), [d.stderr for d in before]
    with frozen(built) as preexec:
        after = [_run(command, built, preexec) for command in READS]
        checked = searchkit_cli("check", built, "--json", preexec=preexec)
    for command, then, now in zip(READS, before, after, strict=True):
        assert now.returncode == 0, (command, now.stderr)
        if command[0] == "info":  # the listing of files may differ (no -wal beside a read-only file)
            keep = ("items", "metric", "index_type", "model", "counts")
            then_info, now_info = json.loads(then.stdout), json.loads(now.stdout)
            assert {k: now_info.get(k) for k in keep} == {k: then_info.get(k) for k in keep}
        else:
            assert now.stdout == then.stdout, command
    report = json.loads(checked.stdout)
    assert checked.returncode == 0 and report["ok"] and not report["problems"], checked.stdout
    assert any("not checked" in note for note in report["notes"])


@pytest.mark.parametrize(
    "command",
    [
        ("index", "{idx}", "{new}"),
        ("delete", "{idx}", "d1"),
        ("rebuild", "{idx}", "--metric", "dot"),
        ("check", "{idx}", "--repair"),
    ],
    ids=["index", "delete", "rebuild", "repair"],
)
def test_writes_fail_with_one_line_and_change_nothing(
    built: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    new = tmp_path / "new.txt"
    new.write_text("a brand new line\n", encoding="utf-8")
    before = snapshot(built)
    files = sorted(p.name for p in built.iterdir())
    with frozen(built) as preexec:
        done = _run(tuple(part.replace("{new}", str(new)) for part in command), built, preexec)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"Error: cannot write to {built}: "), done.stderr
    assert done.stderr.rstrip().endswith(READ_ONLY) and done.stderr.count("\n") == 1, done.stderr
    assert snapshot(built) == before
    assert sorted(p.name for p in built.iterdir()) == files


def test_a_read_only_reader_sees_commits_still_in_the_wal(built: Path, tiny_model_dir: Path) -> None:
    """While a writer holds the database open, its commits may sit in index.db-wal; a reader
    that cannot write must read them through -shm (SQLite's mode=ro), not skip them."""
    from searchkit import embedder as embedding

    with Index.open(built, embedder=embedding.load(str(tiny_model_dir))) as writer:
        writer.add([{"id": "fresh", "text": "a fresh document about volcanoes"}])
        assert (built / "index.db-wal").stat().st_size > 0
        with frozen(built) as preexec:
            done = searchkit_cli("export", built, preexec=preexec)
    assert done.returncode == 0, done.stderr
    ids = [json.loads(line)["id"] for line in done.stdout.splitlines()]
    assert "fresh" in ids and len(ids) == 7


def test_a_served_read_only_index_searches_and_answers_writes_with_507(built: Path) -> None:
    from .test_server import Server

    with frozen(built) as preexec:
        server = Server(built, token=None, preexec=preexec)
        try:
            status, found = server.call("POST", "/indexes/idx/search", {"query": "cats", "k": 2})
            assert status == 200 and len(found["hits"]) == 2, found
            document = {"documents": [{"id": "n", "text": "new"}]}
            status, refused = server.call("POST", "/indexes/idx/documents", document)
            assert status == 507 and refused["error"].endswith(READ_ONLY), refused
        finally:
            server.stop()
