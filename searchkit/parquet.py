"""Parquet in and out: records read batch by batch, an export written row group by row group.

pyarrow is an optional extra (``searchkit[parquet]``), imported only inside the functions
that need it, so that ``--help`` and every other command start without it. This module knows
pyarrow, not SQL or FAISS: it reads `Record`s by the rules of readers.py (the text field(s),
the id field, an ``embedding`` column as the item's own vector, every other column kept as
metadata) and writes the rows that `Index.export_raw` gives.

An export has the columns ``id`` and ``text`` (strings), ``metadata`` (the item's metadata as
a JSON object) and, with vectors, ``embedding``: ``fixed_size_list<float32>[dimension]``, the
vectors exactly as the index stores them. Its schema metadata holds ``searchkit.fingerprint``
(the model's fingerprint as JSON), ``searchkit.metric``, ``searchkit.dimension`` and
``searchkit.version``. The names are plain: what Milvus, Qdrant and LanceDB bulk loaders take.
Reading it back unpacks ``metadata``, so that an export imports as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from searchkit import __version__
from searchkit.errors import CorruptIndexError, InputError, StorageError, UsageError
from searchkit.readers.fields import EMBEDDING_FIELD, record_of, text_fields
from searchkit.types import Record

if TYPE_CHECKING:
    from searchkit.service import Index

__all__ = ["GROUP_ROWS", "METADATA_FIELD", "READ_ROWS", "atomic_output", "read_records", "write_export"]

# Rows per row group written, and per record batch read: what an export or a read holds at once.
GROUP_ROWS = 10_000
READ_ROWS = 1_000
# The column of an export that holds each item's metadata as one JSON object.
METADATA_FIELD = "metadata"

Row = tuple[str, str, dict[str, Any], bytes]


def _pyarrow(doing: str) -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise UsageError(f"{doing} Parquet needs pyarrow: pip install 'searchkit[parquet]'") from None
    return pyarrow


# --- reading -------------------------------------------------------------------


def read_records(
    name: str,
    stream: IO[bytes],
    text_field: str = "text",
    id_field: str = "id",
    batch_size: int = READ_ROWS,
) -> Iterator[Record]:
    """The records of the Parquet file `stream` (`name` in errors), `batch_size` rows at a
    time: its rows are ``NAME row N`` in errors; a row without an id has key "" (readers key it)."""
    pa = _pyarrow("reading")
    if not stream.seekable():
        raise InputError(
            f"{name}: Parquet cannot be read from a pipe (its footer, at the end, says where the rows are); "
            "pass the file's path"
        )
    try:
        source = pa.parquet.ParquetFile(stream)
    except (pa.ArrowException, OSError):
        raise InputError(
            f"{name}: not a Parquet file (no Parquet footer); is it damaged, or another format?"
        ) from None
    _check_columns(name, source.schema_arrow, text_field, pa)
    number = 0
    for batch in _batches(name, source, batch_size, pa):
        for obj in _rows(batch, pa):
            number += 1
            yield _record(f"{name} row {number}", obj, text_field, id_field, "")


def _check_columns(name: str, schema: Any, text_field: str, pa: Any) -> None:
    names = list(schema.names)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"{name}: two columns are named {twice[0]!r}; rename one")
    missing = [f for f in text_fields(text_field) if f not in names]
    if missing:
        raise InputError(
            f"{name}: no {missing[0]!r} column (columns: {', '.join(names)}); "
            "name the text column with --text-field"
        )
    for field in schema:
        if field.name != EMBEDDING_FIELD and not _plain(field.type, pa):
            raise InputError(
                f"{name}: column {field.name!r} is {field.type}, which searchkit does not read "
                "(it reads strings, numbers, booleans, and lists or structs of them); cast it or drop it"
            )


def _plain(kind: Any, pa: Any) -> bool:
    """Whether a column's values are JSON as they come (a timestamp or bytes are not)."""
    types = pa.types
    if types.is_dictionary(kind):
        return _plain(kind.value_type, pa)
    if _is_list(kind, pa):
        return _plain(kind.value_type, pa)
    if types.is_struct(kind):
        return all(_plain(kind.field(i).type, pa) for i in range(kind.num_fields))
    return bool(
        types.is_null(kind)
        or types.is_boolean(kind)
        or types.is_integer(kind)
        or kind in (pa.float32(), pa.float64())
        or types.is_string(kind)
        or types.is_large_string(kind)
    )


def _is_list(kind: Any, pa: Any) -> bool:
    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind))


def _batches(name: str, source: Any, batch_size: int, pa: Any) -> Iterator[Any]:
    batches = source.iter_batches(batch_size=batch_size)
    done = 0
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(
                f"{name} after row {done}: cannot be read ({_reason(exc)}); is the file damaged?"
            ) from None
        if batch is None:
            return
        done += batch.num_rows
        yield batch


