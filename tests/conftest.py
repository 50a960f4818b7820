"""Real parts only: a real Redis server for the session (the embedded default's binary, or
GRAPHRUN_TEST_REDIS_URL), real SQLite files, and PostgreSQL when it is reachable."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from redis.asyncio import Redis

from graphrun.redis.batch import CommandBatcher
from graphrun.redis.connections import shared_client
from graphrun.redis.embedded import EmbeddedRedis, free_port
from graphrun.redis.keys import Keys
from graphrun.settings import Settings
from tests.helpers import scaled, wait_until

PG_URL = os.environ.get("GRAPHRUN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("GRAPHRUN_TEST_REDIS_URL")
    if external:
        yield external
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def prefix() -> str:
    """Every test gets its own key prefix on the shared server."""
    return f"gr-test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def settings_factory(redis_server: str, prefix: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings on the session's Redis under this test's prefix, with a SQLite file of its own.
    ``registry`` is the text of a graphrun.toml to register more graphs (tests/graphs.py's
    REGISTRY_TOML, say); other keywords override fields."""

    def make(registry: str | None = None, **update: Any) -> Settings:
        if registry is not None:
            toml = tmp_path / "graphrun.toml"
            toml.write_text(registry)
            update["config"] = toml
        base = Settings(
            redis_url=redis_server,
            database_url=f"sqlite:///{tmp_path / 'graphrun.db'}",
            data_dir=tmp_path,
            redis_prefix=prefix,
            config=None,
            _env_file=None,  # type: ignore[call-arg]
        )
        return base.model_copy(update=update)

    return make


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


@pytest.fixture
async def redis(redis_server: str) -> AsyncIterator[Redis]:
    client = shared_client(redis_server)
    yield client
    await client.aclose()


def postgres_available() -> str | None:
    """None if PostgreSQL answers at PG_URL, else why not."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}"


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    """A fresh schema in the PostgreSQL test database: (SQLAlchemy URL, schema)."""
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    import psycopg

    schema = f"gr_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield PG_URL.replace("postgresql://", "postgresql+psycopg://", 1), schema
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


class ServerHandle:
    def __init__(self, server: uvicorn.Server, port: int) -> None:
        self.server = server
        self.port = port
        self.url = f"http://127.0.0.1:{port}"


async def start_api(settings: Settings) -> tuple[ServerHandle, asyncio.Task[None]]:
    """The real API app on a real socket (SSE needs streaming, which in-memory transports lack);
    returns once it accepts connections."""
    from graphrun.api import create_app

    port = free_port()
    # A bounded graceful shutdown: without it uvicorn waits for every open connection and request
    # task, so one a test left behind (a stream, a background enqueue) would hang its teardown.
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        log_config=None,
        timeout_graceful_shutdown=int(scaled(3)),
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())

    def started() -> bool:
        if task.done():
            task.result()
            raise AssertionError("the API stopped while starting")
        return bool(server.started)

    await wait_until(started, 30, "the API to start")
    return ServerHandle(server, port), task


async def stop_api(handle: ServerHandle, task: asyncio.Task[None]) -> None:
    handle.server.should_exit = True
    await asyncio.wait_for(task, scaled(10))


@pytest.fixture
async def api_factory() -> AsyncIterator[Callable[[Settings], Awaitable[ServerHandle]]]:
    """Starts an API on the given settings; every one started is stopped after the test."""
    started: list[tuple[ServerHandle, asyncio.Task[None]]] = []

    async def start(settings: Settings) -> ServerHandle:
        handle, task = await start_api(settings)
        started.append((handle, task))
        return handle

    yield start
    for handle, task in reversed(started):
        await stop_api(handle, task)


@pytest.fixture
async def api(api_factory: Callable[[Settings], Awaitable[ServerHandle]], settings: Settings) -> ServerHandle:
    return await api_factory(settings)


@pytest.fixture
async def client_factory() -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """An httpx client on an API (a ServerHandle or a URL); keywords go to httpx.AsyncClient. Each
    one made is closed after the test."""
    clients: list[httpx.AsyncClient] = []

    def make(target: ServerHandle | str, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("timeout", 60)
        url = target.url if isinstance(target, ServerHandle) else target
        client = httpx.AsyncClient(base_url=url, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def client(client_factory: Callable[..., httpx.AsyncClient], api: ServerHandle) -> httpx.AsyncClient:
    """A client of the ``api`` fixture's API."""
    return client_factory(api)


class InLoopWorker:
    """``graphrun.worker.process.run_worker`` in the test's event loop (the API process itself never
    runs one). Started means subscribed: a cancel push or follow hint published after ``start()``
    returns reaches it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from graphrun.worker.process import run_worker

        keys = Keys(self.settings.redis_prefix)
        channels = (keys.cancel_channel, keys.follow_channel, keys.workflow_channel)
        probe = Redis.from_url(self.settings.require_redis_url())
        try:
            before = dict(await probe.pubsub_numsub(*channels))
            self.task = asyncio.get_running_loop().create_task(run_worker(self.settings, self._stop))

            async def subscribed() -> bool:
                assert self.task is not None
                if self.task.done():
                    self.task.result()
                    raise AssertionError("the worker stopped while starting")
                now = dict(await probe.pubsub_numsub(*channels))
                return all(now[c] > before[c] for c in now)

            await wait_until(subscribed, 30, "the worker to subscribe")
        finally:
            await probe.aclose()

    async def stop(self) -> None:
        """Stop it as SIGTERM would; a second call does nothing. A test leaves nothing running for it
        to wait out (its shutdown grace is 30 s by default)."""
        if self.task is None:
            return
        task, self.task = self.task, None
        self._stop.set()
        await asyncio.wait_for(task, scaled(10))


@pytest.fixture
async def worker_factory() -> AsyncIterator[Callable[[Settings], Awaitable[InLoopWorker]]]:
    """Starts an in-loop worker on the given settings; each one still running is stopped after the
    test."""
    workers: list[InLoopWorker] = []

    async def start(settings: Settings) -> InLoopWorker:
        worker = InLoopWorker(settings)
        workers.append(worker)
        await worker.start()
        return worker

    yield start
    for worker in reversed(workers):
        await worker.stop()


@pytest.fixture
async def worker(worker_factory: Callable[[Settings], Awaitable[InLoopWorker]], settings: Settings) -> InLoopWorker:
    """A worker in this event loop on the test's settings."""
    return await worker_factory(settings)


@pytest.fixture
async def batcher(redis: Redis) -> AsyncIterator[CommandBatcher]:
    """The process's one batcher on ``redis``, as the composition roots make it; closed after the test."""
    batcher = CommandBatcher(redis)
    yield batcher
    await batcher.close()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under ``--dist loadgroup`` an xdist worker names each grouped test ``<id>@<group>``. A pytest
    that pytest-xdist cannot rename (9.2, see pyproject.toml) spreads a group over the workers
    without a word, and every module-scoped server then starts on each: fail instead."""
    if not getattr(session.config.option, "loadgroup", False):  # set on xdist workers only
        return
    lost = [item.nodeid for item in session.items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if lost:
        raise pytest.UsageError(f"--dist loadgroup lost the xdist_group of {len(lost)} tests, {lost[0]} first")
