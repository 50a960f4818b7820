"""Real parts only: a real Redis server for the session (the embedded default's binary, or
GRAPHRUN_TEST_REDIS_URL), real SQLite files, and PostgreSQL when it is reachable."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from redis.asyncio import Redis

from graphrun.redis.batch import CommandBatcher
from graphrun.redis.connections import shared_client
from graphrun.redis.embedded import EmbeddedRedis, free_port
from graphrun.settings import Settings

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
def settings(redis_server: str, prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_server,
        database_url=f"sqlite:///{tmp_path / 'graphrun.db'}",
        data_dir=tmp_path,
        redis_prefix=prefix,
        config=None,
        _env_file=None,  # type: ignore[call-arg]
    )


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
    """The real API app on a real socket (SSE needs streaming, which in-memory transports lack)."""
    from graphrun.api import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on", log_config=None
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return ServerHandle(server, port), task


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[ServerHandle]:
    handle, task = await start_api(settings)
    yield handle
    handle.server.should_exit = True
    await asyncio.wait_for(task, 10)


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[None]:
    """A worker running in this event loop (the API process itself never runs one)."""
    from graphrun.worker.process import run_worker

    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(run_worker(settings, stop))
    await asyncio.sleep(0.05)
    if task.done():
        task.result()
    yield
    stop.set()
    await asyncio.wait_for(task, 10)


@pytest.fixture
async def batcher(redis: Redis) -> AsyncIterator[CommandBatcher]:
    """The process's one batcher on ``redis``, as the composition roots make it; closed after the test."""
    batcher = CommandBatcher(redis)
    yield batcher
    await batcher.close()
