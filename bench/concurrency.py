"""How many waiting conversations one worker process holds, and what CPU-bound runs do to each other.

    make bench-concurrency     (or: .venv/bin/python bench/concurrency.py [--levels 100,250,500]
                                [--held-policies …] [--cpu-runs 60] [--cpu-ms 200] [--cpu-async]
                                [--cpu-policies …] [--only held|cpu] [--json out.json])

Every phase starts one fresh `graphrun worker --processes 1` (its own SQLite file and Redis key
prefix, on one private Redis server: graphrun.redis.embedded.EmbeddedRedis), registers the graphs of
bench/_held_graphs.py, warms them up with one run each, then puts runs on the queue the way the API
does (stored `queued`, then one LPUSH each, all in one pipeline). No API process runs: the figures
are the worker's alone. GRAPHRUN_START_GRACE_MS=0 (no client follows these runs). A policy is a
label and worker settings (`fixed`: GRAPHRUN_WORKER_ADMIT_LAG_MS=0, the fixed limit alone;
`adaptive`: its default lag limit; the held phases lift GRAPHRUN_WORKER_CONCURRENCY to 10,000 so that
every level can be held).

Held (I/O-bound): N runs of `held`, whose node awaits asyncio.sleep until one common instant, as a
conversation awaits its model; the history string (--history-kb, 4) rides in the state. Measured:
- admitted/s: N over the time from the push to all N `running` (in the store), and the worker's loop
  lag meanwhile (mean, and the histogram bucket that holds its largest sample);
- RSS per held run: (worker RSS with all N held − its RSS idle after the warm-up) / N;
- while they wait: the loop lag (the worker's own `graphrun_event_loop_lag_seconds`, a probe every
  0.1 s from a watchdog thread, between two scrapes of GRAPHRUN_WORKER_METRICS_PORT); a `probe` run
  (20 awaits of 20 ms; how late each woke) and a short CPU-bound `busy` run (one async node
  computing 20 ms) pushed then: their time from push to finished, against the same on the idle
  worker; the worker's CPU time as a share of one core;
- completed/s: N over the time from the common instant to the last run finished (all wake at once:
  the worker's drain rate, the worst burst N runs can make), how late the sleeps woke, the largest
  loop lag of the drain, and executions that lost their lease (attempt > 1: taken over and resumed);
- CPU per run: the worker's CPU time while admitting, and while draining, / N.

CPU (starvation): a `probe` run of 250 awaits of 20 ms is taken first; then --cpu-runs runs of `busy`
(--cpu-steps nodes computing --cpu-ms each: synchronous nodes in the worker's thread pool, or with
--cpu-async on the event loop) are pushed at once, and a second probe and short `busy` run 1 s later
(they queue behind the CPU-bound runs). Under each --cpu-policies policy: the most CPU-bound runs in
flight, the loop lag over the phase, how late the first probe's sleeps woke, runs/s, the runs' time
from push to finished (p50/p99) and from start to finished, and executions that lost their lease.

Figures depend on the machine: each row gives the 1-minute load average before and after its phase,
as other work on a shared machine shows there. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sqlite3
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from bench._common import header, load_average, log, pct  # noqa: E402
from bench._held_graphs import REGISTRY_TOML  # noqa: E402
from bench._procs import cpu_seconds, rss_kib  # noqa: E402
from bench._systems import PY, Proc, clean_env  # noqa: E402
from graphrun.redis.embedded import EmbeddedRedis, free_port  # noqa: E402
from graphrun.redis.keys import Keys  # noqa: E402
from graphrun.store import open_store  # noqa: E402

TERMINAL = ("succeeded", "failed", "cancelled", "timed_out", "interrupted")
CPU_GRAPH: dict[str, Any] = {"steps": 2, "cpu_ms": 200, "sync": True}


def message(execution_id: str) -> bytes:
    """A task message as the API enqueues it (TaskIQ's JSON format)."""
    body = {"task_id": uuid.uuid4().hex, "task_name": "graphrun.execute", "labels": {}, "labels_types": {}}
    return json.dumps({**body, "args": [execution_id], "kwargs": {}}).encode()


def _epoch(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@dataclass
class Lag:
    """A snapshot of the worker's loop-lag histogram."""

    buckets: dict[float, float] = field(default_factory=dict)
    total: float = 0.0
    count: float = 0.0

    def since(self, before: Lag) -> dict[str, Any]:
        n = self.count - before.count
        if n <= 0:
            return {"samples": 0}
        over = {le: (n - (c - before.buckets.get(le, 0.0))) / n for le, c in self.buckets.items()}
        worst = min((le for le, c in self.buckets.items() if c - before.buckets.get(le, 0.0) >= n), default=None)
        return {
            "samples": int(n),
            "mean_ms": (self.total - before.total) / n * 1000,
            "over_50ms": over.get(0.05, 0.0),
            "over_100ms": over.get(0.1, 0.0),
            "max_le_ms": None if worst is None or worst == float("inf") else worst * 1000,
        }


class Worker:
    """One `graphrun worker --processes 1` on a fresh database and key prefix."""

    def __init__(self, tmp: Path, redis_url: str, name: str, **settings: str) -> None:
        self.dir = tmp / name
        self.dir.mkdir()
        self.db = self.dir / "graphrun.db"
        self.prefix = f"bench-{name}:"
        self.metrics_port = free_port()
        (self.dir / "graphrun.toml").write_text(REGISTRY_TOML)
        self.env = clean_env(
            GRAPHRUN_REDIS_URL=redis_url,
            GRAPHRUN_DATABASE_URL=f"sqlite:///{self.db}",
            GRAPHRUN_REDIS_PREFIX=self.prefix,
            GRAPHRUN_CONFIG=str(self.dir / "graphrun.toml"),
            GRAPHRUN_DATA_DIR=str(self.dir / "data"),
            GRAPHRUN_START_GRACE_MS="0",
            GRAPHRUN_WORKER_METRICS_PORT=str(self.metrics_port),
            PYTHONPATH=str(ROOT),
            **{f"GRAPHRUN_{k.upper()}": v for k, v in settings.items()},
        )
        self.name = name
        self.settings = settings
        self.proc: Proc | None = None

    async def start(self) -> None:
        store = await open_store(f"sqlite+aiosqlite:///{self.db}")  # migrated before the worker starts
        self.store = store
        self.workflows = {
            role: (await store.create_workflow(f"bench-{role}", graph, config)).id
            for role, (graph, config) in {
                "held": ("held", {}),
                "probe": ("probe", {"sleeps": 20, "sleep_ms": 20}),
                "watch": ("probe", {"sleeps": 250, "sleep_ms": 20}),
                "short": ("busy", {"steps": 1, "cpu_ms": 20, "sync": False}),
                "cpu": ("busy", CPU_GRAPH),
            }.items()
        }
        args = [PY, "-m", "graphrun", "worker", "--processes", "1"]
        self.proc = Proc(self.name, args, env=self.env, cwd=self.dir, logs=self.dir.parent, stop_sig=signal.SIGTERM)
        deadline = time.monotonic() + 90
        while "worker ready" not in self.proc.log_tail(50):
            if not self.proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not start:\n{self.proc.log_tail()}")
            await asyncio.sleep(0.2)
        self.redis = Redis.from_url(self.env["GRAPHRUN_REDIS_URL"])
        self.queue = Keys(self.prefix).task_queue
        self.pid = self.proc.pid

    async def stop(self) -> None:
        await self.redis.aclose()
        await self.store.close()
        if self.proc is not None:
            await asyncio.to_thread(self.proc.stop)

    async def submit(self, role: str, inputs: list[dict[str, Any]]) -> tuple[list[str], float]:
        """Store the executions, then push them all in one pipeline; (ids, time of the push)."""
        ids = [(await self.store.create_execution(self.workflows[role], body, None)).id for body in inputs]
        pipe = self.redis.pipeline(transaction=False)
        for execution_id in ids:
            pipe.lpush(self.queue, message(execution_id))
        pushed = time.time()
        await pipe.execute()
        return ids, pushed

    def rows(self, ids: list[str]) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db, timeout=30) as db:
            db.row_factory = sqlite3.Row
            marks = ",".join("?" * len(ids))
            sql = f"SELECT id, status, attempt, started_at, finished_at, output FROM executions WHERE id IN ({marks})"
            found = [dict(r) for r in db.execute(sql, ids)]
        for row in found:
            row["started"], row["finished"] = _epoch(row["started_at"]), _epoch(row["finished_at"])
            row["output"] = json.loads(row["output"]) if row["output"] else None
        return found

    def counts(self) -> dict[str, int]:
        with sqlite3.connect(self.db, timeout=30) as db:
            return dict(db.execute("SELECT status, count(*) FROM executions GROUP BY status").fetchall())

    def running(self, role: str) -> int:
        with sqlite3.connect(self.db, timeout=30) as db:
            sql = "SELECT count(*) FROM executions WHERE status = 'running' AND workflow_id = ?"
            return int(db.execute(sql, (self.workflows[role],)).fetchone()[0])

    async def wait_done(self, ids: list[str], timeout_s: float, tick: Any = None) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            rows = await asyncio.to_thread(self.rows, ids)
            if sum(r["status"] in TERMINAL for r in rows) == len(ids):
                return rows
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: runs not finished after {timeout_s:.0f} s: {self.counts()}")
            if tick is not None:
                tick()
            await asyncio.sleep(0.25)

    async def wait_running(self, ids: list[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while any(r["status"] == "queued" for r in await asyncio.to_thread(self.rows, ids)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: runs not started after {timeout_s:.0f} s")
            await asyncio.sleep(0.05)

    def lag(self) -> Lag:
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        snap = Lag()
        for line in text.splitlines():
            if not line.startswith("graphrun_event_loop_lag_seconds") or 'role="worker"' not in line:
                continue
            value = float(line.rsplit(" ", 1)[1])
            if (m := re.search(r'[{,]le="([^"]+)"', line)) is not None:
                snap.buckets[float(m.group(1))] = value
            elif line.startswith("graphrun_event_loop_lag_seconds_sum"):
                snap.total = value
            elif line.startswith("graphrun_event_loop_lag_seconds_count"):
                snap.count = value
        return snap

    async def probes(self) -> dict[str, Any]:
        """A waiting run and a short CPU-bound run, pushed now: their time to finish, and how late
        the waiting one's sleeps woke."""
        (probe,), t_probe = await self.submit("probe", [{"n": 0}])
        (short,), t_short = await self.submit("short", [{"n": 0}])
        rows = {r["id"]: r for r in await self.wait_done([probe, short], 600)}
        late = (rows[probe]["output"] or {}).get("late_ms") or [float("nan")]
        return {
            "probe_ms": (rows[probe]["finished"] - t_probe) * 1000,
            "probe_late_p50_ms": pct(late, 50),
            "probe_late_max_ms": max(late),
            "short_ms": (rows[short]["finished"] - t_short) * 1000,
        }

    async def warm_up(self) -> dict[str, Any]:
        ids, _ = await self.submit("held", [{"n": 0, "until": time.time()}])
        ids += (await self.submit("cpu", [{"n": 0}]))[0]
        await self.wait_done(ids, 120)
        await self.probes()  # builds their graphs
        await asyncio.sleep(2)
        before = self.lag()
        idle = await self.probes()
        await asyncio.sleep(2)
        return {**idle, "lag": self.lag().since(before), "rss_mib": rss_kib(self.pid) / 1024}


async def held_phase(
    tmp: Path, redis_url: str, n: int, history_kb: int, label: str, settings: dict[str, str]
) -> dict[str, Any]:
    worker = Worker(tmp, redis_url, f"held-{n}-{uuid.uuid4().hex[:4]}", **settings)
    await worker.start()
    try:
        load0 = load_average(3)
        idle = await worker.warm_up()
        rss_idle = rss_kib(worker.pid)
        cpu0 = cpu_seconds(worker.pid)
        # The common instant: far enough that all N can be admitted first (extended if they are not).
        hold_s = 15 + n / 50
        until = time.time() + hold_s
        history = "x" * (history_kb * 1024)
        lag0 = worker.lag()
        ids, pushed = await worker.submit("held", [{"n": 0, "until": until, "history": history}] * n)
        rss_max, all_running = rss_kib(worker.pid), None
        while time.time() < until - 1:
            rss_max = max(rss_max, rss_kib(worker.pid))
            if worker.counts().get("running", 0) >= n:
                all_running = time.time()
                break
            await asyncio.sleep(0.25)
        cpu_admit, admit_lag = cpu_seconds(worker.pid) - cpu0, worker.lag().since(lag0)
        held: dict[str, Any] = {}
        if all_running is not None:
            before, cpu1 = worker.lag(), cpu_seconds(worker.pid)
            held = await worker.probes()
            await asyncio.sleep(max(0.0, min(5.0, until - time.time() - 1)))
            held["lag"] = worker.lag().since(before)
            held["cpu_share"] = (cpu_seconds(worker.pid) - cpu1) / (time.time() - all_running)
            rss_max = max(rss_max, rss_kib(worker.pid))

        def sample() -> None:
            nonlocal rss_max
            rss_max = max(rss_max, rss_kib(worker.pid)) if time.time() < until else rss_max

        await asyncio.sleep(max(0.0, until - time.time()))
        cpu2, lag2 = cpu_seconds(worker.pid), worker.lag()
        rows = await worker.wait_done(ids, hold_s + 600, sample)
        cpu_drain, drain_lag = cpu_seconds(worker.pid) - cpu2, worker.lag().since(lag2)
        finished = [r["finished"] for r in rows if r["finished"]]
        late = [r["output"]["late_ms"] for r in rows if r["output"] and "late_ms" in r["output"]]
        return {
            "n": n,
            "label": label,
            "settings": settings,
            "load_before": load0,
            "load_after": load_average(3),
            "idle": idle,
            "rss_idle_mib": rss_idle / 1024,
            "rss_held_mib": rss_max / 1024,
            "rss_per_run_kib": (rss_max - rss_idle) / n,
            "all_held": all_running is not None,
            "admitted_per_s": n / (all_running - pushed) if all_running else None,
            "admit_lag": admit_lag,
            "held": held,
            "completed_per_s": n / max(1e-6, max(finished) - until),
            "wake_late_p50_ms": pct(late, 50) if late else None,
            "wake_late_p99_ms": pct(late, 99) if late else None,
            "wake_late_max_ms": max(late) if late else None,
            "drain_lag": drain_lag,
            "cpu_admit_ms_per_run": cpu_admit / n * 1000,
            "cpu_drain_ms_per_run": cpu_drain / n * 1000,
            "not_succeeded": sum(r["status"] != "succeeded" for r in rows),
            "lease_lost": sum(r["attempt"] > 1 for r in rows),
        }
    finally:
        await worker.stop()


async def cpu_phase(tmp: Path, redis_url: str, runs: int, label: str, settings: dict[str, str]) -> dict[str, Any]:
    worker = Worker(tmp, redis_url, f"cpu-{label}-{uuid.uuid4().hex[:4]}", **settings)
    await worker.start()
    try:
        load0 = load_average(3)
        await worker.warm_up()
        before = worker.lag()
        # A run that only waits, taken first: how late its sleeps wake while the CPU-bound runs go.
        (watch,), _ = await worker.submit("watch", [{"n": 0}])
        await worker.wait_running([watch], 60)
        ids, pushed = await worker.submit("cpu", [{"n": 0}] * runs)
        in_flight = 0

        def sample() -> None:
            nonlocal in_flight
            in_flight = max(in_flight, worker.running("cpu"))

        await asyncio.sleep(1.0)
        sample()
        probes = await worker.probes()
        rows = await worker.wait_done(ids, 900, sample)
        lag = worker.lag().since(before)
        (watched,) = await worker.wait_done([watch], 60)
        late = watched["output"]["late_ms"]
        probes.update(watch_late_p50_ms=pct(late, 50), watch_late_p99_ms=pct(late, 99), watch_late_max_ms=max(late))
        done = [r["finished"] - pushed for r in rows if r["finished"]]
        service = [r["finished"] - r["started"] for r in rows if r["finished"] and r["started"]]
        return {
            "label": label,
            "settings": settings,
            "runs": runs,
            "load_before": load0,
            "load_after": load_average(3),
            "in_flight_max": in_flight,
            "lag": lag,
            **probes,
            "runs_per_s": runs / max(done),
            "latency_p50_s": pct(done, 50),
            "latency_p99_s": pct(done, 99),
            "service_p50_s": pct(service, 50),
            "not_succeeded": sum(r["status"] != "succeeded" for r in rows),
            "lease_lost": sum(r["attempt"] > 1 for r in rows),
        }
    finally:
        await worker.stop()


def _f(value: Any, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def report(held: list[dict[str, Any]], cpu: list[dict[str, Any]]) -> str:
    lines = [header("bench/concurrency.py: one worker process", "langgraph", "redis")]
    if held:
        lines += [
            "## Held conversations (I/O-bound)\n",
            "| N | policy | load before→after | admitted/s | lag while admitting mean/max ≤ ms "
            "| RSS idle→held MiB | KiB per run | lag mean ms | lag >50 ms | probe ms (idle) "
            "| probe sleep late max ms | short CPU run ms (idle) | completed/s | wake late p50/p99/max ms "
            "| drain lag max ≤ ms | CPU ms/run admit, drain | CPU share held | failed | lease lost |",
            "|" + "---:|" * 19,
        ]
        for r in held:
            h, i = r["held"], r["idle"]
            lag = h.get("lag", {})
            lines.append(
                f"| {r['n']} | {_policy(r)} "
                f"| {r['load_before'].split()[0]}→{r['load_after'].split()[0]} "
                f"| {_f(r['admitted_per_s'])} | {_f(r['admit_lag'].get('mean_ms'))}/"
                f"{_f(r['admit_lag'].get('max_le_ms'), '{:.0f}')} | {r['rss_idle_mib']:.0f}→{r['rss_held_mib']:.0f} "
                f"| {r['rss_per_run_kib']:.1f} | {_f(lag.get('mean_ms'))} | {_f(lag.get('over_50ms'), '{:.0%}')} "
                f"| {_f(h.get('probe_ms'), '{:.0f}')} ({i['probe_ms']:.0f}) | {_f(h.get('probe_late_max_ms'))} "
                f"| {_f(h.get('short_ms'), '{:.0f}')} ({i['short_ms']:.0f}) | {r['completed_per_s']:.0f} "
                f"| {_f(r['wake_late_p50_ms'], '{:.0f}')}/{_f(r['wake_late_p99_ms'], '{:.0f}')}"
                f"/{_f(r['wake_late_max_ms'], '{:.0f}')} | {_f(r['drain_lag'].get('max_le_ms'), '{:.0f}')} "
                f"| {r['cpu_admit_ms_per_run']:.1f}, {r['cpu_drain_ms_per_run']:.1f} "
                f"| {_f(h.get('cpu_share'), '{:.0%}')} | {r['not_succeeded']} | {r['lease_lost']} |"
            )
        lines.append("")
    if cpu:
        lines += [
            f"## CPU-bound runs ({cpu[0]['runs']} × busy {CPU_GRAPH})\n",
            "| policy | load before→after | most in flight | lag mean ms | lag >100 ms | lag max ≤ ms "
            "| waiting run's sleeps late p50/p99/max ms | runs/s | latency p50/p99 s | start→end p50 s "
            "| new waiting run ms | new short CPU run ms | failed | lease lost |",
            "|---|" + "---:|" * 13,
        ]
        for r in cpu:
            lag = r["lag"]
            lines.append(
                f"| {_policy(r)} | {r['load_before'].split()[0]}→"
                f"{r['load_after'].split()[0]} | {r['in_flight_max']} | {_f(lag.get('mean_ms'))} "
                f"| {_f(lag.get('over_100ms'), '{:.0%}')} | {_f(lag.get('max_le_ms'), '{:.0f}')} "
                f"| {r['watch_late_p50_ms']:.0f}/{r['watch_late_p99_ms']:.0f}/{r['watch_late_max_ms']:.0f} "
                f"| {r['runs_per_s']:.1f} | {r['latency_p50_s']:.1f}/{r['latency_p99_s']:.1f} "
                f"| {r['service_p50_s']:.2f} | {r['probe_ms']:.0f} | {r['short_ms']:.0f} "
                f"| {r['not_succeeded']} | {r['lease_lost']} |"
            )
    return "\n".join(lines)


def _policy(row: dict[str, Any]) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in row["settings"].items())
    return f"{row.get('label', '')} ({settings})" if settings else row.get("label", "defaults")


def _parse_settings(text: str) -> dict[str, str]:
    """``worker_concurrency=1000,worker_admit_lag_ms=0`` (GRAPHRUN_ names, lower case, no prefix)."""
    return dict(part.split("=", 1) for part in text.split(",") if part) if text else {}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="100,250,500,1000,2000", help="held runs per phase")
    parser.add_argument("--history-kb", type=int, default=4)
    parser.add_argument(
        "--held-policies",
        default="fixed:worker_concurrency=10000,worker_admit_lag_ms=0;adaptive:worker_concurrency=10000",
        help="label:settings;… for the held phases; settings k=v,… are GRAPHRUN_ names in lower case "
        "without the prefix (the ceiling is lifted so that every level is held)",
    )
    parser.add_argument("--cpu-runs", type=int, default=60)
    parser.add_argument(
        "--cpu-policies",
        default="fixed 100:worker_concurrency=100,worker_admit_lag_ms=0;"
        "fixed 1000:worker_concurrency=1000,worker_admit_lag_ms=0;adaptive (defaults):",
        help="label:settings;… for the CPU-bound phases",
    )
    parser.add_argument("--cpu-ms", type=float, default=200, help="CPU time of each busy node")
    parser.add_argument("--cpu-steps", type=int, default=2, help="busy nodes per CPU-bound run")
    parser.add_argument("--cpu-async", action="store_true", help="busy nodes on the event loop, not in threads")
    parser.add_argument("--only", choices=["held", "cpu"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    CPU_GRAPH.update(steps=args.cpu_steps, cpu_ms=args.cpu_ms, sync=not args.cpu_async)
    held: list[dict[str, Any]] = []
    cpu: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="graphrun-bench-concurrency-") as tmp_name:
        tmp = Path(tmp_name)
        redis = EmbeddedRedis(tmp / "redis", appendonly=False)
        url = redis.start()
        try:
            if args.only != "cpu":
                for spec in args.held_policies.split(";"):
                    label, _, settings = spec.partition(":")
                    for n in (int(x) for x in args.levels.split(",")):
                        log(f"held: {n} runs, {label} (load {load_average(3)})")
                        held.append(await held_phase(tmp, url, n, args.history_kb, label, _parse_settings(settings)))
                        log(json.dumps(held[-1]))
            if args.only != "held":
                for spec in args.cpu_policies.split(";"):
                    label, _, settings = spec.partition(":")
                    log(f"cpu: {args.cpu_runs} runs, {label} (load {load_average(3)})")
                    cpu.append(await cpu_phase(tmp, url, args.cpu_runs, label, _parse_settings(settings)))
                    log(json.dumps(cpu[-1]))
        finally:
            redis.stop()
    if args.json:
        args.json.write_text(json.dumps({"held": held, "cpu": cpu}, indent=1))
    print(report(held, cpu))


if __name__ == "__main__":
    asyncio.run(main())
