"""Cancel requests, pushed from any API process to the worker that runs the execution.

The API sets a flag key and then publishes the id; a worker registers a running execution and then
checks the flag. Whichever order the two sides interleave in, the worker either receives the push
or sees the flag, so a cancel that races with pick-up is never lost. The API sets the flag before
it even reads the execution, and a worker reads it after its claim and before the graph starts: an
execution the API still found queued therefore never runs a node. A listener that lost Redis
re-reads the flags of what its worker runs once it is subscribed again.

A cancel sent the moment the submit returned still races the worker's pick-up by a millisecond or
two, so a worker holds a fresh execution's first node for a short start grace
(``GRAPHRUN_START_GRACE_MS``, counted from its pick-up). A client that follows the execution's events
is told about through the same bus: it is watching and can stop the run mid-node, so the worker
starts 2 ms after the hint (time for a cancel sent together with the stream's request to land). The
hint is best effort: a lost one costs the grace, never correctness.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from graphrun.redis.batch import CommandBatcher
from graphrun.redis.keys import Keys
from graphrun.redis.pubsub import listen_forever

log = logging.getLogger("graphrun.redis.cancel")

FLAG_TTL_S = 24 * 3600


class CancelBus:
    """Flags, pushes and hints go through ``batcher``, the process's; ``redis`` (its shared client)
    holds the listener's subscription."""

    def __init__(self, redis: Redis, keys: Keys, *, batcher: CommandBatcher) -> None:
        self.redis = redis
        self.batcher = batcher
        self.keys = keys

    async def request(self, execution_id: str, *, push: bool = True) -> None:
        """Set the flag, then (unless ``push`` is False) publish the id to every worker."""
        flag = ("SET", self.keys.cancel_flag(execution_id), b"1", "EX", FLAG_TTL_S)
        commands = [flag, ("PUBLISH", self.keys.cancel_channel, execution_id)] if push else [flag]
        for reply in await self.batcher.execute(commands):
            if isinstance(reply, Exception):
                raise reply

    async def withdraw(self, execution_id: str) -> None:
        await self.batcher.call("DEL", self.keys.cancel_flag(execution_id))

    async def requested(self, execution_id: str) -> bool:
        return bool(await self.batcher.call("EXISTS", self.keys.cancel_flag(execution_id)))

    async def followed(self, execution_id: str) -> None:
        """Tell every worker that a client follows this execution (it need not wait out its grace)."""
        await self.batcher.call("PUBLISH", self.keys.follow_channel, execution_id)

    async def listen(
        self,
        on_cancel: Callable[[str], object],
        on_followed: Callable[[str], object] | None = None,
        on_subscribed: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Call ``on_cancel(execution_id)`` for every request (and ``on_followed`` for every follow
        hint), reconnecting after Redis outages.

        ``on_subscribed`` runs after every (re)subscription: pushes sent while the listener was
        away are lost, so whoever listens re-reads the flags of what it runs."""
        handlers: dict[str, Callable[[bytes], object]] = {
            self.keys.cancel_channel: lambda data: on_cancel(data.decode())
        }
        if on_followed is not None:
            handlers[self.keys.follow_channel] = lambda data: on_followed(data.decode())
        await listen_forever(self.redis, handlers, on_subscribed)
