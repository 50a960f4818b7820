"""Running a LangGraph-protocol execution (a run, design-15): where its checkpoints live, how its
graph is streamed, and what its thread records when it ends.

What must stay true:
- a run on a thread keeps its checkpoints in the thread saver under the thread's id, through the
  same gate and fencing as an execution's (checkpoint/ordered.py): a write waits for its task's
  events and is refused once the attempt lost its lease; they are never deleted at the run's end;
- a later attempt of a run goes on from the newest checkpoint if this run wrote it (its metadata
  carries the run id), with no input: the input is never applied twice; otherwise it starts as the
  first attempt did;
- every translated chunk is one log entry ``lg:<event>`` whose data is the SSE ``data:`` JSON; an
  entry that holds a task's result carries the task's id, and a later attempt publishes nothing
  more of that task (langgraph/translate.py): its database checkpoints may lag behind the log, so
  it can run again a task whose output the client already has;
- the thread's recorded state is read back from its checkpoints once the outcome is decided, before
  the final status is stored: whoever sees the run end sees the thread's new state.
"""

from __future__ import annotations

import logging
import uuid
import weakref
from collections.abc import Collection
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from graphrun.checkpoint.gate import RunGate
from graphrun.events.log import EventWriter
from graphrun.events.model import LG_PREFIX
from graphrun.langgraph.serde import to_jsonable
from graphrun.langgraph.translate import LangGraphTranslator
from graphrun.store.base import Execution, ExecutionStatus, Store
from graphrun.worker.lgoptions import interrupt_nodes, run_config, run_input

log = logging.getLogger("graphrun.worker")


def translator_for(execution: Execution, done: Collection[str] = ()) -> LangGraphTranslator:
    """``done``: the tasks whose result the log already holds (a later attempt's)."""
    options = execution.options
    return LangGraphTranslator(
        options.get("stream_mode") or ["values"], subgraphs=bool(options.get("stream_subgraphs")), done=done
    )


class LangGraphRuns:
    def __init__(
        self,
        store: Store,
        checkpointer: BaseCheckpointSaver[Any] | None,
        thread_saver: BaseCheckpointSaver[Any] | None,
        *,
        recursion_limit: int,
    ) -> None:
        self.store = store
        self.checkpointer = checkpointer
        self.thread_saver = thread_saver
        self.recursion_limit = recursion_limit
        self._copies: dict[int, weakref.WeakKeyDictionary[Any, Any]] = {}

    def saver_of(self, execution: Execution) -> BaseCheckpointSaver[Any] | None:
        """A thread's run: the thread saver (a run on a thread must not lose its state); else the
        execution's own checkpointer."""
        if execution.thread_id is None:
            return self.checkpointer
        if self.thread_saver is None:
            raise RuntimeError("this worker has no thread saver: it cannot run on a thread")
        return self.thread_saver

    @staticmethod
    def checkpoint_thread(execution: Execution) -> str:
        return execution.thread_id or execution.id

    def _with_saver(self, graph: Any, saver: BaseCheckpointSaver[Any] | None) -> Any:
        if saver is None:
            return graph
        copies = self._copies.setdefault(id(saver), weakref.WeakKeyDictionary())
        durable = copies.get(graph)
        if durable is None:
            # stream_eager: each task's result reaches the runner while its writes wait at the gate.
            # Without it (no custom/messages mode, no subgraphs) LangGraph yields the last task's
            # result only after the loop has awaited those writes: every run ended on the gate's
            # time-out (checkpoint/gate.py RESULT_WAIT_S).
            durable = copies[graph] = graph.copy(update={"checkpointer": saver, "stream_eager": True})
        return durable

    async def stream(
        self, execution: Execution, graph: Any, writer: EventWriter, gate: RunGate, translator: LangGraphTranslator
    ) -> Any:
        """Run ``graph`` to its end (or its interrupt); its final values."""
        options = execution.options
        saver = self.saver_of(execution)
        graph = self._with_saver(graph, saver)
        thread_id = self.checkpoint_thread(execution)
        graph_input = run_input(options)
        from_checkpoint = True
        if execution.attempt > 1 and saver is not None:
            latest = await saver.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
            if latest is not None and (latest.metadata or {}).get("run_id") == execution.id:
                graph_input, from_checkpoint = None, False  # go on from where the last attempt got to
        config = run_config(
            options,
            execution_id=execution.id,
            thread_id=thread_id,
            attempt=execution.attempt,
            recursion_limit=self.recursion_limit,
            from_checkpoint=from_checkpoint,
        )
        kwargs: dict[str, Any] = {
            "stream_mode": list(translator.modes),
            "subgraphs": translator.subgraphs,
            "interrupt_before": interrupt_nodes(options.get("interrupt_before")),
            "interrupt_after": interrupt_nodes(options.get("interrupt_after")),
            "durability": "async" if saver is not None else None,
        }
        if options.get("context"):
            kwargs["context"] = options["context"]
        if translator.events:
            # The root run's id, so that its ``on_chain_stream`` events (astream's chunks) are told
            # from every other event, and the events carry the run's id as the server's do.
            config["run_id"] = uuid.UUID(execution.id)
            async for event in graph.astream_events(graph_input, config, version="v2", **kwargs):
                if event["event"] == "on_chain_stream" and event.get("run_id") == execution.id:
                    self._chunk(event["data"]["chunk"], writer, gate, translator)
                elif (out := translator.event(event)) is not None:
                    writer.emit_raw(LG_PREFIX + out[0], out[1])
            return translator.final
        async for item in graph.astream(graph_input, config, **kwargs):
            self._chunk(item, writer, gate, translator)
        return translator.final

    @staticmethod
    def _chunk(item: Any, writer: EventWriter, gate: RunGate, translator: LangGraphTranslator) -> None:
        namespace, mode, chunk = item if translator.subgraphs else ((), *item)
        out = translator.feed(namespace, mode, chunk)
        if out.started is not None:
            gate.task_started(out.started)
        for name, data in out.events:
            writer.emit_raw(LG_PREFIX + name, data, task=out.task or "")
        if out.ended is not None:
            gate.result_seen(out.ended)  # its checkpoint writes may go now (after its events)

    async def record_thread(
        self, execution: Execution, graph: Any, status: ExecutionStatus, error: dict[str, Any] | None
    ) -> None:
        """Store the thread's state as its checkpoints now hold it: values, pending interrupts (by
        task id) and status (``interrupted`` while an interrupt waits, ``error`` after a failure)."""
        if execution.thread_id is None or self.thread_saver is None:
            return
        values: Any = None
        interrupts: dict[str, list[dict[str, Any]]] = {}
        waiting = False  # a run that ended with next tasks stopped at an interrupt (or interrupt_before/after)
        try:
            state = await self._with_saver(graph, self.thread_saver).aget_state(
                {"configurable": {"thread_id": execution.thread_id}}
            )
            values = to_jsonable(state.values)
            waiting = bool(state.next)
            for task in state.tasks:
                if task.interrupts:
                    interrupts[task.id] = [{"id": i.id, "value": to_jsonable(i.value)} for i in task.interrupts]
        except Exception:  # the run's outcome stands; the state routes read the checkpoints themselves
            log.exception("execution %s: thread %s state not read", execution.id, execution.thread_id)
            return
        if status in (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT):
            thread_status = "error"
        else:
            stopped = interrupts or (waiting and status is ExecutionStatus.SUCCEEDED)
            thread_status = "interrupted" if stopped else "idle"
        await self.store.set_thread_state(
            execution.thread_id,
            status=thread_status,
            values=values,
            interrupts=interrupts,
            error=error if thread_status == "error" else None,
        )
