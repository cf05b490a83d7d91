"""The search page at ``/`` and the API docs at ``/docs`` and ``/redoc``, all served from files
in the package (``page/``, and Swagger UI and ReDoc from the ``fastapi-offline`` package), so
that they work without the internet.

The page and these files hold no data: they load without the token (`PageToken`), and the
page asks for the token and sends it with each API call. Each HTML answer carries a
Content-Security-Policy that allows only the server's own scripts and styles: a text shown
by the page can never run as code, even if a bug in the page let it into the markup.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from importlib import resources

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from searchkit.server.asgi import Receive, Scope, Send
from searchkit.server.guards import BearerToken

__all__ = ["DOCS_CSP", "PAGE_CSP", "PageToken", "add_page_routes", "is_page_path"]

_SELF_ONLY = "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
PAGE_CSP = f"{_SELF_ONLY}; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:"
# ReDoc (styled-components) and Swagger UI write <style> elements of their own; scripts stay
# the server's files only. ReDoc's search runs in a worker made from a blob.
DOCS_CSP = (
    f"{_SELF_ONLY}; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:"
)
_HTML = {"/": ("index.html", PAGE_CSP), "/docs": ("docs.html", DOCS_CSP), "/redoc": ("redoc.html", DOCS_CSP)}
PAGE_FILES = "/page"  # searchkit/server/page/
# fastapi_offline/static/: swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png
DOCS_FILES = "/docs-files"
_DOCS_PACKAGE = "fastapi_offline"


def is_page_path(path: str) -> bool:
    """A path of the page or the docs (what `PageToken` lets through without the token)."""
    return path in _HTML or path.startswith((PAGE_FILES + "/", DOCS_FILES + "/"))


class PageToken(BearerToken):
    """`BearerToken`, except that GETs of the page and docs files pass without it.

    A path under /page/ or /docs-files/ can only reach those mounts (Starlette matches the
    prefix, and StaticFiles refuses ``..``), so nothing else is opened by it.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and is_page_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def add_page_routes(app: FastAPI) -> None:
    """``/``, ``/docs``, ``/redoc`` and the files they load; none of them is in the schema."""
    docs = importlib.util.find_spec(_DOCS_PACKAGE) is not None
    for path, (name, csp) in _HTML.items():
        handler = _html(name, csp) if docs or path == "/" else _docs_missing
        app.add_api_route(path, handler, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount(PAGE_FILES, StaticFiles(packages=[("searchkit.server", "page")]), name="page")
    if docs:
        app.mount(DOCS_FILES, StaticFiles(packages=[(_DOCS_PACKAGE, "static")]), name="docs-files")


def _html(name: str, csp: str) -> Callable[[], Awaitable[Response]]:
    body = resources.files("searchkit.server").joinpath("page", name).read_bytes()
    headers = {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        # The address holds the query: no other site is told it.
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }

    async def page() -> Response:
        return Response(body, media_type="text/html", headers=headers)

    return page


async def _docs_missing() -> Response:
    message = (
        f"the API docs pages need the {_DOCS_PACKAGE.replace('_', '-')} package (pip install "
        "fastapi-offline); the schema itself is at /openapi.json"
    )
    return JSONResponse({"error": message}, status_code=503)
