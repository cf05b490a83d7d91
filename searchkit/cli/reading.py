"""Commands that read an index: query, info, export, eval."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from searchkit.cli.app import emit_json
from searchkit.cli.options import BackendOpt, JsonOpt, ModelOpt, ModeOpt, TokenOpt, WhereOpt, read_lines

__all__ = ["eval_cmd", "export_cmd", "info_cmd", "query_cmd"]


def query_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder (with --server: its folder name).")],
    queries: Annotated[list[str] | None, typer.Argument(help="Query texts.")] = None,
    input_file: Annotated[
        str | None, typer.Option("--input", help="File with one query per line, or -.")
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="Hits per query.")] = 10,
    where: WhereOpt = None,
    mode: ModeOpt = "dense",
    group_by_parent: Annotated[
        bool,
        typer.Option("--group-by-parent", help="Rank documents indexed with --split by their best piece."),
    ] = False,
    model: ModelOpt = None,
    backend: BackendOpt = None,
    server: Annotated[
        str | None,
        typer.Option("--server", envvar="SEARCHKIT_SERVER", help="URL of a running searchkit serve to ask."),
    ] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the items most similar to each query (optionally among those --where selects)."""
    from searchkit.filters import compile_where
    from searchkit.types import Mode

    texts = list(queries or []) + (read_lines(input_file) if input_file else [])
    compile_where(where)  # a bad filter is refused before the model loads
    options: dict[str, Any] = {
        "where": json.loads(where) if where else None,
        "mode": Mode.parse(mode).value,
        "group_by_parent": group_by_parent,
    }
    if server:
        results = _remote_results(server, index.resolve().name, texts, k, token, model, backend, options)
    else:
        from searchkit.service import Index

        with Index.open(index, model=model, backend=backend) as opened:
            found = opened.search_many(texts, k=k, **options)
            if opened.note:
                typer.echo(f"note: {opened.note}", err=True)
        results = [hits.to_json(text) for text, hits in zip(texts, found, strict=True)]
    for result in results:
        if as_json:
            emit_json(result)
        else:
            _print_result(result, filtered=bool(where) or mode != "dense")


def _print_result(result: dict[str, Any], filtered: bool) -> None:
    hits = result["hits"]
    how = "exact" if result["exact"] else "approximate"
    typer.echo(f"Query: {result['query']}  [{result['mode']}, {how}]")
    if not hits:
        typer.echo("  (no hits: no item matches)" if filtered else "  (no items in the index)")
    for hit in hits:
        typer.echo(f"  {hit['rank']:>3}. {hit['score']:8.4f}  {hit['id']}  {_one_line(hit['text'])}")


def _remote_results(
    server: str,
    name: str,
    texts: list[str],
    k: int,
    token: str | None,
    model: str | None,
    backend: str | None,
    options: dict[str, Any],
) -> list[dict[str, Any]]:
    from searchkit.errors import UsageError
    from searchkit.server.client import search

    for option, value in (("--model", model), ("--backend", backend)):
        if value is not None:
            why = "the server queries with the index's own model"
            raise UsageError(f"{option} does not go with --server: {why}")
    if not texts:
        raise UsageError("no query given; pass a query text or --input FILE")
    return search(server, name, texts, k, token, **options)


