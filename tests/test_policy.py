"""The merge policy, as Qdrant tests its optimizers: a table of segment sizes and the plans expected."""

from __future__ import annotations

import pytest

from searchkit.segments.policy import Merge, Policy, SegmentSize, plan_merges

P = Policy(seal_at=1_000, floor=1_000, tier_factor=10, per_tier=2, max_at_once=10, vacuum_min=1_000)


def sizes(*spec: int | tuple[int, int]) -> list[SegmentSize]:
    """Segments s0, s1, ... of the given sizes (or (size, dead))."""
    out = []
    for n, item in enumerate(spec):
        vectors, dead = item if isinstance(item, tuple) else (item, 0)
        out.append(SegmentSize(f"s{n}", vectors, dead))
    return out


TABLE: list[tuple[str, list[SegmentSize], int, list[Merge]]] = [
    ("nothing to do", sizes(), 0, []),
    ("a small tail waits", sizes(5_000), 999, []),
    ("a full tail is sealed", sizes(), 1_000, [Merge((), seal=True, reason="seal")]),
    ("one segment per tier is the steady state", sizes(900_000, 50_000, 5_000), 10, []),
    ("two of tier 0 merge", sizes(900_000, 3_000, 1_000), 0, [Merge(("s1", "s2"), reason="tier 0")]),
    ("two of tier 1 merge", sizes(20_000, 40_000), 0, [Merge(("s0", "s1"), reason="tier 1")]),
    (
        "runs are adjacent only",
        sizes(2_000, 50_000, 2_000),
        0,
        [],
    ),
    (
        "at most max_at_once at a time",
        sizes(*([1_000] * 12)),
        0,
        [
            Merge(tuple(f"s{i}" for i in range(10)), reason="tier 0"),
            Merge(("s10", "s11"), reason="tier 0"),
        ],
    ),
    ("a fifth dead: vacuum", sizes((10_000, 2_000)), 0, [Merge(("s0",), reason="vacuum")]),
    ("under a fifth dead: kept", sizes((10_000, 1_999)), 0, []),
    ("a fifth dead but too few to bother", sizes((2_000, 900)), 0, []),
    ("all dead: dropped whatever its size", sizes((50, 50)), 0, [Merge(("s0",), reason="vacuum")]),
    (
        "a merge takes its dead along (no vacuum planned too)",
        sizes((5_000, 4_000), 2_000),
        0,
        [Merge(("s0", "s1"), reason="tier 0")],
    ),
    (
        "dead vectors lower the tier (live size counts)",
        sizes((30_000, 25_000), 2_000),
        0,
        [Merge(("s0", "s1"), reason="tier 0")],
    ),
    (
        "seal first, then merges",
        sizes(1_000, 1_000),
        1_500,
        [Merge((), seal=True, reason="seal"), Merge(("s0", "s1"), reason="tier 0")],
    ),
]


@pytest.mark.parametrize(("segments", "tail", "expected"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE])
def test_plans(segments: list[SegmentSize], tail: int, expected: list[Merge]) -> None:
    assert plan_merges(segments, tail, P) == expected


def test_forced_compaction_seals_any_tail_and_merges_everything_into_one() -> None:
    plans = plan_merges(sizes(900_000, (20_000, 5), 3_000), 3, P, force=True)
    assert plans == [Merge((), seal=True, reason="seal"), Merge(("s0", "s1", "s2"), reason="all into one")]
    assert plan_merges(sizes((10_000, 2_000)), 0, P, force=True) == [Merge(("s0",), reason="vacuum")]
    assert plan_merges(sizes((1_000, 200)), 0, P, force=True) == [Merge(("s0",), reason="vacuum")]  # few
    assert plan_merges(sizes((900_000, 5)), 0, P, force=True) == []  # a graph's few dead nodes stay
    assert plan_merges(sizes(900_000), 0, P, force=True) == []


@pytest.mark.parametrize(
    ("live", "tier"),
    [(0, 0), (999, 0), (1_000, 0), (9_999, 0), (10_000, 1), (99_999, 1), (100_000, 2), (1_000_000, 3)],
)
def test_tiers(live: int, tier: int) -> None:
    assert P.tier(live) == tier


def test_small_segments_are_flat() -> None:
    assert P.kind_for(1_999, "hnsw") == "flat"
    assert P.kind_for(2_000, "hnsw") == "hnsw"
    assert P.kind_for(5, "flat") == "flat"


def test_the_policy_bounds_the_segments_a_million_vectors_need() -> None:
    """Sealing 1,000 at a time up to a million, running every plan: at most one segment
    per tier at any time, and each vector rewritten a bounded number of times."""
    segments: list[SegmentSize] = []
    written = 0
    most = 0
    for n in range(1_000):
        segments.append(SegmentSize(f"seal{n}", 1_000))
        written += 1_000
        while plans := plan_merges(segments, 0, P):
            step = plans[0]
            at = [s.name for s in segments].index(step.names[0])
            merged = SegmentSize(f"m{n}-{at}", sum(s.live for s in segments[at : at + len(step.names)]))
            segments[at : at + len(step.names)] = [merged]
            written += merged.vectors
        most = max(most, len(segments))
    assert sum(s.vectors for s in segments) == 1_000_000
    assert most <= 4  # tiers 0-3, one segment each
    assert written / 1_000_000 <= 25  # about 5-6 rewrites per tier, over 3-4 tiers
