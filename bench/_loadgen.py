"""The client side of bench/e2e.py, run as its own process: one phase per invocation, result as JSON.

    python bench/_loadgen.py '<json spec>'

HTTP/1.1 over raw asyncio streams on uvloop (no httpx: its per-request cost would make the client
the bottleneck on a 2-core machine). Every virtual user holds one keep-alive connection and runs
the same pattern against every system: submit, then follow the events to the end over SSE.

- graphrun: POST /workflows/{id}/executions, then GET /executions/{id}/events until the terminal event;
- langgraph dev: POST /runs/stream (a stateless run; the answer is the SSE stream itself) to its end.

Imports nothing heavy (not graphrun, not langgraph), so that starting it costs little.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

TERMINAL = frozenset({b"complete", b"error", b"cancelled", b"timeout"})
RUN_TIMEOUT_S = 60.0
SUBMIT_BODY = b'{"input": {"n": 0}}'
CLK_TCK = os.sysconf("SC_CLK_TCK")

perf = time.perf_counter


class RunFailed(Exception):
    pass


class Http:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.keep = True

    async def request(
        self, method: str, path: str, body: bytes | None = None, accept: str | None = None
    ) -> tuple[int, dict[str, str]]:
        """Send one request and read the answer's status and headers; the body is read next."""
        for attempt in (0, 1):
            fresh = self.writer is None or self.writer.is_closing() or not self.keep
            if fresh:
                self.close()
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 22)
                self.keep = True
            assert self.reader is not None and self.writer is not None
            lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
            if accept:
                lines.append(f"Accept: {accept}")
            if body is not None:
                lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
            self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
            status_line = await self.reader.readline()
            if not status_line:
                # The server closed an idle keep-alive connection before reading this request: it
                # never saw it, so sending it again on a new connection cannot run anything twice.
                self.close()
                if fresh or attempt:
                    raise ConnectionError(f"{method} {path}: connection closed without an answer")
                continue
            status = int(status_line.split(None, 2)[1])
            headers: dict[str, str] = {}
            while True:
                line = await self.reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            if headers.get("connection", "").lower() == "close":
                self.keep = False
            return status, headers
        raise AssertionError("unreachable")

    async def body(self, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return b"".join([c async for c in self.chunks()])
        assert self.reader is not None
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        self.keep = False
        return await self.reader.read()

    async def chunks(self) -> AsyncIterator[bytes]:
        reader = self.reader
        assert reader is not None
        while True:
            line = await reader.readline()
            if not line:
                self.keep = False
                raise ConnectionError("connection closed inside a chunked body")
            size = int(line.split(b";", 1)[0], 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return
            data = await reader.readexactly(size + 2)
            yield data[:-2]

    async def sse(self, headers: dict[str, str]) -> AsyncIterator[bytes]:
        """The event names of an SSE body, each as its event is complete (comments skipped)."""
        if headers.get("transfer-encoding", "").lower() != "chunked":
            raise RunFailed(f"SSE answer is not chunked: {headers}")
        buf = b""
        event: bytes | None = None
        has_data = False
        async for chunk in self.chunks():
            buf += chunk
            if b"\n" not in chunk:
                continue
            lines = buf.split(b"\n")
            buf = lines.pop()
            for raw_line in lines:
                line = raw_line[:-1] if raw_line.endswith(b"\r") else raw_line
                if not line:
                    if event is not None or has_data:
                        yield event or b"message"
                    event, has_data = None, False
                elif line.startswith(b"event:"):
                    event = line[6:].strip()
                elif line.startswith(b"data:"):
                    has_data = True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass(slots=True)
class Run:
    t0: float
    first: float  # first event of any kind
    first_node: float  # first node output (graphrun node_end, langgraph dev `updates`)
    term: float  # terminal event (graphrun) / end of the stream (langgraph dev)
    events: int
    custom: int
    first_custom: float
    last_custom: float
    truncated: int


class Target:
    """How one system is driven; the same client pattern for all."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.kind: str = spec["kind"]
        self.host: str = spec.get("host", "127.0.0.1")
        self.port: int = spec["port"]
        self.names: dict[str, Any] = spec["targets"]  # role -> workflow id (graphrun) / graph name (peer)
        self.steps: dict[str, int] = spec["steps"]  # role -> node outputs a complete run has

    def http(self) -> Http:
        return Http(self.host, self.port)

    async def run(self, http: Http, role: str = "chain") -> Run:
        if self.kind == "graphrun":
            return await self._graphrun(http, role)
        return await self._peer(http, role)

    async def submit(self, http: Http, role: str) -> str:
        status, headers = await http.request("POST", f"/workflows/{self.names[role]}/executions", SUBMIT_BODY)
        body = await http.body(headers)
        if status != 202:
            raise RunFailed(f"submit: HTTP {status} {body[:200]!r}")
        execution_id: str = json.loads(body)["execution_id"]
        return execution_id

    async def _graphrun(self, http: Http, role: str) -> Run:
        t0 = perf()
        execution_id = await self.submit(http, role)
        status, headers = await http.request("GET", f"/executions/{execution_id}/events", accept="text/event-stream")
        if status != 200:
            raise RunFailed(f"events: HTTP {status} {(await http.body(headers))[:200]!r}")
        return await self._follow(http, headers, t0, graphrun=True, role=role)

    async def _peer(self, http: Http, role: str) -> Run:
        graph, modes = self.names[role]
        body = json.dumps({"assistant_id": graph, "input": {"n": 0}, "stream_mode": modes}).encode()
        t0 = perf()
        status, headers = await http.request("POST", "/runs/stream", body, accept="text/event-stream")
        if status != 200:
            raise RunFailed(f"runs/stream: HTTP {status} {(await http.body(headers))[:200]!r}")
        return await self._follow(http, headers, t0, graphrun=False, role=role)

    async def _follow(self, http: Http, headers: dict[str, str], t0: float, *, graphrun: bool, role: str) -> Run:
        first = first_node = term = first_custom = last_custom = 0.0
        events = nodes = custom = truncated = 0
        outcome = b""
        node_event = b"node_end" if graphrun else b"updates"
        async for event in http.sse(headers):
            t = perf()
            events += 1
            if not first:
                first = t
            if event == node_event:
                nodes += 1
                if not first_node:
                    first_node = t
            elif event == b"custom":
                custom += 1
                if not first_custom:
                    first_custom = t
                last_custom = t
            elif event == b"truncated":
                truncated += 1
            elif event == b"error":
                outcome = b"error"
            if graphrun and event in TERMINAL:
                term, outcome = t, event
        if not graphrun:
            term = perf()
            outcome = outcome or b"complete"
        if outcome != b"complete" or nodes != self.steps[role]:
            raise RunFailed(
                f"stream ended with {outcome.decode() or 'no terminal event'} after {nodes} of "
                f"{self.steps[role]} node outputs ({events} events in all)"
            )
        return Run(t0, first, first_node, term, events, custom, first_custom, last_custom, truncated)


# --- measuring --------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def machine_busy_ticks() -> int:
    """Busy CPU ticks of the whole machine (all cores), from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:]]
        return f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] if len(f) > 7 else 0)  # user nice system irq softirq steal
    except (OSError, ValueError, IndexError):
        return 0


