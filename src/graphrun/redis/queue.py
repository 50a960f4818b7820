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

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import BrokerMessage
from taskiq.kicker import AsyncKicker
from taskiq_redis import ListQueueBroker

from graphrun.redis.batch import CommandBatcher
from graphrun.redis.connections import ConnectionName
from graphrun.redis.keys import Keys

EXECUTE_TASK = "graphrun.execute"

log = logging.getLogger("graphrun.worker")


class Broker(ListQueueBroker):
    """ListQueueBroker whose listener backs off while Redis is away instead of spinning, and which
    keeps one client on its pool instead of building one per message (each registers about 170
    response callbacks); its pushes share round trips (batch.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client = Redis(connection_pool=self.connection_pool)
        self._batcher = CommandBatcher(self._client)

    async def kick(self, message: BrokerMessage) -> None:
        queue_name = message.labels.get("queue_name") or self.queue_name
        await self._batcher.call("LPUSH", queue_name, message.message)

    async def shutdown(self) -> None:
        await self._batcher.close()
        await super().shutdown()

    async def listen(self) -> AsyncGenerator[bytes, None]:
        backoff = 0.1
        while True:
            try:
                # Shorter than the pool's socket timeout (5 s), so an idle queue is not an error.
                popped = await self._client.brpop([self.queue_name], timeout=2)
                backoff = 0.1
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("queue unreachable (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if popped is not None:
                message = popped[1]
                yield message.encode() if isinstance(message, str) else message


def make_broker(redis_url: str, keys: Keys, *, name: ConnectionName, max_connections: int | None = None) -> Broker:
    # ``max_connections`` bounds a blocking pool (callers wait); None leaves TaskIQ's default.
    return Broker(url=redis_url, queue_name=keys.task_queue, max_connection_pool_size=max_connections, client_name=name)


async def enqueue(broker: ListQueueBroker, execution_id: str) -> None:
    kicker: AsyncKicker[[str], None] = AsyncKicker(task_name=EXECUTE_TASK, broker=broker, labels={})
    await kicker.kiq(execution_id)
