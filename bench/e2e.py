"""End to end, side by side: graphrun against LangGraph's own dev server and against raw LangGraph.

    make bench-e2e          (or: .venv/bin/python bench/e2e.py [--quick] [--no-peer] [--no-aegra] [--no-profile])

Five systems, measured one after the other in one run, with the same graph (`chain`, 5 steps, delay 0)
and the same client pattern (submit, then follow the events to the end over HTTP and SSE):

1. raw LangGraph `astream` in this machine's Python, one event loop, no HTTP: the floor;
2. `graphrun serve` (embedded Redis and SQLite in a temp data dir);
3. graphrun as deployed on several machines, on one: `graphrun api` (2 Gunicorn workers) +
   `graphrun worker --processes 2` + an external Redis (EmbeddedRedis) + a SQLite file;
4. `langgraph dev` (langgraph-cli[inmem], installed into bench/.peer-venv on first use) serving a
   copy of the same chain (bench/_peer_graph.py), driven through POST /runs/stream;
5. Aegra (aegra-api, installed into bench/.aegra-venv with Python >= 3.12 on first use; bench/_aegra.py)
   as its documentation runs it in production (Redis job queue and workers, PostgreSQL), serving the
   same copy, driven the same way. Its PostgreSQL backends' CPU is counted with its own.

graphrun's processes get a clean environment (no GRAPHRUN_* of the caller's); BENCH_GRAPHRUN_<NAME>=v
passes GRAPHRUN_<NAME>=v to them, to measure another setting (e.g. BENCH_GRAPHRUN_WORKER_PROCESSES=2,
or a PostgreSQL BENCH_GRAPHRUN_DATABASE_URL; give each run a fresh database: the bench creates its
workflows by name).

The client is bench/_loadgen.py in its own process (raw asyncio streams on uvloop). During an extra
concurrency-50 window on `graphrun serve`, py-spy samples the API and the worker process
(bench/_profile.py). The systems are started and stopped by bench/_systems.py.

Writes the typed results to docs/benchmarks.json (bench/results.py) and the report rendered from
them to docs/benchmarks.md (bench/report/), and prints the report; `python -m bench.report` renders
it again from the JSON without measuring. Every process it starts is stopped on the way out, Ctrl-C
included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import report, results
from bench._aegra import aegra, ensure_aegra
from bench._common import load_average, log, machine, stamp, versions
from bench._procs import raise_nofile
from bench._profile import profile_c50
from bench._systems import PY, System, child, ensure_peer, graphrun_deployed, graphrun_serve, langgraph_dev, run_json
from bench.results import Chatty, E2ERun, Idle, Latency, Level, Meta, PerCore, Plan, RawResult, RawRun, SystemResult
from graphrun.redis.embedded import redis_server_binary

ROOT = Path(__file__).resolve().parents[1]
LOADGEN = ROOT / "bench" / "_loadgen.py"
RAW = ROOT / "bench" / "_raw.py"
DOC = ROOT / "docs" / "benchmarks.md"
# The systems over HTTP, in the order they are measured; "raw" runs before them.
SYSTEMS: dict[str, Callable[[Path, Plan], contextlib.AbstractContextManager[System]]] = {
    "serve": graphrun_serve,
    "deployed": graphrun_deployed,
    "peer": langgraph_dev,
    "aegra": aegra,
}
PHASE_TYPES: dict[str, Any] = {"latency": Latency, "throughput": dict[str, Level], "chatty": Chatty, "idle": Idle}


def measure_phase(system: System, result: SystemResult, phase: str, timeout: float, **kw: Any) -> None:
    """One phase of the load generator against ``system``: its typed result, or its error."""
    log(f"{system.title}: {phase}" if phase != "idle" else f"{system.title}: {kw['clients']} idle SSE clients")
    logged = len(system.log_errors()) if system.log_errors else 0
    try:
        out = run_json([PY, str(LOADGEN), json.dumps(system.spec(phase, **kw))], timeout, f"{system.title} {phase}")
        setattr(result, phase, results.from_json(PHASE_TYPES[phase], out))
    except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError) as exc:
        result.errors[phase] = str(exc)
        log(f"  {exc}")
    if system.log_errors and (new := system.log_errors()[logged:]):
        common = "; ".join(f"{text} (×{n})" for text, n in Counter(new).most_common(2))
        result.server_errors[phase] = f"{len(new)} error(s) in its log, most often: {common}"
        log(f"  {result.server_errors[phase]}")


def measure_http(system: System, plan: Plan, run: E2ERun, tmp: Path, profile: bool) -> None:
    result = run.systems[system.key] = SystemResult(settings=dict(system.settings))
    runs = plan.peer_latency_runs if system.kind == "peer" else plan.latency_runs
    warmup = 3 if system.kind == "peer" else plan.latency_warmup
    measure_phase(system, result, "latency", 60 + 3 * (runs + warmup), warmup=warmup, runs=runs)
    window = plan.warmup_s + plan.window_s + plan.drain_s + 5
    measure_phase(
        system,
        result,
        "throughput",
        len(plan.levels) * window + 30,
        levels=list(plan.levels),
        warmup_s=plan.warmup_s,
        window_s=plan.window_s,
        drain_s=plan.drain_s,
    )
    measure_phase(system, result, "chatty", 60 * plan.chatty_runs + 30, runs=plan.chatty_runs)
    if profile:
        log(f"{system.title}: profile at concurrency 50")
        run.profile = profile_c50(system, plan, tmp)
    measure_phase(system, result, "idle", 240, clients=plan.idle_clients)


def raw_run(spec: dict[str, Any], timeout: float, what: str) -> RawRun:
    out: RawRun = results.from_json(RawRun, run_json([PY, str(RAW), json.dumps(spec)], timeout, what))
    return out


def measure_raw(plan: Plan) -> RawResult:
    base = {"warmup_s": plan.warmup_s, "window_s": plan.window_s}
    latency = {"latency": True, "warmup": 20, "runs": plan.raw_latency_runs, "chatty_emit": plan.chatty_emit}
    timeout = len(plan.levels) * (plan.warmup_s + plan.window_s + 30) + 120
    log("raw LangGraph: latency, throughput, chatty (one event loop)")
    raw = RawResult()
    spec = {**base, **latency, "levels": list(plan.levels), "chatty": plan.chatty_runs}
    raw.main = raw_run(spec, timeout, "raw LangGraph")
    log("raw LangGraph: single core, one loop per core, graphrun's stream modes (concurrency 50)")
    raw.pinned = raw_run({**base, "levels": [50], "cpu": 0}, 120, "raw pinned")
    cores = sorted(os.sched_getaffinity(0))
    procs = [child([PY, str(RAW), json.dumps({**base, "levels": [50], "cpu": cpu})]) for cpu in cores]
    try:
        outs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    per = [json.loads(o.strip().splitlines()[-1])["throughput"]["50"]["runs_per_s"] for o in outs]
    raw.per_core = PerCore(processes=len(cores), runs_per_s=sum(per), each=per)
    spec = {**base, **latency, "graphrun_modes": True, "levels": [50], "chatty": 1}
    raw.graphrun_modes = raw_run(spec, 120, "raw graphrun modes")
    return raw


def redis_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError, StopIteration):
        version_cmd = [redis_server_binary(), "--version"]
        text = subprocess.run(version_cmd, capture_output=True, text=True, timeout=10, check=False).stdout
        return next(w for w in text.split() if w.startswith("v=")).removeprefix("v=")
    return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and shorter windows (a smoke test)")
    parser.add_argument("--no-peer", action="store_true", help="skip langgraph dev")
    parser.add_argument("--no-aegra", action="store_true", help="skip Aegra")
    parser.add_argument("--no-profile", action="store_true", help="skip py-spy")
    parser.add_argument("--only", choices=["raw", *SYSTEMS], action="append")
    parser.add_argument("--out", type=Path, default=DOC, help="report file (default docs/benchmarks.md)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, py-spy output)")
    args = parser.parse_args()
    plan = Plan.quick() if args.quick else Plan()
    only = set(args.only or ["raw", *SYSTEMS])
    if args.no_peer:
        only.discard("peer")
    if args.no_aegra:
        only.discard("aegra")

    # Ctrl-C and SIGTERM unwind through the finally blocks that stop every process we started, even
    # when the bench was started with SIGINT ignored (a background job of a non-interactive shell).
    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)

    started = time.monotonic()
    meta = Meta(stamp="", machine=machine(), versions="", nofile=raise_nofile(), redis_version=redis_version())
    if "peer" in only:
        log("langgraph dev: installing or reusing bench/.peer-venv")
        meta.peer_versions, meta.peer_note = ensure_peer()
        log(f"  {meta.peer_note}")
    else:
        meta.peer_versions, meta.peer_note = None, "skipped (--no-peer or --only)"
    if "aegra" in only:
        log("Aegra: installing or reusing bench/.aegra-venv")
        meta.aegra_versions, meta.aegra_note = ensure_aegra()
        log(f"  {meta.aegra_note}")
    else:
        meta.aegra_versions, meta.aegra_note = None, "skipped (--no-aegra or --only)"

    meta.load_start = load_average()
    run = E2ERun(meta=meta, plan=plan)
    tmp = Path(tempfile.mkdtemp(prefix="graphrun-bench-e2e-"))
    try:
        if "raw" in only:
            try:
                run.raw = measure_raw(plan)
            except (RuntimeError, subprocess.SubprocessError, ValueError, KeyError, TypeError) as exc:
                run.raw = RawResult(error=str(exc))
        for key, start in SYSTEMS.items():
            installed = {"peer": meta.peer_versions, "aegra": meta.aegra_versions}.get(key, True)
            if key not in only or not installed:
                continue
            try:
                with start(tmp, plan) as system:
                    measure_http(system, plan, run, tmp, profile=key == "serve" and not args.no_profile)
            except (RuntimeError, OSError, AssertionError, subprocess.SubprocessError, psycopg.Error) as exc:
                log(f"{key}: {exc}")
                why = " ".join(str(exc).split())[:300]
                if key in run.systems:  # measured, then failed to stop: the figures stand
                    run.systems[key].errors["stop"] = why
                    continue
                run.systems[key] = SystemResult(error=str(exc).splitlines()[0][:300])
                if key == "peer":
                    meta.peer_versions, meta.peer_note = None, f"langgraph dev did not start: {why}"
                elif key == "aegra":
                    meta.aegra_versions, meta.aegra_note = None, f"Aegra did not start: {why}"
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    # The header names the versions measured and when the measuring ended, as the report did before.
    meta.load_end = load_average()
    meta.stamp = stamp()
    meta.versions = versions("graphrun", "langgraph", "fastapi", "uvicorn", "redis")
    meta.wall_s = time.monotonic() - started
    print(report.render(run))
    if args.out:
        report.write(run, args.out)
        results.save(run, args.out.with_suffix(".json"))
        log(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        log("interrupted; every process the bench started has been stopped")
        raise SystemExit(130) from None
