"""ASGI middlewares that answer before the app does: the bearer token and the body limit."""

from __future__ import annotations

import hmac
from collections.abc import MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from searchkit.server.asgi import ASGIApp, Receive, Scope, Send, header, send_error
from searchkit.server.limits import MAX_BODY_BYTES, too_large_message

__all__ = ["OPEN_PATHS", "BearerToken", "BodyLimit"]

# Load balancers and supervisors probe /health without credentials.
OPEN_PATHS = frozenset({"/health"})


class BearerToken:
    """Every path but OPEN_PATHS needs ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            given = header(scope, b"authorization") or b""
            # compare_digest: the time taken says nothing about how much of the token matched.
            if not hmac.compare_digest(given, self.expected):
                message = "missing or wrong token; send the header 'Authorization: Bearer <token>'"
                await send_error(send, 401, message, [(b"www-authenticate", b"Bearer")])
                return
        await self.app(scope, receive, send)


class BodyTooLarge(HTTPException):
    """Raised from `receive`: FastAPI passes an HTTPException from the body read on to the handlers."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, too_large_message(max_bytes))


class BodyLimit:
    """A body announced over the limit is answered 413 before a byte of it is read; one sent
    without a length (chunked) is cut off as soon as it passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = header(scope, b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_bytes:
            await send_error(send, 413, too_large_message(self.max_bytes))
            return
        received = 0

        async def counted() -> MutableMapping[str, Any]:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)
