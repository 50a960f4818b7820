"""How the worker streams a LangGraph run from its options (``execution.options``, design-15).

The API writes the options once, at create time (``langgraph/runs.py``); every attempt reads them
here, so everything a later attempt needs to stream the same run is in them.
"""

from __future__ import annotations

from typing import Any

from langgraph.types import Command

PROTOCOL = "langgraph"

# Keys of ``configurable`` that graphrun sets for every run: a run's config cannot move them.
RESERVED_CONFIGURABLE = ("thread_id", "execution_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map")


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