def _one_line(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def info_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
    as_json: JsonOpt = False,
) -> None:
    """Show an index's manifest, counts and file sizes."""
    from searchkit.service import Index

    with Index.open(index) as opened:
        data = opened.info()
    if as_json:
        emit_json(data)
        return
    model = data["model"]
    typer.echo(f"index:      {data['path']}")
    typer.echo(f"items:      {data['counts']['items']} ({data['counts']['vectors']} vectors)")
    typer.echo(f"metric:     {data['metric']}")
    kind = data["index"]
    params = ", ".join(f"{k}={v}" for k, v in kind["params"].items())
    asked = f" (asked: {kind['type']})" if kind["type"] != kind["resolved"] else ""
    typer.echo(f"index type: {kind['resolved']}{asked} {params} [FAISS {kind['faiss']}]".rstrip())
    if kind["resolved"] in ("ivf", "ivf-pq"):
        typer.echo(
            f"trained at: {kind['trained_at']} items (now {data['counts']['items']}; "
            f"planned and trained again at 4x or 1/4 of it)"
        )
    pipeline = f", pipeline {model['pipeline']['digest'][:12]}" if "pipeline" in model else ""
    typer.echo(
        f"model:      {model['name']} [{model['source']}], sha256 {model['sha256'][:12]}{pipeline}, "
        f"{model['dimension']} dims, max_seq_length {model['max_seq_length']}, "
        f"vectors of the {model['backend']} family"
    )
    typer.echo(f"truncated:  {data['counts']['truncated']} text(s) longer than max_seq_length")
    typer.echo(f"fields:     {', '.join(data['fields']) or '(none indexed)'}")
    for n, segment in enumerate(data["segments"]):
        label = "segments:" if n == 0 else ""
        first, last = segment.get("generations", ["", ""])
        span = f", generations {first}-{last}" if segment["name"] != "tail" else " (not sealed yet)"
        typer.echo(
            f"{label:<11} {segment['name']}: {segment['vectors']} vectors, {segment['dead']} dead, "
            f"{segment['type']}{span}"
        )
    typer.echo(f"created:    {data['created']}  updated: {data['updated']}")
    typer.echo("files:      " + ", ".join(f"{n} {_size(s)}" for n, s in data["sizes"].items()))


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def export_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
    vectors: Annotated[bool, typer.Option("--vectors", help="Include each item's embedding.")] = False,
    fmt: Annotated[
        str, typer.Option("--format", help="jsonl (JSON Lines) or parquet (needs --output).")
    ] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", help="Write this file (whole, or not at all), not stdout.")
    ] = None,
) -> None:
    """Every item as JSON Lines, {"id", "text", "metadata"[, "embedding"]}, or as a Parquet file:
    id, text, metadata as JSON, the vector as a fixed-size list of float32, the model's fingerprint
    and the metric in the schema metadata (what Milvus, Qdrant and LanceDB bulk loaders take)."""
    from searchkit.errors import UsageError
    from searchkit.service import Index

    if fmt not in ("jsonl", "parquet"):
        raise UsageError(f"unknown export format {fmt!r}: choose jsonl or parquet")
    if fmt == "parquet" and output is None:
        raise UsageError("--format parquet needs --output FILE: a Parquet file is not written to stdout")
    with Index.open(index, load=False) as opened:  # rows only
        if output is None:
            _emit_lines(opened.export(vectors=vectors), sys.stdout)
            return
        from searchkit.parquet import atomic_output, write_export

        if fmt == "parquet":
            count = write_export(opened, output, vectors=vectors)
        else:
            with atomic_output(output) as tmp, tmp.open("w", encoding="utf-8") as out:
                count = _emit_lines(opened.export(vectors=vectors), out)
    typer.echo(f"{output}: {count} items exported ({fmt}{', with vectors' if vectors else ''})")


def _emit_lines(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    out.flush()
    return count


def eval_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
    queries: Annotated[
        Path | None, typer.Option("--queries", help='BEIR queries.jsonl: {"_id", "text"} a line.')
    ] = None,
    qrels: Annotated[
        Path | None, typer.Option("--qrels", help="BEIR qrels TSV: query-id, corpus-id, score (header).")
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="Cut-off of the metrics.")] = 10,
    mode: ModeOpt = "dense",
    against_exact: Annotated[
        bool, typer.Option("--against-exact", help="No labels: recall@k of this index against exact search.")
    ] = False,
    sample: Annotated[
        int, typer.Option("--sample", help="Stored items used as queries (--against-exact).")
    ] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Measure answers: NDCG, MRR, recall and MAP at k on BEIR queries and qrels (item ids
    are the index's ids), or --against-exact: an approximate index's recall against exact search."""
    from searchkit.errors import UsageError
    from searchkit.service import Index
    from searchkit.service.quality import against_exact as compare
    from searchkit.service.quality import evaluate

    if against_exact:
        with Index.open(index) as opened:
            report = compare(opened, sample=sample, k=k)
    else:
        if queries is None or qrels is None:
            raise UsageError("eval needs --queries FILE and --qrels FILE (or --against-exact)")
        from searchkit.evaluate import read_qrels, read_queries

        labels, texts = read_qrels(qrels), read_queries(queries)
        with Index.open(index) as opened:
            report = evaluate(opened, texts, labels, k=k, mode=mode)
    if as_json:
        emit_json(report)
        return
    for name, value in report.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        typer.echo(f"{name + ':':<12}{shown}")
