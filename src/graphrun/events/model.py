"""Events of API.md §3 and how they are stored in a stream entry."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from graphrun.events.ids import StreamId

# The kinds of a LangGraph-protocol run's entries: this prefix and LangGraph's SSE event name
# (worker/lgrun.py writes them, langgraph/stream.py sends them).
LG_PREFIX = "lg:"


class EventKind(StrEnum):
    START = "start"
    NODE_START = "node_start"
    NODE_END = "node_end"
    MESSAGE = "message"
    CUSTOM = "custom"
    RESUMED = "resumed"
    TRUNCATED = "truncated"
    COMPLETE = "complete"
    ERROR = "error"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    INTERRUPT = "interrupt"


TERMINAL_KINDS = frozenset(
    {EventKind.COMPLETE, EventKind.ERROR, EventKind.CANCELLED, EventKind.TIMEOUT, EventKind.INTERRUPT}
)


def _default(value: Any) -> Any:
    # Node outputs may hold LangChain messages, pydantic models, sets…: send what a client can use.
    for attr in ("model_dump", "dict"):
        fn = getattr(value, attr, None)
        if callable(fn):
            try:
                return fn()
            except Exception:  # noqa: BLE001 - fall through to repr
                break
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)


# One encoder for every event: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(default=_default, separators=(",", ":"), ensure_ascii=False)


def dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON types, converted the way events are."""
    return json.loads(dumps(value))


@dataclass(frozen=True, slots=True)
class Event:
    """One event. ``data`` holds the fields beyond ``execution_id`` and ``ts`` (API.md §3)."""

    kind: EventKind
    execution_id: str
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)
    id: StreamId | None = None

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL_KINDS

    def payload(self) -> str:
        """The SSE ``data:`` line's JSON."""
        return dumps({"execution_id": self.execution_id, **self.data, "ts": round(self.ts, 6)})

    def to_fields(self) -> dict[str, str]:
        return {"k": self.kind.value, "d": self.payload()}


@dataclass(frozen=True, slots=True)
class Entry:
    """An event as read back from the log: the JSON is kept as written, never re-encoded."""

    id: StreamId
    kind: str
    data: str

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL_KINDS

    @classmethod
    def from_redis(cls, entry_id: bytes | str, fields: dict[bytes, bytes]) -> Entry:
        return cls(StreamId.parse(entry_id), fields[b"k"].decode(), fields[b"d"].decode())
