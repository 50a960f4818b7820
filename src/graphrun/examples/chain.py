"""A line of nodes counting up: the example graph of API.md §6."""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, ConfigDict, Field


class ChainState(TypedDict):
    n: int


class ChainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(5, ge=1, le=10_000)
    delay_s: float = Field(0.0, ge=0)
    blocking: bool = False
    emit: int = Field(0, ge=0, le=1_000_000)
    fail_at: int | None = None


def _node(index: int, cfg: ChainConfig) -> Any:
    if cfg.blocking:
        # A synchronous node: LangGraph runs it in a thread, off the event loop.
        def step_sync(state: ChainState) -> ChainState:
            if cfg.delay_s:
                time.sleep(cfg.delay_s)
            write = get_stream_writer()
            for k in range(cfg.emit):
                write({"i": k})
            if index == cfg.fail_at:
                raise RuntimeError("fail_at")
            return {"n": state["n"] + 1}

        return step_sync

    async def step(state: ChainState) -> ChainState:
        if cfg.delay_s:
            await asyncio.sleep(cfg.delay_s)
        write = get_stream_writer()
        for k in range(cfg.emit):
            write({"i": k})
        if index == cfg.fail_at:
            raise RuntimeError("fail_at")
        return {"n": state["n"] + 1}

    return step


def build(config: dict[str, Any]) -> StateGraph:  # type: ignore[type-arg]
    """A line of `steps` nodes step_1 … step_N, each adding 1 to n (config: steps, delay_s, blocking, emit, fail_at)."""
    cfg = ChainConfig.model_validate(config)
    graph = StateGraph(ChainState)
    previous = START
    for i in range(1, cfg.steps + 1):
        name = f"step_{i}"
        graph.add_node(name, _node(i, cfg))
        graph.add_edge(previous, name)
        previous = name
    graph.add_edge(previous, END)
    return graph


build.config_model = ChainConfig  # type: ignore[attr-defined]  # lets the API check configs up front
