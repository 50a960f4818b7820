"""The event log: one Redis Stream per execution, written by workers, read by the API."""

from graphrun.events.ids import StreamId
from graphrun.events.model import TERMINAL_KINDS, Event, EventKind

__all__ = ["TERMINAL_KINDS", "Event", "EventKind", "StreamId"]
