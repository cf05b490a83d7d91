"""The HTTP service, ``searchkit serve``: FastAPI and uvicorn over the `Index` facade.

    run.py      the bind rule, opening the indexes, uvicorn with a graceful shutdown
    served.py   the indexes one server holds: a shared reader and a serialized writer each
    app.py      the routes: parse, make one library call, format, map errors to statuses
    models.py   the request bodies (pydantic), with the limits in their schema
    responses.py  the answers' shapes, for the OpenAPI schema
    guards.py   ASGI middlewares that answer first: the bearer token, the body size
    limits.py   the limits themselves (stdlib only: the client uses them too)
    auth.py     the bind rule (stdlib only)
    asgi.py     the plain ASGI helpers the middlewares share
    client.py   the stdlib (urllib) client behind ``searchkit query --server``

Importing this package, limits or client loads nothing heavy; fastapi, uvicorn and the
model load only when a server starts.
"""
