"""The command that serves indexes over HTTP: serve."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from searchkit.cli.options import BackendOpt, DeviceOpt, ModelOpt, TokenOpt

__all__ = ["serve_cmd"]


def serve_cmd(
    indexes: Annotated[list[Path], typer.Argument(help="Index folders; each is named by its folder name.")],
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; beyond loopback it needs --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port; 0 picks a free one (stderr says which).")] = 8000,
    token: TokenOpt = None,
    model: ModelOpt = None,
    backend: BackendOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Serve indexes over HTTP with the model kept warm (JSON; OpenAPI at /openapi.json).

    --model loads every index's model from there (a moved folder); an index it is not the
    model of is refused."""
    from searchkit.server.run import serve

    try:
        serve(
            indexes,
            host=host,
            port=port,
            token=token,
            model=model,
            backend=backend,
            device=device,
            on_ready=lambda line: typer.echo(line, err=True),
        )
    except KeyboardInterrupt:
        # uvicorn stops gracefully on Ctrl-C, then raises it again: a normal stop, not a failed write.
        typer.echo("searchkit: stopped; every request in flight was answered", err=True)
