"""LangGraph stream chunks → LangGraph server SSE events (name, JSON text). Pure: no I/O.

The worker streams a LangGraph run with ``subgraphs`` as the run asked (``stream_subgraphs``) and
:attr:`LangGraphTranslator.modes` (what the run asked for, plus ``tasks`` and ``values``, which
graphrun itself needs). Each chunk
``(namespace, mode, payload)`` goes through :meth:`LangGraphTranslator.feed`, which answers the
events to write, as LangGraph's server names and encodes them, and the task the chunk began or ended
(for the checkpoint gate, as the native translator does).

What must stay true:
- only the modes the run asked for become events, and a subgraph's only with ``stream_subgraphs``;
  then its events are named ``<mode>|<ns>`` with the namespace's parts joined by ``|``
  (``updates|child:<task id>``), the way the server names them;
- mode ``messages-tuple`` is event ``messages`` with data ``[chunk, metadata]``; mode ``messages``
  is ``messages/metadata`` once per message id, then ``messages/partial`` with the message
  accumulated so far for a streamed chunk, or ``messages/complete`` for a whole message (these
  three never carry a namespace, and with both modes asked for only the tuple form is sent: the
  server does both);
- interrupts appear in ``values`` and ``updates`` as ``__interrupt__: [{"value", "id", …}]``;
- the root graph's last ``values`` chunk is the run's output (:attr:`LangGraphTranslator.final`);
- a taken-over run does not publish again anything of a task whose result the log already holds
  (``done``, the task ids read back from the log): not its ``tasks``/``debug`` start and result, its
  ``updates``, nor the ``custom`` and ``messages`` chunks it streams while it runs. What LangGraph
  itself replays from a checkpoint's pending writes (``updates`` marked ``__metadata__: {"cached":
  true}``) is sent as LangGraph sends it. State snapshots (``values``, ``checkpoints``) belong to no
  task and are sent as streamed;
- the events that hold a task's successful result (its ``updates``, and its ``tasks`` and ``debug``
  result) name it (:attr:`LgTranslated.task`), so that a later attempt knows it is done (a run that
  streams none of these modes leaves no such record).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk, message_chunk_to_message
from langgraph.types import StreamMode

from graphrun.langgraph.serde import dumps

# The modes a run may ask for, as the SDKs name them. ``messages-tuple`` is LangGraph's ``messages``
# mode sent as ``[chunk, metadata]``; ``messages`` is the server's own accumulated form; ``events``
# are LangChain's ``astream_events`` (v2), which the worker then streams instead of ``astream``.
SUPPORTED_MODES = (
    "values",
    "updates",
    "messages",
    "messages-tuple",
    "custom",
    "debug",
    "tasks",
    "checkpoints",
    "events",
)
DEFAULT_MODES = ["values"]

# What graphrun needs whatever the run asked for: tasks (the checkpoint gate), values (the output).
_OWN_MODES: tuple[StreamMode, ...] = ("tasks", "values")

# The LangGraph stream mode behind each mode a run may ask for.
_SOURCE: dict[str, StreamMode] = {
    "values": "values",
    "updates": "updates",
    "messages": "messages",
    "messages-tuple": "messages",
    "custom": "custom",
    "debug": "debug",
    "tasks": "tasks",
    "checkpoints": "checkpoints",
}
# Not a mode of ``astream``: the callback events around it.
_EVENTS = "events"


# Where ``updates`` name what LangGraph replays rather than runs, and where they hold interrupts.
_META = "__metadata__"
_INTERRUPT = "__interrupt__"


@dataclass(frozen=True, slots=True)
class LgTranslated:
    """What one chunk means: the events to write (name, JSON text), the task it began or ended, and
    the task whose successful result the events hold (written with them)."""

    events: tuple[tuple[str, str], ...] = ()
    started: str | None = None
    ended: str | None = None
    task: str | None = None


_NOTHING = LgTranslated()


class LangGraphTranslator:
    """Translates the chunks of one LangGraph run, in order."""

    def __init__(self, stream_mode: Sequence[str], *, subgraphs: bool = False, done: Collection[str] = ()) -> None:
        unknown = [m for m in stream_mode if m not in _SOURCE and m != _EVENTS]
        if unknown:
            raise ValueError(f"unsupported stream mode(s): {', '.join(unknown)}")
        self.requested = frozenset(stream_mode)
        self.subgraphs = subgraphs
        sources = [_SOURCE[m] for m in stream_mode if m != _EVENTS]
        self.modes: tuple[StreamMode, ...] = tuple(dict.fromkeys([*_OWN_MODES, *sources]))
        # Streamed with ``astream_events``: each chunk of ``astream`` arrives as the root run's
        # ``on_chain_stream`` event (fed to :meth:`feed`), every other event goes to :meth:`event`.
        self.events = _EVENTS in self.requested
        self._tuple = "messages-tuple" in self.requested
        # Both asked for: the server sends the tuple form only.
        self._accumulate = "messages" in self.requested and not self._tuple
        self._partial: dict[str, BaseMessageChunk] = {}
        self._described: set[str] = set()
        self._final: str | None = None
        self._done = done
        # The tasks running in each namespace (id → node), to tell whose a chunk is.
        self._running: dict[tuple[str, ...], dict[str, str]] = {}

    @property
    def final(self) -> Any:
        """The root graph's last values (JSON types), None if it had none."""
        return None if self._final is None else json.loads(self._final)

    def feed(self, namespace: tuple[str, ...], mode: str, chunk: Any) -> LgTranslated:
        started = ended = None
        owner, result = self._owner(namespace, mode, chunk)
        if mode == "tasks":
            running = self._running.setdefault(namespace, {})
            if "input" in chunk:  # a task begins; its end has "result" and "error" instead
                started = chunk["id"]
                running[started] = chunk["name"]
            else:
                ended = chunk["id"]
                running.pop(ended, None)
        if owner is not None and owner in self._done:
            # Its result is in the log: this is a later attempt running it again.
            return LgTranslated(started=started, ended=ended) if started or ended else _NOTHING
        if namespace and not self.subgraphs:
            return LgTranslated(started=started, ended=ended) if started or ended else _NOTHING
        suffix = "|" + "|".join(namespace) if namespace else ""
        if mode == "messages":
            events = self._messages(chunk, suffix)
        elif mode == "values":
            text = dumps(chunk)
            if not namespace:
                self._final = text
            events = ((f"values{suffix}", text),) if "values" in self.requested else ()
        elif mode == "debug" and mode in self.requested:
            events = ((f"debug{suffix}", dumps(_debug(chunk))),)
        elif mode in self.requested:
            events = ((f"{mode}{suffix}", dumps(chunk)),)
        else:
            events = ()
        if not events and started is None and ended is None:
            return _NOTHING
        return LgTranslated(events, started, ended, owner if result and events else None)

    def _owner(self, namespace: tuple[str, ...], mode: str, chunk: Any) -> tuple[str | None, bool]:
        """The task whose output ``chunk`` is (None if no one task's), and whether it is that task's
        successful result rather than what it streams while it runs."""
        if mode == "debug":
            if chunk.get("type") not in ("task", "task_result"):
                return None, False
            chunk = chunk["payload"]
            mode = "tasks"
        if mode == "tasks":
            ended = "input" not in chunk
            return chunk["id"], ended and chunk.get("error") is None and not chunk.get("interrupts")
        running = self._running.get(namespace) or {}
        if mode == "updates":
            # One task's update: {node: …}, named by the node. Interrupts, and LangGraph's replays
            # of a checkpoint's writes (it marks them itself), are nobody's here.
            if not isinstance(chunk, dict) or _META in chunk or _INTERRUPT in chunk or len(chunk) != 1:
                return None, False
            node = next(iter(chunk))
            ids = [task for task, name in running.items() if name == node]
            return (ids[0], True) if len(ids) == 1 else (None, False)
        if mode in ("custom", "messages") and self._done and len(running) == 1:
            # Neither names its task: while exactly one task runs in the namespace, it is that one's.
            # Only a later attempt asks (a token's chunk is the hottest path, and it is no result).
            return next(iter(running)), False
        return None, False

    def event(self, event: dict[str, Any]) -> tuple[str, str] | None:
        """An ``astream_events`` event that is not one of the root run's chunks: event ``events``
        with the event as data; None for the ones LangChain hides from tracing."""
        if "langsmith:hidden" in (event.get("tags") or ()):
            return None
        return (_EVENTS, dumps(event))

    def _messages(self, chunk: tuple[BaseMessage, dict[str, Any]], suffix: str) -> tuple[tuple[str, str], ...]:
        message, metadata = chunk
        out: list[tuple[str, str]] = []
        if self._tuple:
            out.append((f"messages{suffix}", dumps([message, metadata])))
        if self._accumulate:
            key = message.id or ""
            if key not in self._described:
                self._described.add(key)
                out.append(("messages/metadata", dumps({key: {"metadata": metadata}})))
            if isinstance(message, BaseMessageChunk):
                so_far = self._partial.get(key)
                so_far = message if so_far is None else so_far + message
                self._partial[key] = so_far
                out.append(("messages/partial", dumps([message_chunk_to_message(so_far)])))
            else:
                self._partial.pop(key, None)
                out.append(("messages/complete", dumps([message])))
        return tuple(out)


