"""LangGraph values as the LangGraph server sends them: JSON text, and run statuses. Pure.

What must stay true: every SSE ``data:`` line, stored output and thread value is encoded here, so the
stream, ``/wait`` and the thread's state agree on how a value looks:
- a LangChain message (any pydantic model) is its ``model_dump()``: ``type``, ``content``, ``id``…,
  a streamed chunk keeps ``type: "AIMessageChunk"`` as in the server's ``messages-tuple`` events;
- an ``Interrupt`` (a dataclass) is its fields, ``{"value", "id", …}``;
- the text is one line of compact JSON (the SSE framing relies on it: string escapes hold newlines).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from graphrun.store.base import ExecutionStatus


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, type) and issubclass(value, BaseModel):
        return value.model_json_schema()
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    for attr in ("model_dump", "dict", "_asdict"):
        fn = getattr(value, attr, None)
        if callable(fn):
            try:
                return fn()
            except Exception:  # noqa: BLE001 - fall through to str
                break
    return str(value)


_ENCODER = json.JSONEncoder(default=_default, separators=(",", ":"), ensure_ascii=False)


def dumps(value: Any) -> str:
    """``value`` as one line of compact JSON, the way the LangGraph server encodes it."""
    return _ENCODER.encode(value)


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (dicts, lists…), encoded as :func:`dumps` does."""
    return json.loads(dumps(value))


def message_to_dict(message: BaseMessage) -> dict[str, Any]:
    return message.model_dump()


# A run is an execution: its LangGraph status is a function of the execution's.
RUN_STATUS: dict[ExecutionStatus, str] = {
    ExecutionStatus.QUEUED: "pending",
    ExecutionStatus.RUNNING: "running",
    ExecutionStatus.SUCCEEDED: "success",
    ExecutionStatus.FAILED: "error",
    ExecutionStatus.TIMED_OUT: "timeout",
    ExecutionStatus.CANCELLED: "interrupted",
}

RUN_STATUSES = ("pending", "running", "success", "error", "timeout", "interrupted")


def run_status(status: ExecutionStatus) -> str:
    # A native status this table does not know yet (an execution stopped at an interrupt) is a
    # run that ended well: LangGraph's server calls a run stopped at ``interrupt()`` a success.
    return RUN_STATUS.get(status, "success")


def execution_statuses(run_status: str) -> list[ExecutionStatus]:
    """The execution statuses a run status stands for (a list filter)."""
    return [s for s, name in RUN_STATUS.items() if name == run_status]
