"""Taking executions off the task queue, as many at once as the admission gate lets in
(``worker/admission.py``: a ceiling, and above a floor only while the event loop keeps up).

A message is taken only when a slot is free: what this process cannot start yet stays on the queue,
for another worker process to take (and for the sweeper to see as queued).

What must stay true: every id taken is handed to ``execute`` (which never raises for an execution's
own failure); stopping takes no more messages, and leaves running executions to the caller
(``wait``), which lets them finish or hands them over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from graphrun.redis.queue import TaskQueue
from graphrun.worker.admission import Admission

log = logging.getLogger("graphrun.worker")


class Receiver:
    def __init__(self, queue: TaskQueue, execute: Callable[[str], Awaitable[None]], slots: Admission) -> None:
        self._queue = queue
        self._execute = execute
        self._slots = slots
        self._running: set[asyncio.Task[None]] = set()

    async def listen(self) -> None:
        """Take and start executions until cancelled (a pop in flight is abandoned with it: a message
        Redis had already handed over is found by the sweeper, queued but not on the queue)."""
        loop = asyncio.get_running_loop()
        while True:
            await self._slots.acquire()
            try:
                execution_id = await self._queue.pop()
            except BaseException:
                self._slots.release()
                raise
            if execution_id is None:
                self._slots.release()
                continue
            task = loop.create_task(self._run(execution_id), name=f"graphrun-execute-{execution_id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, execution_id: str) -> None:
        try:
            await self._execute(execution_id)
        except Exception:  # (execute handles an execution's own failures; this is a last guard)
            log.exception("execution %s: not run to its end", execution_id)
        finally:
            self._slots.release()

    async def wait(self, timeout_s: float) -> None:
        """Wait for the executions started here, at most ``timeout_s``; cancel what is left."""
        if not self._running:
            return
        _done, pending = await asyncio.wait(set(self._running), timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
