"""The graphs bench/e2e.py serves with `langgraph dev`: graphrun's example `chain` (API.md §6), copied
because the peer's virtual environment does not have graphrun. Keep in step with
src/graphrun/examples/chain.py (async nodes; no `blocking` or `fail_at`, the bench uses neither).

langgraph.json names the module-level graphs: `chain` (5 steps), `chatty` (1 step writing EMIT custom
events) and `slow` (5 steps of 60 s, for idle clients).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph


class ChainState(TypedDict):
    n: int


def _node(delay_s: float, emit: int) -> Any:
    async def step(state: ChainState) -> ChainState:
        if delay_s:
            await asyncio.sleep(delay_s)
        write = get_stream_writer()
        for k in range(emit):
            write({"i": k})
        return {"n": state["n"] + 1}

    return step


def build(steps: int = 5, delay_s: float = 0.0, emit: int = 0) -> Any:
    graph = StateGraph(ChainState)
    previous = START
    for i in range(1, steps + 1):
        name = f"step_{i}"
        graph.add_node(name, _node(delay_s, emit))
        graph.add_edge(previous, name)
        previous = name
    graph.add_edge(previous, END)
    return graph.compile()


chain = build()
chatty = build(steps=1, emit=int(os.environ.get("BENCH_CHATTY_EMIT", "10000")))
slow = build(delay_s=60.0)
