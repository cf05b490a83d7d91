"""A client for a running ``searchkit serve``, on the stdlib only (urllib, json).

``searchkit query --server URL`` uses it: a cold query then imports neither torch nor
an HTTP library, and prints what a local query prints.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from searchkit.errors import ServiceError
from searchkit.server.auth import is_loopback
from searchkit.server.limits import MAX_BATCH

__all__ = ["search"]


def search(
    server: str,
    index: str,
    queries: Sequence[str],
    k: int,
    token: str | None = None,
    timeout: float = 60,
    where: dict[str, Any] | None = None,
    mode: str = "dense",
    group_by_parent: bool = False,
) -> list[dict[str, Any]]:
    """``{"query", "mode", "exact", "hits"}`` for each query, asked of the index named
    `index` at `server`."""
    path = f"/indexes/{urllib.parse.quote(index, safe='')}/search"
    results: list[dict[str, Any]] = []
    for start in range(0, len(queries), MAX_BATCH):  # the server's limit per request
        body = {"queries": list(queries[start : start + MAX_BATCH]), "k": k, "mode": mode}
        if group_by_parent:
            body["group_by_parent"] = True
        if where is not None:
            body["where"] = where
        results.extend(post(server, path, body, token, timeout)["results"])
    return results


def post(server: str, path: str, body: Any, token: str | None = None, timeout: float = 60) -> Any:
    """POST `body` as JSON; the decoded answer, or a ServiceError that says what the server said."""
    base = server.rstrip("/")
    parsed = urllib.parse.urlsplit(base)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ServiceError(f"--server must be a URL like http://127.0.0.1:8000, not {server!r}")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
    )
    # A proxy from the environment must not see (or break) a call to this machine.
    handlers = [urllib.request.ProxyHandler({})] if is_loopback(parsed.hostname) else []
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise ServiceError(f"{base} answered {exc.code}: {_error_of(exc)}") from None
    except urllib.error.URLError as exc:
        raise ServiceError(
            f"cannot reach the searchkit server at {base} ({exc.reason}); "
            "start it with searchkit serve INDEX, or query without --server"
        ) from None
    except (OSError, ValueError) as exc:  # a reset connection, a timeout, a body that is not JSON
        raise ServiceError(f"no usable answer from {base} ({exc})") from None


def _error_of(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read())["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return str(exc.reason)
