"""The TaskIQ broker shared by the API (which enqueues) and workers (which run).

A message carries only the execution id; everything else is read from the store, so the queue never
holds anything a worker would have to trust or unpickle (TaskIQ's default JSON serializer).

Why a list queue (LPUSH/BRPOP) and not taskiq-redis's stream broker: the stream broker re-claims a
message that stays unacknowledged longer than its idle timeout, so a long execution is handed to a
second worker while the first still runs; its stream also grows unless trimmed. A list hands each
message to exactly one worker, once. What a list alone would lose (the message of a worker that
dies) is recovered by graphrun itself: executions hold leases, and the sweeper re-queues what lost
its worker or its message (``worker/sweeper.py``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

from redis.asyncio import Redis
from taskiq import BrokerMessage
from taskiq.kicker import AsyncKicker
from taskiq_redis import ListQueueBroker

from graphrun.redis.batch import CommandBatcher
from graphrun.redis.connections import ConnectionName
from graphrun.redis.keys import Keys
from graphrun.redis.retry import RECONNECT

EXECUTE_TASK = "graphrun.execute"

log = logging.getLogger("graphrun.worker")


class Broker(ListQueueBroker):
    """ListQueueBroker whose listener backs off while Redis is away instead of spinning, and which
    keeps one client on its pool instead of building one per message (each registers about 170
    response callbacks).

    Two ways to Redis, on purpose. Pushes go through the process's batcher (``batcher``, on the
    process's shared pool), so a submit's LPUSH shares a round trip with the other commands of that
    moment. The listener's BRPOP blocks for up to 2 s: sent through the batcher it would hold every
    other command of the process behind it (one pipeline is in flight at a time), so it keeps the
    broker's own pool, which nothing else uses. The batcher belongs to the process: the broker
    does not close it.
    """

    def __init__(self, *args: Any, batcher: CommandBatcher, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client = Redis(connection_pool=self.connection_pool)
        self._batcher = batcher

    async def kick(self, message: BrokerMessage) -> None:
        queue_name = message.labels.get("queue_name") or self.queue_name
        await self._batcher.call("LPUSH", queue_name, message.message)

    async def listen(self) -> AsyncGenerator[bytes, None]:
        while True:
            # Every reply, a message or an idle timeout, ends an outage: the next backs off afresh.
            popped = await RECONNECT.call(self._pop, f"reading the task queue {self.queue_name}", log)
            if popped is not None:
                message = popped[1]
                yield message.encode() if isinstance(message, str) else message

    async def _pop(self) -> Any:
        # Shorter than the pool's socket timeout (5 s), so an idle queue is not an error.
        return await self._client.brpop([self.queue_name], timeout=2)


def make_broker(
    redis_url: str,
    keys: Keys,
    *,
    name: ConnectionName,
    batcher: CommandBatcher,
    max_connections: int | None = None,
) -> Broker:
    """``max_connections`` bounds the listener's blocking pool (callers wait); None leaves TaskIQ's
    default. A process that only enqueues never opens a connection of that pool."""
    return Broker(
        url=redis_url,
        queue_name=keys.task_queue,
        max_connection_pool_size=max_connections,
        client_name=name,
        batcher=batcher,
    )


async def enqueue(broker: ListQueueBroker, execution_id: str) -> None:
    kicker: AsyncKicker[[str], None] = AsyncKicker(task_name=EXECUTE_TASK, broker=broker, labels={})
    await kicker.kiq(execution_id)
