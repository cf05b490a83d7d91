"""The fields of one parsed row or object: its text, its id, its embedding, its metadata."""

from __future__ import annotations

from typing import Any

from searchkit.errors import InputError
from searchkit.types import Record

__all__ = ["EMBEDDING_FIELD", "json_type", "numbers", "record_of", "text_fields"]

# A JSONL field (or API key) with the item's own vector: indexed as given, not embedded.
EMBEDDING_FIELD = "embedding"


def text_fields(text_field: str) -> list[str]:
    """``--text-field title,text``: several fields, joined with a space."""
    return [f.strip() for f in text_field.split(",") if f.strip()] or [text_field]


def record_of(where: str, obj: dict[str, Any], text_field: str, id_field: str, default_key: str) -> Record:
    """The record of one parsed row or object (`where` names it in errors): its text field(s),
    its id field, its ``embedding``, every other field as metadata."""
    fields = text_fields(text_field)
    if len(fields) == 1:
        text = _text(where, obj, fields[0])
    else:
        # As BEIR and MTEB embed a document: (title + " " + text).strip(); a missing or
        # null field counts as empty, as long as one of them is there.
        if not any(f in obj for f in fields):
            raise InputError(f"{where}: none of the fields {', '.join(fields)}; name them with --text-field")
        text = " ".join(_text(where, obj, f, optional=True) for f in fields).strip()
        if not text:
            raise InputError(f"{where}: fields {text_field!r} are all empty; remove the record or fill one")
    key = default_key
    if id_field in obj and obj[id_field] not in (None, ""):
        raw_id = obj[id_field]
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
            raise InputError(f"{where}: field {id_field!r} is {json_type(raw_id)}, not a string or integer")
        key = str(raw_id)
    metadata = {k: v for k, v in obj.items() if k not in fields and k != id_field}
    embedding = metadata.pop(EMBEDDING_FIELD, None)
    if embedding is not None:
        embedding = numbers(embedding, f"{where}: field {EMBEDDING_FIELD!r}")
    return Record(text=text, key=key, metadata=metadata, source=default_key, embedding=embedding)


def numbers(value: Any, what: str) -> tuple[float, ...]:
    """An ``embedding`` field as floats: a non-empty array of numbers, or (from Python) a
    one-dimensional NumPy array of them, as ``model.encode`` returns (its length and
    finiteness are checked against the index when it is staged)."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", 0) == 1 and value.dtype.kind in "fiu":
        if not len(value):
            raise InputError(f"{what} must be a non-empty array of numbers (a vector of the index's model)")
        # Kept as an array: a million vectors as Python floats would cost minutes and gigabytes.
        return value  # type: ignore[no-any-return]
    if (
        not isinstance(value, list)
        or not value
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)
    ):
        raise InputError(f"{what} must be a non-empty array of numbers (a vector of the index's model)")
    return tuple(float(v) for v in value)


def _text(where: str, obj: dict[str, Any], field: str, optional: bool = False) -> str:
    if field not in obj or (optional and obj[field] is None):
        if optional:
            return ""
        raise InputError(f"{where}: no {field!r} field; name the text field with --text-field")
    text = obj[field]
    if not isinstance(text, str):
        raise InputError(f"{where}: field {field!r} is {json_type(text)}, not a string")
    if not text.strip() and not optional:
        raise InputError(f"{where}: field {field!r} is empty; remove the record or fill it")
    return text


def json_type(value: object) -> str:
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }
    for kind, label in names.items():
        if isinstance(value, kind):
            return label
    return "a number"
