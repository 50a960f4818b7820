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

Two kinds of saver use it. The Redis saver hands each write over as a Lua script that checks the
lease and writes in one atomic step (:meth:`RunGate.write`). A database saver
(:mod:`graphrun.checkpoint.ordered`) takes the same turn (:meth:`RunGate.turn`), has the lease
checked in Redis after the events before it (:meth:`RunGate.check_lease`), then writes itself.

What must stay true: a new checkpoint is handed to the writer only after every task-writes call that
started before it, since the checkpoint folds those tasks' results in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import get_checkpoint_id
from redis.typing import EncodableT

from graphrun.errors import FencedError

log = logging.getLogger("graphrun.checkpoint")

# A streamed task's result reaches the runner within a few event-loop turns of its writes; this is
# only a backstop against waiting forever.
RESULT_WAIT_S = 5.0

# KEYS: lease (or ""). ARGV: attempt. 1 while the lease is this attempt's.
_LEASE_HELD = """
if KEYS[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return 1
"""


class OrderedWriter(Protocol):
    """What the gate needs of :class:`graphrun.events.log.EventWriter`."""

    def write_after(self, script: str, keys: list[str], args: list[EncodableT]) -> asyncio.Future[object]: ...

    async def flush(self) -> None: ...


class Gates:
    """Which run's gate each thread's (execution's) checkpoint writes go through: the runner
    attaches one while the execution runs; a thread without one is written straight through."""

    def __init__(self) -> None:
        self._by_thread: dict[str, RunGate] = {}

    def attach(self, thread_id: str, gate: RunGate) -> None:
        self._by_thread[thread_id] = gate

    def detach(self, thread_id: str, gate: RunGate | None = None) -> None:
        """Detach the thread's gate (only if it is still ``gate``, when given: runs of one LangGraph
        thread follow each other, and a later run's gate must not go with an earlier run's end)."""
        if gate is None or self._by_thread.get(thread_id) is gate:
            self._by_thread.pop(thread_id, None)

    def of(self, config: RunnableConfig) -> RunGate | None:
        return self._by_thread.get(str(config["configurable"]["thread_id"]))


class GatedSaver:
    """Mixed into a checkpointer whose runs' writes are ordered and fenced by their
    :class:`RunGate` (it sets ``gates`` in its ``__init__``)."""

    gates: Gates


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
        self._writing: set[asyncio.Event] = set()  # writes past their turn, not done yet
        self.closed = False

    def close(self) -> None:
        """The outcome is decided: whatever the run still writes is refused."""
        self.closed = True

    def has_no_checkpoint(self, config: RunnableConfig) -> bool:
        """Whether looking up the newest checkpoint of ``config``'s namespace can be skipped: a
        first attempt has none there until it wrote one."""
        ns = config["configurable"].get("checkpoint_ns", "")
        return not get_checkpoint_id(config) and self.fresh and ns not in self.namespaces_written

    def task_started(self, task_id: str) -> None:
        """The runner saw this task start: its writes wait for its result."""
        self._results.setdefault(task_id, asyncio.Event())

    def result_seen(self, task_id: str) -> None:
        """The runner processed this task's result (its ``node_end`` is emitted, or never will be)."""
        self._results.setdefault(task_id, asyncio.Event()).set()

    async def write(self, task_id: str | None, script: str, keys: list[str], args: list[EncodableT]) -> None:
        """Queue ``script`` (KEYS[1] = the lease, ARGV[1] = the attempt, then ``keys`` and ``args``;
        it returns 0 when the lease is not held) in its turn.

        Returns once the write is queued, not once it landed: the writer keeps the order, and the
        runner flushes the writer before it stores the outcome. So LangGraph's steps never wait for
        a round trip, and its checkpoint bookkeeping is never behind at the end of a run."""
        async with self.turn(task_id):
            lease_key, attempt = self._fence or ("", 0)
            self._writer.write_after(script, [lease_key, *keys], [str(attempt), *args]).add_done_callback(self._landed)

    @asynccontextmanager
    async def turn(self, task_id: str | None) -> AsyncIterator[None]:
        """Wait for a write's turn: a task's writes (``task_id``) after that task's result, a
        checkpoint (None) after every task's writes that came before it. A checkpoint that follows
        waits until this block is left, and :meth:`settle` waits for it too."""
        handed = asyncio.Event()
        if task_id is not None:
            self._queued.add(handed)
        try:
            if task_id is None:
                for earlier in list(self._queued):
                    await earlier.wait()
            elif (seen := self._results.get(task_id)) is not None and not seen.is_set():
                try:
                    async with asyncio.timeout(RESULT_WAIT_S):  # no extra task: wakes a turn sooner
                        await seen.wait()
                except TimeoutError:
                    log.warning("task %s: its result was not streamed in time; checkpoint written anyway", task_id)
            if self.closed:
                raise FencedError("the execution's outcome is decided; checkpoint not written")
            self._writing.add(handed)
            yield
        finally:
            handed.set()
            self._queued.discard(handed)
            self._writing.discard(handed)

    async def check_lease(self) -> None:
        """Once every event emitted so far is in the log, whether this attempt still holds the lease;
        FencedError if not. (For a saver that writes elsewhere than Redis: the check and its write
        are two steps, see :mod:`graphrun.checkpoint.ordered`.)"""
        if self._fence is None:
            await self._writer.flush()
            return
        lease_key, attempt = self._fence
        held = self._writer.write_after(_LEASE_HELD, [lease_key], [str(attempt)])
        held.add_done_callback(self._landed)
        if not await held:
            raise FencedError(f"attempt {attempt} no longer holds the lease; checkpoint not written")

    async def settle(self) -> None:
        """Wait until everything queued has landed (before reading checkpoints back)."""
        await self._writer.flush()
        for writing in list(self._writing):
            await writing.wait()

    def _landed(self, done: asyncio.Future[object]) -> None:
        if done.cancelled():
            return
        if (exc := done.exception()) is not None or not done.result():
            if not self.refused:
                log.warning("a checkpoint write was refused or failed (%s): this attempt has lost its say", exc)
            self.refused = True
