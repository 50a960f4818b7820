"""LangGraph stream chunks → graphrun events (API.md §3). Pure: no I/O, no clock, no Redis.

The runner streams a graph with ``subgraphs=True`` and the modes in :data:`STREAM_MODES`. Each
chunk ``(namespace, mode, payload)`` goes through :meth:`StreamTranslator.feed`, which answers
which events to write and which LangGraph task the chunk began or ended; the root graph's last
``values`` chunk is the execution's output (:attr:`StreamTranslator.final`).

What must stay true:
- a taken-over execution does not publish again what the log already holds: no ``node_start`` for a
  task whose start is there, no ``node_end`` and no ``custom`` for a task whose end is there (the
  task ids read back from the log, ``started`` and ``done``);
- a task that failed has no ``node_end``; the failure is the execution's ``error``;
- a task that stopped at ``interrupt()`` has no ``node_end`` either (it runs again when resumed); the
  interrupts LangGraph reports in the root's ``values`` are :attr:`StreamTranslator.interrupts`;
- ``custom`` chunks do not name their node: while exactly one task runs in their namespace they are
  that task's, and with parallel branches ``node`` is null;
- only model output becomes ``message``: the human and tool messages a node returns are state;
- an event inside a subgraph carries ``namespace`` as LangGraph names it; a root event has none.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, NamedTuple

from langgraph.types import StreamMode

from graphrun.events.model import EventKind

STREAM_MODES: tuple[StreamMode, ...] = ("tasks", "custom", "messages", "values")

# Where LangGraph reports the interrupts a step stopped at, in the root's values.
INTERRUPT_KEY = "__interrupt__"

# The types LangChain gives a model's output, whole or streamed.
_MODEL_OUTPUT = ("ai", "AIMessageChunk")


class Emit(NamedTuple):
    """One event to write: its kind, its data beyond ``execution_id`` and ``ts``, and the task it
    belongs to (the log keeps the task id so that a later attempt can tell what it published)."""

    kind: EventKind
    data: dict[str, Any]
    task: str = ""


@dataclass(frozen=True, slots=True)
class Translated:
    """What one chunk means. ``started``: a task began (its checkpoint writes must wait for its
    result). ``ended``: a task's result was seen, after ``events`` (its writes may go)."""

    events: tuple[Emit, ...] = ()
    started: str | None = None
    ended: str | None = None


_NOTHING = Translated()


class StreamTranslator:
    """Translates the chunks of one run, in order; keeps which tasks run in each namespace."""

    modes = STREAM_MODES

    def __init__(self, *, started: Collection[str] = (), done: Collection[str] = ()) -> None:
        self._started = started
        self._done = done
        self._running: dict[tuple[str, ...], dict[str, str]] = {}
        self.final: Any = None
        # The pending interrupts ({"id", "value"}) once the run stopped at interrupt(); else empty.
        self.interrupts: list[dict[str, Any]] = []

    def feed(self, namespace: tuple[str, ...], mode: str, chunk: Any) -> Translated:
        scope: dict[str, Any] = {"namespace": list(namespace)} if namespace else {}
        if mode == "tasks":
            return self._task(namespace, chunk, scope)
        if mode == "custom":
            tasks = self._running.get(namespace) or {}
            task = next(iter(tasks.items())) if len(tasks) == 1 else None
            if task is not None and task[0] in self._done:
                return _NOTHING
            node = task[1] if task is not None else None
            return Translated((Emit(EventKind.CUSTOM, {"node": node, "data": chunk, **scope}),))
        if mode == "messages":
            message, meta = chunk
            content = getattr(message, "content", None)
            if content and getattr(message, "type", None) in _MODEL_OUTPUT:
                data = {"node": meta.get("langgraph_node"), "content": content, **scope}
                return Translated((Emit(EventKind.MESSAGE, data),))
            return _NOTHING
        if mode == "values" and not namespace:
            if isinstance(chunk, dict) and INTERRUPT_KEY in chunk:
                self.interrupts = [{"id": i.id, "value": i.value} for i in chunk[INTERRUPT_KEY]]
                chunk = {k: v for k, v in chunk.items() if k != INTERRUPT_KEY}
            self.final = chunk
        return _NOTHING

    def _task(self, namespace: tuple[str, ...], chunk: dict[str, Any], scope: dict[str, Any]) -> Translated:
        tasks = self._running.setdefault(namespace, {})
        task_id: str = chunk["id"]
        node = chunk["name"]
        if "input" in chunk:  # a task begins; its end has "result" and "error" instead
            tasks[task_id] = node
            if task_id in self._started:
                return Translated(started=task_id)
            return Translated((Emit(EventKind.NODE_START, {"node": node, **scope}, task_id),), started=task_id)
        tasks.pop(task_id, None)
        if chunk.get("error") is not None or chunk.get("interrupts") or task_id in self._done:
            return Translated(ended=task_id)
        data = {"node": node, "output": chunk.get("result"), **scope}
        return Translated((Emit(EventKind.NODE_END, data, task_id),), ended=task_id)
