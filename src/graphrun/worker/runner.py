"""Running one execution: claim it, build (or fetch) its graph, stream it, record the outcome.

What must stay true:
- only the worker whose claim succeeded (queued → running) runs an execution, and only if no
  cancel was requested by the time it read the flag after its claim;
- every log it writes ends with exactly one terminal event, and starts with ``start`` if the run
  began (one cancelled at pick-up has just ``cancelled``);
- the outcome is decided once, by whichever comes first: the run ends, a cancel arrives, the time
  limit passes. A run that is still going then is not waited for (a synchronous node cannot be
  stopped), and nothing it emits or returns afterwards reaches the log or the store;
- the final status is stored before the terminal event is written, so a client that saw the
  terminal event reads the final status from the API;
- an exception in a factory or a node fails that execution only, never the worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from graphrun.cache import GraphCache
from graphrun.cancel import CancelBus
from graphrun.errors import FactoryError
from graphrun.events.log import EventLog, EventWriter
from graphrun.events.model import EventKind, to_jsonable
from graphrun.registry import config_timeout_s
from graphrun.store.base import Execution, ExecutionStatus, Store

log = logging.getLogger("graphrun.worker")

STREAM_MODES = ["tasks", "custom", "messages", "values"]
_VERSION_TIMEOUTS_KEPT = 4096


@dataclass
class _Active:
    """One claimed execution of this process."""

    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = field(default_factory=time.monotonic)


class ExecutionRunner:
    def __init__(
        self,
        store: Store,
        cache: GraphCache,
        events: EventLog,
        cancels: CancelBus,
        *,
        default_timeout_s: float,
        recursion_limit: int = 10_000,
    ) -> None:
        self.store = store
        self.cache = cache
        self.events = events
        self.cancels = cancels
        self.default_timeout_s = default_timeout_s
        self.recursion_limit = recursion_limit
        self._running: dict[str, _Active] = {}
        # Runs whose outcome was decided (cancelled, timed out) while their code still ran, e.g. a
        # synchronous node in a thread, which nothing can stop: kept until they end by themselves.
        self._abandoned: set[asyncio.Task[Any]] = set()
        # Workflow versions never change, so neither does their own time limit.
        self._version_timeouts: dict[tuple[int, int], float | None] = {}

    @property
    def running(self) -> int:
        return len(self._running)

    def running_ids(self) -> list[str]:
        return list(self._running)

    def cancel(self, execution_id: str) -> bool:
        """Ask a running execution of this process to stop; its outcome is decided at once."""
        active = self._running.get(execution_id)
        if active is None:
            return False
        active.cancel_requested.set()
        return True

    async def recheck_cancels(self) -> None:
        """Look at the cancel flags of every running execution (a push may have been missed while the
        listener was reconnecting)."""
        for execution_id in list(self._running):
            if await self.cancels.requested(execution_id):
                self.cancel(execution_id)

    async def execute(self, execution_id: str) -> None:
        """The queue's task. Never raises (but for the worker's own shutdown): whatever goes wrong
        with one execution is that execution's outcome, not the worker's."""
        try:
            await self._execute(execution_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("execution %s: internal error", execution_id)

    async def _execute(self, execution_id: str) -> None:
        execution = await self.store.claim_execution(execution_id)
        if execution is None:
            log.info("execution %s was not queued any more (cancelled or taken); skipped", execution_id)
            return
        # Registered before the flag is read: a cancel pushed from now on reaches cancel(), and one
        # pushed earlier has already set the flag (the API sets it before it publishes).
        active = self._running[execution_id] = _Active()
        try:
            status = await self._execute_claimed(execution, active)
        finally:
            self._running.pop(execution_id, None)
        log.info(
            "execution %s workflow=%s v%s attempt=%s %s in %.1f ms",
            execution_id,
            execution.workflow_id,
            execution.workflow_version,
            execution.attempt,
            status,
            (time.monotonic() - active.started) * 1000,
        )

    async def _execute_claimed(self, execution: Execution, active: _Active) -> ExecutionStatus:
        timeout_s = await self._timeout_of(execution)
        writer = self.events.writer(execution.id, live_ttl_s=timeout_s)
        if await self.cancels.requested(execution.id):
            active.cancel_requested.set()
        if active.cancel_requested.is_set():
            # Cancelled while it was being picked up: it never ran, so its log is just `cancelled`.
            return await self._finish(execution, writer, ExecutionStatus.CANCELLED, EventKind.CANCELLED)
        writer.emit(
            EventKind.START,
            workflow_id=execution.workflow_id,
            workflow_version=execution.workflow_version,
            attempt=execution.attempt,
        )
        loop = asyncio.get_running_loop()
        inner = loop.create_task(self._run(execution, writer), name=f"graphrun-run-{execution.id}")
        cancelled = loop.create_task(active.cancel_requested.wait())
        # The time limit counts from the claim, graph build included.
        remaining = max(0.0, timeout_s - (time.monotonic() - active.started))
        try:
            await asyncio.wait((inner, cancelled), timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            inner.cancel()  # the worker itself is shutting down
            raise
        finally:
            cancelled.cancel()
        # The outcome is decided here. Whatever the run still emits is dropped from now on, and it
        # is not waited for: an awaiting node is cancelled at once, but a synchronous node goes on
        # in its thread until it returns, and its result is thrown away.
        writer.seal()
        if not inner.done():  # (a run that ended before its cancel was seen keeps its own outcome)
            inner.cancel()
            self._abandon(execution.id, inner, writer)
            if active.cancel_requested.is_set():
                return await self._finish(execution, writer, ExecutionStatus.CANCELLED, EventKind.CANCELLED)
            return await self._finish(
                execution, writer, ExecutionStatus.TIMED_OUT, EventKind.TIMEOUT, timeout_s=timeout_s
            )
        if inner.cancelled():
            error = {"type": "CancelledError", "message": "the run was cancelled from inside a node"}
            return await self._finish(execution, writer, ExecutionStatus.FAILED, EventKind.ERROR, error=error)
        exc = inner.exception()
        if isinstance(exc, FactoryError):
            error = {
                "type": "FactoryError",
                "message": f"workflow {execution.workflow_id} v{execution.workflow_version}: {exc}",
            }
            return await self._finish(execution, writer, ExecutionStatus.FAILED, EventKind.ERROR, error=error)
        if exc is not None:  # a node's failure is the execution's, not ours
            error = {"type": type(exc).__name__, "message": str(exc)}
            return await self._finish(execution, writer, ExecutionStatus.FAILED, EventKind.ERROR, error=error)
        return await self._finish(
            execution, writer, ExecutionStatus.SUCCEEDED, EventKind.COMPLETE, output=inner.result()
        )

    def _abandon(self, execution_id: str, task: asyncio.Task[Any], writer: EventWriter) -> None:
        since = time.monotonic()
        self._abandoned.add(task)

        def ended(t: asyncio.Task[Any]) -> None:
            self._abandoned.discard(t)
            if not t.cancelled():
                t.exception()  # retrieved: whatever it ended with was already superseded
            log.info(
                "execution %s: its run ended %.1f s after its outcome was decided; %s late event(s) dropped",
                execution_id,
                time.monotonic() - since,
                writer.dropped,
            )

        task.add_done_callback(ended)

    async def _timeout_of(self, execution: Execution) -> float:
        """The submit's ``timeout_s``, else the workflow's own (config ``timeout_s``), else the default."""
        if execution.timeout_s:
            return execution.timeout_s
        key = (execution.workflow_id, execution.workflow_version)
        if key not in self._version_timeouts:
            try:
                config = (await self.store.get_version(*key)).config
                self._version_timeouts[key] = config_timeout_s(config)
            except Exception as exc:  # noqa: BLE001 - a limit we cannot read is the default one
                log.warning("execution %s: workflow time limit unreadable (%s); using the default", execution.id, exc)
                return self.default_timeout_s
            while len(self._version_timeouts) > _VERSION_TIMEOUTS_KEPT:
                del self._version_timeouts[next(iter(self._version_timeouts))]
        return self._version_timeouts[key] or self.default_timeout_s

    async def _finish(
        self,
        execution: Execution,
        writer: EventWriter,
        status: ExecutionStatus,
        kind: EventKind,
        *,
        output: Any = None,
        error: dict[str, Any] | None = None,
        **data: Any,
    ) -> ExecutionStatus:
        # Events before the terminal one go out first; then the stored status; then the terminal
        # event, so whoever sees it can already read the final status.
        try:
            await writer.flush()
        except Exception:
            log.exception("event log of %s incomplete", execution.id)
        # Node outputs may hold LangChain messages and other objects: store what the stream sends.
        output = to_jsonable(output)
        stored = await self.store.finish_execution(execution.id, execution.attempt, status, output, error)
        if stored is None:
            log.warning("execution %s: final status %s refused (no longer this attempt's)", execution.id, status)
            return status
        if kind is EventKind.COMPLETE:
            data["output"] = output
        elif kind is EventKind.ERROR:
            data["error"] = error
        writer.emit(kind, **data)
        await writer.flush()
        return status

    async def _graph(self, execution: Execution) -> Any:
        while True:
            try:
                return await self.cache.get(execution.workflow_id, execution.workflow_version)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # this execution is being stopped
                # The build this execution waited for was cancelled with the execution that started
                # it (the cache shares one build among all who ask): no reason to fail; build again.
                log.info("execution %s: the graph build it waited for was cancelled; building again", execution.id)

    async def _run(self, execution: Execution, writer: EventWriter) -> Any:
        graph = await self._graph(execution)
        config = {"recursion_limit": self.recursion_limit, "configurable": {"execution_id": execution.id}}
        # LangGraph's custom stream chunks do not name their node; while exactly one task runs in a
        # namespace it is that task's (parallel branches leave ``node`` null).
        active: dict[tuple[str, ...], dict[str, str]] = {}
        final: Any = None
        async for ns, mode, chunk in graph.astream(execution.input, config, stream_mode=STREAM_MODES, subgraphs=True):
            scope = {"namespace": list(ns)} if ns else {}
            if mode == "tasks":
                tasks = active.setdefault(ns, {})
                if "input" in chunk:
                    tasks[chunk["id"]] = chunk["name"]
                    writer.emit(EventKind.NODE_START, node=chunk["name"], **scope)
                else:
                    tasks.pop(chunk["id"], None)
                    if chunk.get("error") is None:
                        writer.emit(EventKind.NODE_END, node=chunk["name"], output=chunk.get("result"), **scope)
            elif mode == "custom":
                tasks = active.get(ns) or {}
                node = next(iter(tasks.values())) if len(tasks) == 1 else None
                writer.emit(EventKind.CUSTOM, node=node, data=chunk, **scope)
            elif mode == "messages":
                message, meta = chunk
                content = getattr(message, "content", None)
                # Only model output: the human/tool messages a node returns are state, not a stream.
                if content and getattr(message, "type", None) in ("ai", "AIMessageChunk"):
                    writer.emit(EventKind.MESSAGE, node=meta.get("langgraph_node"), content=content, **scope)
            elif mode == "values" and not ns:
                final = chunk
        return final