class Usage:
    """CPU time of the server's process groups and of this client between two instants."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self._start: tuple[float, float, dict[str, int], int, int] | None = None
        self.result: dict[str, float] = {}

    def _ticks(self) -> dict[str, int]:
        return {group: sum(cpu_ticks(p) for p in pids) for group, pids in self.pids.items()}

    def start(self) -> None:
        self._start = (perf(), time.process_time(), self._ticks(), machine_busy_ticks(), cpu_ticks(os.getpid()))

    def stop(self) -> None:
        if self._start is None:
            return
        t0, c0, ticks0, machine0, own0 = self._start
        wall = perf() - t0
        ticks1 = self._ticks()
        self.result = {f"{g}_cpu": (ticks1[g] - ticks0[g]) / CLK_TCK / wall for g in ticks1}
        self.result["client_cpu"] = (time.process_time() - c0) / wall
        # Everything else the machine did meanwhile (other users of this shared machine, the kernel).
        ours = sum(ticks1[g] - ticks0[g] for g in ticks1) + cpu_ticks(os.getpid()) - own0
        self.result["other_cpu"] = max(0.0, (machine_busy_ticks() - machine0 - ours) / CLK_TCK / wall)


FAILURES = (RunFailed, OSError, TimeoutError, asyncio.IncompleteReadError, ValueError)


async def latency(target: Target, spec: dict[str, Any]) -> dict[str, Any]:
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
    return {
        "failures": len(failures),
        "failure_reasons": dict(Counter(failures).most_common(3)),
        "runs": len(runs),
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "first_event_p50_ms": pct([(r.first - r.t0) * 1000 for r in runs], 50),
        "first_node_p50_ms": pct([(r.first_node - r.t0) * 1000 for r in runs], 50),
        "events_per_run": runs[0].events,
    }


async def closed_loop(
    target: Target,
    run: Callable[[Http], Awaitable[Run]],
    concurrency: int,
    warmup_s: float,
    window_s: float,
    drain_s: float,
    pids: dict[str, list[int]],
) -> dict[str, Any]:
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

    usage = Usage(pids)

    async def meter() -> None:
        await asyncio.sleep(max(0.0, t_measure - perf()))
        usage.start()
        await asyncio.sleep(max(0.0, t_stop - perf()))
        usage.stop()

    metering = asyncio.ensure_future(meter())
    tasks = [asyncio.ensure_future(user()) for _ in range(concurrency)]
    _done, pending = await asyncio.wait(tasks, timeout=warmup_s + window_s + drain_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await metering
    counted = sum(1 for t in ends if t_measure <= t < t_stop)
    return {
        "concurrency": concurrency,
        "runs_per_s": counted / window_s,
        "counted": counted,
        "window_s": window_s,
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "failures": len(failures),
        "failure_reasons": dict(Counter(failures).most_common(3)),
        "abandoned": len(pending),
        **usage.result,
    }


async def throughput(target: Target, spec: dict[str, Any]) -> dict[str, Any]:
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
        )
        await asyncio.sleep(spec.get("pause_s", 1.0))  # let the last drained runs settle
    return out


async def chatty(target: Target, spec: dict[str, Any]) -> dict[str, Any]:
    http = target.http()
    results = []
    try:
        for _ in range(spec["runs"]):
            r = await asyncio.wait_for(target.run(http, "chatty"), RUN_TIMEOUT_S)
            span = r.last_custom - r.first_custom
            results.append(
                {
                    "events": r.events,
                    "custom": r.custom,
                    "truncated": r.truncated,
                    "events_per_s": (r.custom - 1) / span if span > 0 else None,
                    "total_s": r.term - r.t0,
                }
            )
    finally:
        http.close()
    rates = [x["events_per_s"] for x in results if x["events_per_s"]]
    return {"median_events_per_s": pct(rates, 50), "runs": results}


async def idle(target: Target, spec: dict[str, Any]) -> dict[str, Any]:
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
    return {
        "clients": n,
        "connected": connected,
        "connect_s": connect_s,
        "rss_before_kib": before,
        "rss_with_clients_kib": with_clients,
        "cancel_s": perf() - t_cancel,
        "cancel_errors": cancel_errors,
        "ended_with": {k.decode() or "(nothing)": v for k, v in ended.items()},
        "not_ended": len(pending),
    }


PHASES = {"latency": latency, "throughput": throughput, "chatty": chatty, "idle": idle}


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


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
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
