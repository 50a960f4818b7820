"""The one place where graphrun's exceptions become HTTP answers."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from graphrun.errors import (
    BackendUnavailableError,
    BadEventIdError,
    ConflictError,
    GraphrunError,
    NotFoundError,
    StoreError,
    UnknownGraphError,
)
from graphrun.redis.errors import CLIENT_UNAVAILABLE, unavailable

RETRY_AFTER_S = "5"


def _detail(code: int, detail: object, **extra: object) -> JSONResponse:
    headers = {"Retry-After": RETRY_AFTER_S} if code == 503 else None
    return JSONResponse({"detail": detail, **extra}, status_code=code, headers=headers)


async def _graphrun_error(_request: Request, exc: Exception) -> JSONResponse:
    match exc:
        case NotFoundError():
            return _detail(404, str(exc))
        case ConflictError():
            return _detail(409, str(exc), status=exc.status)
        case UnknownGraphError():
            return _detail(
                422,
                [{"loc": ["body", "graph"], "msg": str(exc), "type": "unknown_graph", "registered": exc.known}],
            )
        case BadEventIdError():
            return _detail(400, str(exc))
        case BackendUnavailableError():
            return _detail(503, f"{exc.backend} is unavailable; try again shortly")
        case StoreError():
            return _detail(400, str(exc))
    return _detail(500, str(exc))


async def _redis_error(request: Request, exc: Exception) -> JSONResponse:
    """Redis unreachable below a route that did not map it itself: mapped as everywhere else."""
    return await _graphrun_error(request, unavailable(exc))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            return _detail(400, f"malformed JSON body: {err.get('ctx', {}).get('error', err.get('msg'))}")
    # jsonable_encoder: an error's "input" may be bytes (a body sent without a JSON content type).
    return _detail(422, jsonable_encoder([{k: v for k, v in e.items() if k != "url"} for e in errors]))


def _allowed(app: FastAPI, path: str) -> set[str]:
    """Every method some route serves at ``path``."""
    # FastAPI 0.16x keeps an included router as one route, holding its routes: walk into it.
    from fastapi.routing import iter_route_contexts

    methods: set[str] = set()
    for route in iter_route_contexts(app.routes):
        regex = getattr(route, "path_regex", None)
        if route.methods and regex is not None and regex.match(path):
            methods |= route.methods
    return methods


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's own answer, but a 405's ``Allow`` lists every method of the path. The router takes
    it from the first route whose path matches, and GET and POST /workflows are two routes, so a
    PATCH /workflows was told ``Allow: POST`` only."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405 and (methods := _allowed(request.app, request.scope["path"])):
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(methods))}
    return await http_exception_handler(request, exc)


def install(app: FastAPI) -> None:
    app.add_exception_handler(GraphrunError, _graphrun_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for redis_unavailable in CLIENT_UNAVAILABLE:
        app.add_exception_handler(redis_unavailable, _redis_error)
