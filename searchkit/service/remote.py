"""An ingest whose texts are embedded on a Ray cluster (cluster.py), for `Index.add(ray=...)`.

The index's own model, named so that every worker can load it (the bundled model by name,
a folder by its path) and checked there against the index's fingerprint; the writer's
progress told as vectors come back, and the rest of each window's items (those unchanged,
or whose vectors were known) when it is staged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from searchkit import cluster
from searchkit.service.model_check import expected_model, model_to_load

if TYPE_CHECKING:
    from searchkit.service.index import Index

__all__ = ["RayIngest", "ray_ingest"]


@dataclass
class RayIngest:
    model: cluster.RayEmbedder
    started: bool  # this ingest started Ray here, and stops it
    on_progress: Callable[[int], None] | None
    told: int = 0  # items told during this window

    def embedded(self, texts: int) -> None:
        if self.on_progress is not None:
            self.on_progress(texts)
            self.told += texts

    def staged(self, items: int) -> None:
        """A window's `items` are staged: tell what embedding did not."""
        if self.on_progress is not None:
            self.on_progress(max(0, items - self.told))
        self.told = 0

    def close(self) -> None:
        if self.started:
            cluster.shutdown()


def ray_ingest(
    index: Index, ray: str | cluster.RayOptions, on_progress: Callable[[int], None] | None
) -> RayIngest:
    """Join (or start) the cluster and make the ingest's model for it."""
    options = ray if isinstance(ray, cluster.RayOptions) else cluster.RayOptions(address=ray or cluster.LOCAL)
    expected = expected_model(index.manifest.model)
    model = index._model or model_to_load(index.path, expected)
    family = None if expected.backend == "torch" else expected.backend
    started = cluster.connect(options.address)
    ingest = RayIngest(
        cluster.RayEmbedder(model, index._backend or family, expected, options), started, on_progress
    )
    ingest.model.on_embedded = ingest.embedded
    return ingest
