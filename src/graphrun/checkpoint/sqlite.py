"""LangGraph's SQLite checkpoints, written on the event loop where SQLite lets them.

``AsyncSqliteSaver`` (langgraph-checkpoint-sqlite) hops to aiosqlite's thread and back for each
DBAPI call of each checkpoint write: the execute, the commit, closing the cursor. A hop costs more
CPU than the statement (docs/decisions/0028). So each write is first made on the event loop with
LangGraph's synchronous ``SqliteSaver``, on a connection of its own that never waits for SQLite's
lock: same tables, same SQL. If SQLite refuses it there (another connection holds the lock), it is
made again as ``AsyncSqliteSaver`` makes it (this saver is one), waiting for the lock off the loop.

Serialising a thread's state stays on the loop, as ``AsyncSqliteSaver`` does it. Moving it to a
thread made the loop compete for the GIL and raised token latency (docs/decisions/0027).

What must stay true:
- a refused write leaves nothing behind: its transaction is rolled back before it is made again.
  Making it again is safe: LangGraph's writes are ``INSERT OR REPLACE`` / ``OR IGNORE`` of the
  same rows;
- the loop never waits on a lock and never copies the WAL into the database (whose fsync can take
  milliseconds). The aiosqlite connection runs that copy, a passive checkpoint, every
  ``WRITES_PER_CHECKPOINT`` writes made here;
- everything else (reads included) is ``AsyncSqliteSaver``'s, as before. Reading on the loop too halved a LangGraph
  thread run's CPU again, but raised the agent bench's token latency p99 from about 60 ms to 470
  ms, for a reason not yet found (docs/decisions/0028).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

log = logging.getLogger("graphrun.checkpoint")

T = TypeVar("T")

WRITES_PER_CHECKPOINT = 250


class LoopFirstSqliteSaver(AsyncSqliteSaver):
    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        super().__init__(conn)
        # Opened and set up off the loop (``prepare``), then used on the loop only.
        self._inline_conn = sqlite3.connect(path, check_same_thread=False)
        self.inline = SqliteSaver(self._inline_conn, serde=self.serde)
        self._inline_writes = 0
        self._checkpointing: asyncio.Task[None] | None = None
        self.refused = 0  # writes SQLite refused on the loop (tests read it)

    def prepare(self) -> None:
        """In a thread, before first use: its setup may wait for another process's lock."""
        self._inline_conn.execute("PRAGMA journal_mode=WAL")
        self._inline_conn.execute("PRAGMA synchronous=NORMAL")
        self._inline_conn.execute("PRAGMA wal_autocheckpoint=0")
        self.inline.setup()  # (AsyncSqliteSaver's setup created the tables; this reads the schema)
        self._inline_conn.execute("PRAGMA busy_timeout=0")  # from now on, never wait on the loop

    def close(self) -> None:
        self._inline_conn.close()

    async def _write(self, fn: Callable[[], T], otherwise: Callable[[], Awaitable[T]]) -> T:
        try:
            result = fn()
        except (sqlite3.OperationalError, sqlite3.InterfaceError):  # refused here: rolled back, made off the loop
            if self._inline_conn.in_transaction:
                self._inline_conn.rollback()
            self.refused += 1
            return await otherwise()
        self._inline_writes += 1
        if self._inline_writes % WRITES_PER_CHECKPOINT == 0 and (
            self._checkpointing is None or self._checkpointing.done()
        ):
            self._checkpointing = asyncio.get_running_loop().create_task(self._checkpoint())
        return result

    async def _checkpoint(self) -> None:
        try:
            async with self.lock:
                await self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # noqa: BLE001 - aiosqlite's own auto-checkpoint catches up
            log.info("checkpoint database: WAL checkpoint skipped: %s", exc)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._write(
            lambda: self.inline.put(config, checkpoint, metadata, new_versions),
            lambda: super(LoopFirstSqliteSaver, self).aput(config, checkpoint, metadata, new_versions),
        )

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._write(
            lambda: self.inline.put_writes(config, writes, task_id, task_path),
            lambda: super(LoopFirstSqliteSaver, self).aput_writes(config, writes, task_id, task_path),
        )
