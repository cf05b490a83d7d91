"""The options several commands share (their types and help), and the parsing of their values."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = [
    "BACKEND_HELP",
    "INDEX_OPTION_HELP",
    "INDEX_TYPE_HELP",
    "MODE_HELP",
    "WHERE_HELP",
    "BackendOpt",
    "DeviceOpt",
    "JsonOpt",
    "MetricOpt",
    "ModeOpt",
    "ModelOpt",
    "TokenOpt",
    "WhereOpt",
    "index_options",
    "read_lines",
]

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", help="all-MiniLM-L6-v2 (default, bundled), a local model folder, or a hub name."),
]
BACKEND_HELP = "auto (onnx when installed, else torch), torch, onnx (fp32, torch's vectors) or onnx-int8."
BackendOpt = Annotated[str | None, typer.Option("--backend", help=BACKEND_HELP)]
DeviceOpt = Annotated[
    str | None,
    typer.Option(
        "--device", help="Where the torch engine runs: auto (CUDA where torch sees one), cpu, cuda or mps."
    ),
]
INDEX_TYPE_HELP = "auto (flat, then hnsw from 50,000 items), flat, hnsw, ivf, ivf-pq, sq8 or hnsw-sq8."
INDEX_OPTION_HELP = "NAME=VALUE: m, ef_construction, ef_search (hnsw); nlist, nprobe, pq_m (ivf)."
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine output (JSON / JSON Lines).")]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="SEARCHKIT_TOKEN", help="The server's bearer token (--server, serve)."),
]
MetricOpt = Annotated[str, typer.Option("--metric", help="cosine, dot, euclidean or manhattan.")]
WHERE_HELP = (
    'Metadata filter, JSON: {"genre": "news"}, {"year": {"$gte": 2010}}; $eq $ne $lt $lte $gt $gte '
    "$in $nin $and $or (several keys: all)."
)
MODE_HELP = "dense (embeddings, default), keyword (BM25 over the words) or hybrid (both, fused)."
WhereOpt = Annotated[str | None, typer.Option("--where", help=WHERE_HELP)]
ModeOpt = Annotated[str, typer.Option("--mode", help=MODE_HELP)]


def read_lines(source: str) -> list[str]:
    from searchkit.readers import read_inputs

    return [record.text for record in read_inputs([source], fmt="txt")]


def index_options(pairs: list[str] | None) -> dict[str, int]:
    from searchkit.errors import UsageError

    options: dict[str, int] = {}
    for pair in pairs or []:
        name, _, value = pair.partition("=")
        if not value.strip().lstrip("-").isdigit():
            raise UsageError(f"--index-option takes NAME=INTEGER (e.g. ef_search=256), not {pair!r}")
        options[name.strip().lower()] = int(value)
    return options
