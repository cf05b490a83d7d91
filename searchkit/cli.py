"""The `searchkit` command: parse, make one library call, format, map errors.

Errors the user can cause are `SearchkitError`s: one line ``Error: ...`` on stderr,
exit code 1, no traceback unless ``--debug``. Usage errors (a bad option) exit 2,
as Typer does.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from searchkit.errors import SearchkitError

app = typer.Typer(
    name="searchkit",
    help="Semantic search over your text: embed, index, query.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

F = TypeVar("F", bound=Callable[..., Any])
_state = {"debug": False}

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", help="all-MiniLM-L6-v2 (default, bundled), a local model folder, or a hub name."),
]
BACKEND_HELP = "auto (onnx when installed, else torch), torch, onnx (fp32, torch's vectors) or onnx-int8."
BackendOpt = Annotated[str | None, typer.Option("--backend", help=BACKEND_HELP)]
INDEX_TYPE_HELP = "auto (flat, then hnsw from 50,000 items), flat, hnsw, ivf, ivf-pq, sq8 or hnsw-sq8."
INDEX_OPTION_HELP = "NAME=VALUE: m, ef_construction, ef_search (hnsw); nlist, nprobe, pq_m (ivf)."
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine output (JSON / JSON Lines).")]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="SEARCHKIT_TOKEN", help="The server's bearer token (--server, serve)."),
]
MetricOpt = Annotated[str, typer.Option("--metric", help="cosine, dot, euclidean or manhattan.")]


def command(*args: Any, **kwargs: Any) -> Callable[[F], F]:
    """``app.command`` that turns a SearchkitError into one line on stderr and exit 1."""

    def register(fn: F) -> F:
        @functools.wraps(fn)
        def run(*a: Any, **kw: Any) -> Any:
            try:
                return fn(*a, **kw)
            except SearchkitError as exc:
                if _state["debug"]:
                    raise
                typer.echo(f"Error: {exc}", err=True)
                raise typer.Exit(1) from None
            except KeyboardInterrupt:
                typer.echo("Error: interrupted; the index is as it was before this write", err=True)
                raise typer.Exit(130) from None

        app.command(*args, **kwargs)(run)
        return fn

    return register


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    """Semantic search over your text: embed, index, query."""
    _state["debug"] = debug


def _emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False))


def _read_lines(source: str) -> list[str]:
    from searchkit.readers import read_inputs

    return [record.text for record in read_inputs([source], fmt="txt")]


@command("similarity")
def similarity_cmd(
    texts: Annotated[list[str], typer.Argument(help="Texts to compare.")],
    to: Annotated[list[str] | None, typer.Option("--to", help="Compare TEXTs with these instead.")] = None,
    metric: MetricOpt = "cosine",
    model: ModelOpt = None,
    backend: BackendOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score texts against each other (TEXT x TEXT) or against --to texts."""
    from searchkit.compare import similarity

    result = similarity(texts, to=to, metric=metric, model=model, backend=backend)
    if as_json:
        _emit_json(result.to_json())
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


@command("embed")
def embed_cmd(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to embed.")] = None,
    input_file: Annotated[
        str | None, typer.Option("--input", help="File with one text per line, or -.")
    ] = None,
    model: ModelOpt = None,
    backend: BackendOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write a float32 (n, dim) .npy file.")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    as_json: JsonOpt = False,
) -> None:
    """Embed texts; print them, or write a .npy array in input order."""
    from searchkit.compare import embed

    items = list(texts or []) + (_read_lines(input_file) if input_file else [])
    vectors = embed(items, model=model, backend=backend, batch_size=batch_size)
    if output is not None:
        import numpy as np

        np.save(_npy_path(output), vectors)
    if as_json:
        for text, vector in zip(items, vectors, strict=True):
            _emit_json({"text": text, "embedding": vector.tolist()})
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


