"""Creating an index (service/creation.py): under the write lock, resumable, and told to readers."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from searchkit import Index, IndexNotFoundError, InputError, UsageError
from searchkit.lock import WriteLock
from searchkit.readers import read_inputs
from searchkit.service import build, check
from searchkit.service.creation import create

from .test_lifecycle import searchkit_cli


def lines(n: int, tag: str) -> str:
    return "".join(f"{tag} line number {i} of the input\n" for i in range(n))


def test_a_first_ingest_that_fails_keeps_what_it_staged(tmp_path: Path, tiny_model_dir: Path) -> None:
    """A bad line at 601: the 512 lines staged before it are not embedded again by the next run."""
    bad = tmp_path / "input.txt"
    bad.write_bytes(lines(600, "good").encode() + b"a bad \xff line\n")
    target = tmp_path / "new-index"
    with pytest.raises(InputError, match="line 601: invalid UTF-8"):
        build(target, read_inputs([bad]), model=str(tiny_model_dir))
    with pytest.raises(IndexNotFoundError, match="first ingest stopped before it committed anything"):
        Index.open(target)
    result = searchkit_cli("query", target, "good line")
    assert result.returncode == 1
    assert "its first ingest stopped before it committed anything; run searchkit index" in result.stderr
    bad.write_bytes(lines(600, "good").encode() + b"a fixed line\n")
    index, report = build(target, read_inputs([bad]), model=str(tiny_model_dir))
    with index:
        assert (report.added, report.embedded) == (601, 601 - 512)
        assert len(index) == 601
    assert check(target).ok


def test_a_first_ingest_that_staged_nothing_leaves_nothing(tmp_path: Path, tiny_model_dir: Path) -> None:
    bad = tmp_path / "input.txt"
    bad.write_bytes(b"one good line\na bad \xff line\n")
    with pytest.raises(InputError, match="line 2: invalid UTF-8"):
        build(tmp_path / "new-index", read_inputs([bad]), model=str(tiny_model_dir))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.txt"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="nothing to index"):
        build(tmp_path / "empty", iter([]), model=str(tiny_model_dir))
    assert list((tmp_path / "empty").iterdir()) == []  # the user's folder stays, as it was


def test_a_folder_of_the_users_is_refused(tmp_path: Path, tiny: Any) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("milk\n", encoding="utf-8")
    with pytest.raises(UsageError, match="exists and is not an empty folder or a searchkit index"):
        Index.create(tmp_path / "notes", embedder=tiny)
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["todo.txt"]
    Index.create(tmp_path / "i", embedder=tiny).close()
    with pytest.raises(UsageError, match="an index already exists here"):
        Index.create(tmp_path / "i", embedder=tiny)


def test_readers_of_an_index_being_created_are_told_so(tmp_path: Path, tiny: Any) -> None:
    folder = tmp_path / "new"
    index = create(folder, embedder=tiny, hold_lock=True)
    assert index is not None
    try:
        for command in (("query", folder, "anything"), ("info", folder)):
            result = searchkit_cli(*command)
            assert result.returncode == 1
            assert result.stderr == (
                f"Error: {folder}: another process is creating this index (its first ingest is "
                "running); try again when it has finished\n"
            )
        index.add([{"id": "a", "text": "alpha"}])
    finally:
        assert index._held_lock is not None
        index._held_lock.release()
        index.close()
    with Index.open(folder, embedder=tiny) as opened:
        assert [h.id for h in opened.search("alpha", k=1)] == ["a"]


def test_two_first_ingests_of_one_new_index_both_land(
    tmp_path: Path, crash_harness: Any, tiny_model_dir: Path
) -> None:
    """The second waits for the first, then adds to what it made; nothing is lost."""
    first = {f"a{i}": f"first writer item {i} alpha" for i in range(3000)}
    second = {f"b{i}": f"second writer item {i} bravo" for i in range(20)}
    crash_harness.write_jsonl(tmp_path / "a.jsonl", first)
    crash_harness.write_jsonl(tmp_path / "b.jsonl", second)
    folder = tmp_path / "race"
    env = crash_harness.env()
    model = str(tiny_model_dir)

    def start(name: str) -> subprocess.Popen[str]:
        command = crash_harness.cli("index", str(folder), str(tmp_path / name), "--model", model)
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    a = start("a.jsonl")
    deadline = time.monotonic() + 60
    while not _locked(folder):  # bounded: the first takes the lock before it loads the model
        assert a.poll() is None and time.monotonic() < deadline, "the first ingest never took the lock"
        time.sleep(0.01)
    b = start("b.jsonl")
    (a_out, a_err), (b_out, b_err) = a.communicate(timeout=300), b.communicate(timeout=300)
    assert (a.returncode, b.returncode) == (0, 0), (a_err, b_err)
    assert f"Waiting for another writer of {folder}" in b_err
    assert "3000 added" in a_out and "20 added" in b_out
    assert crash_harness.items_of(folder) == {**first, **second}
    assert check(folder).ok


def _locked(folder: Path) -> bool:
    if not (folder / "lock").exists():
        return False
    lock = WriteLock(folder, timeout=0)
    if lock.try_acquire():
        lock.release()
        return False
    return True
