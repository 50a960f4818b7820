"""Graphs that only tests register (through a graphrun.toml naming ``tests.graphs:…``); importable by
worker subprocesses too."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    n: int


def _hold(config: dict[str, Any]) -> None:
    """Sleep ``sleep_s``; or, given a ``release`` file, until it exists (``sleep_s`` at most), so
    that a test decides when the node returns instead of guessing a duration."""
    if "release" not in config:
        time.sleep(config["sleep_s"])
        return
    deadline = time.monotonic() + config["sleep_s"]
    while not Path(config["release"]).exists() and time.monotonic() < deadline:
        time.sleep(0.01)


async def _ahold(config: dict[str, Any]) -> None:
    if "release" not in config:
        await asyncio.sleep(config["sleep_s"])
        return
    deadline = time.monotonic() + config["sleep_s"]
    while not Path(config["release"]).exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def _entered(config: dict[str, Any]) -> None:
    """Tells a test that the node's own code runs now (``<marker>.entered``)."""
    Path(config["marker"] + ".entered").touch()


def build_sync_sleeper(config: dict[str, Any]) -> StateGraph:
    """One synchronous node that sleeps (or waits for its release), then writes a custom event, a
    marker file and its update: the marker tells a test when the node really returned."""

    def sleeper(state: State) -> State:
        _entered(config)
        _hold(config)
        get_stream_writer()({"late": True})
        Path(config["marker"]).write_text("returned")
        return {"n": state["n"] + 1}

    graph = StateGraph(State)
    graph.add_node("sleeper", sleeper)
    graph.add_edge(START, "sleeper")
    graph.add_edge("sleeper", END)
    return graph


def build_stubborn(config: dict[str, Any]) -> StateGraph:
    """One async node that will not stop when cancelled: its clean-up takes ``sleep_s`` more (or
    lasts until its release), then it writes a custom event, the marker file and its update anyway."""

    async def stubborn(state: State) -> State:
        _entered(config)
        try:
            await _ahold(config)
        except asyncio.CancelledError:
            await _ahold(config)
        get_stream_writer()({"late": True})
        Path(config["marker"]).write_text("returned")
        return {"n": state["n"] + 1}

    graph = StateGraph(State)
    graph.add_node("stubborn", stubborn)
    graph.add_edge(START, "stubborn")
    graph.add_edge("stubborn", END)
    return graph


def build_loop_blocker(config: dict[str, Any]) -> StateGraph:
    """One *async* node that calls time.sleep: the mistake that stalls a worker's event loop."""

    async def blocker(state: State) -> State:
        time.sleep(config["block_s"])  # blocks the event loop, on purpose
        return {"n": state["n"] + 1}

    graph = StateGraph(State)
    graph.add_node("blocker", blocker)
    graph.add_edge(START, "blocker")
    graph.add_edge("blocker", END)
    return graph


def build_slow_to_build(config: dict[str, Any]) -> StateGraph:
    """A synchronous factory that takes ``build_s`` (it runs in a thread); one quick node."""
    time.sleep(config["build_s"])

    async def quick(state: State) -> State:
        return {"n": state["n"] + 1}

    graph = StateGraph(State)
    graph.add_node("quick", quick)
    graph.add_edge(START, "quick")
    graph.add_edge("quick", END)
    return graph


_barriers: dict[str, threading.Barrier] = {}
_barriers_lock = threading.Lock()


def build_barrier(config: dict[str, Any]) -> StateGraph:
    """One synchronous node that waits at a barrier of ``parties`` threads (shared by every
    execution in this process with the same ``barrier`` name) for up to ``wait_s``: it returns only
    if that many nodes run at the same moment, and raises ``BrokenBarrierError`` otherwise."""

    def meet(state: State) -> State:
        with _barriers_lock:
            barrier = _barriers.setdefault(config["barrier"], threading.Barrier(config["parties"]))
        barrier.wait(config["wait_s"])
        return {"n": state["n"] + 1}

    graph = StateGraph(State)
    graph.add_node("meet", meet)
    graph.add_edge(START, "meet")
    graph.add_edge("meet", END)
    return graph


REGISTRY_TOML = """[graphs]
slow_to_build = "tests.graphs:build_slow_to_build"
sync_sleeper = "tests.graphs:build_sync_sleeper"
stubborn = "tests.graphs:build_stubborn"
loop_blocker = "tests.graphs:build_loop_blocker"
barrier = "tests.graphs:build_barrier"
"""


def logged(config: dict[str, Any]) -> StateGraph:  # type: ignore[type-arg]
    """A chain whose factory takes `build_s` seconds and appends "<pid> <steps>" to the file `log`."""
    from graphrun.examples.chain import build

    time.sleep(float(config.get("build_s", 0)))
    with open(config["log"], "a") as fh:
        fh.write(f"{os.getpid()} {config.get('steps', 1)}\n")
    return build({k: v for k, v in config.items() if k in ("steps", "delay_s")})


def builds(path: str) -> list[tuple[int, int]]:
    """(pid, steps) of every build logged so far."""
    try:
        with open(path) as fh:
            return [(int(a), int(b)) for a, b in (line.split() for line in fh if line.strip())]
    except FileNotFoundError:
        return []