@command("index")
def index_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder (created if missing).")],
    inputs: Annotated[list[str], typer.Argument(help="Files, folders, or - for stdin.")],
    metric: Annotated[
        str | None, typer.Option("--metric", help="cosine (default), dot, euclidean, manhattan.")
    ] = None,
    model: ModelOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="auto, txt, csv, tsv or jsonl.")] = "auto",
    text_field: Annotated[
        str, typer.Option("--text-field", help="The text field; title,text joins several with a space.")
    ] = "text",
    id_field: Annotated[str, typer.Option("--id-field")] = "id",
    index_type: Annotated[str, typer.Option("--index-type", help=INDEX_TYPE_HELP)] = "auto",
    index_option: Annotated[list[str] | None, typer.Option("--index-option", help=INDEX_OPTION_HELP)] = None,
    backend: BackendOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    split: Annotated[
        str,
        typer.Option(
            "--split",
            help="none, sentences or paragraphs: index each piece of a text as ID#N, "
            "with its parent, position and offsets as metadata.",
        ),
    ] = "none",
    as_json: JsonOpt = False,
) -> None:
    """Create INDEX or add to it (upsert by id); unchanged items are not embedded again."""
    from searchkit.progress import Progress, estimate_items
    from searchkit.readers import read_inputs
    from searchkit.service import build

    records = read_inputs(inputs, fmt=fmt, text_field=text_field, id_field=id_field)
    progress = Progress(estimate_items(inputs) if sys.stderr.isatty() else None)
    try:
        opened, report = build(
            index,
            records,
            model=model,
            metric=metric,
            index_type=index_type,
            index_options=_index_options(index_option),
            backend=backend,
            batch_size=batch_size,
            on_lock_wait=lambda: typer.echo(f"Waiting for another writer of {index}...", err=True),
            on_progress=progress,
            split=split,
        )
    finally:
        progress.close()
    total = len(opened)
    opened.close()
    if as_json:
        _emit_json({"index": str(index), "items": total, **report.to_json()})
        return
    typer.echo(
        f"{index}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged"
        f" ({total} items); {report.embedded} embedded in {report.seconds:.1f} s"
        f" ({report.items_per_second:.0f} items/s)"
    )
    if report.deleted:
        typer.echo(f"  {report.deleted} piece(s) that changed texts no longer have were deleted")
    if report.duplicates:
        typer.echo(f"  {report.duplicates} duplicate id(s) in the input: the last one of each was kept")
    if report.truncated:
        typer.echo(f"  {report.truncated} text(s) longer than the model's max_seq_length were truncated")
    for note in report.notes:
        typer.echo(f"  {note}")


WHERE_HELP = (
    'Metadata filter, JSON: {"genre": "news"}, {"year": {"$gte": 2010}}; $eq $ne $lt $lte $gt $gte '
    "$in $nin $and $or (several keys: all)."
)
MODE_HELP = "dense (embeddings, default), keyword (BM25 over the words) or hybrid (both, fused)."
WhereOpt = Annotated[str | None, typer.Option("--where", help=WHERE_HELP)]
ModeOpt = Annotated[str, typer.Option("--mode", help=MODE_HELP)]


@command("query")
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

    texts = list(queries or []) + (_read_lines(input_file) if input_file else [])
    compile_where(where)  # a bad filter is refused before the model loads
    options: dict[str, Any] = {
        "where": json.loads(where) if where else None,
        "mode": Mode.parse(mode).value,
        "group_by_parent": group_by_parent,
    }
    if server:
        results = _remote_results(server, index.resolve().name, texts, k, token, model, options)
    else:
        from searchkit.service import Index

        with Index.open(index, model=model) as opened:
            found = opened.search_many(texts, k=k, **options)
        results = [hits.to_json(text) for text, hits in zip(texts, found, strict=True)]
    for result in results:
        if as_json:
            _emit_json(result)
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
    options: dict[str, Any],
) -> list[dict[str, Any]]:
    from searchkit.errors import UsageError
    from searchkit.server.client import search

    if model is not None:
        raise UsageError("--model does not go with --server: the server queries with the index's own model")
    if not texts:
        raise UsageError("no query given; pass a query text or --input FILE")
    return search(server, name, texts, k, token, **options)


def _one_line(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@command("info")
def info_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
    as_json: JsonOpt = False,
) -> None:
    """Show an index's manifest, counts and file sizes."""
    from searchkit.service import Index

    with Index.open(index) as opened:
        data = opened.info()
    if as_json:
        _emit_json(data)
        return
    model = data["model"]
    typer.echo(f"index:      {data['path']}")
    typer.echo(f"items:      {data['counts']['items']} ({data['counts']['vectors']} vectors)")
    typer.echo(f"metric:     {data['metric']}")
    kind = data["index"]
    params = ", ".join(f"{k}={v}" for k, v in kind["params"].items())
    asked = f" (asked: {kind['type']})" if kind["type"] != kind["resolved"] else ""
    typer.echo(f"index type: {kind['resolved']}{asked} {params} [FAISS {kind['faiss']}]".rstrip())
    typer.echo(
        f"model:      {model['name']} [{model['source']}], {model['dimension']} dims, "
        f"max_seq_length {model['max_seq_length']}, vectors of the {model['backend']} family"
    )
    typer.echo(f"truncated:  {data['counts']['truncated']} text(s) longer than max_seq_length")
    typer.echo(f"created:    {data['created']}  updated: {data['updated']}")
    typer.echo("files:      " + ", ".join(f"{n} {_size(s)}" for n, s in data["sizes"].items()))


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@command("export")
def export_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
    vectors: Annotated[bool, typer.Option("--vectors", help="Include each item's embedding.")] = False,
) -> None:
    """Print every item as JSON Lines: {"id", "text", "metadata"[, "embedding"]}."""
    from searchkit.service import Index

    with Index.open(index) as opened:
        _emit_lines(opened.export(vectors=vectors))


