"""Finds executions that lost their worker, or their queue message, and puts them back to work.

One sweeper runs at a time across the fleet (a Redis lock, ``redis/locks.py``, that expires if its
holder dies). Every worker process runs this loop; whichever holds the lock sweeps. A holder paused
past the lock's expiry may still finish a sweep while the next holder starts one: every move below
is a conditional write in the store (by attempt), and a duplicate queue message is harmless.

- ``running`` with no lease held: its worker died or was cut off. Back to ``queued`` and onto the
  queue, where a worker claims it as the next attempt and resumes it from its last checkpoint; or,
  past the maximum number of attempts, ``failed`` with an error that says why.
- ``queued`` for a while and not on the queue: its message was lost (a crash between store and
  queue, Redis restarted without persistence). Queued again; a duplicate message is harmless, as
  only one claim (queued → running) can succeed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from graphrun import metrics
from graphrun.errors import BackendUnavailableError
from graphrun.events.log import EventLog
from graphrun.events.terminal import terminal_event
from graphrun.redis.errors import UNAVAILABLE
from graphrun.redis.keys import Keys
from graphrun.redis.lease import Leases
from graphrun.redis.locks import Lock
from graphrun.store.base import ExecutionStatus, Store

log = logging.getLogger("graphrun.worker")

BATCH = 200
# A backend away: the sweep is skipped, and the next interval tries again.
_UNAVAILABLE: tuple[type[Exception], ...] = (BackendUnavailableError, *UNAVAILABLE)


class Sweeper:
    def __init__(
        self,
        store: Store,
        redis: Redis,
        keys: Keys,
        leases: Leases,
        events: EventLog,
        enqueue: Callable[[str], Awaitable[None]],
        *,
        interval_s: float,
        max_attempts: int,
        requeue_after_s: float,
        forget_checkpoints: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.redis = redis
        self.keys = keys
        self.leases = leases
        self.events = events
        self.enqueue = enqueue
        self.interval_s = interval_s
        self.max_attempts = max_attempts
        self.requeue_after_s = requeue_after_s
        # An execution failed here has no runner left to delete its checkpoints.
        self.forget_checkpoints = forget_checkpoints
        self.identity = f"{socket.gethostname()}:{os.getpid()}"

    async def run(self) -> None:
        # Held for two intervals and renewed every interval: a holder that dies leaves it to the
        # others within two intervals.
        lock = Lock(self.redis, self.keys.sweeper_lock, ttl_s=self.interval_s * 2, label=self.identity)
        try:
            while True:
                try:
                    if await lock.hold():
                        await self.sweep()
                except _UNAVAILABLE as exc:
                    log.warning("sweep skipped: %s", exc)
                except Exception:
                    log.exception("sweep failed")
                await asyncio.sleep(self.interval_s)
        finally:
            # Leaving (shutdown): another worker may sweep at once instead of after the expiry.
            with suppress(Exception):
                await lock.release()

    async def sweep(self) -> tuple[int, int]:
        """One pass; returns (taken over or failed, re-queued)."""
        lost = 0
        running = await self.store.executions_in(ExecutionStatus.RUNNING, BATCH)
        holders = await self.leases.holders([e.id for e in running])
        # A worker takes the lease right after its claim; give it that moment before calling it lost.
        claimed_before = datetime.now(UTC) - timedelta(seconds=self.leases.ttl_ms / 1000)
        for execution in running:
            if holders.get(execution.id) is not None:
                continue
            if execution.started_at is not None and execution.started_at > claimed_before:
                continue
            lost += 1
            if execution.attempt >= self.max_attempts:
                await self._give_up(execution.id, execution.attempt)
                if execution.thread_id is not None:
                    await self._thread_after_give_up(execution.thread_id, execution.id)
            elif await self.store.requeue_execution(execution.id, execution.attempt) is not None:
                log.warning(
                    "execution %s lost its worker (attempt %s); taking it over", execution.id, execution.attempt
                )
                await self.enqueue(execution.id)
        requeued = 0
        before = datetime.now(UTC) - timedelta(seconds=self.requeue_after_s)
        stale = await self.store.executions_in(ExecutionStatus.QUEUED, BATCH, created_before=before)
        if stale:
            on_queue = await self._queued_ids()
            for execution in stale:
                if on_queue is not None and execution.id not in on_queue:
                    requeued += 1
                    log.warning("execution %s was queued but not on the queue; queueing it again", execution.id)
                    await self.enqueue(execution.id)
        return lost, requeued

    async def _queued_ids(self, limit: int = 100_000) -> set[str] | None:
        """The execution ids waiting on the queue; None for a backlog too long to read (then
        nothing is re-queued rather than flooding the queue with duplicates)."""
        ids: set[str] = set()
        step = 1000
        for start in range(0, limit, step):
            chunk = await self.redis.lrange(self.keys.task_queue, start, start + step - 1)
            for item in chunk:
                try:
                    args = json.loads(item).get("args") or []
                except (ValueError, AttributeError):
                    continue
                if args and isinstance(args[0], str):
                    ids.add(args[0])
            if len(chunk) < step:
                return ids
        return None

    async def _thread_after_give_up(self, thread_id: str, execution_id: str) -> None:
        """A LangGraph thread whose run was given up: ``error`` (its values as last recorded), and
        its next run enqueued, as the worker would have done at the run's end."""
        try:
            ended = await self.store.get_execution(execution_id)
            if ended.status is not ExecutionStatus.FAILED:
                return
            thread = await self.store.get_thread(thread_id)
            await self.store.set_thread_state(
                thread_id, status="error", values=thread.values, interrupts={}, error=ended.error
            )
            if (following := await self.store.next_queued_on_thread(thread_id)) is not None:
                await self.enqueue(following)
        except Exception as exc:  # noqa: BLE001 - the re-queue of long-queued executions is the backstop
            log.warning("thread %s: not updated after its run %s was given up (%s)", thread_id, execution_id, exc)

    async def _give_up(self, execution_id: str, attempt: int) -> None:
        # Take the lease with the same attempt so that this failure is the only write that lands.
        if not await self.leases.acquire(execution_id, attempt):
            return
        try:
            message = (
                f"the worker running this execution was lost {attempt} time(s); "
                f"giving up after {self.max_attempts} attempts (GRAPHRUN_MAX_ATTEMPTS)"
            )
            error = {"type": "WorkerLost", "message": message}
            if await self.store.finish_execution(execution_id, attempt, ExecutionStatus.FAILED, None, error) is None:
                return
            metrics.EXECUTIONS.labels(ExecutionStatus.FAILED.value).inc()
            if self.forget_checkpoints is not None:
                try:
                    await self.forget_checkpoints(execution_id)
                except Exception as exc:  # noqa: BLE001 - only space is lost (they expire)
                    log.info("execution %s: checkpoints not deleted (%s)", execution_id, exc)
            last = await self.events.last_id(execution_id)
            writer = self.events.writer(
                execution_id,
                live_ttl_s=0,
                next_seq=last.seq + 1 if last else 0,
                last_ms=last.ms if last else 0,
            )
            event = terminal_event(execution_id, ExecutionStatus.FAILED, error=error)
            writer.emit(event.kind, **event.data)
            await writer.flush()
            log.warning("execution %s failed: %s", execution_id, message)
        finally:
            await self.leases.release(execution_id, attempt)
