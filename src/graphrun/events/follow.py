"""Following one execution's log: catch-up from Redis, then live entries from the hub.

What must stay true: the entries yielded are exactly those after the client's cursor, in id order,
each once. Catch-up reads up to the stream's end; the hub delivers everything added after the
subscription started; the overlap is dropped by comparing ids as (ms, seq).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from graphrun.events.hub import StreamHub
from graphrun.events.ids import ZERO, StreamId
from graphrun.events.log import EventLog
from graphrun.events.model import Entry, Event, EventKind


@dataclass(frozen=True, slots=True)
class Truncated:
    """Entries the client asked for were trimmed away before it read them."""

    missed: int


# Rebuilds the terminal event from the stored execution when the log has none (expired, or the
# execution ended without a worker writing it); returns None while the execution is not finished.
TerminalFallback = Callable[[], Awaitable[Event | None]]

CATCH_UP_BATCH = 500
STATUS_CHECK_S = 30.0


async def follow(
    events: EventLog,
    hub: StreamHub,
    execution_id: str,
    after: StreamId,
    fallback: TerminalFallback,
) -> AsyncIterator[Entry | Truncated]:
    key = events.keys.events(execution_id)
    sub = await hub.subscribe(key)
    cursor = after
    expected_seq = 0 if after == ZERO else after.seq + 1

    def check_gap(entry: Entry) -> Truncated | None:
        nonlocal expected_seq
        gap = entry.id.seq - expected_seq
        expected_seq = entry.id.seq + 1
        return Truncated(gap) if gap > 0 else None

    try:
        while True:
            # Catch up from Redis: at the start, and whenever the live buffer overflowed.
            sub.overflowed = False
            sub.buffer.clear()
            while True:
                batch = await events.read(execution_id, cursor, CATCH_UP_BATCH)
                for entry in batch:
                    if (gap := check_gap(entry)) is not None:
                        yield gap
                    yield entry
                    cursor = entry.id
                    if entry.terminal:
                        return
                if len(batch) < CATCH_UP_BATCH:
                    break
            if cursor == after and not await events.exists(execution_id):
                terminal = await fallback()
                if terminal is not None:
                    yield _rebuilt(terminal, cursor)
                    return
            # Live.
            last_activity = time.monotonic()
            while not sub.overflowed:
                if not sub.buffer:
                    sub.wakeup.clear()
                    try:
                        await asyncio.wait_for(sub.wakeup.wait(), timeout=STATUS_CHECK_S)
                    except TimeoutError:
                        if time.monotonic() - last_activity >= STATUS_CHECK_S:
                            # Nothing for a while: the log may have expired under us, or the
                            # execution ended without its terminal event reaching the log.
                            terminal = await fallback()
                            if terminal is not None and not await events.exists(execution_id):
                                yield _rebuilt(terminal, cursor)
                                return
                            last_activity = time.monotonic()
                    continue
                entry = sub.buffer.popleft()
                if entry.id <= cursor:
                    continue
                last_activity = time.monotonic()
                if (gap := check_gap(entry)) is not None:
                    yield gap
                yield entry
                cursor = entry.id
                if entry.terminal:
                    return
    finally:
        hub.unsubscribe(sub)


def _rebuilt(event: Event, cursor: StreamId) -> Entry:
    ms = max(int(event.ts * 1000), cursor.ms)
    return Entry(StreamId(ms, cursor.seq + 1 if cursor != ZERO else 0), event.kind.value, event.payload())


__all__ = ["EventKind", "Truncated", "follow"]
