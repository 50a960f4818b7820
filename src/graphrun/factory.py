"""Helpers for graph factories, usable while graphrun builds a graph.

    from graphrun.factory import load_workflow, configured_llm

    async def build(config):
        search = await load_workflow(config["search_workflow"])   # a stored sub-workflow
        ...

A sub-workflow comes from the same per-process graph cache as any other graph.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from graphrun.errors import GraphrunError


@dataclass(frozen=True, slots=True)
class BuildContext:
    load: Callable[[int | str], Awaitable[Any]]
    loop: asyncio.AbstractEventLoop
    llm: str | None = None


current: contextvars.ContextVar[BuildContext] = contextvars.ContextVar("graphrun_build_context")


def _context() -> BuildContext:
    try:
        return current.get()
    except LookupError:
        raise GraphrunError("graphrun.factory helpers only work while graphrun builds a graph") from None


async def load_workflow(workflow: int | str) -> Any:
    """The compiled graph of another stored workflow (by id, or by name: the newest one), at its
    current version. In a synchronous factory use :func:`load_workflow_sync`."""
    return await _context().load(workflow)


def load_workflow_sync(workflow: int | str) -> Any:
    """:func:`load_workflow` for synchronous factories, which graphrun runs in a worker thread."""
    ctx = _context()
    return asyncio.run_coroutine_threadsafe(ctx.load(workflow), ctx.loop).result()  # type: ignore[arg-type]


def configured_llm() -> str | None:
    """The chat model named by ``GRAPHRUN_LLM`` (for ``init_chat_model``), or None."""
    try:
        return current.get().llm
    except LookupError:
        return None
