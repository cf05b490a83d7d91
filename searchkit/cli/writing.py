"""Commands that write an index: index, index-field, delete, rebuild, check (--repair)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from searchkit.cli.app import emit_json
from searchkit.cli.options import (
    INDEX_OPTION_HELP,
    INDEX_TYPE_HELP,
    BackendOpt,
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    index_options,
)

__all__ = ["check_cmd", "compact_cmd", "delete_cmd", "index_cmd", "index_field_cmd", "rebuild_cmd"]


def index_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder (created if missing).")],
    inputs: Annotated[list[str], typer.Argument(help="Files, folders, or - for stdin.")],
    metric: Annotated[
        str | None, typer.Option("--metric", help="cosine (default), dot, euclidean, manhattan.")
    ] = None,
    model: ModelOpt = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="auto (by extension, else content), txt, md, html, csv, tsv, jsonl, json or parquet.",
        ),
    ] = "auto",
    text_field: Annotated[
        str, typer.Option("--text-field", help="The text field; title,text joins several with a space.")
    ] = "text",
    id_field: Annotated[str, typer.Option("--id-field")] = "id",
    index_type: Annotated[str, typer.Option("--index-type", help=INDEX_TYPE_HELP)] = "auto",
    index_option: Annotated[list[str] | None, typer.Option("--index-option", help=INDEX_OPTION_HELP)] = None,
    backend: BackendOpt = None,
    device: DeviceOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    split: Annotated[
        str,
        typer.Option(
            "--split",
            help="none, sentences or paragraphs: index each piece of a text as ID#N, "
            "with its parent, position and offsets as metadata.",
        ),
    ] = "none",
    unit: Annotated[
        str | None,
        typer.Option(
            "--unit",
            help="What one item of a text file is: line (the default), paragraph, or file "
            "(the default with --split: the file is a document, split into pieces).",
        ),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(
            "--encoding",
            help="Of the files that are not UTF-8 (nor marked by a BOM): cp1252, latin-1, euc-kr...",
        ),
    ] = None,
    delimiter: Annotated[
        str | None, typer.Option("--delimiter", help="CSV field separator: , (default) ; | or \\t.")
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option("--include", help="In folders, read only files matching this glob ('*.md', 'docs/**')."),
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="In folders, leave out files matching this glob.")
    ] = None,
    skip_bad: Annotated[
        bool,
        typer.Option(
            "--skip-bad", help="Skip bad files and records (each named with its reason); index the rest."
        ),
    ] = False,
    no_sync: Annotated[
        bool,
        typer.Option(
            "--no-sync",
            help="Only add and update: keep the items that the files read no longer hold, "
            "and those of files gone from the folders read.",
        ),
    ] = False,
    index_field: Annotated[
        list[str] | None,
        typer.Option("--index-field", help="Also index this metadata field for --where (see index-field)."),
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Embed on a Ray cluster: --ray alone starts one on this machine; --ray ADDRESS "
            "(auto, HOST:PORT, ray://HOST:PORT) joins one. Needs searchkit[ray].",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create INDEX or add to it (upsert by id); unchanged items are not embedded again.

    Re-indexing files and folders makes INDEX hold what they hold now: items a file no longer
    holds, and those of files gone from a folder, are removed (--no-sync keeps them).

    A JSONL item may carry its own vector, "embedding": [floats]: it is stored and indexed as
    given instead of embedding the text. It must come from the index's model, which still
    embeds the queries."""
    from searchkit.progress import Progress
    from searchkit.readers import read_inputs
    from searchkit.service import build
    from searchkit.split import check_mode

    if index_field:
        from searchkit.store.fields import check_field

        for name in index_field:  # a bad name is refused before anything is embedded
            check_field(name)
    reading = read_inputs(
        inputs,
        fmt=fmt,
        text_field=text_field,
        id_field=id_field,
        unit=unit or ("line" if split == "none" else "file"),
        encoding=encoding,
        delimiter=delimiter,
        include=include or (),
        exclude=exclude or (),
        skip_bad=skip_bad,
    )
    check_mode(split)  # before the input is read
    reading.check(split)  # every file read once: a bad record stops here, before any embedding
    progress = Progress(reading.total)
    try:
        opened, report = build(
            index,
            reading,
            model=model,
            metric=metric,
            index_type=index_type,
            index_options=index_options(index_option),
            backend=backend,
            device=device,
            batch_size=batch_size,
            on_lock_wait=lambda: typer.echo(f"Waiting for another writer of {index}...", err=True),
            on_progress=progress,
            split=split,
            ray=ray,
            sync=None if no_sync else reading.sync,
        )
    finally:
        progress.close()
    if opened.note:
        typer.echo(f"note: {opened.note}", err=True)
    try:
        fields = opened.index_field(*index_field) if index_field else []
        total = len(opened)
    finally:
        opened.close()
    if as_json:
        emit_json(
            {
                "index": str(index),
                "items": total,
                **report.to_json(),
                "fields_indexed": fields,
                "read": reading.report.to_json(),
            }
        )
        return
    only = f" ({report.metadata_only} metadata only, not embedded)" if report.metadata_only else ""
    typer.echo(
        f"{index}: {report.added} added, {report.updated} updated{only}, {report.unchanged} unchanged"
        f" ({total} items); {report.embedded} embedded in {report.seconds:.1f} s"
        f" ({report.items_per_second:.0f} items/s)"
    )
    for line in reading.report.lines():
        typer.echo(f"  {line}")
    if report.deleted:
        typer.echo(
            f"  {report.deleted} item(s) the input no longer holds were removed "
            "(pieces and lines gone from their texts, files gone from their folders)"
        )
    if report.duplicates:
        typer.echo(f"  {report.duplicates} duplicate id(s) in the input: the last one of each was kept")
    if report.truncated:
        typer.echo(f"  {report.truncated} text(s) longer than the model's max_seq_length were truncated")
        if split == "none" and report.truncated * 2 > report.added + report.updated:
            typer.echo(
                "  most texts were cut: the model reads only their beginning; index them with "
                "--split sentences (or paragraphs) to search all of each"
            )
    for note in report.notes:
        typer.echo(f"  {note}")
    if fields:
        typer.echo(f"  field index made for {', '.join(fields)}")


