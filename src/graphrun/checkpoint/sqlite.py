"""LangGraph's SQLite saver, run on a thread of its own: one thread hop per call, or fewer.

Why not ``AsyncSqliteSaver``: it runs on aiosqlite, which hops to its thread and back for every
DBAPI call (execute, then commit, then closing the cursor), and takes one asyncio lock around each
call. Under many concurrent runs those hops, all in a row behind that lock, were most of a LangGraph
thread's run (docs/decisions/0027). Here each call is LangGraph's synchronous ``SqliteSaver`` method,
whole, on one thread: the same SQL and the same file format, in one hop; calls made while the
thread is busy go together in the next hop (:class:`graphrun.aio.GroupedThread`), each still its
own transaction.

What must stay true: every call runs whole on the saver's thread (a caller that stops waiting does
not stop it half way), in the order the calls were made, each in its own transaction as
``SqliteSaver`` commits it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

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

from graphrun.aio import GroupedThread, run_each

T = TypeVar("T")


class ThreadedSqliteSaver(BaseCheckpointSaver[str]):
    def __init__(self, path: Path) -> None:
        conn = sqlite3.connect(path, check_same_thread=False)
        # Several worker processes share the file: WAL and a busy timeout, as for the store.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA synchronous=NORMAL")
        self.sync = SqliteSaver(conn)
        super().__init__(serde=self.sync.serde)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="graphrun-checkpoints")
        self._calls = GroupedThread(self._thread, run_each, name="graphrun-checkpoint-calls")

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the saver's thread (for work on ``self.sync`` beyond the saver's methods)."""
        return cast(T, await self._calls.call(fn))

    async def setup(self) -> None:
        await self.run(self.sync.setup)

    async def close(self) -> None:
        await self._calls.wait_idle()
        await asyncio.to_thread(self._thread.shutdown, wait=True)
        self.sync.conn.close()

    # -- async: the synchronous saver's methods, on the saver's thread ---------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self.run(partial(self.sync.get_tuple, config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        # Read whole on the thread: the synchronous saver's iterator holds its lock while it runs.
        found = await self.run(lambda: list(self.sync.list(config, filter=filter, before=before, limit=limit)))
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self.run(partial(self.sync.put, config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self.run(partial(self.sync.put_writes, config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        await self.run(partial(self.sync.delete_thread, thread_id))

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await self.run(partial(self.sync.get_delta_channel_history, config=config, channels=channels))

    # -- sync: straight to the synchronous saver (its own lock makes it safe from any thread) ----

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.sync.get_tuple(config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        return self.sync.list(config, filter=filter, before=before, limit=limit)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self.sync.put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self.sync.put_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        self.sync.delete_thread(thread_id)

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return self.sync.get_delta_channel_history(config=config, channels=channels)

    def get_next_version(self, current: str | None, channel: None) -> str:
        return self.sync.get_next_version(current, channel)
