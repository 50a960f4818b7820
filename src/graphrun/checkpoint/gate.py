"""Orders one execution's checkpoint writes after its events, and fences them with its lease.

Why: a later attempt resumes from the newest checkpoint and skips every task whose result is in it,
and it publishes ``node_end`` only for tasks whose ``node_end`` is not in the log yet. So a task's
result must never be in a checkpoint before its ``node_end`` is in the log, or a crash in between
loses that event for good. LangGraph submits a task's checkpoint writes *before* it streams the
task's result to the runner, so the checkpointer waits here: until the runner has seen that result
(and emitted ``node_end``, or decided not to), then until the event writer has flushed. Tasks
LangGraph does not stream (hidden ones, such as ``__start__``) were never announced, and their
writes do not wait.

And a worker that was paused past its lease must not write checkpoints either: the attempt that took
over may be reading them (each write checks the lease, as event writes do).

What must stay true: a new checkpoint is written only after every task-writes call that started
before it has landed, since the checkpoint folds those tasks' results in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

log = logging.getLogger("graphrun.checkpoint")

# A streamed task's result reaches the runner within a few event-loop turns of its writes; this is
# only a backstop against waiting forever.
RESULT_WAIT_S = 5.0


class RunGate:
    def __init__(self, flush: Callable[[], Awaitable[None]], fence: tuple[str, int] | None) -> None:
        self.fence = fence
        self._flush = flush
        self._results: dict[str, asyncio.Event] = {}
        self._in_flight: set[asyncio.Event] = set()
        self.closed = False

    def close(self) -> None:
        """The outcome is decided: whatever the run still writes is refused (see the saver)."""
        self.closed = True

    def task_started(self, task_id: str) -> None:
        """The runner saw this task start: its writes wait for its result."""
        self._results.setdefault(task_id, asyncio.Event())

    def result_seen(self, task_id: str) -> None:
        """The runner processed this task's result (its ``node_end`` is emitted, or never will be)."""
        self._results.setdefault(task_id, asyncio.Event()).set()

    @asynccontextmanager
    async def task_writes(self, task_id: str) -> AsyncIterator[None]:
        landed = asyncio.Event()
        self._in_flight.add(landed)
        try:
            seen = self._results.get(task_id)
            if seen is not None:
                try:
                    await asyncio.wait_for(seen.wait(), RESULT_WAIT_S)
                except TimeoutError:
                    log.warning("task %s: no result streamed; its checkpoint writes go ahead", task_id)
            await self._flush()
            yield
        finally:
            landed.set()
            self._in_flight.discard(landed)

    @asynccontextmanager
    async def checkpoint(self) -> AsyncIterator[None]:
        for landed in list(self._in_flight):
            await landed.wait()
        await self._flush()
        yield
