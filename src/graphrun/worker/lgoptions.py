"""A LangGraph run's options (``execution.options``): what the API stores, what the worker streams
with. Pure: no I/O, no FastAPI, so that the worker can import it.

The API writes the options once, at create time (``langgraph/runs.py``); the worker reads them on
every attempt (``worker/stream.py``), so everything a later attempt needs to stream the same run
is in them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.types import Command

PROTOCOL = "langgraph"

# The modes a run may ask for, as the SDKs name them. ``messages-tuple`` is LangGraph's ``messages``
# mode sent as ``[chunk, metadata]``; ``messages`` is the server's own accumulated form. ``events``
# (astream_events) is not supported: it needs a second kind of stream of the graph.
SUPPORTED_MODES = ("values", "updates", "messages", "messages-tuple", "custom", "debug", "tasks", "checkpoints")
DEFAULT_MODES = ["values"]

# Keys of ``configurable`` that graphrun sets for every run: a run's config cannot move them.
RESERVED_CONFIGURABLE = ("thread_id", "execution_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map")


def is_langgraph(options: dict[str, Any] | None) -> bool:
    return bool(options) and options.get("protocol") == PROTOCOL  # type: ignore[union-attr]


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


def run_input(options: dict[str, Any]) -> Any:
    """What the graph is streamed with on a run's first attempt: its input, or its command."""
    command = options.get("command")
    if command:
        return Command(
            resume=command.get("resume"),
            update=command.get("update"),
            goto=command.get("goto") or (),
        )
    return options.get("input")


def run_config(
    options: dict[str, Any],
    *,
    execution_id: str,
    thread_id: str,
    attempt: int,
    recursion_limit: int,
    from_checkpoint: bool,
) -> dict[str, Any]:
    """The RunnableConfig of one attempt: the run's config, with graphrun's keys on top.
    ``from_checkpoint``: start from the checkpoint the run named (a first attempt only; a later one
    goes on from the newest checkpoint, which its earlier attempt wrote)."""
    given: dict[str, Any] = dict(options.get("config") or {})
    configurable = {k: v for k, v in (given.pop("configurable", None) or {}).items() if k not in RESERVED_CONFIGURABLE}
    configurable.update(
        {
            "thread_id": thread_id,
            "execution_id": execution_id,
            "run_id": execution_id,
            "graph_id": options.get("graph_id"),
            "assistant_id": options.get("assistant_id"),
        }
    )
    checkpoint = options.get("checkpoint") or {}
    if from_checkpoint and checkpoint.get("checkpoint_id"):
        configurable["checkpoint_id"] = checkpoint["checkpoint_id"]
        configurable["checkpoint_ns"] = checkpoint.get("checkpoint_ns") or ""
    metadata = {
        **(given.pop("metadata", None) or {}),
        "graph_id": options.get("graph_id"),
        "assistant_id": options.get("assistant_id"),
        "run_attempt": attempt,
        "run_id": execution_id,
        "thread_id": thread_id,
    }
    given.pop("callbacks", None)  # (JSON cannot carry callbacks; a client's would be nonsense here)
    return {
        **given,
        "recursion_limit": given.get("recursion_limit") or recursion_limit,
        "configurable": configurable,
        "metadata": metadata,
    }


def interrupt_nodes(value: Any) -> Any:
    """``interrupt_before``/``interrupt_after`` as ``astream`` takes them: a list, ``"*"`` or None."""
    if value is None or value == "*":
        return value
    return list(value)
