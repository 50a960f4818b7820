"""A graph for tests/worker/test_admission.py, registered through a graphrun.toml: the in-loop worker
runs it in the test's own process and event loop, so the test decides when its node returns."""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

_released: dict[str, asyncio.Event] = {}

REGISTRY_TOML = """[graphs]
waiter = "tests.worker.admission_graphs:build_waiter"
"""


class State(TypedDict):
    n: int


def release(key: str) -> None:
    """Every ``waiter`` node of this key returns now (and any started later at once)."""
    _released.setdefault(key, asyncio.Event()).set()


def build_waiter(config: dict[str, Any]) -> StateGraph:  # type: ignore[type-arg]
    """One async node that awaits the test's ``release(key)``: a run waiting on I/O (a model's answer)."""

    async def wait(state: State) -> State:
        await _released.setdefault(config["key"], asyncio.Event()).wait()
        return {"n": state["n"] + 1}

    graph = StateGraph(State)
    graph.add_node("wait", wait)
    graph.add_edge(START, "wait")
    graph.add_edge("wait", END)
    return graph
