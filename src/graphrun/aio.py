"""Small asyncio helpers shared by the processes' composition roots and the stores."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")

STUBBORN_S = 5.0
"""A task still running this long after its first cancel is reported, with where it waits."""


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` until it has ended. redis-py can swallow a cancel that lands while it is
    connecting or subscribing, and a single cancel would then leave the caller waiting forever."""
    reported_at = time.monotonic() + STUBBORN_S
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)
        if not task.done() and time.monotonic() > reported_at:
            reported_at = float("inf")
            where = io.StringIO()
            task.print_stack(file=where)
            log.warning("task %s ignores cancellation; it waits at:\n%s", task.get_name(), where.getvalue())
    with suppress(asyncio.CancelledError, Exception):
        task.result()


Outcome = tuple[bool, Any]
"""What one call of a group came to: (True, its result) or (False, the exception it raised)."""


class GroupedThread(Generic[Item]):
    """Calls to a thread, grouped: the calls queued while a group runs on the thread go together as
    the next group, in one hop (group commit). A caller alone pays one hop, as with
    ``run_in_executor``; under load each hop carries many calls, and the thread hand-offs and
    wake-ups, which cost more than a small SQLite statement, are paid once per group.

    ``run_group`` runs a group on the thread and returns one outcome per item, in order.

    What must stay true: items run in the order they were queued; a caller that stops waiting
    before its item was taken is dropped, one whose item was taken gets nothing but the item still
    runs whole (a caller's cancel never stops a write half way); one group is on the thread at a
    time.
    """

    def __init__(
        self, executor: ThreadPoolExecutor, run_group: Callable[[list[Item]], list[Outcome]], *, name: str
    ) -> None:
        self._executor = executor
        self._run_group = run_group
        self._name = name
        self._queued: list[tuple[Item, asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None
        self.groups = 0  # sent so far (tests and benchmarks read it)

    async def call(self, item: Item) -> Any:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self._queued.append((item, done))
        if self._sender is None or self._sender.done():
            self._sender = loop.create_task(self._send_all(), name=self._name)
        return await done

    async def wait_idle(self) -> None:
        """Until every queued call has run (before shutting the executor down)."""
        if self._sender is not None:
            await asyncio.wait([self._sender])

    async def _send_all(self) -> None:
        # Starts on the loop's next turn, after every caller of this one has queued; later calls
        # queue while a group is on the thread, and go as the next group.
        loop = asyncio.get_running_loop()
        while self._queued:
            group = [call for call in self._queued if not call[1].done()]  # (a caller that gave up)
            self._queued = []
            if not group:
                continue
            self.groups += 1
            items = [item for item, _ in group]
            try:
                outcomes = await asyncio.shield(loop.run_in_executor(self._executor, self._run_group, items))
            except BaseException as exc:  # this task cancelled (shutting down) or the executor shut down
                error = exc if isinstance(exc, Exception) else RuntimeError(f"{self._name}: shut down")
                for _, done in group + self._queued:
                    if not done.done():
                        done.set_exception(error)
                self._queued = []
                raise
            for (_, done), (ok, value) in zip(group, outcomes, strict=True):
                if done.done():
                    continue
                if ok:
                    done.set_result(value)
                else:
                    done.set_exception(value)


def run_each(calls: list[Callable[[], Any]]) -> list[Outcome]:
    """A ``run_group`` for independent calls: each in turn, each one's exception its own."""
    outcomes: list[Outcome] = []
    for fn in calls:
        try:
            outcomes.append((True, fn()))
        except Exception as exc:  # noqa: BLE001 - that caller's error
            outcomes.append((False, exc))
    return outcomes
