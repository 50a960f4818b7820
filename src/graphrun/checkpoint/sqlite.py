"""LangGraph's SQLite checkpoints, written on the event loop where SQLite lets them.

``AsyncSqliteSaver`` (langgraph-checkpoint-sqlite) hops to aiosqlite's thread and back for each
DBAPI call of each checkpoint write: the execute, the commit, closing the cursor. A hop costs more
CPU than the statement (docs/decisions/0028). So each write is first made on the event loop with
LangGraph's synchronous ``SqliteSaver``, on a connection of its own that never waits for SQLite's
lock: same tables, same SQL. If SQLite refuses it there (another connection holds the lock), it is
made again through ``AsyncSqliteSaver``, which waits for the lock off the loop.

Serialising a thread's state stays on the loop, as ``AsyncSqliteSaver`` does it. Moving it to a
thread made the loop compete for the GIL and raised token latency (docs/decisions/0027).

What must stay true:
- a refused write leaves nothing behind: its transaction is rolled back before it is made again.
  Making it again is safe: LangGraph's writes are ``INSERT OR REPLACE`` / ``OR IGNORE`` of the
  same rows;
- the loop never waits on a lock and never copies the WAL into the database (whose fsync can take
  milliseconds). The aiosqlite connection runs that copy, a passive checkpoint, every
  ``WRITES_PER_CHECKPOINT`` writes made here;
- reads go through ``AsyncSqliteSaver`` as before. Reading on the loop too halved a LangGraph
  thread run's CPU again, but raised the agent bench's token latency p99 from about 60 ms to 470
  ms, for a reason not yet found (docs/decisions/0028).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

log = logging.getLogger("graphrun.checkpoint")

T = TypeVar("T")

WRITES_PER_CHECKPOINT = 250


class LoopFirstSqliteSaver(BaseCheckpointSaver[str]):
    def __init__(self, fallback: AsyncSqliteSaver, path: Path) -> None:
        super().__init__(serde=fallback.serde)
        self.fallback = fallback
        # Opened and set up off the loop (``prepare``), then used on the loop only.
        conn = sqlite3.connect(path, check_same_thread=False)
        self._conn = conn
        self.inline = SqliteSaver(conn, serde=fallback.serde)
        self._writes = 0
        self._checkpointing: asyncio.Task[None] | None = None
        self.refused = 0  # operations SQLite refused on the loop (tests read it)

    def prepare(self) -> None:
        """In a thread, before first use: its setup may wait for another process's lock."""
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self.inline.setup()  # (the fallback created the tables; this reads the schema)
        self._conn.execute("PRAGMA busy_timeout=0")  # from now on, never wait on the loop

    def close(self) -> None:
        self._conn.close()

    def _on_loop(self, fn: Callable[[], T]) -> tuple[bool, T | None]:
        """(True, ``fn()``), or (False, None) if SQLite refused it here (rolled back)."""
        try:
            return True, fn()
        except (sqlite3.OperationalError, sqlite3.InterfaceError):
            if self._conn.in_transaction:
                self._conn.rollback()
            self.refused += 1
            return False, None

    async def _write(self, fn: Callable[[], T], otherwise: Callable[[], Awaitable[T]]) -> T:
        done, result = self._on_loop(fn)
        if not done:
            return await otherwise()
        self._writes += 1
        if self._writes % WRITES_PER_CHECKPOINT == 0 and (self._checkpointing is None or self._checkpointing.done()):
            self._checkpointing = asyncio.get_running_loop().create_task(self._checkpoint())
        return result  # type: ignore[return-value]  # (fn's own result, None included)

    async def _checkpoint(self) -> None:
        try:
            async with self.fallback.lock:
                await self.fallback.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # noqa: BLE001 - aiosqlite's own auto-checkpoint catches up
            log.info("checkpoint database: WAL checkpoint skipped: %s", exc)

    # -- on the loop first -----------------------------------------------------------------------

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._write(
            lambda: self.inline.put(config, checkpoint, metadata, new_versions),
            lambda: self.fallback.aput(config, checkpoint, metadata, new_versions),
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
            lambda: self.fallback.aput_writes(config, writes, task_id, task_path),
        )

    # -- through AsyncSqliteSaver ----------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self.fallback.aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        async for item in self.fallback.alist(config, filter=filter, before=before, limit=limit):
            yield item

    async def adelete_thread(self, thread_id: str) -> None:
        await self.fallback.adelete_thread(thread_id)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await self.fallback.aget_delta_channel_history(config=config, channels=channels)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.fallback.get_tuple(config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        return self.fallback.list(config, filter=filter, before=before, limit=limit)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self.fallback.put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self.fallback.put_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        self.fallback.delete_thread(thread_id)

    def get_next_version(self, current: str | None, channel: None) -> str:
        return self.fallback.get_next_version(current, channel)
