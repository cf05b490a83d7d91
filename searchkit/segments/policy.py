"""The merge policy: which segments to seal, merge or vacuum. A pure planner (as Qdrant's
optimizers and Lucene's ``TieredMergePolicy.findMerges``): it sees sizes only and returns
plans; compaction.py (in service/) runs them and commits.

Size-tiered, over adjacent generation ranges (a merged segment must cover one range):

- **seal**: the tail (embeddings not in a segment) becomes a segment once it holds
  `seal_at` vectors (or on request: `searchkit compact` seals any tail);
- **merge**: segments are put in tiers by live size, a tier `tier_factor` times the one
  below, from `floor`; a run of `per_tier` adjacent segments of one tier (up to
  `max_at_once`) merges into one. With per_tier 2, each tier holds one segment between
  merges: a million vectors sit in at most one segment per tier (1k, 10k, 100k, 1M), so a
  search fans out to at most five parts (the tail included) and a vector is rewritten
  about once per tier;
- **compact** (`force`, ``searchkit compact``): the tail sealed and everything merged into
  one segment, as Lucene's ``forceMerge(1)``; a merged HNSW graph keeps its base's dead nodes
  (never returned) until they are `deleted_share` of it, however few;
- **vacuum**: a segment whose dead share reaches `deleted_share` (0.2: Qdrant's
  ``deleted_threshold``, Milvus's compaction threshold) is rewritten without them, once it
  has `vacuum_min` dead vectors (Qdrant's ``vacuum_min_vector_number``).

Segments below `index_at` vectors (2,000) are flat (exact, as Qdrant keeps small segments
unindexed below ``indexing_threshold_kb``); from it on, the index's own type. A flat part
costs a scan of its vectors per query (a 9,000-vector flat segment took 1 ms, six times the
search of a 1M HNSW graph), so they stay small; a 2,000-vector graph builds in a fraction of
a second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Merge", "Policy", "SegmentSize", "plan_merges"]


@dataclass(frozen=True)
class SegmentSize:
    """What the policy knows of a segment: its name, entries and dead entries."""

    name: str
    vectors: int
    dead: int = 0

    @property
    def live(self) -> int:
        return self.vectors - self.dead


@dataclass(frozen=True)
class Policy:
    seal_at: int = 1_000
    floor: int = 1_000
    tier_factor: int = 10
    per_tier: int = 2
    max_at_once: int = 10
    deleted_share: float = 0.2
    vacuum_min: int = 1_000
    index_at: int = 2_000

    def tier(self, live: int) -> int:
        return math.floor(math.log(max(live, self.floor) / self.floor, self.tier_factor) + 1e-9)

    def kind_for(self, live: int, index_kind: str) -> str:
        """The FAISS type of a segment of `live` vectors in an index of `index_kind`."""
        return index_kind if live >= self.index_at else "flat"


@dataclass(frozen=True)
class Merge:
    """One step: the adjacent segments `names` (oldest first) rewritten as one, with the
    tail appended when `seal`. `names` empty and `seal`: the tail alone becomes a segment."""

    names: tuple[str, ...]
    seal: bool = False
    reason: str = "merge"


DEFAULT_POLICY = Policy()


def plan_merges(
    segments: Sequence[SegmentSize], tail: int, policy: Policy = DEFAULT_POLICY, force: bool = False
) -> list[Merge]:
    """The steps to run now, in order (each plans over the result of the one before it is
    not known here: run the first, then plan again). `force` is ``searchkit compact``, as
    Lucene's ``forceMerge(1)``: any tail sealed, every segment merged into one, no dead
    vector left."""
    steps: list[Merge] = []
    if tail and (tail >= policy.seal_at or force):
        steps.append(Merge((), seal=True, reason="seal"))
    if force:
        if len(segments) > 1:
            return [*steps, Merge(tuple(s.name for s in segments), reason="all into one")]
        # An HNSW merge keeps its base's dead nodes (marked, never returned); they go once
        # they are the share a vacuum waits for, however few.
        return steps + [
            Merge((s.name,), reason="vacuum")
            for s in segments
            if s.vectors and (s.live == 0 or s.dead / s.vectors >= policy.deleted_share)
        ]
    steps += _tier_merges(segments, policy)
    merged = {name for step in steps for name in step.names}
    for segment in segments:
        if segment.name in merged or not segment.vectors:
            continue
        dead_share = segment.dead / segment.vectors
        if (
            segment.live == 0
            or (dead_share >= policy.deleted_share and segment.dead >= policy.vacuum_min)
            or (force and segment.dead)
        ):
            steps.append(Merge((segment.name,), reason="vacuum"))
    return steps


def _tier_merges(segments: Sequence[SegmentSize], policy: Policy) -> list[Merge]:
    """Runs of adjacent segments of one tier, `per_tier` or more long."""
    steps: list[Merge] = []
    run: list[SegmentSize] = []

    def close() -> None:
        while len(run) >= policy.per_tier:
            taken = run[: policy.max_at_once]
            del run[: policy.max_at_once]
            if len(taken) >= policy.per_tier:
                steps.append(Merge(tuple(s.name for s in taken), reason=f"tier {policy.tier(taken[0].live)}"))
        run.clear()

    for segment in segments:
        if run and policy.tier(segment.live) != policy.tier(run[0].live):
            close()
        run.append(segment)
    close()
    return steps
