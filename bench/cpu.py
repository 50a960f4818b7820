"""CPU per completed run: graphrun serve on each client path, against raw LangGraph, in one run.

    make bench-cpu          (or: .venv/bin/python bench/cpu.py [--paths native,thread,stateless]
                             [--src DIR]... [--rounds N] [--window S] [--concurrency N])

Throughput on a shared 2-core machine swings with whatever else runs; the CPU a completed run costs
swings much less. This bench measures that: a closed loop of ``--concurrency`` clients (each in
bench/_client.py's raw HTTP/1.1, in a separate process) runs the `chain` graph (5 steps, delay 0)
back to back; after a warm-up, the CPU time of serve's API, worker and Redis processes (user +
system, from /proc) over a window is divided by the runs that completed in it.

Client paths:
- native: POST /workflows/{id}/executions, then GET /executions/{id}/events to the terminal event;
- thread: POST /threads/{id}/runs/stream (each client its own thread, stream_mode updates);
- stateless: POST /runs/stream (stream_mode updates).

Raw LangGraph (``astream`` in one event loop, graphrun's stream modes and subgraphs=True, no HTTP;
bench/_raw.py) is measured in each round too, so every ratio compares figures of the same minutes.

``--src DIR`` (repeatable) runs serve from another source tree (e.g. a git worktree of an earlier
commit; PYTHONPATH=DIR), alternating trees within each round: a before/after comparison under the
same load of the machine. Without it, this checkout's src.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._client import Http, RunFailed, Target
from bench._common import log, machine, pct_or_none, stamp
from bench._procs import CpuShare, raise_nofile
from bench._systems import child, run_json

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
RAW = ROOT / "bench" / "_raw.py"
PATHS = ("native", "thread", "stateless")
RUN_TIMEOUT_S = 60.0


# --- the client process ---------------------------------------------------------------------------


async def _thread_run(http: Http, target: Target, thread_id: str) -> None:
    body = json.dumps({"assistant_id": "chain", "input": {"n": 0}, "stream_mode": "updates"}).encode()
    status, headers = await http.request("POST", f"/threads/{thread_id}/runs/stream", body, accept="text/event-stream")
    if status != 200:
        raise RunFailed(f"runs/stream: HTTP {status} {(await http.body(headers))[:200]!r}")
    await target._follow(http, headers, 0.0, graphrun=False, role="chain")


async def _new_thread(http: Http) -> str:
    status, headers = await http.request("POST", "/threads", b"{}")
    body = await http.body(headers)
    if status != 200:
        raise RunFailed(f"threads: HTTP {status} {body[:200]!r}")
    thread_id: str = json.loads(body)["thread_id"]
    return thread_id


async def client(spec: dict[str, Any]) -> dict[str, Any]:
    """Closed loop on one path; CPU seconds of each process group over the window, and the runs."""
    loop = asyncio.get_running_loop()
    target = Target(spec)
    path = spec["path"]
    counted = 0
    failures: list[str] = []

    async def one(http: Http, thread_id: str) -> None:
        if path == "thread":
            await asyncio.wait_for(_thread_run(http, target, thread_id), RUN_TIMEOUT_S)
        else:
            await asyncio.wait_for(target.run(http), RUN_TIMEOUT_S)

    https = [target.http() for _ in range(spec["concurrency"])]
    threads = [await _new_thread(h) if path == "thread" else "" for h in https]
    if spec.get("runs"):  # a fixed number of runs (bench/instructions.py), no clock
        return await _fixed(spec["runs"], https, threads, one)
    # Every client completes one run before the clock starts: the worker process may still be
    # starting (importing LangGraph) when the API is ready.
    await asyncio.gather(*(one(h, t) for h, t in zip(https, threads, strict=True)))
    # With a start time (several systems measured at once), every client's window is the same.
    t_measure = loop.time() + max(0.0, spec.get("start_at", 0.0) - time.time()) + spec["warmup_s"]
    t_stop = t_measure + spec["window_s"]

    # With a rate, runs start on a schedule (open loop, at most ``concurrency`` at once): two systems
    # measured together then do the same work, whatever their speed.
    rate = spec.get("rate") or 0.0
    next_at = loop.time()

    async def paced() -> None:
        nonlocal next_at
        if rate:
            at = max(next_at, loop.time() - 0.5)  # a system behind schedule is not flooded to catch up
            next_at = at + 1 / rate
            await asyncio.sleep(max(0.0, at - loop.time()))

    async def user(http: Http, thread_id: str) -> None:
        nonlocal counted
        try:
            while loop.time() < t_stop:
                await paced()
                began = loop.time()
                try:
                    await one(http, thread_id)
                except (RunFailed, OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    http.close()
                    await asyncio.sleep(0.05)
                    continue
                if t_measure <= loop.time() < t_stop:
                    counted += 1
                    latencies.append(loop.time() - began)
        finally:
            http.close()

    latencies: list[float] = []  # submit to terminal event, of the runs counted
    usage = CpuShare(spec["pids"], own="client")
    cpu: dict[str, float] = {}

    async def meter() -> None:
        await asyncio.sleep(max(0.0, t_measure - loop.time()))
        usage.start()
        await asyncio.sleep(max(0.0, t_stop - loop.time()))
        cpu.update(usage.stop())

    metering = loop.create_task(meter())
    users = [loop.create_task(user(h, t)) for h, t in zip(https, threads, strict=True)]
    _done, pending = await asyncio.wait(users, timeout=t_stop - loop.time() + 30)
    for task in pending:
        task.cancel()
    await asyncio.gather(*users, return_exceptions=True)
    await metering
    ms = [x * 1000 for x in latencies]
    latency = {"p50": pct_or_none(ms, 50), "p99": pct_or_none(ms, 99)}
    return {
        "counted": counted,
        "window_s": spec["window_s"],
        "cpu": cpu,
        "latency_ms": latency,
        "failures": failures[:3],
    }


async def _fixed(runs: int, https: list[Http], threads: list[str], one: Any) -> dict[str, Any]:
    """Exactly ``runs`` runs, the clients taking them in turn."""
    left = runs

    async def user(http: Http, thread_id: str) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await one(http, thread_id)
        http.close()

    await asyncio.gather(*(user(h, t) for h, t in zip(https, threads, strict=True)))
    return {"counted": runs, "window_s": 0.0, "cpu": {}, "failures": []}


# --- the bench --------------------------------------------------------------------------------


def _run_json(args: list[str], timeout: float) -> dict[str, Any]:
    return run_json(args, timeout, args[-1][:60])


def measure_raw(window_s: float, concurrency: int) -> float:
    """Raw LangGraph with graphrun's stream modes: ms of CPU per run."""
    spec = {"warmup_s": 2.0, "window_s": window_s, "levels": [concurrency], "graphrun_modes": True}
    level = _run_json([PY, str(RAW), json.dumps(spec)], 120)["throughput"][str(concurrency)]
    return float(level["cpu"]["itself"] * 1000 / level["runs_per_s"])


