"""The database checkpointers (``GRAPHRUN_CHECKPOINTS=database``) under the run's gate.

The Redis saver hands each write to the execution's :class:`~graphrun.checkpoint.gate.RunGate` as a
Lua script: ordered after the run's events, and fenced by its lease in the same atomic step. A write
to SQLite or PostgreSQL cannot be part of a Redis script, so this wrapper of LangGraph's SQL savers
does the same in three steps: it waits for the write's turn at the gate (a task's writes after its
result was streamed, a checkpoint after the task writes before it), asks Redis, after every event
emitted so far, whether the lease is still this attempt's, and only then writes to the database.

What must stay true: a task's result is never in the database before its ``node_end`` is in the log
(a later attempt would skip the task and never publish it), and an attempt whose lease is gone stops
writing. Weaker than with Redis: the lease check and the write are two steps, so a worker paused
between them for longer than the lease can still make that one write.

Without an attached gate (outside a run, or tools reading history) every call goes straight to the
wrapped saver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)

from graphrun.checkpoint.gate import GatedSaver, Gates


class OrderedSaver(GatedSaver, BaseCheckpointSaver[Any]):
    def __init__(self, inner: BaseCheckpointSaver[Any]) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner
        self.gates = Gates()

    @property
    def config_specs(self) -> list[Any]:
        return list(self.inner.config_specs)

    def get_next_version(self, current: Any, channel: None) -> Any:
        return self.inner.get_next_version(current, channel)

    # -- writing --------------------------------------------------------------------------------

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        gate = self.gates.of(config)
        if gate is None:
            return await self.inner.aput(config, checkpoint, metadata, new_versions)
        async with gate.turn(None):
            await gate.check_lease()
            gate.namespaces_written.add(config["configurable"].get("checkpoint_ns", ""))
            return await self.inner.aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        gate = self.gates.of(config)
        if gate is None:
            await self.inner.aput_writes(config, writes, task_id, task_path)
            return
        async with gate.turn(task_id):
            await gate.check_lease()
            await self.inner.aput_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self.inner.adelete_thread(thread_id)

    # -- reading --------------------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        if (gate := self.gates.of(config)) is not None:
            if gate.has_no_checkpoint(config):
                return None
            await gate.settle()  # what this run wrote is readable once it landed
        return await self.inner.aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        async for item in self.inner.alist(config, filter=filter, before=before, limit=limit):
            yield item

    # graphrun runs every graph with astream; the synchronous methods are the wrapped saver's.
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.inner.get_tuple(config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        return self.inner.list(config, filter=filter, before=before, limit=limit)
