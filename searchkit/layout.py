"""Index layouts: which FAISS index type, with which parameters, for a metric and a count.

Pure planning, no FAISS: `plan` validates every combination before FAISS sees it (some
abort the whole process), and decides the parameters it leaves to searchkit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from searchkit.errors import UsageError
from searchkit.types import Metric

__all__ = ["AUTO_ANN_THRESHOLD", "INDEX_TYPES", "Layout", "plan"]

INDEX_TYPES = ("auto", "flat", "hnsw", "ivf", "ivf-pq", "sq8", "hnsw-sq8")
# Scalar and product quantisers compute only L2 and inner products; FAISS aborts the
# whole process (not an exception) for some other combinations, so refuse them here.
_METRICS = {
    "flat": set(Metric),
    "hnsw": set(Metric),
    "ivf": set(Metric),
    "ivf-pq": {Metric.COSINE, Metric.DOT, Metric.EUCLIDEAN},
    "sq8": {Metric.COSINE, Metric.DOT, Metric.EUCLIDEAN},
    "hnsw-sq8": {Metric.COSINE, Metric.DOT, Metric.EUCLIDEAN},
}
_PARAMS = {
    "flat": set(),
    "hnsw": {"m", "ef_construction", "ef_search"},
    "ivf": {"nlist", "nprobe"},
    "ivf-pq": {"nlist", "nprobe", "pq_m"},
    "sq8": set(),
    "hnsw-sq8": {"m", "ef_construction", "ef_search"},
}
# Below this many items exact search is fast enough: `auto` stays flat.
AUTO_ANN_THRESHOLD = 50_000
# k-means wants at least 39 points per centroid (FAISS warns below that, on stderr).
_POINTS_PER_CENTROID = 39
# The sample IVF, PQ and SQ are trained on: up to this many stored embeddings (or 39 per
# list, where there are more lists). Below _MIN_POINTS a trained type stays flat.
_TRAINING_FLOOR = 50_000
_MIN_POINTS = {"ivf": 2 * _POINTS_PER_CENTROID, "ivf-pq": 256 * _POINTS_PER_CENTROID}


@dataclass(frozen=True)
class Layout:
    """A concrete index type with every parameter decided."""

    kind: str
    params: dict[str, int]

    def factory(self, dimension: int) -> str:
        p = self.params
        body = {
            "flat": "Flat",
            "hnsw": f"HNSW{p.get('m', 32)}",
            "ivf": f"IVF{p.get('nlist', 1)},Flat",
            # "np": no polysemous training, which searchkit never uses (it re-scores
            # candidates exactly) and which made training five times slower.
            "ivf-pq": f"IVF{p.get('nlist', 1)},PQ{p.get('pq_m', 8)}np",
            "sq8": "SQ8",
            "hnsw-sq8": f"HNSW{p.get('m', 32)},SQ8",
        }[self.kind]
        return f"IDMap2,{body}"

    @property
    def trained(self) -> bool:
        """Whether FAISS must train it (IVF's lists, PQ's codebooks, SQ's ranges) before adding."""
        return self.kind in ("ivf", "ivf-pq", "sq8", "hnsw-sq8")

    @property
    def overfetch(self) -> int:
        """How many candidates per wanted hit to take from FAISS: the service re-scores
        them exactly from the stored embeddings, which wins back what quantisation loses."""
        return {"flat": 1, "hnsw": 2, "ivf": 2}.get(self.kind, 4)

    @property
    def training_size(self) -> int:
        """How many vectors to train the quantisers (IVF, PQ, SQ) on: up to 50,000, or
        more to give every IVF centroid its 39 points (k-means wants that many)."""
        return max(_TRAINING_FLOOR, _POINTS_PER_CENTROID * self.params.get("nlist", 0))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": dict(self.params)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Layout:
        return cls(str(data["kind"]), {str(k): int(v) for k, v in data.get("params", {}).items()})


def plan(
    index_type: str,
    metric: Metric,
    count: int,
    dimension: int,
    overrides: dict[str, int] | None = None,
) -> Layout:
    """Decide the concrete layout for `count` vectors: validated before FAISS sees it."""
    if index_type not in INDEX_TYPES:
        raise UsageError(f"unknown index type {index_type!r}: choose one of {', '.join(INDEX_TYPES)}")
    kind = index_type
    if kind == "auto":
        kind = "flat" if count < AUTO_ANN_THRESHOLD else "hnsw"
    if metric not in _METRICS[kind]:
        allowed = ", ".join(t for t in INDEX_TYPES[1:] if metric in _METRICS[t])
        raise UsageError(
            f"index type {kind} cannot use the {metric.value} metric (FAISS quantisers measure only "
            f"L2 and inner products); for {metric.value} choose one of {allowed}"
        )
    overrides = dict(overrides or {})
    unknown = set(overrides) - _PARAMS[kind]
    if unknown and index_type != "auto":
        names = ", ".join(sorted(_PARAMS[kind])) or "none"
        raise UsageError(f"unknown option(s) {', '.join(sorted(unknown))} for {kind}: it takes {names}")
    params = _defaults(kind, count, dimension)
    params.update({k: v for k, v in overrides.items() if k in _PARAMS[kind]})
    for name, value in params.items():
        if value <= 0:
            raise UsageError(f"index option {name} must be a positive integer, not {value}")
    if kind == "ivf-pq" and dimension % params["pq_m"]:
        raise UsageError(f"pq_m must divide the dimension {dimension}; {params['pq_m']} does not")
    if count < _MIN_POINTS.get(kind, 0):
        return Layout("flat", {})
    return Layout(kind, params)


def _defaults(kind: str, count: int, dimension: int) -> dict[str, int]:
    if kind in ("hnsw", "hnsw-sq8"):
        # ef_construction 200 (hnswlib's default; FAISS's is 40): at 80, documents upserted
        # into a 100k graph in batches of 20, in tight groups of near-duplicates, were missed
        # by searches of their own text (4-8 of 200 in 6 of 7 trials; none of 6 at 200).
        # A build costs 3x (100k x 384: 9 s -> 29 s), small beside embedding them.
        return {"m": 32, "ef_construction": 200, "ef_search": 128}
    if kind in ("ivf", "ivf-pq"):
        nlist = int(min(4 * math.sqrt(max(count, 1)), max(1, count // _POINTS_PER_CENTROID)))
        nlist = max(1, nlist)
        # A quarter of the lists, between 16 and 64: recall@10 about 0.95 on sentence embeddings.
        params = {"nlist": nlist, "nprobe": min(nlist, max(16, min(64, nlist // 4)))}
        if kind == "ivf-pq":
            # 8-dimensional sub-vectors of 8 bits: 48 bytes a vector for 384 dimensions.
            params["pq_m"] = next(
                m for m in (dimension // 8, dimension // 4, dimension // 2, 1) if m and dimension % m == 0
            )
        return params
    return {}
