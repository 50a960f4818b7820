"""The client side of bench/e2e.py, run as its own process: one phase per invocation, result as JSON.

    python bench/_loadgen.py '<json spec>'

HTTP/1.1 over raw asyncio streams on uvloop (bench/_client.py). Every virtual user holds one
keep-alive connection and runs the same pattern against every system: submit, then follow the
events to the end over SSE.

- graphrun: POST /workflows/{id}/executions, then GET /executions/{id}/events until the terminal event;
- langgraph dev: POST /runs/stream (a stateless run; the answer is the SSE stream itself) to its end.

Imports nothing heavy (not graphrun, not langgraph), so that starting it costs little.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._client import Http, Run, RunFailed, Target
from bench._common import pct, pct_or_none
from bench._procs import ChurningGroup, CpuShare, pg_backends, raise_nofile, rss_kib
from bench.results import Chatty, ChattyRun, Idle, Latency, Level, as_json

RUN_TIMEOUT_S = 60.0
PG_SAMPLE_S = 0.25  # how often a system's PostgreSQL backends are found again while CPU is metered

perf = time.perf_counter

FAILURES = (RunFailed, OSError, TimeoutError, asyncio.IncompleteReadError, ValueError)


async def latency(target: Target, spec: dict[str, Any]) -> Latency:
    """One run at a time. A failed run is counted with its reason and replaced, up to 20 of them."""
    http = target.http()
    runs: list[Run] = []
    failures: list[str] = []
    try:
        for _ in range(spec["warmup"]):
            with contextlib.suppress(*FAILURES):
                await asyncio.wait_for(target.run(http), RUN_TIMEOUT_S)
        while len(runs) < spec["runs"] and len(failures) <= 20:
            try:
                runs.append(await asyncio.wait_for(target.run(http), RUN_TIMEOUT_S))
            except FAILURES as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                http.close()
    finally:
        http.close()
    if not runs:
        raise RunFailed(f"no run succeeded: {failures[:3]}")
    lat = [(r.term - r.t0) * 1000 for r in runs]
    return Latency(
        failures=len(failures),
        failure_reasons=dict(Counter(failures).most_common(3)),
        runs=len(runs),
        p50_ms=pct(lat, 50),
        p99_ms=pct(lat, 99),
        first_event_p50_ms=pct([(r.first - r.t0) * 1000 for r in runs], 50),
        first_node_p50_ms=pct([(r.first_node - r.t0) * 1000 for r in runs], 50),
        events_per_run=runs[0].events,
    )


async def closed_loop(
    target: Target,
    run: Callable[[Http], Awaitable[Run]],
    concurrency: int,
    warmup_s: float,
    window_s: float,
    drain_s: float,
    pids: dict[str, list[int]],
    pg_database: str | None = None,
) -> Level:
    """``concurrency`` users each run back to back; runs that end inside the window are counted."""
    start = perf()
    t_measure, t_stop = start + warmup_s, start + warmup_s + window_s
    ends: list[float] = []
    lat: list[float] = []
    failures: list[str] = []

    async def user() -> None:
        http = target.http()
        try:
            while perf() < t_stop:
                try:
                    r = await asyncio.wait_for(run(http), RUN_TIMEOUT_S)
                except FAILURES as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    http.close()
                    await asyncio.sleep(0.05)
                    continue
                ends.append(r.term)
                if t_measure <= r.term < t_stop:
                    lat.append((r.term - r.t0) * 1000)
        finally:
            http.close()

    churning = {"postgres": ChurningGroup(lambda: pg_backends(pg_database))} if pg_database else {}
    usage = CpuShare(pids, own="client", churning=churning)
    cpu: dict[str, float] = {}

    async def meter() -> None:
        await asyncio.sleep(max(0.0, t_measure - perf()))
        usage.start()
        # Backends that close inside the window take their CPU since the last sample with them.
        while (left := t_stop - perf()) > 0:
            await asyncio.sleep(min(left, PG_SAMPLE_S if churning else left))
            usage.sample()
        cpu.update(usage.stop())

    metering = asyncio.ensure_future(meter())
    tasks = [asyncio.ensure_future(user()) for _ in range(concurrency)]
    _done, pending = await asyncio.wait(tasks, timeout=warmup_s + window_s + drain_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await metering
    counted = sum(1 for t in ends if t_measure <= t < t_stop)
    return Level(
        concurrency=concurrency,
        runs_per_s=counted / window_s,
        counted=counted,
        window_s=window_s,
        p50_ms=pct_or_none(lat, 50),
        p99_ms=pct_or_none(lat, 99),
        failures=len(failures),
        failure_reasons=dict(Counter(failures).most_common(3)),
        abandoned=len(pending),
        cpu=dict(cpu),
    )


async def throughput(target: Target, spec: dict[str, Any]) -> dict[str, Level]:
    out = {}
    for level in spec["levels"]:
        out[str(level)] = await closed_loop(
            target,
            target.run,
            level,
            spec["warmup_s"],
            spec["window_s"],
            spec["drain_s"],
            spec.get("pids", {}),
            spec.get("pg_database"),
        )
        await asyncio.sleep(spec.get("pause_s", 1.0))  # let the last drained runs settle
    return out


async def chatty(target: Target, spec: dict[str, Any]) -> Chatty:
    http = target.http()
    results: list[ChattyRun] = []
    try:
        for _ in range(spec["runs"]):
            r = await asyncio.wait_for(target.run(http, "chatty"), RUN_TIMEOUT_S)
            span = r.last_custom - r.first_custom
            rate = (r.custom - 1) / span if span > 0 else None
            results.append(ChattyRun(r.events, r.custom, r.truncated, total_s=r.term - r.t0, events_per_s=rate))
    finally:
        http.close()
    rates = [x.events_per_s for x in results if x.events_per_s]
    return Chatty(median_events_per_s=pct_or_none(rates, 50), runs=results)


async def idle(target: Target, spec: dict[str, Any]) -> Idle:
    """``clients`` SSE clients follow long executions; the servers' RSS is read while they wait."""
    n: int = spec["clients"]
    pids: dict[str, list[int]] = spec["pids"]

    def rss() -> dict[str, int]:
        return {group: sum(rss_kib(p) for p in ps) for group, ps in pids.items()}

    before = rss()
    t_begin = perf()
    gate = asyncio.Semaphore(100)  # connection set-up in waves, not 1,000 SYNs at once
    heads = 0
    ended: dict[bytes, int] = {}
    connections: list[Http] = []
    execution_ids: list[str] = []

    if target.kind == "graphrun":
        submitters = [target.http() for _ in range(50)]
        queue = list(range(n))

        async def submitter(http: Http) -> None:
            while queue:
                queue.pop()
                execution_ids.append(await target.submit(http, "slow"))

        try:
            await asyncio.gather(*(submitter(h) for h in submitters))
        finally:
            for h in submitters:
                h.close()

    async def client(i: int) -> None:
        nonlocal heads
        http = target.http()
        connections.append(http)
        async with gate:
            if target.kind == "graphrun":
                path = f"/executions/{execution_ids[i]}/events"
                status, headers = await http.request("GET", path, accept="text/event-stream")
            else:
                graph, modes = target.names["slow"]
                body = json.dumps(
                    {"assistant_id": graph, "input": {"n": 0}, "stream_mode": modes, "on_disconnect": "cancel"}
                ).encode()
                status, headers = await http.request("POST", "/runs/stream", body, accept="text/event-stream")
            if status != 200:
                raise RunFailed(f"HTTP {status}")
            heads += 1
        last = b""
        async for event in http.sse(headers):
            last = event
        ended[last] = ended.get(last, 0) + 1

    followers = [asyncio.ensure_future(client(i)) for i in range(n)]
    deadline = perf() + 90
    while heads < n and perf() < deadline and not all(f.done() for f in followers):
        await asyncio.sleep(0.1)
    connected = heads
    connect_s = perf() - t_begin
    await asyncio.sleep(3.0)  # let both sides settle
    samples = []
    for _ in range(3):
        samples.append(rss())
        await asyncio.sleep(0.5)
    with_clients = {g: max(s[g] for s in samples) for g in pids}

    # Stop them: graphrun cancels every execution through its API (the clients see `cancelled`);
    # langgraph dev cancels a stateless run whose client disconnects (on_disconnect=cancel).
    t_cancel = perf()
    cancel_errors = 0
    if target.kind == "graphrun":
        cancellers = [target.http() for _ in range(50)]
        todo = list(execution_ids)

        async def canceller(http: Http) -> None:
            nonlocal cancel_errors
            while todo:
                eid = todo.pop()
                status, headers = await http.request("POST", f"/executions/{eid}/cancel", b"")
                await http.body(headers)
                if status not in (202, 409):
                    cancel_errors += 1

        try:
            await asyncio.gather(*(canceller(h) for h in cancellers))
        finally:
            for h in cancellers:
                h.close()
        _done, pending = await asyncio.wait(followers, timeout=60)
    else:
        pending = set()
        for f in followers:
            f.cancel()
    for f in pending:
        f.cancel()
    await asyncio.gather(*followers, return_exceptions=True)
    for http in connections:
        http.close()
    return Idle(
        clients=n,
        connected=connected,
        connect_s=connect_s,
        rss_before_kib=before,
        rss_with_clients_kib=with_clients,
        cancel_s=perf() - t_cancel,
        cancel_errors=cancel_errors,
        ended_with={k.decode() or "(nothing)": v for k, v in ended.items()},
        not_ended=len(pending),
    )


# Each phase's result is a section of bench/results.py, printed as its JSON for bench/e2e.py to read back.
PHASES: dict[str, Callable[[Target, dict[str, Any]], Awaitable[Any]]] = {
    "latency": latency,
    "throughput": throughput,
    "chatty": chatty,
    "idle": idle,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    raise_nofile()
    target = Target(spec)
    phase = PHASES[spec["phase"]]
    try:
        import uvloop

        result = uvloop.run(phase(target, spec))
    except ImportError:
        result = asyncio.run(phase(target, spec))
    sys.stdout.write(json.dumps(as_json(result)) + "\n")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
