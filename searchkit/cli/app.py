"""The Typer app, and the one mapping of errors to messages and exit codes.

Errors the user can cause are `SearchkitError`s: one line ``Error: ...`` on stderr,
exit code 1, no traceback unless ``--debug``. Usage errors (a bad option) exit 2,
as Typer does.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from searchkit.errors import SearchkitError

__all__ = ["app", "command", "emit_json", "main", "ray_address"]

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


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False))


# What may follow --ray as its ADDRESS: "local", "auto", HOST:PORT or ray://HOST:PORT.
_ADDRESS = re.compile(r"^(local|auto|ray://\S+|[\w.\-\[\]:]+:\d+)$")


def ray_address(args: list[str]) -> list[str]:
    """`args` with ``--ray`` given its default value (``local``) where no address follows it.

    Click has no option whose value may be left out (``--ray`` alone, or ``--ray ADDRESS``),
    so the one spot that needs it is settled before parsing: an address is a word that
    looks like one; anything else after ``--ray`` (an input file, another option) is left
    to be what it is."""
    out: list[str] = []
    for at, arg in enumerate(args):
        out.append(arg)
        if arg == "--ray" and (at + 1 == len(args) or not _ADDRESS.match(args[at + 1])):
            out.append("local")
    return out


def main() -> None:
    app(args=ray_address(sys.argv[1:]))
