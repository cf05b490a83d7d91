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
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from searchkit.errors import UsageError

__all__ = ["NUMBER_FUNCTION", "Where", "as_number", "compile_where"]

# The SQL function the store registers: a JSON number, or a string that reads as a finite
# number, as a float; NULL otherwise (so a comparison with it is never true).
NUMBER_FUNCTION = "searchkit_number"
# The field as a number (four bindings of its path): JSON numbers in SQL, strings through
# NUMBER_FUNCTION. A Python call per row costs ten times the SQL, so only CSV-style strings pay it.
_NUMBER = (
    "(CASE json_type(metadata, ?) WHEN 'integer' THEN json_extract(metadata, ?) WHEN 'real' "
    f"THEN json_extract(metadata, ?) WHEN 'text' THEN {NUMBER_FUNCTION}(json_extract(metadata, ?)) END)"
)
_COMPARE = {"$eq": "=", "$ne": "!=", "$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
_LIST_OPS = ("$in", "$nin")
_MAX_DEPTH = 32
_MAX_PARAMS = 10_000
Scalar = str | int | float | bool


@dataclass(frozen=True)
class Where:
    """A compiled filter: a SQL boolean expression and its bound parameters, in order."""

    sql: str
    params: tuple[Any, ...]
    source: str  # the filter as canonical JSON, for messages


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


def compile_where(where: Mapping[str, Any] | str | None) -> Where | None:
    """Validate and compile a filter (a dict, or its JSON text); None or ``{}`` is no filter.

    Raises UsageError, one line, for malformed JSON, unknown operators and wrong types.
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
    params: list[Any] = []
    sql = _filter(where, params, depth=0)
    if len(params) > _MAX_PARAMS:
        raise UsageError(f"--where is too large ({len(params)} values; at most {_MAX_PARAMS})")
    return Where(sql, tuple(params), json.dumps(where, ensure_ascii=False, sort_keys=True))


def _filter(where: Any, params: list[Any], depth: int) -> str:
    if depth > _MAX_DEPTH:
        raise UsageError(f"--where nests deeper than {_MAX_DEPTH} levels")
    if not isinstance(where, Mapping) or not where:
        raise UsageError(f"--where: expected a non-empty object, found {_kind(where)}")
    parts = []
    for key, value in where.items():
        if key in ("$and", "$or"):
            parts.append(_logical(key, value, params, depth))
        elif isinstance(key, str) and key.startswith("$"):
            raise UsageError(f"--where: unknown operator {key!r} (at the top: $and, $or, or a field name)")
        else:
            parts.append(_field(_path(key), value, params))
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def _logical(op: str, value: Any, params: list[Any], depth: int) -> str:
    if not isinstance(value, list) or not value:
        raise UsageError(f"--where: {op} takes a non-empty list of filters, not {_kind(value)}")
    joined = f" {op[1:].upper()} ".join(_filter(item, params, depth + 1) for item in value)
    return f"({joined})"


def _path(key: Any) -> str:
    if not isinstance(key, str) or not key or key != key.strip():
        raise UsageError(f"--where: bad field name {key!r}")
    if '"' in key or "\\" in key or any(ord(c) < 32 for c in key):
        raise UsageError(f"--where: field name {key!r} holds a quote, backslash or control character")
    return f'$."{key}"'


def _field(path: str, condition: Any, params: list[Any]) -> str:
    if not isinstance(condition, Mapping):
        return _equal(path, _scalar(condition, "$eq"), params)
    if not condition:
        raise UsageError('--where: an empty operator object; write e.g. {"$gte": 2010}')
    parts = []
    for op, operand in condition.items():
        if op in _LIST_OPS:
            parts.append(_membership(path, op, operand, params))
        elif op in ("$eq", "$ne"):
            equal = _equal(path, _scalar(operand, op), params)
            parts.append(equal if op == "$eq" else f"NOT {equal}")
        elif op in _COMPARE:
            parts.append(_order(path, op, operand, params))
        else:
            known = ", ".join([*_COMPARE, *_LIST_OPS])
            raise UsageError(f"--where: unknown operator {op!r}; use one of {known}")
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def _equal(path: str, value: Scalar, params: list[Any]) -> str:
    """An expression that is 1 or 0, never NULL (so that NOT of it is safe)."""
    if isinstance(value, bool):
        params.append(path)
        return f"coalesce(json_type(metadata, ?) = '{'true' if value else 'false'}', 0)"
    if isinstance(value, str):
        params.extend([path, path, value])
        return "coalesce(json_type(metadata, ?) = 'text' AND json_extract(metadata, ?) = ?, 0)"
    params.extend([path] * 4 + [float(value)])
    return f"coalesce({_NUMBER} = ?, 0)"


def _order(path: str, op: str, operand: Any, params: list[Any]) -> str:
    value = _scalar(operand, op)
    if isinstance(value, bool):
        raise UsageError(f"--where: {op} compares numbers or strings, not {_kind(value)}")
    if isinstance(value, str):
        params.extend([path, path, value])
        return f"coalesce(json_type(metadata, ?) = 'text' AND json_extract(metadata, ?) {_COMPARE[op]} ?, 0)"
    params.extend([path] * 4 + [float(value)])
    return f"coalesce({_NUMBER} {_COMPARE[op]} ?, 0)"


def _membership(path: str, op: str, operand: Any, params: list[Any]) -> str:
    if not isinstance(operand, list):
        raise UsageError(f"--where: {op} takes a list of values, not {_kind(operand)}")
    if not operand:
        return "0" if op == "$in" else "1"
    any_equal = "(" + " OR ".join(_equal(path, _scalar(v, op), params) for v in operand) + ")"
    return any_equal if op == "$in" else f"NOT {any_equal}"


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