def _emit_lines(rows: Iterable[dict[str, Any]]) -> None:
    out = sys.stdout
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    out.flush()


@command("delete")
def delete_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
    ids: Annotated[list[str], typer.Argument(help="Ids of the items to delete.")],
) -> None:
    """Delete items by id."""
    from searchkit.service import Index

    with Index.open(index) as opened:
        report = opened.delete(ids)
        total = len(opened)
    typer.echo(f"{index}: {report.deleted} deleted ({total} items left) in {report.seconds:.2f} s")
    for note in report.notes:
        typer.echo(f"  {note}")


@command("rebuild")
def rebuild_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
    metric: Annotated[str | None, typer.Option("--metric", help="A new metric.")] = None,
    index_type: Annotated[str | None, typer.Option("--index-type", help=INDEX_TYPE_HELP)] = None,
    index_option: Annotated[list[str] | None, typer.Option("--index-option", help=INDEX_OPTION_HELP)] = None,
) -> None:
    """Rebuild the vectors from the stored embeddings (another metric or index type); embeds nothing."""
    from searchkit.service import Index

    with Index.open(index) as opened:
        options = _index_options(index_option) if index_option else None
        report = opened.rebuild(metric=metric, index_type=index_type, index_options=options)
        typer.echo(
            f"{index}: rebuilt {opened.vectors.ntotal} vectors ({opened.metric.value}, "
            f"{opened.manifest.layout.kind}) in {report.seconds:.1f} s; nothing embedded"
        )
        for note in report.notes:
            typer.echo(f"  {note}")


@command("check")
def check_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
    repair: Annotated[bool, typer.Option("--repair", help="Restore consistency from SQLite.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check that manifest, FAISS file and SQLite agree; exit 0 only when they do."""
    from searchkit.service import check

    report = check(index, repair=repair)
    if as_json:
        _emit_json(report.to_json())
    else:
        for line in report.repaired:
            typer.echo(f"repaired: {line}")
        for line in report.problems:
            typer.echo(f"problem:  {line}")
        for line in report.notes:
            typer.echo(f"note:     {line}")
        if report.ok:
            typer.echo(f"{index}: consistent")
        else:
            typer.echo(f"{index}: inconsistent; run searchkit check {index} --repair", err=True)
    if not report.ok:
        raise typer.Exit(1)


@command("serve")
def serve_cmd(
    indexes: Annotated[list[Path], typer.Argument(help="Index folders; each is named by its folder name.")],
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; beyond loopback it needs --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port; 0 picks a free one (stderr says which).")] = 8000,
    token: TokenOpt = None,
) -> None:
    """Serve indexes over HTTP with the model kept warm (JSON; OpenAPI at /openapi.json)."""
    from searchkit.server.run import serve

    try:
        serve(indexes, host=host, port=port, token=token, on_ready=lambda line: typer.echo(line, err=True))
    except KeyboardInterrupt:
        # uvicorn stops gracefully on Ctrl-C, then raises it again: a normal stop, not a failed write.
        typer.echo("searchkit: stopped; every request in flight was answered", err=True)


@command("eval")
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
        _emit_json(report)
        return
    for name, value in report.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        typer.echo(f"{name + ':':<12}{shown}")


def _index_options(pairs: list[str] | None) -> dict[str, int]:
    from searchkit.errors import UsageError

    options: dict[str, int] = {}
    for pair in pairs or []:
        name, _, value = pair.partition("=")
        if not value.strip().lstrip("-").isdigit():
            raise UsageError(f"--index-option takes NAME=INTEGER (e.g. ef_search=256), not {pair!r}")
        options[name.strip().lower()] = int(value)
    return options


def main() -> None:
    app()
