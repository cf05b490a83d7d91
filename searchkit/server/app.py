"""The routes of ``searchkit serve``: parse, make one library call, format, map errors.

Every error answers ``{"error": "<one line: what went wrong and what to do>"}``:

    400  UsageError (a bad argument: unknown metric, blank query, a malformed where filter)
    401  missing or wrong token (auth.py)
    404  unknown index or path
    409  ModelMismatchError
    413  a body over limits.MAX_BODY_BYTES, refused before it is read whole
    422  InputError, and bodies that are not JSON or not of the documented shape
    503  LockError: another process is writing that index
    507  StorageError: the disk refused a write (nothing was lost)
    500  a bug, or an index damaged on disk; the server goes on

The search page (``/``) and the API docs (``/docs``, ``/redoc``) are page.py's: files of the
package, served without the token (they hold no data) under a strict Content-Security-Policy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from searchkit import __version__
from searchkit.compare import embed, similarity
from searchkit.errors import (
    CorruptIndexError,
    IndexNotFoundError,
    InputError,
    LockError,
    ModelMismatchError,
    SearchkitError,
    StorageError,
    UsageError,
)
from searchkit.server.guards import BodyLimit
from searchkit.server.limits import too_large_message
from searchkit.server.models import (
    DeleteRequest,
    DocumentsRequest,
    EmbedRequest,
    SearchRequest,
    SimilarityRequest,
)
from searchkit.server.page import PageToken, add_page_routes
from searchkit.server.responses import (
    ERRORS,
    Embeddings,
    Health,
    IndexInfo,
    IndexList,
    SearchResult,
    SearchResults,
    SimilarityResult,
    WriteResult,
)
from searchkit.server.served import Shelf
from searchkit.types import WriteReport

__all__ = ["create_app", "status_for"]

# Most specific first: ModelMismatchError and CorruptIndexError are IndexFileErrors.
_STATUS: list[tuple[type[SearchkitError], int]] = [
    (IndexNotFoundError, 404),
    (ModelMismatchError, 409),
    (CorruptIndexError, 500),
    (UsageError, 400),
    (InputError, 422),
    (LockError, 503),
    (StorageError, 507),
]


def create_app(shelf: Shelf, token: str | None = None) -> FastAPI:
    """The ASGI app over the indexes on `shelf`; with `token`, every path but /health and
    the page's files needs it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # After the last request: a write still in a worker thread finishes before this closes.
        shelf.close()

    app = FastAPI(
        title="searchkit",
        version=__version__,
        summary="Semantic search over indexes built with searchkit.",
        lifespan=lifespan,
        responses=ERRORS,
        # page.py serves both from the package's own files: FastAPI's load from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    _add_error_handlers(app)
    add_page_routes(app)
    _add_index_routes(app, shelf)
    _add_text_routes(app, shelf)
    app.add_middleware(BodyLimit)
    if token is not None:  # added last: runs first, before any body is looked at
        app.add_middleware(PageToken, token=token)
    return app


def _add_index_routes(app: FastAPI, shelf: Shelf) -> None:
    @app.get("/health", response_model=Health)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/indexes", response_model=IndexList)
    def list_indexes() -> dict[str, Any]:
        return {"indexes": [shelf.get(name).info() for name in sorted(shelf.indexes)]}

    @app.get("/indexes/{name}", response_model=IndexInfo)
    def index_info(name: str) -> dict[str, Any]:
        return shelf.get(name).info()

    @app.post("/indexes/{name}/search", response_model=SearchResult | SearchResults)
    def search(name: str, body: SearchRequest) -> dict[str, Any]:
        """``{"query"}`` answers ``{"query", "hits"}``; ``{"queries"}`` answers ``{"results": [...]}``."""
        queries = [body.query] if body.query is not None else list(body.queries or [])
        found = shelf.get(name).search(queries, body.k, body.where, body.mode, body.group_by_parent)
        results = [hits.to_json(q) for q, hits in zip(queries, found, strict=True)]
        return results[0] if body.query is not None else {"results": results}

    @app.post("/indexes/{name}/documents", response_model=WriteResult)
    def upsert(name: str, body: DocumentsRequest) -> dict[str, Any]:
        """Add or update documents by id; durable when this answers."""
        report, items = shelf.get(name).upsert([d.model_dump() for d in body.documents])
        return _write_result(name, report, items)

    @app.post("/indexes/{name}/documents/delete", response_model=WriteResult)
    def delete(name: str, body: DeleteRequest) -> dict[str, Any]:
        """Delete documents by id; unknown ids are counted in the notes, not an error."""
        report, items = shelf.get(name).delete([str(i) for i in body.ids])
        return _write_result(name, report, items)


def _add_text_routes(app: FastAPI, shelf: Shelf) -> None:
    @app.post("/similarity", response_model=SimilarityResult)
    def similarity_matrix(body: SimilarityRequest) -> dict[str, Any]:
        """As ``searchkit similarity --json``, with the first served index's model."""
        return similarity(body.texts, to=body.to, metric=body.metric, embedder=shelf.embedder).to_json()

    @app.post("/embed", response_model=Embeddings)
    def embed_texts(body: EmbedRequest) -> dict[str, Any]:
        """The embeddings of the first served index's model, in input order."""
        return {"embeddings": embed(body.texts, embedder=shelf.embedder).tolist()}


def _write_result(name: str, report: WriteReport, items: int) -> dict[str, Any]:
    return {"index": name, "items": items, **report.to_json(), "notes": report.notes}


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SearchkitError)
    async def searchkit_error(request: Request, exc: SearchkitError) -> JSONResponse:
        status = status_for(exc)
        headers = {"Retry-After": "5"} if isinstance(exc, LockError) else None
        return _error(status, str(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        if "json" not in request.headers.get("content-type", ""):
            return _error(422, "send the body as JSON, with the header 'Content-Type: application/json'")
        return _error(422, _validation_message(exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        messages = {
            404: f"no such path: {request.url.path}; see /openapi.json for the API",
            405: f"{request.method} is not allowed on {request.url.path}; see /openapi.json",
            413: too_large_message(),
        }
        return _error(exc.status_code, messages.get(exc.status_code, str(exc.detail)), exc.headers)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises it after this answer, and uvicorn logs the traceback.
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")


def status_for(exc: SearchkitError) -> int:
    return next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split())}, status_code=status, headers=headers)


def _validation_message(errors: Sequence[Any]) -> str:
    """The first problem of a body, as one line: where, what, and the limit if one was passed."""
    first = errors[0]
    if first.get("type") == "json_invalid":
        return f"the body is not valid JSON ({first.get('ctx', {}).get('error', 'decode error')})"
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    what = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {what}{more}; see /openapi.json for the request shape"
