"""What `info` shows of an index: its manifest, and from one snapshot its counts, indexed
fields and segments; and the size of each file in its folder."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from searchkit.service.protocol import Snapshot, WriteProtocol

__all__ = ["describe"]


def describe(reader: WriteProtocol) -> dict[str, Any]:
    """The manifest, the live counts, the fields indexed, the segments and the file sizes."""

    def read(snap: Snapshot) -> dict[str, Any]:
        store = snap.store
        return {
            "counts": {
                "items": store.count(),
                "vectors": snap.vectors.ntotal,
                "truncated": store.truncated_count(),
            },
            "fields": store.indexed_fields(),
            "segments": store.segment_listing(),
        }

    seen = reader._synced(read)
    data = reader.manifest.to_json()
    data["path"] = str(reader.path)
    data.update(seen)
    data["sizes"] = _file_sizes(reader.path)
    return data


def _file_sizes(folder: Path) -> dict[str, int]:
    sizes = {}
    for path in sorted(folder.iterdir()):
        # A compaction in another thread or process may remove a merged segment meanwhile.
        with contextlib.suppress(FileNotFoundError):
            if path.is_file():
                sizes[path.name] = path.stat().st_size
    return sizes
