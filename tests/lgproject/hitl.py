"""Graphs for human-in-the-loop and double-texting tests.

- ``fanout``: two parallel branches, each asking its own question with ``interrupt()``: two
  interrupts pending at once, resumed by id.
- ``marks``: three steps, each appending ``"<mark>:<step>"`` after an optional delay (input
  ``mark``, ``delay``), and telling the custom stream when it starts: which run wrote which step,
  in what order, shows in the thread's state."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt


class FanoutState(TypedDict, total=False):
    topic: str
    answers: Annotated[list[str], operator.add]


def branch(name: str) -> Any:
    def node(state: FanoutState) -> dict[str, Any]:
        answer = interrupt({"ask": name, "topic": state.get("topic")})
        return {"answers": [f"{name}:{answer}"]}

    return node


fanout_builder = StateGraph(FanoutState)
for name in ("a", "b"):
    fanout_builder.add_node(name, branch(name))
    fanout_builder.add_edge(START, name)
    fanout_builder.add_edge(name, END)
fanout = fanout_builder.compile()


class MarksState(TypedDict, total=False):
    mark: str
    delay: float
    marks: Annotated[list[str], operator.add]


def step(i: int) -> Any:
    async def node(state: MarksState) -> dict[str, Any]:
        get_stream_writer()({"started": f"{state.get('mark')}:{i}"})
        await asyncio.sleep(state.get("delay", 0.0))
        return {"marks": [f"{state.get('mark')}:{i}"]}

    return node


marks_builder = StateGraph(MarksState)
previous = START
for i in (1, 2, 3):
    marks_builder.add_node(f"step_{i}", step(i))
    marks_builder.add_edge(previous, f"step_{i}")
    previous = f"step_{i}"
marks_builder.add_edge(previous, END)
marks = marks_builder.compile()
