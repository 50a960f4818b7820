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

from graphrun.cache import GraphCache, WorkflowChanges
from graphrun.cancel import CancelBus
from graphrun.connections import shared_client
from graphrun.events.log import EventLog
from graphrun.keys import Keys
from graphrun.queue import EXECUTE_TASK, make_broker
from graphrun.registry import GraphRegistry
from graphrun.settings import Settings
from graphrun.store import open_store
from graphrun.worker.looplag import LoopLagMonitor
from graphrun.worker.runner import ExecutionRunner
from graphrun.worker.threads import release_node_threads, use_node_threads

log = logging.getLogger("graphrun.worker")


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None)."""
    redis_url = settings.require_redis_url()
    keys = Keys(settings.redis_prefix)
    registry = GraphRegistry.load(settings.registry_file)
    store = await open_store(settings.sqlalchemy_url)
    redis = shared_client(redis_url)
    events = EventLog(redis, keys, maxlen=settings.event_maxlen, ttl_s=settings.event_ttl_s)
    cache = GraphCache(store, registry, max_entries=settings.graph_cache_size, llm=settings.llm)
    cancels = CancelBus(redis, keys)
    runner = ExecutionRunner(store, cache, events, cancels, default_timeout_s=settings.execution_timeout_s)
    broker = make_broker(redis_url, keys)

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
    # Synchronous nodes get a pool sized for the concurrency; any stall of this loop is reported.
    node_threads = use_node_threads(loop, settings.worker_concurrency)
    monitor = LoopLagMonitor(loop, threshold_s=settings.loop_stall_ms / 1000, running=runner.running_ids)
    monitor.start()

    listener = loop.create_task(cancels.listen(runner.cancel, on_subscribed=runner.recheck_cancels))
    changes = loop.create_task(WorkflowChanges(redis, keys).listen(cache))
    prewarm = loop.create_task(cache.prewarm_popular(settings.prewarm_workflows))
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
        for task in (listener, changes, prewarm):
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        await broker.shutdown()
        await redis.aclose()
        await store.close()
        monitor.stop()
        release_node_threads(loop, node_threads)
