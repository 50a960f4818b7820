"""The SSE stream of one execution (API.md §3)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, HTTPException, Query, Request

from graphrun.api.openapi import STREAM, ExecutionIdPath, check_execution_id
from graphrun.api.sse import SSEResponse
from graphrun.api.state import AppState, State
from graphrun.events.follow import Item, Truncated, follow_batches
from graphrun.events.ids import ZERO, StreamId
from graphrun.events.model import Event, EventKind
from graphrun.events.terminal import stored_terminal_event
from graphrun.metrics import SSE_CLIENTS
from graphrun.store.base import ExecutionStatus

router = APIRouter()

# Plain LF framing, as API.md §3 shows it (sse-starlette's default is CRLF).
SEP = "\n"


def _frame(execution_id: str, item: Item) -> bytes:
    # The data is one line of JSON (its string escapes hold any newline), so a frame is safe to
    # build directly.
    if isinstance(item, Truncated):
        # No id: the client's Last-Event-ID stays on the last event it really received.
        data = Event(EventKind.TRUNCATED, execution_id, {"missed": item.missed}).payload()
        return f"event: {EventKind.TRUNCATED.value}{SEP}data: {data}{SEP}{SEP}".encode()
    return f"id: {item.id}{SEP}event: {item.kind}{SEP}data: {item.data}{SEP}{SEP}".encode()


PING = f": ping{SEP}{SEP}".encode()


async def _stored_terminal(state: AppState, execution_id: str) -> Event | None:
    execution = await state.store.get_execution(execution_id)
    return stored_terminal_event(execution, default_timeout_s=state.settings.execution_timeout_s)


@router.get("/executions/{execution_id}/events", name="execution_events", response_class=SSEResponse, responses=STREAM)
async def execution_events(
    execution_id: ExecutionIdPath,
    request: Request,
    state: State,
    last_event_id_header: str | None = Header(None, alias="Last-Event-ID"),
    last_event_id: str | None = Query(None),
    token: str | None = Query(None),
) -> SSEResponse:
    if (
        state.auth.enabled
        and not state.auth.key_ok(request)
        and (token is None or not state.auth.token_ok(execution_id, token))
    ):
        raise HTTPException(401, "missing or wrong API key or events token", headers={"WWW-Authenticate": "Bearer"})
    check_execution_id(execution_id)  # after the key: without one, no answer says anything about ids
    raw = last_event_id_header or last_event_id
    after = StreamId.parse(raw) if raw else ZERO
    execution = await state.store.get_execution(execution_id)  # 404 before the stream starts
    # One Redis call before the stream starts, so that a Redis outage is a 503, not a broken stream.
    # For an execution that has not run yet it is the follow hint: whoever follows it is watching
    # and can stop it mid-node, so its worker need not hold it for a cancel (cancel.py).
    if execution.status is ExecutionStatus.QUEUED or (
        execution.status is ExecutionStatus.RUNNING and execution.attempt == 1
    ):
        await state.cancels.followed(execution_id)
    else:
        await state.redis.ping()

    async def frames() -> AsyncIterator[bytes]:
        # Counted while the stream runs: sse-starlette closes this generator when the client goes
        # away (or the stream ends), which runs the finally.
        SSE_CLIENTS.inc()
        try:
            async for batch in follow_batches(
                state.events, state.hub, execution_id, after, lambda: _stored_terminal(state, execution_id)
            ):
                # A burst of events goes out in one write.
                yield b"".join(_frame(execution_id, item) for item in batch)
        finally:
            SSE_CLIENTS.dec()

    return SSEResponse(frames(), ping_s=state.settings.heartbeat_s, ping=PING)
