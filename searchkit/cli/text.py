"""Commands on texts alone, no index: similarity, embed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from searchkit.cli.app import emit_json
from searchkit.cli.options import BackendOpt, DeviceOpt, JsonOpt, MetricOpt, ModelOpt, read_lines

__all__ = ["embed_cmd", "similarity_cmd"]


def similarity_cmd(
    texts: Annotated[list[str], typer.Argument(help="Texts to compare.")],
    to: Annotated[list[str] | None, typer.Option("--to", help="Compare TEXTs with these instead.")] = None,
    metric: MetricOpt = "cosine",
    model: ModelOpt = None,
    backend: BackendOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score texts against each other (TEXT x TEXT) or against --to texts."""
    from searchkit.compare import similarity

    result = similarity(texts, to=to, metric=metric, model=model, backend=backend, device=device)
    if as_json:
        emit_json(result.to_json())
        return
    width = 10
    label = max(min(max(len(r) for r in result.rows), 40), 4)
    header = " " * label + "  " + "  ".join(f"[{j + 1}]".rjust(width) for j in range(len(result.columns)))
    typer.echo(f"{result.metric.value} similarity")
    typer.echo(header)
    for row, scores in zip(result.rows, result.scores, strict=True):
        name = row if len(row) <= label else row[: label - 1] + "…"
        typer.echo(name.ljust(label) + "  " + "  ".join(f"{s:.4f}".rjust(width) for s in scores))
    for j, column in enumerate(result.columns, start=1):
        typer.echo(f"[{j}] {column}")


def embed_cmd(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to embed.")] = None,
    input_file: Annotated[
        str | None, typer.Option("--input", help="File with one text per line, or -.")
    ] = None,
    model: ModelOpt = None,
    backend: BackendOpt = None,
    device: DeviceOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write a float32 (n, dim) .npy file.")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    as_json: JsonOpt = False,
) -> None:
    """Embed texts; print them, or write a .npy array in input order."""
    from searchkit.compare import embed

    items = list(texts or []) + (read_lines(input_file) if input_file else [])
    vectors = embed(items, model=model, backend=backend, batch_size=batch_size, device=device)
    if output is not None:
        import numpy as np

        np.save(_npy_path(output), vectors)
    if as_json:
        for text, vector in zip(items, vectors, strict=True):
            emit_json({"text": text, "embedding": vector.tolist()})
    elif output is not None:
        typer.echo(f"Wrote {vectors.shape[0]} x {vectors.shape[1]} float32 embeddings to {output}")
    else:
        typer.echo(f"{vectors.shape[0]} texts, {vectors.shape[1]} dimensions")
        for text, vector in zip(items, vectors, strict=True):
            head = ", ".join(f"{v:.4f}" for v in vector[:4])
            typer.echo(f"  [{head}, ...]  {text}")


def _npy_path(path: Path) -> Path:
    if path.suffix != ".npy":
        from searchkit.errors import UsageError

        raise UsageError(f"--output must end in .npy (numpy adds it otherwise): {path}")
    if not path.parent.exists():
        from searchkit.errors import UsageError

        raise UsageError(f"--output folder {path.parent} does not exist")
    return path
