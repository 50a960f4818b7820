"""One worker process: the composition root of the worker side.

It builds its own store, Redis clients, graph cache and runner, listens for cancel requests pushed
by the API, and runs TaskIQ's receiver on the list queue until SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import suppress

from taskiq.api.receiver import run_receiver_task

from graphrun.cache import GraphCache
from graphrun.cancel import CancelBus
from graphrun.connections import ConnectionName, shared_client
from graphrun.events.log import EventLog
from graphrun.keys import Keys
from graphrun.queue import EXECUTE_TASK, make_broker
from graphrun.registry import GraphRegistry
from graphrun.settings import Settings
from graphrun.store import open_store
from graphrun.worker.runner import ExecutionRunner

log = logging.getLogger("graphrun.worker")


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None)."""
    redis_url = settings.require_redis_url()
    keys = Keys(settings.redis_prefix)
    registry = GraphRegistry.load(settings.registry_file)
    store = await open_store(settings.sqlalchemy_url)
    redis = shared_client(redis_url, name=ConnectionName.WORKER)
    events = EventLog(redis, keys, maxlen=settings.event_maxlen, ttl_s=settings.event_ttl_s)
    cache = GraphCache(store, registry, max_entries=settings.graph_cache_size, llm=settings.llm)
    cancels = CancelBus(redis, keys)
    runner = ExecutionRunner(store, cache, events, cancels, default_timeout_s=settings.execution_timeout_s)
    broker = make_broker(redis_url, keys, name=ConnectionName.WORKER)

    async def execute(execution_id: str) -> None:
        await runner.execute(execution_id)

    broker.register_task(execute, task_name=EXECUTE_TASK)
    await broker.startup()

    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

    loop = asyncio.get_running_loop()
    listener = loop.create_task(cancels.listen(runner.cancel))
    receiver = loop.create_task(
        run_receiver_task(broker, max_async_tasks=settings.worker_concurrency, run_startup=False)
    )
    log.info("worker ready (queue %s, concurrency %s)", keys.task_queue, settings.worker_concurrency)
    try:
        await stop.wait()
    finally:
        log.info("worker stopping: %s execution(s) running", runner.running)
        receiver.cancel()
        with suppress(asyncio.CancelledError):
            await receiver
        listener.cancel()
        with suppress(asyncio.CancelledError):
            await listener
        await broker.shutdown()
        await redis.aclose()
        await store.close()
