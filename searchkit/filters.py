"""Metadata filters (``--where``): Chroma's vocabulary compiled to SQL over the JSON column.

A filter is a JSON object::

    {"genre": "news"}                          equality
    {"year": {"$gte": 2010, "$lt": 2020}}      operators: $eq $ne $lt $lte $gt $gte $in $nin
    {"$or": [{"genre": "news"}, {"year": {"$lt": 1990}}]}    $and / $or of filters
    {"genre": "news", "lang": "en"}            several keys: all of them

It becomes a SQL expression over ``json_extract(metadata, ?)`` in which every value
*and every field path* is a bound parameter: nothing the user writes is pasted into SQL.

Types. A string matches strings only, exactly (``$lt`` and friends compare them as text:
ISO dates work). A number matches numbers, and strings that read as numbers: CSV and TSV
columns are stored as strings, so ``{"year": {"$gte": 2010}}`` works on a CSV ``year``
column too. A boolean matches JSON ``true``/``false`` (and CSV's ``"true"``/``"false"``
strings do not: they are strings). ``$ne`` and ``$nin`` also match items that lack the
field. A key names a top-level metadata field, literally (``"a.b"`` is the field ``a.b``).

Field indexes. A field the store has indexed (``fields`` and ``field_values``, migration
m006) answers its equalities, ``$in`` and ranges from an index instead of every row's JSON:
such a condition compiles to ``id IN (SELECT item FROM field_values ...)``, which is true
of exactly the items that the JSON expression is true of (the index holds the same
expressions' values, by kind). ``$ne`` and ``$nin`` stay JSON. A filter answered wholly
from field indexes also compiles to a SELECT of item ids alone (``Where.ids``), and one
whose top-level conjunction holds such a condition says so (``Where.seeks``), so that the
store starts from the index rather than a scan.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from searchkit.errors import UsageError

__all__ = ["NUMBER_FUNCTION", "Where", "as_number", "compile_where", "field_path"]

# The SQL function the store registers: a JSON number, or a string that reads as a finite
# number, as a float; NULL otherwise (so a comparison with it is never true).
NUMBER_FUNCTION = "searchkit_number"
# The field as a number (four bindings of its path): JSON numbers in SQL, strings through
# NUMBER_FUNCTION. A Python call per row costs ten times the SQL, so only CSV-style strings pay it.
_NUMBER = (
    "(CASE json_type(metadata, ?) WHEN 'integer' THEN json_extract(metadata, ?) WHEN 'real' "
    f"THEN json_extract(metadata, ?) WHEN 'text' THEN {NUMBER_FUNCTION}(json_extract(metadata, ?)) END)"
)
# The items of a field index whose value of one kind passes a condition (the kinds and
# values as migration m006 writes them).
_INDEXED = "SELECT item FROM field_values WHERE field = ? AND kind = ? AND "
_COMPARE = {"$eq": "=", "$ne": "!=", "$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
_LIST_OPS = ("$in", "$nin")
_MAX_DEPTH = 32
_MAX_PARAMS = 10_000
Scalar = str | int | float | bool


@dataclass(frozen=True)
class Where:
    """A compiled filter: a SQL boolean expression over ``items`` and its bound parameters.

    `ids` is the same filter as a SELECT of item ids from field indexes alone, with its
    parameters, where every condition has one; `seeks` whether a condition that ANDs with
    the rest is answered from a field index (then a plan starts from it, not a scan).
    """

    sql: str
    params: tuple[Any, ...]
    source: str  # the filter as canonical JSON, for messages
    ids: tuple[str, tuple[Any, ...]] | None = None
    seeks: bool = False


@dataclass(frozen=True)
class _Part:
    """A compiled condition; `ids`, `ids_params` and `seeks` as in `Where`."""

    sql: str
    params: tuple[Any, ...]
    ids: str | None = None
    ids_params: tuple[Any, ...] = ()
    seeks: bool = False


def _indexed(ids: str, params: tuple[Any, ...]) -> _Part:
    return _Part(f"id IN ({ids})", params, ids, params, seeks=True)


def _join(parts: list[_Part], op: str) -> _Part:
    """`parts` ANDed or ORed: as an expression, and as INTERSECT or UNION where all have ids."""
    if len(parts) == 1:
        return parts[0]
    sql = "(" + f" {op} ".join(p.sql for p in parts) + ")"
    params = tuple(v for p in parts for v in p.params)
    seeks = any(p.seeks for p in parts) if op == "AND" else all(p.seeks for p in parts)
    if any(p.ids is None for p in parts):
        return _Part(sql, params, seeks=seeks)
    compound = " INTERSECT " if op == "AND" else " UNION "
    ids = compound.join(f"SELECT item FROM ({p.ids})" for p in parts)
    return _Part(sql, params, ids, tuple(v for p in parts for v in p.ids_params), seeks)


def as_number(value: Any) -> float | None:
    """``searchkit_number``: what the store registers with SQLite under NUMBER_FUNCTION."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def compile_where(where: Mapping[str, Any] | str | None, indexed: Collection[str] = ()) -> Where | None:
    """Validate and compile a filter (a dict, or its JSON text); None or ``{}`` is no filter.

    Conditions on the fields in `indexed` (those the store has field indexes for) are
    answered from them where they can be. Raises UsageError, one line, for malformed
    JSON, unknown operators and wrong types.
    """
    if where is None:
        return None
    if isinstance(where, str):
        try:
            where = json.loads(where)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--where is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(where, Mapping):
        raise UsageError(f"--where must be a JSON object, not {_kind(where)}")
    if not where:
        return None
    part = _Compiler(frozenset(indexed)).filter(where, depth=0)
    if len(part.params) > _MAX_PARAMS:
        raise UsageError(f"--where is too large ({len(part.params)} values; at most {_MAX_PARAMS})")
    source = json.dumps(where, ensure_ascii=False, sort_keys=True)
    ids = (part.ids, part.ids_params) if part.ids is not None else None
    return Where(part.sql, part.params, source, ids, part.seeks)


