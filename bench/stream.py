"""SSE fan-out at scale: graphrun's stream hub against one blocking XREAD per client.

    make bench-stream        (or: .venv/bin/python bench/stream.py [--sizes 100,1000,2000] [--seconds 10])

Two shapes of load, each for both designs, one run per size:

- fan-out: 10 clients follow each execution (a dashboard, several tabs), 2 events/s per execution,
  at 100, 1,000 and 2,000 clients;
- one client per execution (the usual: one user watches their run), 1 event/s per execution, at
  2,000 clients, so the hub's one XREAD names 2,000 streams.

Each run:

- a private Redis (graphrun.redis.embedded.EmbeddedRedis) on 127.0.0.1, shared by every run (each run has
  its own key prefix);
- the server, alone in its own process: graphrun's API (`uvicorn --factory graphrun.api:create_app`,
  one process, SQLite in a temporary directory), or the baseline: a tiny Starlette app in this file
  whose SSE endpoint does what the article does for each client: its own Redis connection, XRANGE
  from the client's position, then a loop of `XREAD BLOCK` on that one stream;
- the executions, created through graphrun's API (so they exist in its store; the baseline only
  needs their streams), followed by N SSE connections in all, held by two client processes (raw
  asyncio streams, so 2,000 connections fit on a small machine);
- a publisher (this process) writing every execution's log as graphrun's workers do (the entries of
  graphrun's EventWriter: its event model, `<ms>-<seq>` ids, approximate MAXLEN, EXPIRE): `start`,
  then the `custom` events for SECONDS, then `complete`. Events due at the same moment for several
  executions share one pipelined round trip: in production the writers are workers on other
  machines, here they share the cores with the server under test. No graph runs: the figures are
  the stream path alone.

Measured: the server process's Redis connections (TCP sockets from its pid to Redis, read with
psutil, and cross-checked with Redis's CLIENT LIST by connection name), as the maximum over the run;
delivery latency = receive time in the client process - the event's `ts` (time.time() when the
publisher created it; one machine, one clock), so it includes the write, the read, the fan-out and
SSE; server memory per client = (RSS while the N clients stream - RSS before they connected) / N;
and the CPU time the server and Redis used while the events flowed. Every client must receive every
event (checked).

Bounded: about 3 minutes, everything stops after 5. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._common import load_average, machine, nproc, pct
from bench._procs import cpu_seconds, raise_nofile, rss_kib, stop, tcp_connections, wait_ok
from bench._stream_baseline import BASELINE_NAME
from bench._stream_clients import CLIENT_PROCESSES, read_report, spawn_clients
from graphrun.events.ids import StreamId
from graphrun.events.model import Event, EventKind
from graphrun.redis.connections import ConnectionName, shared_client
from graphrun.redis.embedded import EmbeddedRedis, free_port
from graphrun.redis.keys import Keys

HOST = "127.0.0.1"
DEADLINE_S = 300
TARGET_CONNECTIONS = 4
TARGET_P99_MS = 100.0
BASELINE = Path(__file__).resolve().parent / "_stream_baseline.py"


# ---------------------------------------------------------------------------------------------
# Measuring Redis from its side (the server process is measured from outside: bench/_procs.py).


async def redis_cpu_seconds(redis: Any) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def named_connections(redis: Any, names: tuple[str, ...]) -> int:
    return sum(1 for c in await redis.client_list() if c.get("name") in names)


# ---------------------------------------------------------------------------------------------
# One run: one design, one size.


@dataclass
class Result:
    design: str
    shape: str
    clients: int
    executions: int
    connections: int = 0
    named: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    rss_before_kib: int = 0
    rss_during_kib: int = 0
    delivered: int = 0
    expected: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    connect_s: float = 0.0  # until every client had its first event
    server_cpu_s: float = 0.0  # while publishing
    redis_cpu_s: float = 0.0

    @property
    def kib_per_client(self) -> float:
        return (self.rss_during_kib - self.rss_before_kib) / self.clients


def start_server(design: str, tmp: Path, redis_url: str, prefix: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHRUN_")}
    log = tmp / f"{prefix.replace(':', '-')}server.log"
    if design == "graphrun":
        env.update(
            GRAPHRUN_REDIS_URL=redis_url,
            GRAPHRUN_REDIS_PREFIX=prefix,
            GRAPHRUN_DATA_DIR=str(tmp),
            GRAPHRUN_DATABASE_URL=f"sqlite:///{tmp / (prefix.replace(':', '-') + 'graphrun.db')}",
            GRAPHRUN_LOG_LEVEL="WARNING",
        )
        args = ["-m", "uvicorn", "--factory", "graphrun.api:create_app", "--host", HOST, "--port", str(port)]
        args += ["--log-level", "warning", "--no-access-log", "--backlog", "4096", "--timeout-graceful-shutdown", "5"]
    else:
        args = [str(BASELINE), "--port", str(port), "--redis", redis_url, "--prefix", prefix]
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, *args], env=env, cwd=tmp, stdout=out, stderr=out)
    url = f"http://{HOST}:{port}"
    wait_ok(f"{url}/healthz", proc, "server", log.read_text, 60)
    return proc, url, log


async def create_executions(design: str, url: str, count: int) -> list[str]:
    if design != "graphrun":
        return [uuid.uuid4().hex for _ in range(count)]
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        wf = (await http.post("/workflows", json={"name": "bench-stream", "graph": "chain"})).json()

        async def one() -> str:
            r = await http.post(f"/workflows/{wf['id']}/executions", json={"input": {"n": 0}})
            r.raise_for_status()
            return str(r.json()["execution_id"])

        ids: list[str] = []
        for start in range(0, count, 50):
            ids += await asyncio.gather(*(one() for _ in range(min(50, count - start))))
        return ids


async def warm_up(url: str, execution_id: str) -> None:
    """One client reads the `start` event and leaves: lazy imports and first-request costs are paid."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for _ in range(3):
            async with http.stream("GET", f"/executions/{execution_id}/events") as response:
                async for line in response.aiter_lines():
                    if line.startswith("event: start"):
                        break


