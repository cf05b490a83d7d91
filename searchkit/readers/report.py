"""What reading the inputs found: every file used or skipped with its reason, every record
skipped, every format guessed. Filled as the inputs are read; printed after the write."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from searchkit.errors import InputError

__all__ = ["BadRecord", "NotItems", "Problems", "ReadReport", "SourceSync"]

# How many names of each skip reason the report shows (all of them are in --json).
SHOWN = 3


@dataclass
class ReadReport:
    """Files used (by format), files skipped (by reason, with their names), records
    skipped (bad, with --skip-bad; all-empty table rows), and notes on formats guessed."""

    used: Counter[str] = field(default_factory=Counter)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)
    empty_rows: int = 0
    notes: list[str] = field(default_factory=list)

    def use(self, fmt: str) -> None:
        self.used[fmt] += 1

    def skip(self, name: str, reason: str) -> None:
        self.skipped.setdefault(reason, []).append(name)

    def note(self, line: str) -> None:
        if line not in self.notes:
            self.notes.append(line)

    @property
    def files_used(self) -> int:
        return sum(self.used.values())

    @property
    def files_skipped(self) -> int:
        return sum(len(names) for names in self.skipped.values())

    def lines(self) -> list[str]:
        """The report for people: a line for files, one per skip reason, one per bad record."""
        out = []
        if self.files_used > 1 or self.files_skipped:  # one file named, and read: nothing to say
            formats = ", ".join(f"{n:,} {fmt}" for fmt, n in sorted(self.used.items(), key=lambda x: -x[1]))
            line = f"files: {self.files_used:,} used" + (f" ({formats})" if formats else "")
            if self.files_skipped:
                line += f", {self.files_skipped:,} skipped"
            out.append(line)
        for reason, names in sorted(self.skipped.items(), key=lambda x: -len(x[1])):
            more = f", and {len(names) - SHOWN:,} more" if len(names) > SHOWN else ""
            out.append(f"  skipped {len(names):,} {reason}: {', '.join(names[:SHOWN])}{more}")
        if self.empty_rows:
            out.append(f"{self.empty_rows:,} all-empty table row(s) skipped")
        out.extend(f"skipped (--skip-bad): {line}" for line in self.bad)
        out.extend(self.notes)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "files_used": dict(self.used),
            "files_skipped": self.skipped,
            "records_skipped": self.bad,
            "empty_rows": self.empty_rows,
            "notes": self.notes,
        }


class BadRecord(InputError):
    """A bad record, raised as it is: its message says already that --skip-bad skips it."""


class NotItems(InputError):
    """A file that holds data, not items (a JSON object, not an array of them): an error when
    it is named, a file skipped with its reason when a folder holds it."""

    reason = "JSON files not an array of objects (items go in .jsonl)"


class Problems:
    """Where a reader sends a bad file or record: raised as it is, or, with --skip-bad,
    recorded and passed over (the reader goes on with the next one)."""

    def __init__(self, report: ReadReport, skip: bool = False) -> None:
        self.report = report
        self.skip = skip
        self.quiet = False  # the second read of a checked input: its problems are reported already

    def bad(self, error: InputError) -> None:
        if not self.skip:
            raise BadRecord(f"{error}; or pass --skip-bad to skip bad files and records") from None
        if not self.quiet:
            self.report.bad.append(str(error))


@dataclass
class SourceSync:
    """What a read of files and folders says the index should hold now (the service makes it so):

    - `files`: every file read whole (its resolved path): its items are exactly the ones read;
    - `folders`: every folder listed: the items of a file under it that is not among
      `files` or `kept` are removed (the file is gone, or no longer selected);
    - `kept`: files under those folders skipped as bad: their items stay as they were.
    """

    files: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
