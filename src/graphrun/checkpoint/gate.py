"""Orders one execution's checkpoint writes after its events, and fences them with its lease.

Why: a later attempt resumes from the newest checkpoint and skips every task whose result is in it,
and it publishes ``node_end`` only for tasks whose ``node_end`` is not in the log yet. So a task's
result must never be in a checkpoint before its ``node_end`` is in the log, or a crash in between
loses that event for good. LangGraph submits a task's checkpoint writes *before* it streams the
task's result to the runner, so a task's writes wait here until the runner has seen that result (and
emitted ``node_end``, or decided not to). They are then handed to the execution's event writer,
which sends them after every event emitted so far, in the same round trip when it can. Tasks
LangGraph does not stream (hidden ones, such as ``__start__``) were never announced, and their writes
do not wait.

A worker that was paused past its lease must not write checkpoints either: the attempt that took
over may be reading them. Each write checks the lease, as event writes do.

What must stay true: a new checkpoint is handed to the writer only after every task-writes call that
started before it, since the checkpoint folds those tasks' results in.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from redis.typing import EncodableT

from graphrun.errors import FencedError

log = logging.getLogger("graphrun.checkpoint")

# A streamed task's result reaches the runner within a few event-loop turns of its writes; this is
# only a backstop against waiting forever.
RESULT_WAIT_S = 5.0


class OrderedWriter(Protocol):
    """What the gate needs of :class:`graphrun.events.log.EventWriter`."""

    def write_after(self, script: str, keys: list[str], args: list[EncodableT]) -> asyncio.Future[object]: ...

    async def flush(self) -> None: ...


class RunGate:
    def __init__(self, writer: OrderedWriter, fence: tuple[str, int] | None, *, fresh: bool = False) -> None:
        self._writer = writer
        self._fence = fence
        # A first attempt starts with no checkpoint: until it writes one in a namespace, looking one
        # up there needs no round trip.
        self.fresh = fresh
        self.namespaces_written: set[str] = set()
        # Set when a write was refused (the lease moved on) or failed: the run has lost its say.
        self.refused = False
        self._results: dict[str, asyncio.Event] = {}
        self._queued: set[asyncio.Event] = set()  # task writes not yet handed to the writer
        self.closed = False

    def close(self) -> None:
        """The outcome is decided: whatever the run still writes is refused."""
        self.closed = True

    def task_started(self, task_id: str) -> None:
        """The runner saw this task start: its writes wait for its result."""
        self._results.setdefault(task_id, asyncio.Event())

    def result_seen(self, task_id: str) -> None:
        """The runner processed this task's result (its ``node_end`` is emitted, or never will be)."""
        self._results.setdefault(task_id, asyncio.Event()).set()

    async def write(self, task_id: str | None, script: str, keys: list[str], args: list[EncodableT]) -> None:
        """Queue ``script`` (KEYS[1] = the lease, ARGV[1] = the attempt, then ``keys`` and ``args``;
        it returns 0 when the lease is not held) in its turn: a task's writes (``task_id``) after that
        task's result, a checkpoint (None) after every task's writes that came before it.

        Returns once the write is queued, not once it landed: the writer keeps the order, and the
        runner flushes the writer before it stores the outcome. So LangGraph's steps never wait for
        a round trip, and its checkpoint bookkeeping is never behind at the end of a run."""
        handed = asyncio.Event()
        if task_id is not None:
            self._queued.add(handed)
        try:
            if task_id is None:
                for earlier in list(self._queued):
                    await earlier.wait()
            elif (seen := self._results.get(task_id)) is not None:
                try:
                    async with asyncio.timeout(RESULT_WAIT_S):  # no extra task: wakes a turn sooner
                        await seen.wait()
                except TimeoutError:
                    log.warning("task %s: its result was not streamed in time; checkpoint written anyway", task_id)
            if self.closed:
                raise FencedError("the execution's outcome is decided; checkpoint not written")
            lease_key, attempt = self._fence or ("", 0)
            self._writer.write_after(script, [lease_key, *keys], [str(attempt), *args]).add_done_callback(self._landed)
        finally:
            handed.set()
            self._queued.discard(handed)

    async def settle(self) -> None:
        """Wait until everything queued has landed (before reading checkpoints back)."""
        await self._writer.flush()

    def _landed(self, done: asyncio.Future[object]) -> None:
        if done.cancelled():
            return
        if (exc := done.exception()) is not None or not done.result():
            if not self.refused:
                log.warning("a checkpoint write was refused or failed (%s): this attempt has lost its say", exc)
            self.refused = True