@dataclass(frozen=True)
class Shape:
    name: str
    followers: int  # clients per execution
    rate: float  # custom events per second per execution
    sizes: tuple[int, ...]


class Publisher:
    """Writes executions' logs with the entries graphrun's EventWriter writes, batching across
    executions: one pipelined round trip for every event due at the same moment."""

    def __init__(self, redis: Any, keys: Keys, execution_ids: list[str]) -> None:
        self.redis = redis
        self.keys = keys
        self.next = dict.fromkeys(execution_ids, StreamId(0, 0))
        self.written = 0

    async def write(self, kind: EventKind, execution_ids: list[str], **data: Any) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for execution_id in execution_ids:
            event = Event(kind, execution_id, data)
            last = self.next[execution_id]
            entry_id = StreamId(max(int(event.ts * 1000), last.ms), last.seq)
            self.next[execution_id] = StreamId(entry_id.ms, entry_id.seq + 1)
            key = self.keys.events(execution_id)
            pipe.xadd(key, {**event.to_fields(), "t": ""}, id=str(entry_id), maxlen=10_000, approximate=True)
            if kind is EventKind.START or event.terminal:
                pipe.expire(key, 600)
        await pipe.execute()
        self.written += len(execution_ids)

    async def run(self, execution_ids: list[str], rate: float, seconds: float) -> int:
        """Each execution's events evenly spread; returns how many each execution got."""
        per_execution = int(rate * seconds)
        total = per_execution * len(execution_ids)
        interval = 1.0 / (rate * len(execution_ids))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        k = 0
        while k < total:
            due = min(total, int((loop.time() - t0) / interval) + 1)
            if due <= k:
                await asyncio.sleep(t0 + k * interval - loop.time())
                continue
            batch: dict[int, list[str]] = {}
            for j in range(k, due):
                batch.setdefault(j // len(execution_ids), []).append(execution_ids[j % len(execution_ids)])
            for i, ids in batch.items():
                await self.write(EventKind.CUSTOM, ids, node=None, data={"i": i})
            k = due
        return per_execution


async def run_one(
    design: str, shape: Shape, clients: int, seconds: float, tmp: Path, redis_url: str, redis_port: int
) -> Result:
    began = time.monotonic()
    prefix = f"bench-stream:{design}:{shape.followers}:{clients}:"
    executions = max(1, clients // shape.followers)
    result = Result(design, shape.name, executions * shape.followers, executions)

    def step(what: str) -> None:
        print(
            f"  {design:<8} {shape.name:<10} {result.clients:>5} clients: {what} at {time.monotonic() - began:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    proc, url, log = start_server(design, tmp, redis_url, prefix)
    step("server up")
    redis = shared_client(redis_url)
    names = (ConnectionName.API, ConnectionName.STREAM_HUB) if design == "graphrun" else (BASELINE_NAME,)
    client_procs: list[asyncio.subprocess.Process] = []
    try:
        ids = await create_executions(design, url, executions)
        publisher = Publisher(redis, Keys(prefix), ids)
        await publisher.write(EventKind.START, ids, workflow_id=1, workflow_version=1, attempt=1)
        step("executions created")
        await warm_up(url, ids[0])
        await asyncio.sleep(1.0)
        result.rss_before_kib = rss_kib(proc.pid)

        connecting = time.monotonic()
        client_procs = await spawn_clients(tmp, int(url.rsplit(":", 1)[1]), ids, shape.followers)
        for report in await asyncio.gather(*(read_report(p, 120) for p in client_procs)):
            if report["failed"]:
                raise RuntimeError(f"clients failed to connect: {report['failed']}")
        result.connect_s = time.monotonic() - connecting
        step("clients connected")

        async def sample() -> None:
            while True:
                conns = await asyncio.to_thread(tcp_connections, proc.pid, redis_port)
                result.connections = max(result.connections, conns)
                result.named = max(result.named, await named_connections(redis, names))
                result.rss_during_kib = max(result.rss_during_kib, rss_kib(proc.pid))
                await asyncio.sleep(1.0)

        sampler = asyncio.create_task(sample())
        cpu_before, redis_cpu_before = cpu_seconds(proc.pid), await redis_cpu_seconds(redis)
        per_execution = await publisher.run(ids, shape.rate, seconds)
        await publisher.write(EventKind.COMPLETE, ids, output={"n": 0})
        step("published")
        reports = await asyncio.gather(*(read_report(p, 120) for p in client_procs))
        result.server_cpu_s = cpu_seconds(proc.pid) - cpu_before
        result.redis_cpu_s = await redis_cpu_seconds(redis) - redis_cpu_before
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        for report in reports:
            result.latencies_ms += report["latencies_ms"]
            result.failed += report["failed"]
            result.delivered += sum(report["custom"])
        result.expected = per_execution * result.clients
        step("clients done")
    except Exception:
        print(f"server log ({design}, {clients} clients):\n{log.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        for p in client_procs:
            if p.returncode is None:
                p.kill()
            await p.wait()
        await asyncio.to_thread(stop, proc, signal.SIGTERM, 20)
        await redis.aclose()
    result.seconds = time.monotonic() - began
    return result


# ---------------------------------------------------------------------------------------------


def print_report(results: list[Result], args: argparse.Namespace, redis_version: str, began: float) -> bool:
    names = ("graphrun", "redis", "uvicorn", "uvloop", "fastapi", "starlette", "sse-starlette", "httpx")
    print(f"graphrun stream benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: nproc {nproc()}; {machine()}")
    at_end = load_average(periods=3)
    print(f"load average at start {args.load_at_start}, at end {at_end} (other work on the machine shows here)")
    print(f"versions: {', '.join(f'{n} {version(n)}' for n in names)}, Redis server {redis_version}")
    print(
        f"each run: events for {args.seconds:g} s; clients in {CLIENT_PROCESSES} processes; server: one process"
        f" (uvicorn); all on {HOST}"
    )
    print()
    print(
        f"{'design':<24} {'load':<26} {'clients':>7} {'Redis conns':>11} {'CLIENT LIST':>11} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'KiB/client':>10} {'CPU s':>6} {'Redis CPU s':>11} "
        f"{'connect s':>9} {'delivered':>17}"
    )
    met = True
    for r in results:
        label = "graphrun (stream hub)" if r.design == "graphrun" else "baseline (XREAD/client)"
        lat = r.latencies_ms or [float("nan")]
        print(
            f"{label:<24} {r.shape:<26} {r.clients:>7} {r.connections:>11} {r.named:>11} "
            f"{pct(lat, 50):>7.1f} {pct(lat, 99):>7.1f} {max(lat):>7.1f} {r.kib_per_client:>10.1f} "
            f"{r.server_cpu_s:>6.1f} {r.redis_cpu_s:>11.1f} {r.connect_s:>9.1f} {r.delivered:>8}/{r.expected:<8}"
        )
        if r.failed:
            print(f"    {len(r.failed)} client(s) failed, e.g. {r.failed[0]}")
    print()
    print(
        "Redis conns: TCP connections from the server's pid to Redis (psutil), maximum over the run. CLIENT LIST:"
        " the same, counted by connection name on the Redis side. Latency: client receive time - event ts."
        " KiB/client: (server RSS while streaming - RSS before the clients connected) / clients. CPU s, Redis"
        " CPU s: used by the server process and by Redis while the events flowed. connect s: from starting the"
        " client processes until every client had its first event. delivered: custom events received by all"
        " clients / published x followers."
    )
    for r in results:
        if r.design == "graphrun" and r.clients >= 2000:
            p99 = pct(r.latencies_ms, 99)
            ok = r.connections <= TARGET_CONNECTIONS and p99 <= TARGET_P99_MS and r.delivered == r.expected
            met = met and ok
            print(
                f"target at {r.clients} clients ({r.shape}): <= {TARGET_CONNECTIONS} Redis connections and p99 <="
                f" {TARGET_P99_MS:.0f} ms: {'met' if ok else 'NOT met'} ({r.connections} connections, p99 {p99:.1f} ms)"
            )
    print(f"bench ran {time.monotonic() - began:.0f} s")
    return met


async def bench(args: argparse.Namespace, tmp: Path) -> tuple[list[Result], str]:
    shapes = [Shape("10 clients/execution, 2/s", 10, 2.0, tuple(args.sizes))]
    if not args.fan_out_only:
        shapes.append(Shape("1 client/execution, 1/s", 1, 1.0, (max(args.sizes),)))
    redis_server = EmbeddedRedis(tmp / "redis", appendonly=False)
    redis_url = redis_server.start()
    try:
        probe = shared_client(redis_url)
        redis_version = str((await probe.info("server"))["redis_version"])
        await probe.aclose()
        results = []
        async with asyncio.timeout(DEADLINE_S - 10):
            for shape in shapes:
                for design in args.designs:
                    for size in shape.sizes:
                        r = await run_one(design, shape, size, args.seconds, tmp, redis_url, redis_server.port)
                        results.append(r)
        return results, redis_version
    finally:
        redis_server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,2000", help="concurrent clients per run")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long events flow in each run")
    parser.add_argument("--designs", default="graphrun,baseline", help="which servers to measure")
    parser.add_argument("--fan-out-only", action="store_true", help="skip the one-client-per-execution runs")
    args = parser.parse_args()

    # Thousands of sockets: in the server (clients + the baseline's Redis connections), in Redis and
    # in the client processes, which all inherit this limit.
    limit = raise_nofile()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.designs = args.designs.split(",")
    if limit < 3 * max(args.sizes) + 200:
        parser.error(f"the open-files limit ({limit}) is too low for {max(args.sizes)} clients")
    args.load_at_start = load_average(periods=3)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="graphrun-bench-stream-") as tmp:
        results, redis_version = asyncio.run(bench(args, Path(tmp)))
    print()
    return 0 if print_report(results, args, redis_version, began) else 1


if __name__ == "__main__":
    sys.exit(main())
