"""A graph of five steps, each appending its own item after an optional delay (input `delay`,
seconds): a slow run to join mid-way, to cancel mid-node and to kill a worker under. Each step
tells the custom stream when it starts, so a test knows a node is running."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

STEPS = 5


class State(TypedDict, total=False):
    items: Annotated[list[str], operator.add]
    delay: float


def step(i: int) -> Any:
    async def node(state: State) -> dict[str, Any]:
        get_stream_writer()({"started": f"step_{i}"})
        await asyncio.sleep(state.get("delay", 0.0))
        return {"items": [f"item-{i}"]}

    return node


builder = StateGraph(State)
previous = START
for i in range(1, STEPS + 1):
    builder.add_node(f"step_{i}", step(i))
    builder.add_edge(previous, f"step_{i}")
    previous = f"step_{i}"
builder.add_edge(previous, END)
graph = builder.compile()
