"""The hottest routes, reached without FastAPI's routing, dependency injection and body validation.

Every run a client makes goes through one of three exchanges: a native submit and its event stream
(``POST /workflows/{id}/executions`` then ``GET /executions/{id}/events``), or a LangGraph run
created and streamed at once (``POST /runs/stream``, ``POST /threads/{id}/runs/stream``). Before
their route code ran, FastAPI matched the path against every route, solved each dependency (key,
state, id checks) as a coroutine, validated the body through pydantic and the answer through its
response model, and ran the after-answer enqueue as a background task on anyio: more CPU than the
route code itself (docs/decisions/0022).

Here a request of one of those shapes calls the same route functions directly, with the same
arguments FastAPI would have passed, and their errors go to the app's own exception handlers. It
takes only the plain case and hands everything else to the full app, unchanged (a body it read is
replayed): a request from a browser origin (CORS answers it there), without a right key (401), with
a body that is not plainly valid (the full app answers 400, 413 or 422 as it always did), with an id
or an event id that does not check out, or a stream whose execution cannot be found (404, 503). So
the answers are the full app's, byte for byte where it matters, and the OpenAPI document still
describes these routes: they are still declared there.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from fastapi import BackgroundTasks
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphrun.api import events, workflows
from graphrun.api.openapi import MAX_WORKFLOW_ID
from graphrun.api.schemas import ExecutionCreate
from graphrun.api.state import AppState
from graphrun.langgraph import runs
from graphrun.langgraph.runbody import RunCreate

_SUBMIT = re.compile(r"/workflows/([1-9][0-9]{0,18})/executions")
_EVENTS = re.compile(r"/executions/([A-Za-z0-9_-]{1,64})/events")
_THREAD_STREAM = re.compile(r"/threads/([^/]+)/runs/stream")
_MAX_TIMEOUT_S = 7 * 24 * 3600  # ExecutionCreate.timeout_s's bound


class FastPath:
    """ASGI middleware, outermost: the plain cases of the hot routes, or the full app."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        state: AppState | None = getattr(scope["app"].state, "graphrun", None)
        if state is None or _header(scope, b"origin") is not None or scope.get("root_path"):
            await self.app(scope, receive, send)
        elif method == "GET" and (m := _EVENTS.fullmatch(path)):
            await self._events(scope, receive, send, state, m.group(1))
        elif method != "POST" or not (state.auth.enabled is False or state.auth.key_ok(Request(scope))):
            await self.app(scope, receive, send)
        elif m := _SUBMIT.fullmatch(path):
            await self._submit(scope, receive, send, state, int(m.group(1)))
        elif path == "/runs/stream":
            await self._run_stream(scope, receive, send, state, None)
        elif m := _THREAD_STREAM.fullmatch(path):
            await self._run_stream(scope, receive, send, state, m.group(1))
        else:
            await self.app(scope, receive, send)

    async def _submit(self, scope: Scope, receive: Receive, send: Send, state: AppState, workflow_id: int) -> None:
        body, raw = await self._json_body(scope, receive)
        timeout_s = body.get("timeout_s") if isinstance(body, dict) else None
        if (
            workflow_id > MAX_WORKFLOW_ID
            or not isinstance(body, dict)
            or type(body.get("input")) is not dict
            or not (timeout_s is None or _seconds(timeout_s))
        ):
            await self.app(scope, _replay(raw, receive), send)
            return
        request = Request(scope, receive)
        background = BackgroundTasks()
        create = ExecutionCreate.model_construct(
            input=body["input"], timeout_s=None if timeout_s is None else float(timeout_s)
        )
        try:
            submitted = await workflows.submit(workflow_id, create, state, request, background)
        except Exception as exc:  # noqa: BLE001 - answered by the app's handlers, or re-raised there
            await _error(scope, receive, send, exc)
            return
        await _json(send, 202, submitted.model_dump_json().encode())
        await background()  # the enqueue, once the answer is on its way (workflows.submitted)

    async def _events(self, scope: Scope, receive: Receive, send: Send, state: AppState, execution_id: str) -> None:
        query = scope.get("query_string", b"")
        last_ids = [value for name, value in scope["headers"] if name == b"last-event-id"]
        if query or len(last_ids) > 1:
            await self.app(scope, receive, send)  # (query parameters: the full app reads them)
            return
        request = Request(scope, receive)
        header = last_ids[0].decode("latin-1") if last_ids else None
        try:
            response = await events.execution_events(execution_id, request, state, header, None, None)
        except Exception:  # noqa: BLE001 - a 401, 400 or 404, or Redis away: the full app answers it
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)

    async def _run_stream(
        self, scope: Scope, receive: Receive, send: Send, state: AppState, thread_id: str | None
    ) -> None:
        body, raw = await self._json_body(scope, receive)
        try:
            run = RunCreate.model_validate(body)
            if thread_id is not None and not runs.UUID.fullmatch(thread_id):
                raise ValueError("not a thread id")
        except Exception:  # noqa: BLE001 - not plainly valid: the full app says why
            await self.app(scope, _replay(raw, receive), send)
            return
        try:
            if thread_id is None:
                response = await runs.stream_stateless_run(run, state)
            else:
                response = await runs.stream_run(thread_id, run, state)
        except Exception as exc:  # noqa: BLE001 - answered by the app's handlers, or re-raised there
            await _error(scope, receive, send, exc)
            return
        await response(scope, receive, send)

    async def _json_body(self, scope: Scope, receive: Receive) -> tuple[Any, bytes | None]:
        """The body parsed as JSON if it plainly is JSON within the size limit; else None. And the
        bytes read, for the full app to read again (None: nothing was read)."""
        content_type = _header(scope, b"content-type")
        length = _header(scope, b"content-length")
        if (
            content_type is None
            or not (content_type == b"application/json" or content_type.startswith(b"application/json;"))
            or length is None
            or not length.isdigit()
            or int(length) > self.max_bytes
        ):
            return None, None
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None, b"".join(chunks)  # (gone: the full app sees the same)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        try:
            return json.loads(raw), raw
        except ValueError:
            return None, raw


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _seconds(value: Any) -> bool:
    """A time limit ExecutionCreate takes as it is: a finite number in (0, 7 days]."""
    return type(value) in (int, float) and math.isfinite(value) and 0 < value <= _MAX_TIMEOUT_S


def _replay(raw: bytes | None, receive: Receive) -> Receive:
    """``receive`` with the body already read (if any was) given back first."""
    if raw is None:
        return receive
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return again


async def _json(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """The app's own answer to ``exc`` (its exception handlers, as Starlette looks them up)."""
    handlers: dict[Any, Any] = scope["app"].exception_handlers
    handler = next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
    if handler is None:
        raise exc
    response = await handler(Request(scope, receive), exc)
    await response(scope, receive, send)
