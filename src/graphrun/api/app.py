"""``create_app``: the composition root of an API process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from graphrun import __version__
from graphrun.api import console, cors, errors, events, executions, openapi, system, workflows
from graphrun.api.auth import Auth
from graphrun.api.fast import FastPath
from graphrun.api.limits import BodyLimit
from graphrun.api.state import AppState
from graphrun.cache.graphs import GraphCache
from graphrun.cache.invalidation import WorkflowChanges
from graphrun.checkpoint.threads import open_thread_saver
from graphrun.events.hub import StreamHub
from graphrun.events.log import EventLog
from graphrun.langgraph import assistants as lg_assistants
from graphrun.langgraph import runs as lg_runs
from graphrun.langgraph import state as lg_state
from graphrun.langgraph import system as lg_system
from graphrun.langgraph import threads as lg_threads
from graphrun.looplag import LoopLagMonitor
from graphrun.redis.batch import CommandBatcher
from graphrun.redis.cancel import CancelBus
from graphrun.redis.connections import API_POOL_SIZE, ConnectionName, dedicated_client, shared_client
from graphrun.redis.keys import Keys
from graphrun.redis.queue import TaskQueue
from graphrun.registry import GraphRegistry
from graphrun.settings import Settings, load_settings
from graphrun.store import open_store

log = logging.getLogger("graphrun.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    redis_url = settings.require_redis_url()
    registry = GraphRegistry.load(settings.registry_file)  # a bad registry fails start-up, not a request

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keys = Keys(settings.redis_prefix)
        # Workflow routes check configs against the factories' models: importing the graph code
        # (LangGraph, LangChain: about 1.5 s) in a thread keeps it off the event loop. Not awaited:
        # start-up stays short (Gunicorn kills a worker that is silent for its timeout).
        preload = asyncio.get_running_loop().create_task(asyncio.to_thread(registry.preload))
        store = await open_store(settings.sqlalchemy_url)
        await store.ensure_default_assistants(registry.names)
        resources = AsyncExitStack()
        thread_saver = await resources.enter_async_context(open_thread_saver(settings))
        # Redis connections of an API process, whatever the number of SSE clients: the stream hub's
        # reader and at most API_POOL_SIZE shared ones.
        redis = shared_client(redis_url, API_POOL_SIZE, name=ConnectionName.API)
        # The process's one batcher: requests' short commands (catch-up reads, follow hints, cancels,
        # submissions' queue pushes) share round trips (batch.py). Everything below gets this one.
        batcher = CommandBatcher(redis)
        hub = StreamHub(redis, lambda: dedicated_client(redis_url, name=ConnectionName.STREAM_HUB), batcher=batcher)
        # Only pushes (through the batcher): it never opens the connection a pop needs.
        queue = TaskQueue(redis_url, keys, batcher=batcher, name=ConnectionName.API)
        await hub.start()
        app.state.graphrun = AppState(
            settings=settings,
            keys=keys,
            registry=registry,
            store=store,
            redis=redis,
            events=EventLog(redis, keys, maxlen=settings.event_maxlen, ttl_s=settings.event_ttl_s, batcher=batcher),
            hub=hub,
            queue=queue,
            cancels=CancelBus(redis, keys, batcher=batcher),
            changes=WorkflowChanges(redis, keys),
            auth=Auth(settings.api_keys, settings.token_ttl_s),
            graphs=GraphCache(store, registry, max_entries=settings.graph_cache_size, llm=settings.llm),
            thread_saver=thread_saver,
        )
        # Anything that blocks this loop holds up every request and SSE stream of the process.
        monitor = LoopLagMonitor(asyncio.get_running_loop(), threshold_s=settings.loop_stall_ms / 1000, role="api")
        monitor.start()
        try:
            yield
        finally:
            monitor.stop()
            await preload  # a thread cannot be cancelled; it ends by itself
            await hub.stop()
            await batcher.close()
            await redis.aclose()
            await resources.aclose()
            await store.close()

    app = FastAPI(title="graphrun", version=__version__, lifespan=lifespan)
    errors.install(app)
    openapi.install(app)
    for module in (system, workflows, executions, events):
        if module is system:
            app.include_router(system.public)
        app.include_router(module.router)
    app.include_router(lg_runs.router)
    app.include_router(lg_system.router)
    app.include_router(lg_assistants.router)
    app.include_router(lg_threads.router)
    app.include_router(lg_state.router)
    app.include_router(console.router)  # the web console's files: no key, no data
    app.add_middleware(BodyLimit, max_bytes=settings.max_input_bytes)
    cors.install(app, settings.cors_origins, registry.project.cors)
    # Last: outermost. It hands a request with an Origin header to the full app, and CORS with it.
    app.add_middleware(FastPath, max_bytes=settings.max_input_bytes)
    return app