def index_field_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
    fields: Annotated[list[str] | None, typer.Argument(help="Metadata fields to index.")] = None,
    drop: Annotated[list[str] | None, typer.Option("--drop", help="Drop this field's index.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Index metadata fields, so that --where equalities, $in and ranges on them read an index,
    not every item's metadata (same results); kept in step with every write. --drop drops one."""
    from searchkit.errors import UsageError
    from searchkit.service import Index

    if not fields and not drop:
        raise UsageError("name a metadata field to index, or --drop FIELD")
    with Index.open(index, load=False) as opened:
        added = opened.index_field(*fields) if fields else []
        dropped = opened.index_field(*drop, drop=True) if drop else []
        indexed = opened.fields()
    if as_json:
        emit_json({"index": str(index), "indexed": added, "dropped": dropped, "fields": indexed})
        return
    already = [f for f in dict.fromkeys(fields or []) if f not in added]
    absent = [f for f in dict.fromkeys(drop or []) if f not in dropped]
    for names, done in (
        (added, "indexed"),
        (already, "already indexed"),
        (dropped, "dropped"),
        (absent, "not indexed, nothing to drop:"),
    ):
        if names:
            typer.echo(f"{index}: {done} {', '.join(names)}")
    typer.echo(f"fields indexed: {', '.join(indexed) if indexed else '(none)'}")


def delete_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
    ids: Annotated[list[str], typer.Argument(help="Ids of the items to delete.")],
) -> None:
    """Delete items by id."""
    from searchkit.service import Index

    with Index.open(index, load=False) as opened:  # a write changes rows only
        report = opened.delete(ids)
        total = len(opened)
    typer.echo(f"{index}: {report.deleted} deleted ({total} items left) in {report.seconds:.2f} s")
    for note in report.notes:
        typer.echo(f"  {note}")


def compact_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
) -> None:
    """Run the merge policy now: seal new vectors into a segment, merge small segments,
    drop deleted vectors (serve does this in the background). Searches go on meanwhile."""
    from searchkit.service import Index

    with Index.open(index, load=False) as opened:
        started = time.perf_counter()
        done = opened.compact()
        segments = opened.segments()
    seconds = time.perf_counter() - started
    files = len(segments) - 1
    typer.echo(f"{index}: {len(done)} step(s) in {seconds:.1f} s; {files} segment(s) now")
    for step in done:
        typer.echo(f"  {step}")


def rebuild_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
    metric: Annotated[str | None, typer.Option("--metric", help="A new metric.")] = None,
    index_type: Annotated[str | None, typer.Option("--index-type", help=INDEX_TYPE_HELP)] = None,
    index_option: Annotated[list[str] | None, typer.Option("--index-option", help=INDEX_OPTION_HELP)] = None,
) -> None:
    """Rebuild the vectors from the stored embeddings (another metric or index type); embeds nothing."""
    from searchkit.service import Index

    with Index.open(index) as opened:
        options = index_options(index_option) if index_option else None
        report = opened.rebuild(metric=metric, index_type=index_type, index_options=options)
        typer.echo(
            f"{index}: rebuilt {opened.vectors.ntotal} vectors ({opened.metric.value}, "
            f"{opened.manifest.layout.kind}) in {report.seconds:.1f} s; nothing embedded"
        )
        for note in report.notes:
            typer.echo(f"  {note}")


def check_cmd(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
    repair: Annotated[bool, typer.Option("--repair", help="Restore consistency from SQLite.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check that manifest, FAISS file and SQLite agree; exit 0 only when they do."""
    from searchkit.service import check

    report = check(index, repair=repair)
    if as_json:
        emit_json(report.to_json())
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
