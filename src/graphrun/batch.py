"""Group commit for Redis: the commands that a process's coroutines send at about the same moment go
to Redis in one pipeline.

Why: a worker runs many executions at once, and each sends a few small commands per step (its
events, its checkpoint writes, lease and cancel checks); an API process does the same for every
submit and every stream it opens. Each round trip costs both this process and Redis a socket write
and a read, and redis-py a connection checkout and its per-call bookkeeping. Sent one caller at a
time, those fixed costs were most of a run's Redis cost (bench/FINDINGS.md). Here callers queue
their commands and one sender sends everything queued as one pipeline; while that pipeline is in
flight the next one fills. A caller alone pays what it paid before: one round trip. Under load,
when each turn of the loop has many callers, the batches grow by themselves.

What must stay true:
- the commands of one :meth:`CommandBatcher.execute` call run in Redis in the order given, and a call
  made after another call returned runs after it (one pipeline is in flight at a time, and pipelines
  go out in the order they were filled);
- one caller's failing command fails only that command (its exception is its result), and commands
  that break the whole pipeline (an argument that cannot be encoded) fail only their caller; a lost
  connection fails every call of that pipeline, each of which may retry;
- a caller that stops waiting (cancelled) does not disturb the others: its commands may still run;
- a pipeline is as large as what was queued, so a caller may wait behind a large one (a chatty run's
  batch of events): lease renewals, whose lateness matters, do not go through the batcher.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError
from redis.typing import EncodableT

from graphrun.aio import cancel_and_wait

Command = Sequence[EncodableT]


class CommandBatcher:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._queued: list[_Call] = []
        self._sender: asyncio.Task[None] | None = None
        self._closed = False
        self.pipelines = 0  # sent so far (tests and benchmarks read it)

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Run ``commands`` in order; their replies, each failing command's exception in its place."""
        if self._closed:
            raise RedisConnectionError("the process's Redis batcher is closed (shutting down)")
        if not commands:
            return []
        done: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._queued.append((commands, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_all(), name="graphrun-redis-batch")
        return await done

    async def call(self, *command: EncodableT) -> Any:
        """One command; raises its error."""
        (reply,) = await self.execute((command,))
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def close(self) -> None:
        """Shutting down: whoever still waits gets a connection error (as if Redis were gone), and
        so do later calls."""
        self._closed = True
        if self._sender is not None:
            await cancel_and_wait(self._sender)

    async def _send_all(self) -> None:
        # No extra turn of the loop before sending: this task starts on the loop's next turn, after
        # every caller of this one has queued, and later batches fill while one is in flight.
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                await self._send(batch)
            except asyncio.CancelledError:  # closing: nobody waits forever
                _fail(batch + self._queued, RedisConnectionError("the process's Redis batcher was closed"))
                self._queued = []
                raise

    async def _send(self, batch: list[_Call]) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            for commands, _ in batch:
                for command in commands:
                    pipe.execute_command(*command)
            self.pipelines += 1
            replies = await pipe.execute(raise_on_error=False)
        except DataError as exc:
            # An argument redis-py cannot encode: raised while packing, before anything was sent, so
            # sending each caller's commands alone is safe, and only that caller fails.
            if len(batch) == 1:
                _fail(batch, exc)
                return
            for call in batch:
                await self._send([call])
            return
        except Exception as exc:  # noqa: BLE001 - a lost connection (each caller decides whether to
            # retry), or a reply that cannot be parsed (maybe sent: not resent)
            _fail(batch, exc)
            return
        start = 0
        for commands, done in batch:
            end = start + len(commands)
            if not done.done():
                done.set_result(list(replies[start:end]))
            start = end


_Call = tuple[Sequence[Command], "asyncio.Future[list[Any]]"]


def _fail(calls: list[_Call], exc: BaseException) -> None:
    for _, done in calls:
        if not done.done():  # (a caller that stopped waiting)
            done.set_exception(exc)
