"""How the store runs one operation (a sync function of a ``Connection``) as one transaction.

SQLite: a sync engine (the stdlib sqlite3 driver) and the whole operation in one thread, so a store
call costs one thread hop. (aiosqlite costs one hop per DBAPI call: begin, execute, fetch, commit.)
Writes queued while another group of writes commits go together as the next group: one hop, one
connection checkout and one transaction for all of them (group commit, docs/decisions/0027).
PostgreSQL: the async engine (psycopg), the operation under ``AsyncConnection.run_sync``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, Protocol, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from graphrun.aio import GroupedThread, Outcome, run_each
from graphrun.errors import BackendUnavailableError, ConfigError

T = TypeVar("T")

# Threads reading SQLite besides the one writer. In WAL mode reads run beside a write, and sqlite3
# releases the GIL while it works, so a read need not wait behind a write (or a write's fsync): with
# reads on the writer's thread, get_execution's p50 under a write load was 2–3× longer.
SQLITE_READERS = 2


class Runner(Protocol):
    async def run(self, fn: Callable[[sa.Connection], T], *, write: bool) -> T: ...
    async def close(self) -> None: ...


@contextmanager
def database_errors() -> Iterator[None]:
    """Connection refused, server gone, database locked past the busy timeout: unavailable."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise BackendUnavailableError("database", exc.orig) from exc
    except OSError as exc:
        raise BackendUnavailableError("database", exc) from exc


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside one writer across processes; the busy timeout makes a second
    # writer wait for the lock instead of failing with "database is locked".
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class SQLiteRunner:
    """Writes on one thread, reads on ``readers`` others; a read is one transaction in one hop, and
    the writes queued at one moment share one.

    What must stay true of a group of writes: each runs whole or not at all, in the order they were
    queued, and each sees every write queued before it; one write's failure is that write's alone.
    So a group whose operation raises is rolled back and its operations run again, each in its own
    transaction (what they would have done without the group). That re-run is safe because an
    operation is a function of the database alone, and its first run was rolled back. A caller
    cancelled before its write is taken is dropped; one taken already commits all the same.
    """

    def __init__(self, url: str | URL, *, readers: int = SQLITE_READERS, **engine_kw: Any) -> None:
        # Settings give sqlite+aiosqlite:///…; the same file through the stdlib driver.
        sync_url = make_url(url).set(drivername="sqlite+pysqlite")
        if sync_url.database in (None, "", ":memory:"):
            # Every pooled connection would be its own empty database, and the API and the workers
            # are separate processes anyway.
            raise ConfigError("the store needs an SQLite file, not an in-memory database")
        # A connection per thread, never more; file databases get check_same_thread=False.
        engine_kw.setdefault("pool_size", readers + 1)
        engine_kw.setdefault("max_overflow", 0)
        self.engine = sa.create_engine(sync_url, **engine_kw)
        event.listen(self.engine, "connect", _sqlite_pragmas)
        # SQLite has one write lock per database file. One writer thread makes this process's
        # writers take turns here rather than in SQLite's busy handler, which sleeps in steps of up
        # to 100 ms; only other processes' writers are left to wait there.
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="graphrun-sqlite-write")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="graphrun-sqlite-read")
        self._writes = GroupedThread(self._writer, self._commit_group, name="graphrun-sqlite-commit")

    @property
    def groups(self) -> int:
        """Write transactions committed or tried so far (tests read it)."""
        return self._writes.groups

    def _call(self, fn: Callable[[sa.Connection], T]) -> T:
        # The transaction commits here in the thread even if the awaiting task was cancelled
        # meanwhile: a call either runs whole or (cancelled while still queued) not at all.
        with database_errors(), self.engine.begin() as conn:
            return fn(conn)

    async def run(self, fn: Callable[[sa.Connection], T], *, write: bool) -> T:
        if write:
            return cast(T, await self._writes.call(fn))
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._call, fn)

    def _commit_group(self, group: list[Callable[[sa.Connection], Any]]) -> list[Outcome]:
        """In the writer thread: the group in one transaction; if an operation raises, each alone."""
        if len(group) > 1:
            try:
                with database_errors(), self.engine.begin() as conn:
                    return [(True, fn(conn)) for fn in group]
            except Exception:  # noqa: BLE001 - rolled back; whose it was shows when each goes alone
                pass
        return run_each([partial(self._call, fn) for fn in group])

    async def run_blocking(self, fn: Callable[[sa.Engine], T]) -> T:
        """``fn(engine)`` on the writer thread: for work that may block, such as a lock wait."""
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn, self.engine)

    def _close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self.engine.dispose()

    async def close(self) -> None:
        # Let calls in flight finish (off the event loop), then close the pooled connections.
        await self._writes.wait_idle()
        await asyncio.to_thread(self._close)


def make_async_engine(url: str | URL, **engine_kw: Any) -> AsyncEngine:
    engine_kw.setdefault("pool_pre_ping", True)
    engine_kw.setdefault("pool_size", 10)
    return create_async_engine(url, **engine_kw)


class AsyncRunner:
    """PostgreSQL: the async driver; no extra threads."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def run(self, fn: Callable[[sa.Connection], T], *, write: bool) -> T:
        with database_errors():
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)

    async def close(self) -> None:
        await self.engine.dispose()
