"""The push command: an index's items and stored vectors into Milvus Lite, LanceDB or Qdrant."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from searchkit.cli.app import emit_json
from searchkit.cli.options import JsonOpt

__all__ = ["push_cmd"]

TARGET_HELP = "milvus:PATH.db (Milvus Lite), lancedb:DIR, qdrant:DIR (local mode) or qdrant+http://HOST:PORT."


def push_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
    target: Annotated[str, typer.Argument(help=TARGET_HELP)],
    collection: Annotated[
        str | None, typer.Option("--collection", help="Collection (table) name; default: the index folder's.")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Items per write to the engine.")] = 1000,
    replace: Annotated[
        bool, typer.Option("--replace", help="Drop a collection of that name and push anew.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy every item (id, text, metadata, stored vector) into a serving engine, embedding nothing."""
    from searchkit.push import push

    report = push(index, target, collection=collection, batch_size=batch_size, replace=replace)
    if as_json:
        emit_json(report.to_json())
        return
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(report.summary())
