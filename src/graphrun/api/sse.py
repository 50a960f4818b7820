"""A server-sent event stream as a plain ASGI response: the frames of an async iterator, heartbeats,
and the stream's end when its client goes away or the server shuts down.

Why not sse-starlette's ``EventSourceResponse``: per response it starts an anyio task group with four
tasks (the stream, the heartbeat, the disconnect listener, the shutdown listener), a send lock and a
cancel scope around every send. Under load that bookkeeping was about a fifth of an API process's
CPU (docs/decisions/0020). Here a response costs the task that serves it and one more, the
*watcher*: it waits for the client's disconnect, sends the heartbeat when it is due, and on a
disconnect cancels the serving task, whose iterator then closes (its ``finally`` runs: the stream
hub's subscription, a LangGraph run's cancel on disconnect). One poller per event loop, started
only while streams are open, ends them all when the server begins to shut down, as sse-starlette's
shutdown watcher does (the same signals: its ``AppStatus.should_exit`` and Uvicorn's own flag).

What must stay true: the iterator is closed whatever ends the response (its end, a disconnect, a
shutdown, a failed send, the serving task's own cancellation); frames and heartbeats are written
whole, never interleaved; a HEAD request gets the headers and no stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from sse_starlette.sse import AppStatus  # importing it also hooks Uvicorn's exit handler
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

log = logging.getLogger("graphrun.api")

SHUTDOWN_POLL_S = 0.5
_END = {"type": "http.response.body", "body": b"", "more_body": False}


class SSEResponse(Response):
    def __init__(
        self,
        frames: AsyncIterator[bytes],
        *,
        ping_s: float,
        ping: bytes,
        headers: Mapping[str, str] | None = None,
        status_code: int = 200,  # (FastAPI reads the default for the OpenAPI document)
    ) -> None:
        # On the instance, not the class: FastAPI documents a route's other answers (404, 503) in its
        # response class's media type, and those are JSON.
        self.media_type = "text/event-stream"
        self.frames = frames
        self.ping_s = ping_s
        self.ping = ping
        self.status_code = status_code
        self.background = None
        # As sse-starlette sent them: no-store unless the caller says otherwise, keep-alive, no buffering.
        fixed = {"Connection": "keep-alive", "X-Accel-Buffering": "no"}
        self.init_headers({"Cache-Control": "no-store", **(headers or {}), **fixed})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if scope.get("method") == "HEAD":
            await send(_END)
            await _close(self.frames)
            return
        task = asyncio.current_task()
        assert task is not None
        stream = _Stream(task, send, self.ping)
        watcher = asyncio.get_running_loop().create_task(stream.watch(receive, self.ping_s))
        _Shutdown.register(stream)
        try:
            async for chunk in self.frames:
                stream.sending = True
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                stream.sending = False
            await send(_END)
        except asyncio.CancelledError:
            # Our own cancel (the client left, the server stops) ends the response quietly; any
            # other (the server's shutdown timeout) goes on.
            if stream.stopped is None or task.uncancel() > 0:
                raise
            if stream.stopped == "shutdown":
                with contextlib.suppress(Exception):
                    await send(_END)
        finally:
            watcher.cancel()
            _Shutdown.unregister(stream)
            await _close(self.frames)


async def _close(frames: AsyncIterator[bytes]) -> None:
    """Close the iterator (an async generator suspended at a yield runs its ``finally`` now)."""
    aclose = getattr(frames, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            log.exception("closing an event stream failed")


class _Stream:
    def __init__(self, task: asyncio.Task[Any], send: Send, ping: bytes) -> None:
        self.task = task
        self.send = send
        self.ping = ping
        self.sending = False
        self.stopped: str | None = None  # why this module cancelled the serving task

    def stop(self, why: str) -> None:
        if self.stopped is None:
            self.stopped = why
            self.task.cancel()

    async def watch(self, receive: Receive, ping_s: float) -> None:
        """Until the client disconnects: a heartbeat every ``ping_s`` (none if 0)."""
        while True:
            if ping_s > 0:
                try:
                    async with asyncio.timeout(ping_s):
                        message = await receive()
                except TimeoutError:
                    if not self.sending:  # a frame is being written: the heartbeat is not needed
                        await self.send({"type": "http.response.body", "body": self.ping, "more_body": True})
                    continue
            else:
                message = await receive()
            if message["type"] == "http.disconnect":
                self.stop("disconnect")
                return


class _Shutdown:
    """The open streams of each event loop, and the one poller that ends them at shutdown."""

    _streams: ClassVar[dict[asyncio.AbstractEventLoop, set[_Stream]]] = {}
    _pollers: ClassVar[dict[asyncio.AbstractEventLoop, asyncio.Task[None]]] = {}

    @classmethod
    def register(cls, stream: _Stream) -> None:
        loop = asyncio.get_running_loop()
        cls._streams.setdefault(loop, set()).add(stream)
        if loop not in cls._pollers:
            cls._pollers[loop] = loop.create_task(cls._poll(loop), name="graphrun-sse-shutdown")

    @classmethod
    def unregister(cls, stream: _Stream) -> None:
        cls._streams.get(asyncio.get_running_loop(), set()).discard(stream)

    @classmethod
    async def _poll(cls, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while cls._streams.get(loop):
                if _exiting():
                    for stream in list(cls._streams[loop]):
                        stream.stop("shutdown")
                await asyncio.sleep(SHUTDOWN_POLL_S)
        finally:
            cls._pollers.pop(loop, None)
            if not cls._streams.get(loop):
                cls._streams.pop(loop, None)


def _exiting() -> bool:
    """Whether the server is shutting down: sse-starlette's flag (its hook on Uvicorn's exit handler),
    or the flag of the Uvicorn server whose handler takes SIGTERM."""
    if AppStatus.should_exit:
        return True
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    return bool(AppStatus.enable_automatic_graceful_drain and getattr(server, "should_exit", False))
