"""The checkpoints of LangGraph threads: a conversation's state, kept until its thread is deleted.

Always LangGraph's SQL saver on the store's database, whatever ``GRAPHRUN_CHECKPOINTS`` says for
executions: a thread outlives any run and any Redis TTL. Keyed by the thread id (a UUID), so it can
share its tables with the database checkpoints of executions (keyed by execution ids) without
collision. Wrapped in :class:`~graphrun.checkpoint.ordered.OrderedSaver`: a worker attaches the
run's gate so that the thread's writes are ordered after the run's events and fenced by its lease;
API processes (state, history, update, copy, delete) use it without a gate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from graphrun.checkpoint import open_sql_saver
from graphrun.checkpoint.ordered import OrderedSaver
from graphrun.settings import Settings


@asynccontextmanager
async def open_thread_saver(settings: Settings, *, max_connections: int = 10) -> AsyncIterator[OrderedSaver]:
    async with open_sql_saver(settings, max_connections=max_connections) as saver:
        yield OrderedSaver(saver)


async def copy_thread_checkpoints(saver: BaseCheckpointSaver[Any], source: str, target: str) -> None:
    """Every checkpoint (all namespaces) and pending write of ``source``, under ``target``, oldest
    first so that each checkpoint's parent is there before it."""
    saved = [t async for t in saver.alist({"configurable": {"thread_id": source}})]
    for item in reversed(saved):
        conf = item.config["configurable"]
        parent = (item.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        at: RunnableConfig = {
            "configurable": {"thread_id": target, "checkpoint_ns": conf.get("checkpoint_ns", "")}
            | ({"checkpoint_id": parent} if parent else {})
        }
        # Every channel as new: a saver that stores values per version (PostgreSQL) gets them all.
        written = await saver.aput(at, item.checkpoint, item.metadata, dict(item.checkpoint["channel_versions"]))
        by_task: dict[str, list[tuple[str, Any]]] = {}
        for task_id, channel, value in item.pending_writes or []:
            by_task.setdefault(task_id, []).append((channel, value))
        for task_id, writes in by_task.items():
            await saver.aput_writes(written, writes, task_id)


async def delete_checkpoints(saver: BaseCheckpointSaver[Any], thread_id: str, checkpoint_ids: list[str]) -> None:
    """Delete these checkpoints of ``thread_id`` (every namespace) and their pending writes: a rolled
    back run's, so that the thread's head is again the checkpoint the run started from. The values
    they share with other checkpoints (PostgreSQL's blobs, per channel version) stay."""
    if not checkpoint_ids:
        return
    inner = saver.inner if isinstance(saver, OrderedSaver) else saver
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    if isinstance(inner, AsyncSqliteSaver):
        marks = ",".join("?" * len(checkpoint_ids))
        async with inner.lock, inner.conn.cursor() as cur:
            for table in ("checkpoints", "writes"):
                await cur.execute(
                    f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_id IN ({marks})",
                    (thread_id, *checkpoint_ids),
                )
            await inner.conn.commit()
        return
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    if not isinstance(inner, AsyncPostgresSaver):
        raise TypeError(f"cannot delete single checkpoints from {type(inner).__name__}")
    async with inner._cursor(pipeline=True) as cur:
        for table in ("checkpoints", "checkpoint_writes"):
            await cur.execute(
                f"DELETE FROM {table} WHERE thread_id = %s AND checkpoint_id = ANY(%s)",
                (thread_id, checkpoint_ids),
            )
