"""The task queue: one Redis list of execution ids, pushed by the API (LPUSH) and popped by workers
(BRPOP), in TaskIQ's message format.

A message carries only the execution id; everything else is read from the store, so the queue never
holds anything a worker would have to trust or unpickle.

Why a list and not a stream broker: a stream broker re-claims a message that stays unacknowledged
longer than its idle timeout, so a long execution is handed to a second worker while the first still
runs; its stream also grows unless trimmed. A list hands each message to exactly one worker, once.
What a list alone would lose (the message of a worker that dies) is recovered by graphrun itself:
executions hold leases, and the sweeper re-queues what lost its worker or its message
(``worker/sweeper.py``).

Why not TaskIQ's broker any more, though the messages are still TaskIQ's JSON: its kicker built and
validated a pydantic message and went through its kick machinery on every submit, about 3% of an API
process's instructions per run, for a message that carries one id (docs/decisions/0021). The workers
take messages with graphrun's own receiver (``worker/receive.py``) on the same module; TaskIQ's
receiver cost nothing measurable there. The format is unchanged, so a worker or API of an earlier
version on the same queue reads and writes the same messages.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from redis.asyncio import Redis

from graphrun.redis.batch import CommandBatcher
from graphrun.redis.connections import ConnectionName, dedicated_client
from graphrun.redis.keys import Keys
from graphrun.redis.retry import RECONNECT

EXECUTE_TASK = "graphrun.execute"

# Shorter than any socket timeout, so an idle queue is not an error.
POP_BLOCK_S = 2

log = logging.getLogger("graphrun.worker")


def message(execution_id: str) -> bytes:
    """The message of one execution, as TaskIQ's kicker wrote it."""
    return json.dumps(
        {
            "task_id": uuid.uuid4().hex,
            "task_name": EXECUTE_TASK,
            "labels": {},
            "labels_types": {},
            "args": [execution_id],
            "kwargs": {},
        }
    ).encode()


def execution_of(raw: bytes | str) -> str | None:
    """The execution id a message carries; None for anything else (logged)."""
    try:
        body: Any = json.loads(raw)
        task, args = body["task_name"], body["args"]
    except (ValueError, TypeError, KeyError):
        log.warning("task queue: a message that is not a task was skipped: %.200r", raw)
        return None
    if task != EXECUTE_TASK or not args or not isinstance(args[0], str):
        log.warning("task queue: a message for another task (%r) was skipped", task)
        return None
    return args[0]


class TaskQueue:
    """Pushes go through the process's batcher (``batcher``), so a submit's LPUSH shares a round trip
    with the other commands of that moment. Pops block for up to 2 s: sent through the batcher they
    would hold every other command of the process behind them (one pipeline is in flight at a time),
    so they go on a connection of their own, opened on the first pop (an API process never opens it)."""

    def __init__(self, redis_url: str, keys: Keys, *, batcher: CommandBatcher, name: ConnectionName) -> None:
        self.key = keys.task_queue
        self._url = redis_url
        self._name = name
        self._batcher = batcher
        self._popper: Redis | None = None

    async def push(self, execution_id: str) -> None:
        await self._batcher.call("LPUSH", self.key, message(execution_id))

    async def pop(self) -> str | None:
        """The next execution id; None if none came within a while (or the message was not one).
        Rides out Redis outages."""
        popped = await RECONNECT.call(self._pop, f"reading the task queue {self.key}", log)
        return execution_of(popped[1]) if popped is not None else None

    async def _pop(self) -> Any:
        if self._popper is None:
            self._popper = dedicated_client(self._url, name=self._name)
        return await self._popper.brpop([self.key], timeout=POP_BLOCK_S)

    async def close(self) -> None:
        if self._popper is not None:
            await self._popper.aclose()
            self._popper = None
