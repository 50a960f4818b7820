"""Streaming one execution's graph into its event log, through the translator and the run's gate.

What must stay true:
- with a checkpointer, every step is checkpointed under the execution id, so a later attempt
  resumes after the last checkpointed step (with no input) instead of starting over;
- an execution that resumes an interrupted one streams ``Command(resume=...)`` on the checkpoints of
  its chain's first execution (``checkpoint_thread_of``); a later attempt of it goes on without
  input only from a checkpoint it wrote itself (their metadata name the execution), so the answer is
  applied exactly once; if that state is gone (expired), it fails saying so;
- a task's checkpoint writes go only once its result was seen and its ``node_end`` emitted (the
  gate, checkpoint/gate.py): the events come first, then the gate hears of the task;
- a graph build that one execution waited for and another cancelled is built again: the cache shares
  one build among all who ask, and a cancel meant for another execution is no reason to fail.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from graphrun.cache import GraphCache
from graphrun.checkpoint.gate import RunGate
from graphrun.events.log import EventWriter
from graphrun.store.base import RESUME_FROM_OPTION, RESUME_OPTION, Execution, checkpoint_thread_of
from graphrun.worker.translate import StreamTranslator

log = logging.getLogger("graphrun.worker")


class ResumeStateLostError(Exception):
    """The interrupted execution's checkpoints are gone: there is nothing to resume."""


class GraphStreamer:
    def __init__(
        self, cache: GraphCache, checkpointer: BaseCheckpointSaver[Any] | None, *, recursion_limit: int
    ) -> None:
        self.cache = cache
        self.checkpointer = checkpointer
        self.recursion_limit = recursion_limit
        # Each cached graph with the checkpointer attached (a copy validates the whole graph again:
        # about 0.1 ms a run); dropped with the graph when the graph cache lets it go.
        self._durable: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._forgetting: set[asyncio.Task[None]] = set()

    async def graph(self, execution: Execution) -> Any:
        while True:
            try:
                return await self.cache.get(execution.workflow_id, execution.workflow_version)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # this execution is being stopped
                log.info("execution %s: the graph build it waited for was cancelled; building again", execution.id)

    async def stream(
        self, execution: Execution, graph: Any, writer: EventWriter, gate: RunGate, translator: StreamTranslator
    ) -> Any:
        """Run ``graph`` to its end; its final state."""
        thread_id = checkpoint_thread_of(execution)
        config: dict[str, Any] = {
            "recursion_limit": self.recursion_limit,
            "configurable": {"execution_id": execution.id, "thread_id": thread_id},
            "metadata": {"execution_id": execution.id},
        }
        resuming = RESUME_FROM_OPTION in execution.options
        run_input: Any = Command(resume=execution.options.get(RESUME_OPTION)) if resuming else execution.input
        if self.checkpointer is not None:
            durable = self._durable.get(graph)
            if durable is None:
                durable = self._durable[graph] = graph.copy(update={"checkpointer": self.checkpointer})
            graph = durable
            if execution.attempt > 1 or resuming:
                latest = await self.checkpointer.aget_tuple(config)  # type: ignore[arg-type]
                if latest is None and resuming:
                    raise ResumeStateLostError(f"the state of interrupted execution {thread_id} is gone (expired)")
                mine = latest is not None and (latest.metadata or {}).get("execution_id") == execution.id
                if execution.attempt > 1 and latest is not None and (not resuming or mine):
                    run_input = None
        elif resuming:
            raise ResumeStateLostError("this worker keeps no checkpoints: an interrupted execution cannot resume")
        async for namespace, mode, chunk in graph.astream(
            run_input,
            config,
            stream_mode=list(translator.modes),
            subgraphs=True,
            # "async": a step's checkpoint is written while the next step runs. A crash can then
            # cost the last step (it runs again on the next attempt; its log events are not
            # published twice), which nodes must tolerate anyway: see README "Guarantees".
            durability="async" if self.checkpointer is not None else None,
        ):
            out = translator.feed(namespace, mode, chunk)
            if out.started is not None:
                gate.task_started(out.started)
            for event in out.events:
                writer.emit(event.kind, task=event.task, **event.data)
            if out.ended is not None:
                gate.result_seen(out.ended)  # its checkpoint writes may go now (after its events)
        return translator.final

    def forget(self, execution_id: str) -> None:
        """Delete an ended execution's checkpoints (those of its checkpointer thread), in the background."""
        checkpointer = self.checkpointer
        if checkpointer is None:
            return

        async def forget() -> None:
            try:
                await checkpointer.adelete_thread(execution_id)
            except Exception as exc:  # noqa: BLE001 - only space is lost
                log.info("execution %s: checkpoints not deleted (%s)", execution_id, exc)

        task = asyncio.get_running_loop().create_task(forget())
        self._forgetting.add(task)
        task.add_done_callback(self._forgetting.discard)


class _Count(TypedDict):
    n: int


async def warm_up() -> None:
    """Stream a one-node graph once, the way runs are streamed: LangGraph imports much of itself
    lazily on the first run (a few ms, measured, on the loop of the first execution otherwise)."""

    async def node(state: _Count) -> _Count:
        get_stream_writer()({})
        return {"n": state["n"] + 1}

    graph: StateGraph[_Count] = StateGraph(_Count)
    graph.add_node("node", node)
    graph.add_edge(START, "node")
    graph.add_edge("node", END)
    async for _ in graph.compile().astream({"n": 0}, stream_mode=list(StreamTranslator.modes), subgraphs=True):
        pass
