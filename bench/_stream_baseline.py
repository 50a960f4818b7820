"""The baseline server of bench/stream.py, run as its own process: the article's design, one
blocking XREAD (one Redis connection) per SSE client, as a tiny Starlette app.

    python bench/_stream_baseline.py --port P --redis URL --prefix PREFIX
"""

from __future__ import annotations

import argparse
from typing import Any

HOST = "127.0.0.1"
BASELINE_NAME = "bench-baseline-reader"


def baseline_app(redis_url: str, prefix: str) -> Any:
    from redis.asyncio import Redis
    from sse_starlette import EventSourceResponse, ServerSentEvent
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    terminal = {b"complete", b"error", b"cancelled", b"timeout"}

    async def events(request: Request) -> EventSourceResponse:
        key = f"{prefix}events:{request.path_params['execution_id']}"
        cursor = request.headers.get("last-event-id") or "0-0"

        async def frames() -> Any:
            nonlocal cursor
            # No socket timeout: it would cut the 5 s blocking read (as for graphrun's own reader).
            redis = Redis.from_url(
                redis_url, single_connection_client=True, socket_timeout=None, client_name=BASELINE_NAME
            )
            try:
                for entry_id, fields in await redis.xrange(key, min=f"({cursor}", max="+"):
                    cursor = entry_id.decode()
                    yield ServerSentEvent(data=fields[b"d"].decode(), event=fields[b"k"].decode(), id=cursor, sep="\n")
                    if fields[b"k"] in terminal:
                        return
                while True:
                    for _key, entries in await redis.xread({key: cursor}, count=500, block=5000) or ():
                        for entry_id, fields in entries:
                            cursor = entry_id.decode()
                            kind = fields[b"k"]
                            yield ServerSentEvent(data=fields[b"d"].decode(), event=kind.decode(), id=cursor, sep="\n")
                            if kind in terminal:
                                return
            finally:
                await redis.aclose()

        return EventSourceResponse(frames(), ping=15, sep="\n")

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/executions/{execution_id}/events", events), Route("/healthz", healthz)])


def serve_baseline(port: int, redis_url: str, prefix: str) -> None:
    import uvicorn

    uvicorn.run(
        baseline_app(redis_url, prefix),
        host=HOST,
        port=port,
        log_level="warning",
        access_log=False,
        backlog=4096,
        timeout_graceful_shutdown=5,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--prefix", required=True)
    args = parser.parse_args()
    serve_baseline(args.port, args.redis, args.prefix)


if __name__ == "__main__":
    main()
