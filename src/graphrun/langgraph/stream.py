"""A run's event log as LangGraph's server streams it (SSE), and waiting for a run's end.

A LangGraph run has one event log, the execution's: the worker writes the native ``start`` and
terminal events around one ``lg:<event>`` entry per translated chunk, whose data is the SSE
``data:`` JSON as is. This module only frames: ``id: <entry id>``, ``event: <kind[3:]>``,
``data: <data>``.

What must stay true:
- ``metadata`` comes first when a client streams from the start, ``end`` last, always; an ``error``
  event before ``end`` when the run failed or timed out;
- every event has an ``id:``, and a client that reconnects with the last one it got
  (``Last-Event-ID``) gets exactly the events after it: ``metadata`` has the id before the log's
  first entry, ``error`` and ``end`` the terminal entry's;
- a run that ended is replayed from its log, and its end is sent even to a client that already had
  everything else.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from graphrun.api.sse import SSEResponse
from graphrun.api.state import AppState
from graphrun.errors import BadEventIdError
from graphrun.events.follow import Truncated, follow_batches
from graphrun.events.ids import ZERO, StreamId
from graphrun.events.model import LG_PREFIX, Entry, Event, EventKind
from graphrun.events.terminal import stored_terminal_event
from graphrun.langgraph.serde import dumps
from graphrun.metrics import SSE_CLIENTS
from graphrun.store.base import Execution

SEP = "\n"
HEARTBEAT_S = 5.0
HEARTBEAT = f": heartbeat{SEP}{SEP}".encode()


def parse_last_event_id(raw: str | None) -> StreamId:
    """A ``Last-Event-ID``: none or ``-1`` means from the start; a malformed one is a 400."""
    if raw is None or raw.strip() in ("", "-1"):
        return ZERO
    return StreamId.parse(raw.strip())  # BadEventIdError (400) when it is not an entry id


def _frame(entry_id: StreamId | str, name: str, data: str) -> bytes:
    return f"id: {entry_id}{SEP}event: {name}{SEP}data: {data}{SEP}{SEP}".encode()


def _failure(entry: Entry) -> str | None:
    """The ``error`` event's data for a terminal entry, None when the run did not fail."""
    if entry.kind not in (EventKind.ERROR.value, EventKind.TIMEOUT.value):
        return None
    try:
        data = json.loads(entry.data)
    except ValueError:
        data = {}
    if entry.kind == EventKind.TIMEOUT.value:
        return dumps({"error": "TimeoutError", "message": f"run timed out after {data.get('timeout_s')} s"})
    error = data.get("error") or {}
    return dumps({"error": error.get("type", "Error"), "message": error.get("message", "")})


async def _stored_terminal(state: AppState, execution_id: str) -> Event | None:
    execution = await state.store.get_execution(execution_id)
    return stored_terminal_event(execution, default_timeout_s=state.settings.execution_timeout_s)


async def run_frames(state: AppState, execution: Execution, after: StreamId) -> AsyncIterator[bytes]:
    """The SSE frames of a run after ``after``, until its ``end``."""
    if after == ZERO:
        yield _frame(ZERO, "metadata", dumps({"run_id": execution.id, "attempt": max(execution.attempt, 1)}))
    if execution.status.finished:
        last = await state.events.last_id(execution.id)
        if last is not None and after >= last:  # it had everything but, maybe, the end
            yield _frame(after, "end", "null")
            return
    async for batch in follow_batches(
        state.events, state.hub, execution.id, after, lambda: _stored_terminal(state, execution.id)
    ):
        out: list[bytes] = []
        for item in batch:
            if isinstance(item, Truncated):
                continue  # LangGraph's format has no word for a trimmed log
            if item.kind.startswith(LG_PREFIX):
                out.append(_frame(item.id, item.kind[len(LG_PREFIX) :], item.data))
            elif item.terminal:
                if (failure := _failure(item)) is not None:
                    out.append(_frame(item.id, "error", failure))
                out.append(_frame(item.id, "end", "null"))
        if out:
            yield b"".join(out)


async def wait_ended(state: AppState, execution: Execution) -> Execution:
    """Wait until the run has ended (its log's terminal entry); the run as stored then."""
    if not execution.status.finished:
        async for batch in follow_batches(
            state.events, state.hub, execution.id, ZERO, lambda: _stored_terminal(state, execution.id)
        ):
            if any(not isinstance(i, Truncated) and i.terminal for i in batch):
                break
    return await state.store.get_execution(execution.id)


def sse_response(
    state: AppState,
    frames: AsyncIterator[bytes],
    headers: dict[str, str],
    on_close: Callable[[bool], Any] | None = None,
) -> SSEResponse:
    """``frames`` as an SSE response with heartbeats; ``on_close(ended)`` runs when it stops, with
    whether the run's ``end`` was sent (a client gone before it is a disconnect)."""

    async def guarded() -> AsyncIterator[bytes]:
        SSE_CLIENTS.inc()
        ended = False
        try:
            async for chunk in frames:
                ended = chunk.endswith(b"event: end\ndata: null\n\n")
                yield chunk
        finally:
            SSE_CLIENTS.dec()
            if on_close is not None:
                on_close(ended)

    return SSEResponse(guarded(), ping_s=min(state.settings.heartbeat_s, HEARTBEAT_S), ping=HEARTBEAT, headers=headers)


__all__ = ["BadEventIdError", "parse_last_event_id", "run_frames", "sse_response", "wait_ended"]
