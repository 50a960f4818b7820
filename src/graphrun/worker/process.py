"""One worker process: the composition root of the worker side.

It builds its own store, Redis clients, checkpointer, graph cache and runner; listens for cancel
requests and workflow changes; sweeps for lost executions (when it holds the fleet's sweeper lock);
and takes executions off the task queue until SIGTERM/SIGINT.

Shutdown is graceful: stop taking work, let running executions finish for
``GRAPHRUN_SHUTDOWN_GRACE_S``, then hand the rest over (back on the queue; another worker resumes
them from their last checkpoint).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack

from graphrun.aio import cancel_and_wait
from graphrun.cache import GraphCache, WorkflowChanges
from graphrun.checkpoint import open_checkpointer
from graphrun.checkpoint.threads import open_thread_saver
from graphrun.events.log import EventLog
from graphrun.looplag import LoopLagMonitor
from graphrun.redis.batch import CommandBatcher
from graphrun.redis.cancel import CancelBus
from graphrun.redis.connections import ConnectionName, shared_client
from graphrun.redis.keys import Keys
from graphrun.redis.lease import Leases
from graphrun.redis.queue import TaskQueue
from graphrun.registry import GraphRegistry
from graphrun.settings import Settings
from graphrun.store import open_store
from graphrun.worker.admission import Admission
from graphrun.worker.receive import Receiver
from graphrun.worker.runner import ExecutionRunner
from graphrun.worker.stream import warm_up
from graphrun.worker.sweeper import Sweeper
from graphrun.worker.threads import release_node_threads, use_node_threads

log = logging.getLogger("graphrun.worker")


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None)."""
    redis_url = settings.require_redis_url()
    loop = asyncio.get_running_loop()
    if stop is None:
        # Installed first, so that a SIGTERM during start-up is a clean stop too.
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    keys = Keys(settings.redis_prefix)
    registry = GraphRegistry.load(settings.registry_file)
    async with AsyncExitStack() as resources:
        store = await open_store(settings.sqlalchemy_url, quick_on_loop=True)
        await store.ensure_default_assistants(registry.names)
        resources.push_async_callback(store.close)
        redis = shared_client(redis_url, name=ConnectionName.WORKER)
        resources.push_async_callback(redis.aclose)
        # The process's one batcher: the hot path's commands (events, checkpoints, leases, cancel
        # flags, re-queues) of every execution this process runs share round trips (batch.py).
        # Everything below gets this one; it closes after them (the exit stack runs in reverse).
        batcher = CommandBatcher(redis)
        resources.push_async_callback(batcher.close)
        checkpointer = await resources.enter_async_context(open_checkpointer(settings, redis, batcher=batcher))
        # LangGraph threads' checkpoints: always SQL, kept until the thread is deleted.
        thread_saver = await resources.enter_async_context(open_thread_saver(settings))
        queue = TaskQueue(redis_url, keys, batcher=batcher, name=ConnectionName.WORKER)
        resources.push_async_callback(queue.close)
        requeue = queue.push

        events = EventLog(redis, keys, maxlen=settings.event_maxlen, ttl_s=settings.event_ttl_s, batcher=batcher)
        cache = GraphCache(store, registry, max_entries=settings.graph_cache_size, llm=settings.llm)
        cancels = CancelBus(redis, keys, batcher=batcher)
        leases = Leases(redis, keys, settings.lease_s, batcher=batcher)
        runner = ExecutionRunner(
            store,
            cache,
            events,
            cancels,
            leases,
            requeue,
            default_timeout_s=settings.execution_timeout_s,
            start_grace_s=settings.start_grace_ms / 1000,
            checkpointer=checkpointer,
            thread_saver=thread_saver,
        )
        sweeper = Sweeper(
            store,
            redis,
            keys,
            leases,
            events,
            requeue,
            interval_s=settings.sweep_interval_s,
            max_attempts=settings.max_attempts,
            requeue_after_s=settings.requeue_after_s,
            forget_checkpoints=checkpointer.adelete_thread,
        )

        # Imports happen now, not on the event loop in the middle of the first executions.
        await asyncio.to_thread(registry.preload)
        await warm_up()

        # Synchronous nodes get a pool sized for the concurrency; any stall of this loop is reported.
        node_threads = use_node_threads(loop, settings.worker_concurrency)
        monitor = LoopLagMonitor(
            loop, threshold_s=settings.loop_stall_ms / 1000, role="worker", running=runner.running_ids
        )
        monitor.start()

        admission = Admission(settings.worker_concurrency, settings.worker_admit_lag_ms / 1000)
        background = [
            loop.create_task(admission.watch(), name="graphrun-admission"),
            loop.create_task(cancels.listen(runner.cancel, runner.followed, runner.recheck_cancels)),
            loop.create_task(WorkflowChanges(redis, keys).listen(cache)),
            loop.create_task(cache.prewarm_popular(settings.prewarm_workflows)),
            loop.create_task(sweeper.run()),
        ]
        receiver = Receiver(queue, runner.execute, admission)
        receiving = loop.create_task(receiver.listen(), name="graphrun-receiver")
        log.info("worker ready (queue %s, concurrency %s)", keys.task_queue, settings.worker_concurrency)
        try:
            await stop.wait()
        finally:
            await _drain(receiver, receiving, runner, settings.shutdown_grace_s)
            for task in background:
                await cancel_and_wait(task)
            monitor.stop()
            release_node_threads(loop, node_threads)


async def _drain(receiver: Receiver, receiving: asyncio.Task[None], runner: ExecutionRunner, grace_s: float) -> None:
    """Stop taking work; wait for running executions up to the grace period; hand over the rest."""
    log.info("worker stopping: %s execution(s) running", runner.running)
    await cancel_and_wait(receiving)
    if not await runner.wait_idle(grace_s):
        log.info("grace period over: handing %s execution(s) over", runner.handover_all())
    await receiver.wait(15)
