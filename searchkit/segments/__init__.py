"""Segments: an index's vectors as immutable FAISS files plus an in-memory tail.

Three parts with three names, as Lucene and Qdrant keep them apart (STYLE.md §11):

- what the committed set of segments is: ``store/catalog.py``, in SQLite (the segment
  list, the generations each covers, the tombstones);
- the policy that decides what to seal, merge and vacuum: ``policy.py``, a pure function
  of segment sizes;
- the runner that builds and commits: ``service/compaction.py``, with ``build.py`` here
  for the FAISS side of it.

What a reader searches is a ``view.py`` `SegmentView`. This package knows FAISS files,
never SQL: what it needs from the store arrives as arrays.
"""
