"""Running one execution: claim it, build (or fetch) its graph, stream it, record the outcome.

What must stay true:
- only the worker whose claim succeeded (queued → running) runs an execution;
- every log it writes starts with ``start`` and ends with exactly one terminal event;
- the final status is stored before the terminal event is written, so a client that saw the
  terminal event reads the final status from the API;
- an exception in a factory or a node fails that execution only, never the worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from graphrun.cache import GraphCache
from graphrun.cancel import CancelBus
from graphrun.errors import FactoryError
from graphrun.events.log import EventLog, EventWriter
from graphrun.events.model import EventKind, to_jsonable
from graphrun.store.base import Execution, ExecutionStatus, Store

log = logging.getLogger("graphrun.worker")

STREAM_MODES = ["tasks", "custom", "messages", "values"]


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
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._cancel_requested: set[str] = set()

    @property
    def running(self) -> int:
        return len(self._running)

    def cancel(self, execution_id: str) -> bool:
        """Interrupt a running execution at once (its current await raises CancelledError)."""
        task = self._running.get(execution_id)
        if task is None:
            return False
        self._cancel_requested.add(execution_id)
        task.cancel()
        return True

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
        timeout_s = execution.timeout_s or self.default_timeout_s
        writer = self.events.writer(execution_id, live_ttl_s=timeout_s)
        writer.emit(
            EventKind.START,
            workflow_id=execution.workflow_id,
            workflow_version=execution.workflow_version,
            attempt=execution.attempt,
        )
        started = time.perf_counter()
        inner = asyncio.get_running_loop().create_task(self._run(execution, writer))
        self._running[execution_id] = inner
        try:
            if await self.cancels.requested(execution_id):
                self.cancel(execution_id)  # requested while we were picking it up
            async with asyncio.timeout(timeout_s):
                output = await asyncio.shield(inner)
        except TimeoutError:
            inner.cancel()
            await asyncio.gather(inner, return_exceptions=True)
            await self._finish(execution, writer, ExecutionStatus.TIMED_OUT, EventKind.TIMEOUT, timeout_s=timeout_s)
        except asyncio.CancelledError:
            if execution_id not in self._cancel_requested:
                inner.cancel()
                raise  # the worker itself is shutting down
            await self._finish(execution, writer, ExecutionStatus.CANCELLED, EventKind.CANCELLED)
        except FactoryError as exc:
            error = {
                "type": "FactoryError",
                "message": f"workflow {execution.workflow_id} v{execution.workflow_version}: {exc}",
            }
            await self._finish(execution, writer, ExecutionStatus.FAILED, EventKind.ERROR, error=error)
        except Exception as exc:  # noqa: BLE001 - a node's failure is the execution's, not ours
            error = {"type": type(exc).__name__, "message": str(exc)}
            await self._finish(execution, writer, ExecutionStatus.FAILED, EventKind.ERROR, error=error)
        else:
            await self._finish(execution, writer, ExecutionStatus.SUCCEEDED, EventKind.COMPLETE, output=output)
        finally:
            self._running.pop(execution_id, None)
            self._cancel_requested.discard(execution_id)
        log.info(
            "execution %s workflow=%s v%s attempt=%s finished in %.1f ms",
            execution_id,
            execution.workflow_id,
            execution.workflow_version,
            execution.attempt,
            (time.perf_counter() - started) * 1000,
        )

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
    ) -> None:
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
            return
        if kind is EventKind.COMPLETE:
            data["output"] = output
        elif kind is EventKind.ERROR:
            data["error"] = error
        writer.emit(kind, **data)
        await writer.flush()

    async def _run(self, execution: Execution, writer: EventWriter) -> Any:
        graph = await self.cache.get(execution.workflow_id, execution.workflow_version)
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