def field_path(key: Any, context: str = "--where") -> str:
    """The JSON path of the top-level metadata field `key`; UsageError for a name that
    cannot be one (empty, padded, or holding a quote, backslash or control character)."""
    if not isinstance(key, str) or not key or key != key.strip():
        raise UsageError(f"{context}: bad field name {key!r}")
    if '"' in key or "\\" in key or any(ord(c) < 32 for c in key):
        raise UsageError(f"{context}: field name {key!r} holds a quote, backslash or control character")
    return f'$."{key}"'


@dataclass(frozen=True)
class _Compiler:
    indexed: frozenset[str]

    def filter(self, where: Any, depth: int) -> _Part:
        if depth > _MAX_DEPTH:
            raise UsageError(f"--where nests deeper than {_MAX_DEPTH} levels")
        if not isinstance(where, Mapping) or not where:
            raise UsageError(f"--where: expected a non-empty object, found {_kind(where)}")
        parts = []
        for key, value in where.items():
            if key in ("$and", "$or"):
                parts.append(self.logical(key, value, depth))
            elif isinstance(key, str) and key.startswith("$"):
                raise UsageError(
                    f"--where: unknown operator {key!r} (at the top: $and, $or, or a field name)"
                )
            else:
                parts.append(self.field(key, value))
        return _join(parts, "AND")

    def logical(self, op: str, value: Any, depth: int) -> _Part:
        if not isinstance(value, list) or not value:
            raise UsageError(f"--where: {op} takes a non-empty list of filters, not {_kind(value)}")
        return _join([self.filter(item, depth + 1) for item in value], op[1:].upper())

    def field(self, key: str, condition: Any) -> _Part:
        path = field_path(key)
        indexed = key in self.indexed
        if not isinstance(condition, Mapping):
            value = _scalar(condition, "$eq")
            return _indexed_equal(key, [value]) if indexed else _equal(path, value)
        if not condition:
            raise UsageError('--where: an empty operator object; write e.g. {"$gte": 2010}')
        parts = []
        bounds: dict[str, list[tuple[str, Scalar]]] = {}  # by kind: the ranges to answer together
        for op, operand in condition.items():
            if op in _LIST_OPS:
                parts.append(_membership(key, path, op, operand, indexed))
            elif op in ("$eq", "$ne"):
                value = _scalar(operand, op)
                if op == "$eq":
                    parts.append(_indexed_equal(key, [value]) if indexed else _equal(path, value))
                else:
                    equal = _equal(path, value)
                    parts.append(_Part(f"NOT {equal.sql}", equal.params))
            elif op in _COMPARE:
                value = _order_value(op, operand)
                if indexed:
                    bounds.setdefault(_value_kind(value), []).append((op, value))
                else:
                    parts.append(_order(path, op, value))
            else:
                known = ", ".join([*_COMPARE, *_LIST_OPS])
                raise UsageError(f"--where: unknown operator {op!r}; use one of {known}")
        for kind, pairs in bounds.items():
            tests = " AND ".join(f"value {_COMPARE[op]} ?" for op, _ in pairs)
            parts.append(_indexed(_INDEXED + tests, (key, kind, *(_bound(v) for _, v in pairs))))
        return _join(parts, "AND")


