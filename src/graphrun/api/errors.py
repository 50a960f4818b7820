"""The one place where graphrun's exceptions become HTTP answers."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from graphrun.errors import (
    BackendUnavailableError,
    BadEventIdError,
    ConflictError,
    GraphrunError,
    NotFoundError,
    StoreError,
    UnknownGraphError,
)

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


async def _redis_error(_request: Request, exc: Exception) -> JSONResponse:
    return _detail(503, f"redis is unavailable; try again shortly ({exc})")


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            return _detail(400, f"malformed JSON body: {err.get('ctx', {}).get('error', err.get('msg'))}")
    # jsonable_encoder: an error's "input" may be bytes (a body sent without a JSON content type).
    return _detail(422, jsonable_encoder([{k: v for k, v in e.items() if k != "url"} for e in errors]))


def install(app: FastAPI) -> None:
    app.add_exception_handler(GraphrunError, _graphrun_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RedisConnectionError, _redis_error)
    app.add_exception_handler(RedisTimeoutError, _redis_error)
