"""Which files the inputs name, and in which format each is read.

A folder is walked in name order (a folder's files, then its subfolders); every file in
it is either a `Source` or counted in the report as skipped with its reason: hidden (a
name starting with "."), excluded (--include/--exclude), binary, empty, not a regular
file (a broken link), or a link to a folder (not followed); a hidden, excluded or linked
folder counts once. A file's format comes from its extension (the one inside ``.gz``); a
file without a known extension (``README``, ``copyright``, ``README.Debian``) is read by
its content.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from searchkit.errors import InputError, UsageError
from searchkit.readers.decoding import inner_name, looks_binary, open_bytes
from searchkit.readers.report import ReadReport

__all__ = ["BY_EXTENSION", "STDIN", "Source", "Walk", "glob_matcher"]

STDIN = "-"
BY_EXTENSION = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".rst": "md",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
}
# How much of a file without a known extension is read to tell text from binary.
SNIFF = 8192


@dataclass(frozen=True)
class Source:
    """One input to read: a file (`path`) or stdin (`path` None).

    `name` is the path as given (for messages); `origin` the file's resolved path, from
    which its items' ids are made, so that however the path is typed the ids are the same.
    `fmt` is ``auto`` when the content decides (stdin, a file without a known extension)."""

    name: str
    path: Path | None
    origin: str | None
    fmt: str
    folder: str | None = None  # the resolved folder it was found in, if any


class Walk:
    """The sources of the inputs, in order; skipped files go to `report`, folders to `folders`."""

    def __init__(
        self,
        inputs: Sequence[str | Path],
        fmt: str,
        report: ReadReport,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> None:
        self.inputs = [str(i) for i in inputs]
        self.fmt = fmt
        self.report = report
        self.include = glob_matcher(include)
        self.exclude = glob_matcher(exclude)
        self.has_include = bool(include)
        self.folders: list[str] = []

    @property
    def several(self) -> bool:
        """Whether the inputs are more than one file: a bad one need not stop the others."""
        return len(self.inputs) > 1 or any(arg != STDIN and Path(arg).is_dir() for arg in self.inputs)

    def sources(self) -> Iterator[Source]:
        for arg in self.inputs:
            if arg == STDIN:
                yield Source("stdin", None, None, self.fmt)
                continue
            path = Path(arg)
            if path.is_dir():
                yield from self._folder(arg, path)
            elif path.exists():
                fmt = self.fmt if self.fmt != "auto" else BY_EXTENSION.get(_extension(path), "auto")
                yield Source(arg, path, str(path.resolve()), fmt)
            else:
                raise InputError(f"{arg}: no such file or folder")

    def _folder(self, arg: str, path: Path) -> Iterator[Source]:
        root = path.resolve()
        self.folders.append(str(root))
        skipped, found = self.report.files_skipped, False
        for file, relative in self._walk(path):
            source = self._classify(file, relative, str(root))
            if source is not None:
                found = True
                yield source
        if not found and self.report.files_skipped == skipped:
            raise InputError(f"{arg}: no files in this folder")

    def _walk(self, top: Path) -> Iterator[tuple[Path, str]]:
        for folder, dirs, files in os.walk(top):
            here = Path(folder)
            relative = here.relative_to(top).as_posix()
            for name in sorted(d for d in dirs if d.startswith(".")):
                self.report.skip(str(here / name) + "/", "hidden")
            kept = []
            for name in sorted(d for d in dirs if not d.startswith(".")):
                if (here / name).is_symlink():  # os.walk does not follow them: a loop could be endless
                    self.report.skip(str(here / name) + "/", "links to folders (not followed)")
                elif self.exclude(_join(relative, name)):
                    self.report.skip(str(here / name) + "/", "excluded")  # once, not each file in it
                else:
                    kept.append(name)
            dirs[:] = kept
            for name in sorted(files):
                file = here / name
                if name.startswith("."):
                    self.report.skip(str(file), "hidden")
                elif file.is_file():
                    yield file, _join(relative, name)
                else:
                    self.report.skip(str(file), "not regular files (broken links, pipes, sockets)")

    def _classify(self, file: Path, relative: str, root: str) -> Source | None:
        name = str(file)
        if self.exclude(relative) or (self.has_include and not self.include(relative)):
            self.report.skip(name, "excluded")
            return None
        fmt = BY_EXTENSION.get(_extension(file))
        head = _head(file) if fmt != "parquet" else None
        if head is not None:
            if len(head) < SNIFF and not head.strip():
                self.report.skip(name, "empty")
                return None
            if looks_binary(head):
                self.report.skip(name, "binary")
                return None
        return Source(name, file, str(file.resolve()), fmt or "auto", folder=root)


def _extension(path: Path) -> str:
    return Path(inner_name(path)).suffix.lower()


def _head(file: Path) -> bytes | None:
    """The first bytes of `file`; None when it cannot be read (reading it says why, as a
    bad file: skipped with --skip-bad, else the error)."""
    try:
        with open_bytes(file) as stream:
            return stream.read(SNIFF)
    except (InputError, OSError, EOFError, zlib.error):
        return None


def _join(folder: str, name: str) -> str:
    return name if folder in ("", ".") else f"{folder}/{name}"


def glob_matcher(patterns: Sequence[str]) -> Callable[[str], bool]:
    """Whether a path relative to the folder given (``a/b/c.txt``) matches one of
    `patterns`: ``*`` and ``?`` within a name, ``**`` across folders, ``[...]`` a set; a
    pattern without ``/`` matches a file's name at any depth (as .gitignore does)."""
    compiled = [_glob_regex(p) for p in patterns]

    def matches(relative: str) -> bool:
        return any(regex.fullmatch(relative) for regex in compiled)

    return matches


def _glob_regex(pattern: str) -> re.Pattern[str]:
    raw = pattern.strip()
    if not raw.strip("/"):
        raise UsageError("an empty --include/--exclude pattern matches nothing; give a glob such as '*.md'")
    # As in .gitignore: a pattern with a "/" (but at its end) is anchored at the folder given.
    body = raw.strip("/") if "/" in raw.rstrip("/") else "**/" + raw.strip("/")
    out, i = "", 0
    while i < len(body):
        if body.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif body.startswith("**", i):
            out, i = out + ".*", i + 2
        elif body[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif body[i] == "?":
            out, i = out + "[^/]", i + 1
        elif body[i] == "[" and "]" in body[i + 2 :]:
            end = body.index("]", i + 2)  # a "]" first in the set is one of its characters
            out, i = out + _char_set(body[i + 1 : end]), end + 1
        else:
            out, i = out + re.escape(body[i]), i + 1
    # A folder pattern ("drafts", "build/**") also covers everything inside it.
    return re.compile(out + "(?:/.*)?")


def _char_set(inner: str) -> str:
    """A glob's ``[...]`` as a regex set: ranges kept, ``!`` negates, never a ``/``."""
    negate = inner.startswith("!")
    inner = inner[1:] if negate else inner
    inner = inner.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[")
    return f"[^/{inner}]" if negate else f"[{inner}]"
