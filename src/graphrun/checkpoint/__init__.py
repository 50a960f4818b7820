"""LangGraph checkpointers keyed by execution id, so a recovered execution resumes where it stopped.

By default in Redis, beside the execution's event log (:mod:`graphrun.checkpoint.redis`). With
``GRAPHRUN_CHECKPOINTS=database``: SQLite (langgraph-checkpoint-sqlite's savers, written on the event
loop where SQLite lets them: :mod:`graphrun.checkpoint.sqlite`) beside the store's SQLite file, or
PostgreSQL (langgraph-checkpoint-postgres) when the store is PostgreSQL, either wrapped in
:class:`~graphrun.checkpoint.ordered.OrderedSaver` so that a run's writes are ordered after its
events and stop when its lease is gone, as the Redis saver's are. LangGraph threads' checkpoints
(:mod:`graphrun.checkpoint.threads`) use the same SQL saver (``open_sql_saver``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from graphrun.checkpoint.ordered import OrderedSaver
from graphrun.checkpoint.redis import RedisSaver
from graphrun.redis.batch import CommandBatcher
from graphrun.redis.keys import Keys
from graphrun.settings import Settings

_PG_SETUP_LOCK = 0x67726E73  # serialises the checkpointer's own migrations across processes


async def _try_setup_lock(conn: Any) -> bool:
    row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (_PG_SETUP_LOCK,))).fetchone()
    return bool(row and row[0])


def checkpoint_path(settings: Settings) -> Path:
    url = make_url(settings.sqlalchemy_url)
    database = url.database or ""
    if not database or database == ":memory:":
        return (settings.data_dir / "checkpoints.db").resolve()
    store = Path(database)
    return store.with_name(store.stem + ".checkpoints" + (store.suffix or ".db"))


def checkpoint_ttl_s(settings: Settings) -> int:
    """A backstop only (checkpoints are deleted when their execution ends), refreshed at every step:
    it must outlast the longest step, which can be as long as the time limit."""
    return int(max(86_400, 2 * settings.execution_timeout_s))


@asynccontextmanager
async def open_checkpointer(
    settings: Settings,
    redis: Redis | None = None,
    *,
    max_connections: int = 10,
    batcher: CommandBatcher | None = None,
) -> AsyncIterator[BaseCheckpointSaver]:  # type: ignore[type-arg]
    """The configured checkpointer; ``redis`` (the process's shared client) and ``batcher`` (the
    process's batcher) are needed when it is Redis's."""
    if settings.checkpoints == "redis":
        if redis is None or batcher is None:
            raise ValueError("the Redis checkpointer needs the process's Redis client and batcher")
        yield RedisSaver(redis, Keys(settings.redis_prefix), ttl_s=checkpoint_ttl_s(settings), batcher=batcher)
        return
    async with open_sql_saver(settings, max_connections=max_connections) as saver:
        yield OrderedSaver(saver)


@asynccontextmanager
async def open_sql_saver(settings: Settings, *, max_connections: int = 10) -> AsyncIterator[BaseCheckpointSaver]:  # type: ignore[type-arg]
    """LangGraph's own SQL saver on the store's database: PostgreSQL when the store is PostgreSQL,
    else SQLite in a file beside the store's (``checkpoint_path``). Its tables are set up first."""
    url = make_url(settings.sqlalchemy_url)
    if url.get_backend_name() == "postgresql":
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg import AsyncConnection
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        # The saver's setup() runs its own migrations; several workers may start at once. The lock
        # is polled, never waited for: those migrations build indexes CONCURRENTLY, which wait for
        # every open transaction, and a blocked pg_advisory_lock() is one (a deadlock when two
        # processes start together).
        async with await AsyncConnection.connect(conninfo, autocommit=True) as conn:
            while True:
                if await _try_setup_lock(conn):
                    break
                await asyncio.sleep(0.05)
            try:
                await AsyncPostgresSaver(conn).setup()  # type: ignore[arg-type]
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (_PG_SETUP_LOCK,))
        async with AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            open=False,
        ) as pool:
            yield AsyncPostgresSaver(pool)  # type: ignore[arg-type]
        return

    import aiosqlite

    from graphrun.checkpoint.sqlite import LoopFirstSqliteSaver

    path = checkpoint_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(path) as conn:
        # Several worker processes share the file: WAL and a busy timeout, as for the store.
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA busy_timeout=30000")
        await conn.execute("PRAGMA synchronous=NORMAL")
        saver = LoopFirstSqliteSaver(conn, path)
        try:
            await saver.setup()
            await asyncio.to_thread(saver.prepare)
            yield saver
        finally:
            saver.close()