def _value_kind(value: Scalar) -> str:
    """The kind of value in ``field_values`` that `value` matches."""
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"


def _bound(value: Scalar) -> Any:
    """`value` as ``field_values.value`` holds its kind: a float, 1/0, or the string."""
    if isinstance(value, bool):
        return int(value)
    return value if isinstance(value, str) else float(value)


def _indexed_equal(key: str, values: list[Scalar]) -> _Part:
    """Equal to any of `values`, from the field index: one SELECT per kind of value."""
    by_kind: dict[str, list[Any]] = {}
    for value in values:
        by_kind.setdefault(_value_kind(value), []).append(_bound(value))
    selects, params = [], []
    for kind, bound in by_kind.items():
        test = "value = ?" if len(bound) == 1 else f"value IN ({','.join('?' * len(bound))})"
        selects.append(_INDEXED + test)
        params += [key, kind, *bound]
    return _indexed(" UNION ".join(selects), tuple(params))


def _equal(path: str, value: Scalar) -> _Part:
    """An expression that is 1 or 0, never NULL (so that NOT of it is safe)."""
    if isinstance(value, bool):
        return _Part(f"coalesce(json_type(metadata, ?) = '{'true' if value else 'false'}', 0)", (path,))
    if isinstance(value, str):
        sql = "coalesce(json_type(metadata, ?) = 'text' AND json_extract(metadata, ?) = ?, 0)"
        return _Part(sql, (path, path, value))
    return _Part(f"coalesce({_NUMBER} = ?, 0)", (*[path] * 4, float(value)))


def _order_value(op: str, operand: Any) -> Scalar:
    value = _scalar(operand, op)
    if isinstance(value, bool):
        raise UsageError(f"--where: {op} compares numbers or strings, not {_kind(value)}")
    return value


def _order(path: str, op: str, value: Scalar) -> _Part:
    if isinstance(value, str):
        sql = f"coalesce(json_type(metadata, ?) = 'text' AND json_extract(metadata, ?) {_COMPARE[op]} ?, 0)"
        return _Part(sql, (path, path, value))
    return _Part(f"coalesce({_NUMBER} {_COMPARE[op]} ?, 0)", (*[path] * 4, float(value)))


def _membership(key: str, path: str, op: str, operand: Any, indexed: bool) -> _Part:
    if not isinstance(operand, list):
        raise UsageError(f"--where: {op} takes a list of values, not {_kind(operand)}")
    if not operand:
        return _Part("0" if op == "$in" else "1", ())
    values = [_scalar(v, op) for v in operand]
    if op == "$in" and indexed:
        return _indexed_equal(key, values)
    equal = [_equal(path, v) for v in values]
    any_equal = "(" + " OR ".join(p.sql for p in equal) + ")"
    params = tuple(v for p in equal for v in p.params)
    return _Part(any_equal if op == "$in" else f"NOT {any_equal}", params)


def _scalar(value: Any, op: str) -> Scalar:
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise UsageError(f"--where: {op} takes a string, number or boolean, not {_kind(value)}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number" if not isinstance(value, float) or math.isfinite(value) else "a non-finite number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an empty object" if not value else "an object"
    return type(value).__name__
