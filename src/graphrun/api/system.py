"""Health, readiness, metrics and the list of registered graphs."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Response

from graphrun.api.openapi import READY
from graphrun.api.schemas import GraphOut, Readiness
from graphrun.api.state import State, require_key
from graphrun.errors import GraphrunError
from graphrun.metrics import render

public = APIRouter()
router = APIRouter(dependencies=[Depends(require_key)])


@public.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses=READY)
async def readyz(state: State, response: Response) -> dict[str, object]:
    async def check(coro: object) -> str:
        try:
            await asyncio.wait_for(coro, timeout=2.0)  # type: ignore[arg-type]
            return "ok"
        except (GraphrunError, OSError, TimeoutError, Exception) as exc:  # noqa: BLE001
            return f"unavailable: {type(exc).__name__}"

    redis, database = await asyncio.gather(check(state.redis.ping()), check(state.store.ping()))
    ready = redis == "ok" and database == "ok"
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return {"status": "ok" if ready else "unavailable", "redis": redis, "database": database}


# Prometheus's text format, not JSON: said so, so that the document does not promise JSON.
@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}
    },
)
async def metrics() -> Response:
    body, content_type = render()
    return Response(body, media_type=content_type)


@router.get("/graphs", response_model=list[GraphOut])
async def graphs(state: State) -> list[dict[str, str | None]]:
    return state.registry.describe()
