"""Making a segment's FAISS index: from vectors, or by extending a loaded one (as Lucene's
HNSW merge starts from the largest graph: ``IncrementalHnswGraphMerger``).

Knows FAISS files, not SQL: the vectors arrive as batches of (ids, prepared vectors).
FAISS cannot merge two HNSW graphs (``check_compatible_for_merge() not implemented``) nor
unlink a node, so a merge loads the largest segment of the target type unmapped, marks its
dead versions removed (-1 in its id map; flat codes are removed outright) and adds the
other segments' live vectors into it; a vacuum rebuilds it without them. IVF and PQ keep
the quantiser they were trained with.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from searchkit.layout import Layout
from searchkit.metrics import Matrix
from searchkit.types import Metric
from searchkit.vectors import IdArray, VectorIndex

__all__ = ["FLAT", "extend", "fresh", "layout_for"]

FLAT = Layout("flat", {})
Batches = Iterable[tuple[IdArray, Matrix]]


def layout_for(kind: str, index_layout: Layout) -> Layout:
    """A segment of `kind` in an index whose layout is `index_layout`."""
    return index_layout if kind == index_layout.kind else FLAT


def fresh(dimension: int, metric: Metric, layout: Layout, batches: Batches) -> VectorIndex:
    """A new index of `layout` (one that needs no training) holding `batches`."""
    vectors = VectorIndex.create(dimension, metric, layout)
    if vectors.needs_training:
        raise ValueError(f"a {layout.kind} segment needs a trained base to extend")
    for ids, batch in batches:
        vectors.add(ids, batch, replace=False)
    return vectors


def extend(
    path: Path, metric: Metric, layout: Layout, dimension: int, dead: IdArray, batches: Batches, vacuum: bool
) -> VectorIndex:
    """The segment at `path`, loaded unmapped, without its `dead` versions and with
    `batches` added; with `vacuum`, rebuilt without the removed entries."""
    vectors = VectorIndex.load(path, metric, layout, dimension, mapped=False)
    vectors.remove(dead)
    if vacuum:
        vectors.compact()
    for ids, batch in batches:
        vectors.add(ids, batch, replace=False)
    return vectors
