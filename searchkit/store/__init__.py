"""The SQLite store (through sqlite-utils): the source of truth of an index.

It knows rows, never FAISS. Tables:

- ``items``: one row per item. ``id`` is the integer the vector index holds
  (AUTOINCREMENT, so a deleted id is never handed out again); ``key`` is the
  user's id; ``metadata`` is JSON; ``analyzed``: the keyword analysis of a text with
  Chinese, Japanese or Korean characters (analysis.py), NULL for any other text (m008).
- ``embeddings``: each item's vector by its ``id``, the model's float32 values as
  little-endian bytes (raw, not normalised), so that the vectors can be rebuilt
  for any metric without embedding again; apart from ``items`` so that reading
  rows does not read vectors (m005). A trigger deletes it with its item. ``gen``:
  the generation it was written in (m007), by which readers catch up.
- ``segments`` and ``tombstones``: the committed set of segment files, each over a range
  of generations, and the versions that died since (written by triggers), m007
  (catalog.py; the files themselves are segments/).
- ``pending``: rows of an ingest in progress (analysed as they are staged), committed
  batch by batch so that a crashed ingest can reuse their embeddings; ``apply`` moves
  one run's rows into ``items`` in a single transaction.
- ``state``: ``generation``, bumped by every committed change (the manifest
  records the generation it summarises); ``config``, the index's
  model fingerprint, metric and index type as JSON: the manifest can always be
  rebuilt from it; ``items`` and ``truncated``, the counts (m004); ``analysis``, the
  keyword analysis the index holds, which queries are analysed with (m008).
- ``items_fts``: an FTS5 index for keyword search (BM25) over ``items_fts_source``, a view
  of each item's ``coalesce(analyzed, text)``, kept in step with ``items`` by triggers
  (migrations.py: FULLTEXT).
- ``fields`` and ``field_values``: field indexes, the values of the metadata fields named in
  ``fields`` by kind (string, number, boolean), one row per item and kind, which filters on
  them read instead of every row's JSON; kept in step by triggers (migrations.py, fields.py).
- ``_searchkit_migrations``: the numbered schema migrations applied (migrations.py).

Modules: ``database`` (`Store`: the reads and writes), ``staging`` (``pending`` and its
commit into ``items``), ``catalog`` (the segment list and the tombstones), ``opening``
(connecting and migrating), ``fulltext`` (keyword search; the analysis itself is
searchkit/analysis.py), ``fields`` (field indexes), ``rows`` (the row values), ``binding``
(lists bound to SQL in chunks), ``damage`` (a damaged file reported as CorruptIndexError).
"""

from searchkit.store.damage import guarded as guarded
from searchkit.store.database import Store
from searchkit.store.fulltext import fts_query as fts_query
from searchkit.store.opening import writable
from searchkit.store.rows import PendingRow, RowState, StoredItem, dump_metadata

__all__ = ["PendingRow", "RowState", "Store", "StoredItem", "dump_metadata", "writable"]