def _debug(chunk: dict[str, Any]) -> dict[str, Any]:
    """The server adds to a checkpoint's debug event the ids of it and of its parent."""
    if chunk.get("type") != "checkpoint":
        return chunk
    payload = chunk["payload"]
    return {
        **chunk,
        "payload": {
            **payload,
            "checkpoint": _checkpoint_ids(payload.get("config")),
            "parent_checkpoint": _checkpoint_ids(payload.get("parent_config")),
        },
    }


def _checkpoint_ids(config: dict[str, Any] | None) -> dict[str, Any] | None:
    if not config:
        return None
    configurable = config.get("configurable") or {}
    return {
        "checkpoint_id": configurable.get("checkpoint_id"),
        "thread_id": configurable.get("thread_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
    }


def normalise_modes(stream_mode: str | Sequence[str] | None) -> list[str]:
    """The modes as a list without repeats (order kept); ValueError naming the supported ones for
    any other."""
    if stream_mode is None:
        return list(DEFAULT_MODES)
    modes = [stream_mode] if isinstance(stream_mode, str) else list(stream_mode)
    unknown = [m for m in modes if m not in SUPPORTED_MODES]
    if unknown:
        raise ValueError(
            f"unsupported stream mode(s) {', '.join(map(repr, unknown))}; supported: {', '.join(SUPPORTED_MODES)}"
        )
    return list(dict.fromkeys(modes)) or list(DEFAULT_MODES)
