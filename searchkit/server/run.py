"""Start the service: check the bind rule, open the indexes, bind, hand over to uvicorn."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from pathlib import Path

from searchkit.errors import UsageError
from searchkit.server.auth import check_bind

__all__ = ["serve"]


def serve(
    paths: Sequence[str | Path],
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    on_ready: Callable[[str], None] | None = None,
    model: str | None = None,
    backend: str | None = None,
    device: str | None = None,
) -> None:
    """Serve the indexes at `paths` until SIGTERM or Ctrl-C, then finish the requests in flight.

    `model`, `backend` and `device` are what every index's model is loaded with (see `Index.open`).
    Port 0 takes any free port; `on_ready` is told the line that says where it listens,
    after a ``note: ...`` line for each thing loading the models had to say.
    """
    check_bind(host, token)
    import uvicorn

    from searchkit.server.app import create_app
    from searchkit.server.served import Shelf

    # The model loads here, before the first request.
    shelf = Shelf.open(paths, model=model, backend=backend, device=device)
    try:
        sock = _bind(host, port)
    except BaseException:
        shelf.close()
        raise
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    if on_ready is not None:
        for note in shelf.notes:
            on_ready(f"note: {note}")
        on_ready(
            f"searchkit: serving {', '.join(sorted(shelf.indexes))} on http://{shown}:{bound} "
            "(OpenAPI at /openapi.json; Ctrl-C or SIGTERM to stop)"
        )
    # Without timeout_graceful_shutdown, uvicorn waits on SIGTERM for every request in
    # flight, so a write that has started is answered (and durable) before the exit;
    # the app's lifespan then closes the indexes.
    config = uvicorn.Config(create_app(shelf, token), log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port is one clear line, and port 0 works."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise UsageError(f"cannot use --host {host}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port"
        ) from None
    return sock
