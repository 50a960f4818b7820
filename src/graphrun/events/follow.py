"""Following one execution's log: catch-up from Redis, then live entries from the hub.

What must stay true: the entries yielded are exactly those after the client's cursor, in id order,
each once. Catch-up reads up to the stream's end; the hub delivers everything added after the
subscription started; the overlap is dropped by comparing ids as (ms, seq).

Entries come in batches (everything available at that moment), so that a caller can send a burst
of events to its client in one write.
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


Item = Entry | Truncated

# Rebuilds the terminal event from the stored execution when the log has none (expired, or the
# execution ended without a worker writing it); returns None while the execution is not finished.
TerminalFallback = Callable[[], Awaitable[Event | None]]

CATCH_UP_BATCH = 500
STATUS_CHECK_S = 30.0


class _Cursor:
    def __init__(self, after: StreamId) -> None:
        self.last = after
        self.expected_seq = 0 if after == ZERO else after.seq + 1
        self.done = False

    def take(self, entries: list[Entry], out: list[Item]) -> None:
        """Append the entries after the cursor (and a gap notice before a jump) to ``out``."""
        for entry in entries:
            if self.done or entry.id <= self.last:
                continue
            gap = entry.id.seq - self.expected_seq
            if gap > 0:
                out.append(Truncated(gap))
            self.expected_seq = entry.id.seq + 1
            out.append(entry)
            self.last = entry.id
            if entry.terminal:
                self.done = True


async def follow_batches(
    events: EventLog,
    hub: StreamHub,
    execution_id: str,
    after: StreamId,
    fallback: TerminalFallback,
) -> AsyncIterator[list[Item]]:
    key = events.keys.events(execution_id)
    sub = await hub.subscribe(key)
    cursor = _Cursor(after)
    try:
        while not cursor.done:
            # Catch up from Redis: at the start, and whenever the live buffer overflowed.
            sub.overflowed = False
            sub.buffer.clear()
            while True:
                batch = await events.read(execution_id, cursor.last, CATCH_UP_BATCH)
                out: list[Item] = []
                cursor.take(batch, out)
                if out:
                    yield out
                if cursor.done or len(batch) < CATCH_UP_BATCH:
                    break
            if (
                not cursor.done
                and cursor.last == after
                and (rebuilt := await _expired_terminal(events, execution_id, fallback, cursor))
            ):
                yield [rebuilt]
                return
            # Live.
            last_activity = time.monotonic()
            while not sub.overflowed and not cursor.done:
                if not sub.buffer:
                    sub.wakeup.clear()
                    try:
                        await asyncio.wait_for(sub.wakeup.wait(), timeout=STATUS_CHECK_S)
                    except TimeoutError:
                        if time.monotonic() - last_activity >= STATUS_CHECK_S:
                            # Nothing for a while: the log may have expired under us, or the
                            # execution ended without its terminal event reaching the log.
                            if rebuilt := await _expired_terminal(events, execution_id, fallback, cursor):
                                yield [rebuilt]
                                return
                            last_activity = time.monotonic()
                    continue
                live = list(sub.buffer)
                sub.buffer.clear()
                out = []
                cursor.take(live, out)
                if out:
                    last_activity = time.monotonic()
                    yield out
    finally:
        hub.unsubscribe(sub)


async def _expired_terminal(
    events: EventLog, execution_id: str, fallback: TerminalFallback, cursor: _Cursor
) -> Entry | None:
    """The stored outcome as a terminal entry, if the execution is finished and its log is gone.

    The stored status is read *before* the log is checked: a worker writes the log's first entry
    before it stores a final status, so a finished execution without a log really lost it (it
    expired); the other order would take a run that started and ended in between for one.
    """
    terminal = await fallback()
    if terminal is None or await events.exists(execution_id):
        return None
    ms = max(int(terminal.ts * 1000), cursor.last.ms)
    return Entry(StreamId(ms, cursor.expected_seq), terminal.kind.value, terminal.payload())


async def follow(
    events: EventLog,
    hub: StreamHub,
    execution_id: str,
    after: StreamId,
    fallback: TerminalFallback,
) -> AsyncIterator[Item]:
    """:func:`follow_batches`, one item at a time."""
    async for batch in follow_batches(events, hub, execution_id, after, fallback):
        for item in batch:
            yield item


__all__ = ["EventKind", "Item", "Truncated", "follow", "follow_batches"]