def _rows(batch: Any, pa: Any) -> Iterator[dict[str, Any]]:
    columns = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        if field.name == EMBEDDING_FIELD and _is_list(field.type, pa):
            # One NumPy array a row (None where null): a vector is never made Python floats.
            columns.append(column.to_numpy(zero_copy_only=False))
        else:
            columns.append(column.to_pylist())
    names = list(batch.schema.names)
    for values in zip(*columns, strict=True):
        yield dict(zip(names, values, strict=True))


def _record(where: str, obj: dict[str, Any], text_field: str, id_field: str, key: str) -> Record:
    """A row as readers.py makes a JSONL object's record; a ``metadata`` column holding a JSON
    object (as an export writes it) is that item's metadata, merged after the other columns."""
    packed = None
    if METADATA_FIELD in obj and METADATA_FIELD not in (*text_fields(text_field), id_field):
        packed = _unpacked(obj[METADATA_FIELD])
        if packed is not None or obj[METADATA_FIELD] is None:
            del obj[METADATA_FIELD]
    record = record_of(where, obj, text_field, id_field, key)
    if not packed:
        return record
    return replace(record, metadata={**record.metadata, **packed})


def _unpacked(value: Any) -> dict[str, Any] | None:
    """A metadata value's JSON object (a struct column's is one already); None for any other value."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value.lstrip().startswith("{"):
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


# --- writing -------------------------------------------------------------------


def write_export(index: Index, target: Path, vectors: bool = False, group_rows: int = GROUP_ROWS) -> int:
    """Write every item of `index` to the Parquet file `target`, `group_rows` rows per row
    group, through a temporary file renamed at the end; returns how many rows it wrote."""
    pa = _pyarrow("writing")
    dimension = index.manifest.model.dimension
    schema = _schema(index, vectors, pa)
    count = 0
    with atomic_output(target) as tmp, pa.parquet.ParquetWriter(str(tmp), schema) as writer:
        for group in _groups(index.export_raw(), group_rows):
            writer.write_table(_table(group, schema, dimension, vectors, pa), row_group_size=group_rows)
            count += len(group)
    return count


def _schema(index: Index, vectors: bool, pa: Any) -> Any:
    manifest = index.manifest
    fields = [("id", pa.string()), ("text", pa.string()), (METADATA_FIELD, pa.string())]
    if vectors:
        fields.append((EMBEDDING_FIELD, pa.list_(pa.float32(), manifest.model.dimension)))
    described = {
        "searchkit.fingerprint": json.dumps(manifest.model.to_json(), ensure_ascii=False),
        "searchkit.metric": manifest.metric.value,
        "searchkit.dimension": str(manifest.model.dimension),
        "searchkit.version": __version__,
    }
    return pa.schema(fields, metadata=described)


def _groups(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while group := list(islice(it, size)):
        yield group


def _table(group: list[Row], schema: Any, dimension: int, vectors: bool, pa: Any) -> Any:
    keys = [row[0] for row in group]
    arrays = [
        pa.array(keys, pa.string()),
        pa.array([row[1] for row in group], pa.string()),
        pa.array([json.dumps(row[2], ensure_ascii=False) for row in group], pa.string()),
    ]
    if vectors:
        blobs = [row[3] for row in group]
        bad = next((key for key, blob in zip(keys, blobs, strict=True) if len(blob) != 4 * dimension), None)
        if bad is not None:
            raise CorruptIndexError(
                f"the stored embedding of {bad!r} is not {dimension} float32 values; "
                "run searchkit check --repair"
            )
        flat = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32, copy=False)
        arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(flat), dimension))
    return pa.Table.from_arrays(arrays, schema=schema)


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """A temporary file beside `target` to write, renamed to `target` once the block has
    written it whole; on any failure it is removed, so `target` is never half a file (an old
    one is left as it was). An OSError is one line: InputError for a bad path, else StorageError."""
    if target.is_dir():
        raise InputError(f"{target}: is a folder; name the file to write")
    try:
        handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(handle)
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"{target.parent}: no such folder; create it, or write elsewhere") from None
    except OSError as exc:
        raise StorageError(f"cannot write {target}: {_reason(exc)}") from exc
    tmp = Path(name)
    try:
        yield tmp
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.chmod(0o644)  # mkstemp makes it private; an export is an ordinary file
        os.replace(tmp, target)
    except OSError as exc:
        remedy = "free disk space or fix permissions, then export again"
        raise StorageError(f"cannot write {target}: {_reason(exc)}; {remedy}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _reason(exc: Exception) -> str:
    """An error's first line (pyarrow's messages may run on)."""
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
