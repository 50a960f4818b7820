"""The floor for bench/e2e.py: raw LangGraph ``astream`` in one process and one event loop, no HTTP.

    python bench/_raw.py '<json spec>'      (prints one JSON object)

The same graph as every other system (graphrun's ``chain``, compiled once). The client pattern's
equivalent: start a run, consume its stream to the end. Throughput: ``concurrency`` coroutines run
back to back in one event loop; runs that end inside the window are counted. ``cpu`` pins the process
to one core (the single-core figure).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import pct, pct_or_none
from bench._procs import CpuShare
from bench.results import Chatty, Latency, Level, RawRun, as_json
from graphrun.examples.chain import build

GRAPHRUN_MODES = ["tasks", "custom", "messages", "values"]

perf = time.perf_counter


def compiled(config: dict[str, Any]) -> Any:
    return build(config).compile()


async def one(graph: Any, modes: Any, subgraphs: bool) -> tuple[float, float, int, int, float, float]:
    """(first chunk, last chunk, chunks, custom chunks, first custom, last custom), times absolute."""
    first = last = first_custom = last_custom = 0.0
    chunks = custom = 0
    async for item in graph.astream({"n": 0}, stream_mode=modes, subgraphs=subgraphs):
        t = perf()
        chunks += 1
        if not first:
            first = t
        last = t
        mode = item[-2] if subgraphs else (item[0] if isinstance(modes, list) else modes)
        if mode == "custom":
            custom += 1
            if not first_custom:
                first_custom = t
            last_custom = t
    return first, last, chunks, custom, first_custom, last_custom


async def closed_loop(
    chain: Any, modes: Any, subgraphs: bool, concurrency: int, warmup_s: float, window_s: float
) -> Level:
    start = perf()
    t_measure = start + warmup_s
    t_stop = t_measure + window_s
    ends: list[float] = []
    lat: list[float] = []

    async def user() -> None:
        while perf() < t_stop:
            t0 = perf()
            _f, last, *_ = await one(chain, modes, subgraphs)
            ends.append(last)
            if t_measure <= last < t_stop:
                lat.append((last - t0) * 1000)

    usage = CpuShare({}, own="itself")
    usage.start()
    await asyncio.gather(*(user() for _ in range(concurrency)))
    cpu = usage.stop()
    counted = sum(1 for t in ends if t_measure <= t < t_stop)
    return Level(
        concurrency=concurrency,
        runs_per_s=counted / window_s,
        counted=counted,
        p50_ms=pct_or_none(lat, 50),
        p99_ms=pct_or_none(lat, 99),
        cpu=dict(cpu),
    )


async def run(spec: dict[str, Any]) -> RawRun:
    graphrun_modes = spec.get("graphrun_modes", False)
    modes: Any = GRAPHRUN_MODES if graphrun_modes else "updates"
    chain = compiled({"steps": 5, "delay_s": 0})
    out = RawRun()
    if spec.get("latency"):
        for _ in range(spec["warmup"]):
            await one(chain, modes, graphrun_modes)
        lat, first = [], []
        for _ in range(spec["runs"]):
            t0 = perf()
            f, last, *_ = await one(chain, modes, graphrun_modes)
            lat.append((last - t0) * 1000)
            first.append((f - t0) * 1000)
        # No HTTP and no events: the first chunk is both the first event and the first node output.
        p50_first = pct(first, 50)
        out.latency = Latency(len(lat), pct(lat, 50), pct(lat, 99), p50_first, p50_first)
    out.throughput = {
        str(level): await closed_loop(chain, modes, graphrun_modes, level, spec["warmup_s"], spec["window_s"])
        for level in spec.get("levels", [])
    }
    if spec.get("chatty"):
        graph = compiled({"steps": 1, "emit": spec["chatty_emit"]})
        chatty_modes = GRAPHRUN_MODES if graphrun_modes else ["updates", "custom"]
        rates = []
        for _ in range(spec["chatty"]):
            *_, custom, fc, lc = await one(graph, chatty_modes, graphrun_modes)
            rates.append((custom - 1) / (lc - fc))
        out.chatty = Chatty(median_events_per_s=pct(rates, 50), custom=custom)
    return out


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec.get("cpu") is not None:
        os.sched_setaffinity(0, {spec["cpu"]})
    sys.stdout.write(json.dumps(as_json(asyncio.run(run(spec)))) + "\n")


if __name__ == "__main__":
    main()
