"""The terminal event of an execution (API.md §3), built in one place whoever writes it: the worker
that decided the outcome, the sweeper that gave up on it, the API that cancelled it while queued,
and the stream that rebuilds it from the stored execution once the log has expired.

What must stay true: a terminal event is a function of the final status and what the execution
stored with it (output, error, time limit), so the event a client reads from the log and the one
rebuilt from the store say the same. A new final status is one more row in ``_TERMINAL`` and, if its
event carries a field, one more keyword. An interrupted execution stores its pending interrupts as
its output (``{"interrupts": [{"id", "value"}]}``), so that its event can be rebuilt.
"""

from __future__ import annotations

from typing import Any

from graphrun.events.model import Event, EventKind
from graphrun.store.base import Execution, ExecutionStatus

# Each final status: its event, and the one field that event carries (if any).
_TERMINAL: dict[ExecutionStatus, tuple[EventKind, str | None]] = {
    ExecutionStatus.SUCCEEDED: (EventKind.COMPLETE, "output"),
    ExecutionStatus.FAILED: (EventKind.ERROR, "error"),
    ExecutionStatus.CANCELLED: (EventKind.CANCELLED, None),
    ExecutionStatus.TIMED_OUT: (EventKind.TIMEOUT, "timeout_s"),
    ExecutionStatus.INTERRUPTED: (EventKind.INTERRUPT, "interrupts"),
}


def terminal_event(
    execution_id: str,
    status: ExecutionStatus,
    *,
    output: Any = None,
    error: dict[str, Any] | None = None,
    timeout_s: float | None = None,
    interrupts: list[dict[str, Any]] | None = None,
    ts: float | None = None,
) -> Event:
    """The event that ends the log of an execution that ended with ``status``; ``ts`` now unless
    given. Raises ValueError for a status that is not final."""
    try:
        kind, field = _TERMINAL[status]
    except KeyError:
        raise ValueError(f"{status} is not a final status") from None
    values = {"output": output, "error": error, "timeout_s": timeout_s, "interrupts": interrupts or []}
    data = {field: values[field]} if field is not None else {}
    if ts is None:
        return Event(kind, execution_id, data)
    return Event(kind, execution_id, data, ts)


def stored_terminal_event(execution: Execution, *, default_timeout_s: float) -> Event | None:
    """The terminal event rebuilt from a stored execution, dated when it finished; None while it
    has not finished. ``default_timeout_s`` stands for a time limit the submit did not set."""
    if execution.status not in _TERMINAL:
        return None
    return terminal_event(
        execution.id,
        execution.status,
        output=execution.output,
        error=execution.error,
        timeout_s=execution.timeout_s or default_timeout_s,
        interrupts=interrupts_of(execution.output) if execution.status is ExecutionStatus.INTERRUPTED else None,
        ts=(execution.finished_at or execution.created_at).timestamp(),
    )


def interrupts_of(output: Any) -> list[dict[str, Any]]:
    """The pending interrupts an interrupted execution stored as its output."""
    found = output.get("interrupts") if isinstance(output, dict) else None
    return list(found) if isinstance(found, list) else []


__all__ = ["interrupts_of", "stored_terminal_event", "terminal_event"]
