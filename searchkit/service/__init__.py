"""The service layer: the `Index` facade, ingest, and consistency checks.

Only this package joins ids (FAISS), vectors and rows (SQLite), and it owns the
order of writes (see protocol.py).
"""

from searchkit.service.check import check
from searchkit.service.creation import build
from searchkit.service.index import Index
from searchkit.service.ingest import content_hash

__all__ = ["Index", "build", "check", "content_hash"]
