"""Compaction: the runner that executes the merge policy's plans (segments/policy.py) and
commits them, as Lucene's ``MergeScheduler`` runs what ``TieredMergePolicy`` found.

One compaction at a time per index (``INDEX/compact-lock``); it never blocks a search, and
blocks writes only for its commit. Each step:

1. in one SQLite snapshot (generation S): plan, then build the new segment from the
   embeddings of its range as of S (a merge extends the largest segment of its type,
   loaded unmapped: segments/build.py) and write it to ``NAME.tmp`` (fsynced);
2. under the write lock: if the segments it merged are still the committed ones, rename
   the file into place and, in one transaction, list it in place of them (the tombstones
   it no longer needs go with them, store/catalog.py);
3. the manifest, then the files no longer listed are removed.

A crash before step 2's commit leaves the segment list as it was (and a temporary or
unlisted file that the next compaction, or ``check --repair``, removes); after it, the
new list. Fault points: ``in-compaction`` (the file written, not renamed),
``compaction-renamed`` (renamed, not committed), ``after-compaction`` (committed, the
merged files not removed).

In ``searchkit serve`` a `Compactor` thread runs the policy after writes; elsewhere a write
runs it itself once the tail reaches the policy's ``seal_at`` (`maintain`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain

from searchkit import faults
from searchkit.layout import Layout
from searchkit.lock import WriteLock
from searchkit.metrics import Matrix, prepare
from searchkit.segments.build import extend, fresh, layout_for
from searchkit.segments.policy import DEFAULT_POLICY, Merge, Policy, SegmentSize, plan_merges
from searchkit.service.protocol import WriteProtocol, segment_file
from searchkit.store.catalog import SegmentRecord
from searchkit.vectors import IdArray, fsync_dir

__all__ = ["COMPACT_LOCK", "Compactor", "compact", "maintain", "plan_now"]

COMPACT_LOCK = "compact-lock"
# Steps one compaction runs at most before it lets the next write's compaction go on.
_MAX_STEPS = 64
# How long the background compaction waits after a write before it looks (bursts pass first).
_SETTLE_S = 0.2


@dataclass(frozen=True)
class _Built:
    step: Merge
    record: SegmentRecord
    tmp: str
    as_of: int
    sealed: int
    config: str


def plan_now(index: WriteProtocol, policy: Policy = DEFAULT_POLICY, force: bool = False) -> list[Merge]:
    """What the policy would do to the committed segments now."""
    with index.store.transaction():
        return _plan(index, policy, force)


def _plan(index: WriteProtocol, policy: Policy, force: bool) -> list[Merge]:
    store = index.store
    dead = store.dead_counts()
    sizes = [SegmentSize(r.name, r.vectors, r.marked + dead.get(r.name, 0)) for r in store.segments()]
    return plan_merges(sizes, store.tail_count(), policy, force=force)


def compact(
    index: WriteProtocol,
    force: bool = False,
    policy: Policy = DEFAULT_POLICY,
    lock_timeout: float = 60.0,
    seal_only: bool = False,
    wait: bool = True,
) -> list[str]:
    """Run the policy until it has nothing to do (`force`: seal any tail and merge every
    segment into one, as ``searchkit compact``); what each step did. `seal_only` seals the tail and
    stops (a bulk ingest between its chunks). Without `wait`, returns at once if another
    compaction of this index is running."""
    done: list[str] = []
    with _compaction_lock(index, lock_timeout if wait else 0) as locked:
        if not locked:
            return done
        for _ in range(_MAX_STEPS):
            steps = plan_now(index, policy, force)
            if seal_only:
                steps = [s for s in steps if s.seal]
            if not steps:
                break
            said = _run(index, steps[0], policy, lock_timeout)
            if said is None:
                continue  # a rebuild or another process changed the segments: plan again
            done.append(said)
            if seal_only:
                break
    return done


def maintain(index: WriteProtocol, policy: Policy = DEFAULT_POLICY) -> list[str]:
    """After a write outside ``serve``: seal and merge once the tail reaches ``seal_at``."""
    if index.store.tail_count() < policy.seal_at:
        return []
    return compact(index, policy=policy, wait=False)


@contextlib.contextmanager
def _compaction_lock(index: WriteProtocol, timeout: float) -> Iterator[bool]:
    lock = WriteLock(index.path, timeout, name=COMPACT_LOCK)
    if timeout <= 0:
        if not lock.try_acquire():
            yield False
            return
    else:
        lock.acquire()
    try:
        yield True
    finally:
        lock.release()


def _run(index: WriteProtocol, step: Merge, policy: Policy, lock_timeout: float) -> str | None:
    built = _build(index, step, policy)
    if built is None:
        return None
    faults.reach("in-compaction")
    tmp, final = index.path / built.tmp, index.path / built.record.name
    try:
        with index._locked(lock_timeout):
            with index.store.transaction():
                if not _still_current(index, built):
                    return None
                os.replace(tmp, final)
                fsync_dir(index.path)
                faults.reach("compaction-renamed")
                index.store.replace_segments(built.step.names, [built.record], as_of=built.as_of)
            faults.reach("after-compaction")
            index._after_commit()
            index._remove_unlisted()
    finally:
        tmp.unlink(missing_ok=True)
    what = "sealed the tail" if step.seal else f"{step.reason}: {len(step.names)} segment(s)"
    return f"{what} into {built.record.name} ({built.record.vectors} vectors, {built.record.kind})"


def _still_current(index: WriteProtocol, built: _Built) -> bool:
    store = index.store
    names = {r.name for r in store.segments()}
    return (
        set(built.step.names) <= names and store.sealed() == built.sealed and _config(index) == built.config
    )


def _config(index: WriteProtocol) -> str:
    return json.dumps(index.store.config, sort_keys=True)


@dataclass(frozen=True)
class _Sources:
    """What a step's new segment is made of: its generations, its type, the segment it
    extends (if any), and the generation ranges whose live embeddings it adds."""

    first: int
    last: int
    layout: Layout
    base: SegmentRecord | None
    ranges: list[tuple[int, int]]


def _sources(
    step: Merge,
    parts: list[SegmentRecord],
    dead: dict[str, int],
    tail: int,
    sealed: int,
    as_of: int,
    policy: Policy,
    index_layout: Layout,
) -> _Sources:
    """Which type the new segment is (the policy's, for its live size), and the largest
    merged segment of that type as its base: extended, not rebuilt."""
    live = sum(r.vectors - r.marked - dead.get(r.name, 0) for r in parts) + (tail if step.seal else 0)
    kind = policy.kind_for(live, index_layout.kind)
    same = [r for r in parts if r.kind == kind]
    base = max(same, key=lambda r: r.vectors - r.marked) if same else None
    if base is None and layout_for(kind, index_layout).trained:
        kind = "flat"  # an IVF or PQ segment extends one trained with the index's quantiser
    ranges = [(r.first, r.last) for r in parts if r is not base]
    if step.seal:
        ranges.append((sealed + 1, as_of))
    first = parts[0].first if parts else sealed + 1
    last = as_of if step.seal else parts[-1].last
    return _Sources(first, last, layout_for(kind, index_layout), base, ranges)


def _build(index: WriteProtocol, step: Merge, policy: Policy) -> _Built | None:
    """Step 1, in one snapshot: the new segment written to its temporary file."""
    store = index.store
    with store.transaction():
        as_of, sealed, config = store.generation, store.sealed(), _config(index)
        manifest = index.manifest.with_config(store.config)
        records = {r.name: r for r in store.segments()}
        if not set(step.names) <= set(records):
            return None
        parts = [records[name] for name in step.names]
        tail = store.tail_count() if step.seal else 0
        plan = _sources(step, parts, store.dead_counts(), tail, sealed, as_of, policy, manifest.layout)
        metric, dimension = manifest.metric, manifest.model.dimension

        def batches() -> Iterator[tuple[IdArray, Matrix]]:
            for ids, vectors in chain.from_iterable(store.written_between(a, b) for a, b in plan.ranges):
                yield ids, prepare(vectors, metric)

        if plan.base is not None:
            gone = store.dead_between(plan.base.first, plan.base.last)
            vacuum = step.reason == "vacuum"
            base = index.path / plan.base.name
            vectors = extend(base, metric, plan.layout, dimension, gone, batches(), vacuum)
        else:
            vectors = fresh(dimension, metric, plan.layout, batches())
        name = segment_file(as_of)
        vectors.write(index.path / f"{name}.tmp")
    entries = int(vectors.index.ntotal)
    record = SegmentRecord(name, plan.first, plan.last, entries, plan.layout.kind, marked=vectors.dead)
    return _Built(step, record, f"{name}.tmp", as_of, sealed, config)


class Compactor:
    """A background thread that runs the merge policy of one index after its writes
    (``serve``): `nudge` after a write; `close` stops it (a step under way finishes)."""

    def __init__(self, index: WriteProtocol, policy: Policy = DEFAULT_POLICY, interval: float = 1.0) -> None:
        self.index = index  # its own Index, with its own SQLite connection
        self.policy = policy
        self.interval = interval
        self.errors: list[str] = []
        self._tombstones_planned = 0  # the tombstones there were when the policy last looked
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"compactor {index.path.name}", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=120)
        self.index.store.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            # A moment for a burst of writes (and the searches after them) to pass first.
            self._stop.wait(_SETTLE_S)
            if self._stop.is_set():
                break
            try:
                if self._worth_planning():
                    compact(self.index, policy=self.policy, wait=False)
            except Exception as exc:  # a full disk: searches and writes go on; say it once
                message = f"compaction of {self.index.path.name} failed: {exc}"
                if message not in self.errors:  # said once on stderr, as serve says everything
                    self.errors.append(message)
                    print(f"searchkit: {message}", file=sys.stderr, flush=True)
                self._stop.wait(self.interval)

    def _worth_planning(self) -> bool:
        """Cheap tests before the policy's (which reads every tombstone): a full tail, or
        enough new tombstones that a segment may need vacuuming."""
        store = self.index.store
        with store.transaction():
            if store.tail_count() >= self.policy.seal_at:
                return True
            tombstones = store.tombstone_count()
        if tombstones - self._tombstones_planned < self.policy.vacuum_min:
            return False
        self._tombstones_planned = tombstones
        return bool(plan_now(self.index, self.policy))