@contextlib.contextmanager
def _serve(src: Path | None) -> Iterator[Any]:
    """graphrun serve from ``src`` (PYTHONPATH) or this checkout."""
    from bench._systems import graphrun_serve
    from bench.results import Plan

    old = os.environ.get("PYTHONPATH")
    if src is not None:
        os.environ["PYTHONPATH"] = str(src)  # serve's processes inherit it when they start
    try:
        with tempfile.TemporaryDirectory(prefix="graphrun-bench-cpu-") as tmp, graphrun_serve(Path(tmp), Plan()) as s:
            _restore("PYTHONPATH", old)
            yield s
    finally:
        _restore("PYTHONPATH", old)


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def measure_serve(
    srcs: list[Path | None], path: str, window_s: float, concurrency: int, rate: float = 0.0
) -> list[dict[str, Any]]:
    """One window on ``path`` for each source tree; with several, all at once (serves started
    together, windows aligned), so that they share whatever else loads the machine."""
    with contextlib.ExitStack() as stack:
        systems = [stack.enter_context(_serve(src)) for src in srcs]
        start_at = time.time() + 20.0 if len(systems) > 1 else 0.0  # after every client's first runs
        procs = []
        for system in systems:
            spec = {
                **system.spec("cpu"),
                "path": path,
                "concurrency": concurrency,
                "warmup_s": 2.0,
                "window_s": window_s,
                "start_at": start_at,
                "rate": rate,
            }
            if path == "stateless":
                spec["kind"] = "peer"
                spec["targets"] = {"chain": ["chain", "updates"]}
            procs.append(child([PY, __file__, "--client", json.dumps(spec)], stderr=subprocess.PIPE))
        outs = []
        for src, proc in zip(srcs, procs, strict=True):
            out, err = proc.communicate(timeout=window_s + 120)
            if proc.returncode != 0 or not out.strip():
                raise RuntimeError(f"client for {src or 'src'} failed: {err.strip()[-500:]}")
            res = json.loads(out.strip().splitlines()[-1])
            runs = res["counted"]
            groups = {g: res["cpu"].get(g, 0.0) * res["window_s"] for g in ("api", "worker", "redis")}
            per = {g: sec * 1000 / runs if runs else float("nan") for g, sec in groups.items()}
            outs.append({"runs_per_s": runs / res["window_s"], "ms_per_run": per, "ms_total": sum(per.values())})
            log(
                f"  {src or 'src'} {path}: {runs / res['window_s']:.0f} runs/s, {sum(per.values()):.2f} ms CPU/run "
                + " ".join(f"{g} {v:.2f}" for g, v in per.items())
                + f" (other {res['cpu'].get('other', 0.0):.2f} cores)"
                + "; run latency p50 / p99 "
                + " / ".join(f"{v:.0f}" if v is not None else "–" for v in res["latency_ms"].values())
                + " ms"
                + (f" FAILURES {res['failures']}" if res["failures"] else "")
            )
        return outs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--src", type=Path, action="append", help="source tree to serve from (repeatable)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rate", type=float, default=0.0, help="runs/s per system (open loop); 0: closed loop")
    parser.add_argument("--no-raw", action="store_true")
    parser.add_argument(
        "--together", action="store_true", help="with several --src: serve them at once, windows aligned"
    )
    args = parser.parse_args()
    if args.client:
        raise_nofile()
        import uvloop

        print(json.dumps(uvloop.run(client(json.loads(args.client)))))
        return 0
    raise_nofile()
    paths = [p for p in args.paths.split(",") if p]
    srcs: list[Path | None] = list(args.src) if args.src else [None]
    raw: list[float] = []
    serve: dict[str, dict[str, list[float]]] = {str(s or "src"): {p: [] for p in paths} for s in srcs}
    log(f"{machine()}; load {os.getloadavg()[0]:.2f}")
    for r in range(args.rounds):
        log(f"round {r + 1}/{args.rounds}")
        if not args.no_raw:
            raw.append(measure_raw(args.window, args.concurrency))
            log(f"  raw LangGraph (graphrun's modes): {raw[-1]:.2f} ms CPU/run")
        order = srcs if r % 2 == 0 else srcs[::-1]
        for p in paths:
            if args.together:
                got_all = measure_serve(order, p, args.window, args.concurrency, args.rate)
                for src, got in zip(order, got_all, strict=True):
                    serve[str(src or "src")][p].append(got["ms_total"])
            else:
                for src in order:
                    got = measure_serve([src], p, args.window, args.concurrency, args.rate)[0]
                    serve[str(src or "src")][p].append(got["ms_total"])
    shape = f"concurrency {args.concurrency}, window {args.window:.0f} s, {args.rounds} round(s)"
    shape += f", {args.rate:g} runs/s each" if args.rate else ""
    print(f"\n{stamp()} · {machine()} · {shape}{', served together' if args.together else ''}")
    if raw:
        print(f"raw LangGraph, graphrun's stream modes: {statistics.median(raw):.2f} ms CPU/run (median)")
    for s, by_path in serve.items():
        for p, values in by_path.items():
            med = statistics.median(values)
            ratio = f", {med / statistics.median(raw):.1f}× raw" if raw else ""
            print(f"{s} {p}: {med:.2f} ms CPU/run (median of {', '.join(f'{v:.2f}' for v in values)}){ratio}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
