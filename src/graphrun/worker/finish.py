"""Recording a decided outcome: the events emitted before it, then the final status, then the
terminal event.

What must stay true:
- the final status is stored before the terminal event is written, so a client that saw the
  terminal event reads the final status from the API; what the outcome changes elsewhere (a
  LangGraph thread's state: ``before``) is stored before the status;
- a final status the store refuses (the execution is no longer this attempt's) writes no terminal
  event: the attempt that owns it now writes its own;
- a database outage alone never fails an execution: storing is retried for a while, and if the
  database stays away the lease lapses and a later attempt resumes from the last checkpoint and
  stores the outcome then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from graphrun import metrics
from graphrun.errors import BackendUnavailableError, FactoryError
from graphrun.events.log import EventWriter
from graphrun.events.model import to_jsonable
from graphrun.events.terminal import interrupts_of, terminal_event
from graphrun.redis.retry import RetryPolicy
from graphrun.store.base import Execution, ExecutionStatus, Store
from graphrun.worker.state import Outcome

log = logging.getLogger("graphrun.worker")

STORE_RETRY_S = 60.0

# Called with the decided status and error before they are stored.
Before = Callable[[ExecutionStatus, dict[str, Any] | None], Awaitable[None]]
_STORE_RETRY = RetryPolicy(max_s=2.0, deadline_s=STORE_RETRY_S, retry_on=(BackendUnavailableError,))


async def finish(
    store: Store,
    writer: EventWriter,
    execution: Execution,
    status: ExecutionStatus,
    *,
    output: Any = None,
    error: dict[str, Any] | None = None,
    timeout_s: float | None = None,
    before: Before | None = None,
) -> Outcome:
    """Store ``status`` and end the log with its terminal event."""
    try:
        await writer.flush()
    except Exception:
        log.exception("event log of %s incomplete", execution.id)
    if before is not None:
        try:
            await before(status, error)
        except Exception:
            log.exception("execution %s: recording its outcome's effects failed", execution.id)
    # Node outputs may hold LangChain messages and other objects: store what the stream sends.
    output = to_jsonable(output)
    if await _store(store, execution, status, output, error) is None:
        log.warning("execution %s: final status %s refused (no longer this attempt's)", execution.id, status)
        return Outcome.of(status)
    event = terminal_event(
        execution.id, status, output=output, error=error, timeout_s=timeout_s, interrupts=interrupts_of(output)
    )
    writer.emit(event.kind, **event.data)
    await writer.flush()
    metrics.EXECUTIONS.labels(status.value).inc()
    return Outcome.of(status)


async def finish_ended(
    store: Store,
    writer: EventWriter,
    execution: Execution,
    run: asyncio.Task[Any],
    before: Before | None = None,
    *,
    interrupts: list[dict[str, Any]] | None = None,
) -> Outcome:
    """Record the outcome of a run that ended by itself: its output, or its failure (a factory's
    or a node's failure is the execution's, not the worker's), or the ``interrupts`` it stopped at
    (stored as its output, ``{"interrupts": [...]}``)."""
    if run.cancelled():
        error = {"type": "CancelledError", "message": "the run was cancelled from inside a node"}
        return await finish(store, writer, execution, ExecutionStatus.FAILED, error=error, before=before)
    exc = run.exception()
    if isinstance(exc, FactoryError):
        error = {
            "type": "FactoryError",
            "message": f"workflow {execution.workflow_id} v{execution.workflow_version}: {exc}",
        }
        return await finish(store, writer, execution, ExecutionStatus.FAILED, error=error, before=before)
    if exc is not None:
        error = {"type": type(exc).__name__, "message": str(exc)}
        return await finish(store, writer, execution, ExecutionStatus.FAILED, error=error, before=before)
    if interrupts:
        output = {"interrupts": interrupts}
        return await finish(store, writer, execution, ExecutionStatus.INTERRUPTED, output=output, before=before)
    return await finish(store, writer, execution, ExecutionStatus.SUCCEEDED, output=run.result(), before=before)


async def _store(
    store: Store, execution: Execution, status: ExecutionStatus, output: Any, error: dict[str, Any] | None
) -> Execution | None:
    return await _STORE_RETRY.call(
        lambda: store.finish_execution(execution.id, execution.attempt, status, output, error),
        f"execution {execution.id}: storing {status}",
        log,
    )
