"""The TaskIQ broker shared by the API (which enqueues) and workers (which run).

A message carries only the execution id; everything else is read from the store, so the queue never
holds anything a worker would have to trust or unpickle (TaskIQ's default JSON serializer).
"""

from __future__ import annotations

from taskiq.kicker import AsyncKicker
from taskiq_redis import ListQueueBroker

from graphrun.connections import ConnectionName
from graphrun.keys import Keys

EXECUTE_TASK = "graphrun.execute"


def make_broker(
    redis_url: str, keys: Keys, *, name: ConnectionName, max_connections: int | None = None
) -> ListQueueBroker:
    # A plain list queue (LPUSH/BRPOP): a message is handed to exactly one worker and never
    # redelivered while it runs, unlike the stream broker's idle-time re-claim. The price, a
    # message lost with a crashing worker, is paid back by the store: see README "Guarantees".
    # ``max_connections`` bounds a blocking pool (callers wait); None leaves TaskIQ's default.
    return ListQueueBroker(
        url=redis_url, queue_name=keys.task_queue, max_connection_pool_size=max_connections, client_name=name
    )


async def enqueue(broker: ListQueueBroker, execution_id: str) -> None:
    kicker: AsyncKicker[[str], None] = AsyncKicker(task_name=EXECUTE_TASK, broker=broker, labels={})
    await kicker.kiq(execution_id)
