"""How the store runs one operation (a sync function of a ``Connection``) as one transaction.

SQLite: a sync engine (the stdlib sqlite3 driver) and the whole operation in one thread, so a store
call costs one thread hop. (aiosqlite costs one hop per DBAPI call: begin, execute, fetch, commit.)
Writes queued while another group of writes commits go together as the next group: one hop, one
connection checkout and one transaction for all of them (group commit, docs/decisions/0027).
PostgreSQL: the async engine (psycopg), the operation under ``AsyncConnection.run_sync``.
"""

from __future__ import annotations

import asyncio
import logging
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

log = logging.getLogger("graphrun.store")

# Threads reading SQLite besides the one writer. In WAL mode reads run beside a write, and sqlite3
# releases the GIL while it works, so a read need not wait behind a write (or a write's fsync): with
# reads on the writer's thread, get_execution's p50 under a write load was 2–3× longer.
SQLITE_READERS = 2


class Runner(Protocol):
    async def run(self, fn: Callable[[sa.Connection], T], *, write: bool, quick: bool = False) -> T:
        """``fn`` in one transaction. ``quick``: a point operation (one row, by key) that may run on
        the event loop itself where a thread hop would cost more than the operation."""
        ...

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


def _sqlite_inline_pragmas(dbapi_conn: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_conn, record)
    # On the event loop: never wait for the lock (the thread retries what is refused), and never
    # copy the WAL into the database here (its fsync): the writer thread does that (see below).
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=0")
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


# After this many writes on the event loop, the writer thread copies the WAL into the database (a
# passive checkpoint, as SQLite's auto-checkpoint would at about 1,000 pages).
INLINE_WRITES_PER_CHECKPOINT = 250


class SQLiteRunner:
    """Writes on one thread, reads on ``readers`` others; a read is one transaction in one hop, and
    the writes queued at one moment share one.

    What must stay true of a group of writes: each runs whole or not at all, in the order they were
    queued, and each sees every write queued before it; one write's failure is that write's alone.
    So a group whose operation raises is rolled back and its operations run again, each in its own
    transaction (what they would have done without the group). That re-run is safe because an
    operation is a function of the database alone, and its first run was rolled back. A caller
    cancelled before its write is taken is dropped; one taken already commits all the same.

    With ``quick_on_loop`` (a worker's store), a quick operation (``quick=True``: one row, by key)
    is first tried on the event loop itself, on a connection of its own that never waits for
    SQLite's lock: a thread hop and back cost several times what such a statement does
    (docs/decisions/0028). If SQLite refuses it there (the lock is taken, by this process's writer
    thread or another process), it is rolled back and goes the thread's way, as above. So it never
    blocks the loop on a lock or an fsync. An API process keeps them on threads: its loop serves
    every SSE client, and under overload the statements' own time on it showed in token latency,
    where on a thread they run beside it.
    """

    def __init__(
        self, url: str | URL, *, readers: int = SQLITE_READERS, quick_on_loop: bool = False, **engine_kw: Any
    ) -> None:
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
        # One connection, used on the event loop only (never from two threads at once).
        self._inline: sa.Engine | None = None
        if quick_on_loop:
            self._inline = sa.create_engine(sync_url, pool_size=1, max_overflow=0)
            event.listen(self._inline, "connect", _sqlite_inline_pragmas)
        self._inline_writes = 0
        self._checkpointing: asyncio.Future[Any] | None = None
        self.inline_refused = 0  # quick operations the loop handed to a thread (tests read it)

    @property
    def groups(self) -> int:
        """Write transactions committed or tried so far (tests read it)."""
        return self._writes.groups

    def _call(self, fn: Callable[[sa.Connection], T]) -> T:
        # The transaction commits here in the thread even if the awaiting task was cancelled
        # meanwhile: a call either runs whole or (cancelled while still queued) not at all.
        with database_errors(), self.engine.begin() as conn:
            return fn(conn)

    async def run(self, fn: Callable[[sa.Connection], T], *, write: bool, quick: bool = False) -> T:
        if quick and self._inline is not None:
            try:
                with self._inline.begin() as conn:
                    result = fn(conn)
            except (OperationalError, InterfaceError):  # refused here (locked, busy): the thread decides
                self.inline_refused += 1
            else:
                if write:
                    self._wrote_inline()
                return result
        if write:
            return cast(T, await self._writes.call(fn))
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._call, fn)

    def _wrote_inline(self) -> None:
        self._inline_writes += 1
        if self._inline_writes % INLINE_WRITES_PER_CHECKPOINT == 0 and (
            self._checkpointing is None or self._checkpointing.done()
        ):
            self._checkpointing = asyncio.get_running_loop().run_in_executor(self._writer, self._checkpoint)

    def _checkpoint(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # noqa: BLE001 - SQLite's own auto-checkpoint on the thread catches up
            log.info("SQLite WAL checkpoint skipped: %s", exc)

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
        if self._inline is not None:
            self._inline.dispose()

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

    async def run(self, fn: Callable[[sa.Connection], T], *, write: bool, quick: bool = False) -> T:
        with database_errors():
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)

    async def close(self) -> None:
        await self.engine.dispose()
