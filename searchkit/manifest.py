"""The index manifest (``manifest.json``): what an index is, in one small JSON file.

It records the format version, the model fingerprint, the metric, the FAISS index
description, counts, times, the searchkit version, and the store generation that
the FAISS file reflects. It is written last in every write, atomically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from searchkit import __version__
from searchkit.errors import CorruptIndexError, IndexNotFoundError
from searchkit.layout import Layout, plan
from searchkit.types import Fingerprint, Metric

__all__ = ["FORMAT_VERSION", "MANIFEST", "Manifest", "now"]

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Manifest:
    model: Fingerprint
    metric: Metric
    index_type: str  # as asked: "auto" or a concrete type
    layout: Layout  # what it is now: the concrete type and every parameter
    index_options: dict[str, int] = field(default_factory=dict)  # the user's overrides
    # How many items the layout was planned (and IVF/PQ trained) for; 0 in indexes made
    # before it was recorded. A write that takes the count far from it plans again.
    trained_at: int = 0
    generation: int = 0
    items: int = 0
    truncated: int = 0
    created: str = field(default_factory=now)
    updated: str = field(default_factory=now)
    searchkit_version: str = __version__
    format_version: int = FORMAT_VERSION

    def config(self) -> dict[str, Any]:
        """What the store keeps as its ``config``: everything but counts and times."""
        return {
            "model": self.model.to_json(),
            "metric": self.metric.value,
            "index_type": self.index_type,
            "index_options": dict(self.index_options),
            "layout": self.layout.to_json(),
            "trained_at": self.trained_at,
        }

    def config_with(
        self,
        metric: str | Metric | None = None,
        index_type: str | None = None,
        index_options: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """This configuration with another metric, index type (its options reset) or
        options, validated before FAISS sees it (a rebuild's)."""
        config = self.config()
        if metric is not None:
            config["metric"] = Metric.parse(metric).value
        if index_type is not None:
            config["index_type"] = index_type
            config["index_options"] = {}
        if index_options is not None:
            config["index_options"] = dict(index_options)
        wanted = Manifest.from_config(config)
        plan(wanted.index_type, wanted.metric, 0, wanted.model.dimension, wanted.index_options)
        return config

    @property
    def faiss(self) -> str:
        """The FAISS factory string of the current layout."""
        return self.layout.factory(self.model.dimension)

    def with_config(self, config: dict[str, Any]) -> Manifest:
        """This manifest with the store's configuration (the store wins on disagreement)."""
        return replace(self, **_config_fields(config))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Manifest:
        return cls(**_config_fields(config))

    def advance(self, generation: int, items: int, truncated: int) -> Manifest:
        return replace(
            self,
            generation=generation,
            items=items,
            truncated=truncated,
            updated=now(),
            searchkit_version=__version__,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "searchkit-index",
            "format_version": self.format_version,
            "searchkit_version": self.searchkit_version,
            "model": self.model.to_json(),
            "metric": self.metric.value,
            "index": {
                "type": self.index_type,
                "resolved": self.layout.kind,
                "params": dict(self.layout.params),
                "options": dict(self.index_options),
                "faiss": self.faiss,
                "trained_at": self.trained_at,
            },
            "counts": {"items": self.items, "truncated": self.truncated},
            "generation": self.generation,
            "created": self.created,
            "updated": self.updated,
        }

    def write(self, folder: Path) -> None:
        """Write atomically: temp file, fsync, rename."""
        from searchkit import faults
        from searchkit.vectors import fsync_dir

        path = folder / MANIFEST
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        faults.reach("in-manifest")
        os.replace(tmp, path)
        fsync_dir(folder)

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        if not folder.is_dir():
            raise IndexNotFoundError(
                f"{folder}: no index here; create one with searchkit index {folder} FILE"
            )
        if not path.exists():
            raise IndexNotFoundError(f"{folder}: not a searchkit index (no {MANIFEST})")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format_version", 0) > FORMAT_VERSION:
                raise CorruptIndexError(
                    f"{folder}: index format {data['format_version']} is newer than this "
                    f"searchkit ({__version__}) reads; upgrade searchkit"
                )
            index = data["index"]
            return cls(
                model=Fingerprint.from_json(data["model"]),
                metric=Metric.parse(data["metric"]),
                index_type=str(index["type"]),
                layout=Layout(str(index["resolved"]), {k: int(v) for k, v in index["params"].items()}),
                index_options={k: int(v) for k, v in index.get("options", {}).items()},
                trained_at=int(index.get("trained_at", 0)),
                generation=int(data["generation"]),
                items=int(data["counts"]["items"]),
                truncated=int(data["counts"].get("truncated", 0)),
                created=str(data["created"]),
                updated=str(data["updated"]),
                searchkit_version=str(data.get("searchkit_version", "")),
                format_version=int(data["format_version"]),
            )
        except CorruptIndexError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptIndexError(
                f"{path}: the manifest is damaged ({type(exc).__name__}: {exc}); run searchkit check --repair"
            ) from None


def _config_fields(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": Fingerprint.from_json(config["model"]),
        "metric": Metric.parse(config["metric"]),
        "index_type": str(config["index_type"]),
        "layout": Layout.from_json(config["layout"]),
        "index_options": {str(k): int(v) for k, v in config.get("index_options", {}).items()},
        "trained_at": int(config.get("trained_at", 0)),
    }
