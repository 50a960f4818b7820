"""End to end, side by side: graphrun against LangGraph's own dev server and against raw LangGraph.

    make bench-e2e          (or: .venv/bin/python bench/e2e.py [--quick] [--no-peer] [--no-profile])

Four systems, measured one after the other in one run, with the same graph (`chain`, 5 steps, delay 0)
and the same client pattern (submit, then follow the events to the end over HTTP and SSE):

1. raw LangGraph `astream` in this machine's Python, one event loop, no HTTP: the floor;
2. `graphrun serve` (embedded Redis and SQLite in a temp data dir);
3. graphrun as deployed on several machines, on one: `graphrun api` (2 Gunicorn workers) +
   `graphrun worker --processes 2` + an external Redis (EmbeddedRedis) + a SQLite file;
4. `langgraph dev` (langgraph-cli[inmem], installed into bench/.peer-venv on first use) serving a
   copy of the same chain (bench/_peer_graph.py), driven through POST /runs/stream.

graphrun's processes get a clean environment (no GRAPHRUN_* of the caller's); BENCH_GRAPHRUN_<NAME>=v
passes GRAPHRUN_<NAME>=v to them, to measure another setting (e.g. BENCH_GRAPHRUN_WORKER_PROCESSES=2,
or a PostgreSQL BENCH_GRAPHRUN_DATABASE_URL; give each run a fresh database: the bench creates its
workflows by name).

The client is bench/_loadgen.py in its own process (raw asyncio streams on uvloop). During an extra
concurrency-50 window on `graphrun serve`, py-spy samples the API and the worker process.
Writes docs/benchmarks.md and prints the same report. Every process it starts is stopped on the way
out, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import header
from graphrun.redis.embedded import EmbeddedRedis, die_with_parent, free_port, redis_server_binary

ROOT = Path(__file__).resolve().parents[1]

BENCH = ROOT / "bench"
LOADGEN = BENCH / "_loadgen.py"
RAW = BENCH / "_raw.py"
PEER_GRAPH = BENCH / "_peer_graph.py"
PEER_VENV = BENCH / ".peer-venv"
# Unpinned: the newest dev server from PyPI (its versions are printed); BENCH_PEER_REQUIREMENT pins one.
PEER_REQUIREMENT = os.environ.get("BENCH_PEER_REQUIREMENT", "langgraph-cli[inmem]")
PEER_PACKAGES = ("langgraph-cli", "langgraph-api", "langgraph-runtime-inmem", "langgraph")
DOC = ROOT / "docs" / "benchmarks.md"
PY = sys.executable

# Targets of issue #7.
TARGET_LATENCY_MS = 15.0
TARGET_LATENCY_VS_PEER = 50.0
TARGET_THROUGHPUT_VS_PEER = 6.0
TARGET_THROUGHPUT_VS_RAW = 0.4
TARGET_CHATTY = 20_000.0


@dataclass
class Plan:
    latency_runs: int = 100
    latency_warmup: int = 10
    peer_latency_runs: int = 50  # each takes ~1 s on langgraph dev (its queue's poll interval)
    raw_latency_runs: int = 200
    levels: tuple[int, ...] = (10, 50, 200)
    warmup_s: float = 1.0
    window_s: float = 5.0
    drain_s: float = 30.0
    chatty_runs: int = 3
    chatty_emit: int = 10_000
    idle_clients: int = 1_000
    profile_s: float = 6.0

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            latency_runs=50,
            latency_warmup=5,
            peer_latency_runs=50,
            raw_latency_runs=50,
            window_s=2.0,
            chatty_runs=1,
            idle_clients=200,
            profile_s=3.0,
        )


# --- processes --------------------------------------------------------------------------------


def raise_nofile() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (pp := _ppid(int(entry))) is not None:
            parents.setdefault(pp, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def exe_name(pid: int) -> str:
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name
    except OSError:
        return ""


class Proc:
    """A server process in its own session (so the terminal's Ctrl-C reaches only the bench, which
    then stops it in order); it also dies with the bench if the bench is killed."""

    def __init__(self, name: str, args: list[str], *, env: dict[str, str], cwd: Path, logs: Path, stop_sig: int):
        self.name = name
        self.log_path = logs / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.stop_sig = stop_sig
        self.popen = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 30.0) -> None:
        t0 = time.monotonic()
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(self.stop_sig)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(10)
        # Whatever of its session is left (the group id is the leader's pid, a group we created).
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(1.0)
        self._log.close()
        log(f"{self.name} stopped in {time.monotonic() - t0:.1f} s")


def http_json(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_ready(url: str, proc: Proc, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
        try:
            if http_json("GET", url, timeout=1)[0] == 200:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} not ready after {timeout_s:.0f} s:\n{proc.log_tail()}")


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GRAPHRUN_", "LANGSMITH_", "LANGCHAIN_", "VIRTUAL_ENV"))
    }
    env.update(extra)
    env.update({k.removeprefix("BENCH_"): v for k, v in os.environ.items() if k.startswith("BENCH_GRAPHRUN_")})
    return env


def run_json(args: list[str], timeout_s: float, what: str) -> dict[str, Any]:
    """Run a helper process that prints one JSON object; raise with its stderr if it fails."""
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,  # noqa: PLW1509
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0 or not out.strip():
        tail = "\n".join(err.strip().splitlines()[-6:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {tail}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# --- systems ----------------------------------------------------------------------------------


@dataclass
class System:
    key: str
    title: str
    port: int
    kind: str  # graphrun | peer
    targets: dict[str, Any]
    steps: dict[str, int]
    pids: dict[str, list[int]] = field(default_factory=dict)
    worker_in_api: bool = False

    def spec(self, phase: str, **kw: Any) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "port": self.port,
            "targets": self.targets,
            "steps": self.steps,
            "phase": phase,
            "pids": self.pids,
            **kw,
        }


STEPS = {"chain": 5, "chatty": 1, "slow": 5}


def create_workflows(base: str, chatty_emit: int) -> dict[str, int]:
    configs = {
        "chain": {"steps": 5, "delay_s": 0},
        "chatty": {"steps": 1, "emit": chatty_emit},
        "slow": {"steps": 5, "delay_s": 60},
    }
    ids = {}
    for role, config in configs.items():
        body = {"name": f"bench-{role}", "graph": "chain", "config": config}
        status, body = http_json("POST", f"{base}/workflows", body)
        if status != 201:
            raise RuntimeError(f"creating workflow {role}: HTTP {status} {body}")
        ids[role] = body["id"]
    return ids


@contextlib.contextmanager
def graphrun_serve(tmp: Path, plan: Plan) -> Iterator[System]:
    port = free_port()
    data = tmp / "serve"
    data.mkdir()
    env = clean_env(GRAPHRUN_PORT=str(port), GRAPHRUN_HOST="127.0.0.1", GRAPHRUN_DATA_DIR=str(data / "data"))
    proc = Proc("serve", [PY, "-m", "graphrun", "serve"], env=env, cwd=data, logs=tmp, stop_sig=signal.SIGINT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/readyz", proc, 60)
        kids = descendants(proc.pid)
        redis = [p for p in kids if exe_name(p).startswith("redis")]
        workers = [p for p in kids if p not in redis]
        system = System(
            "serve",
            "graphrun serve",
            port,
            "graphrun",
            create_workflows(base, plan.chatty_emit),
            STEPS,
            {"api": [proc.pid], "worker": workers, "redis": redis},
        )
        yield system
    finally:
        proc.stop()


@contextlib.contextmanager
def graphrun_deployed(tmp: Path, plan: Plan) -> Iterator[System]:
    port = free_port()
    data = tmp / "deployed"
    data.mkdir()
    redis = EmbeddedRedis(data / "redis")
    procs: list[Proc] = []
    try:
        url = redis.start()
        env = clean_env(
            GRAPHRUN_PORT=str(port),
            GRAPHRUN_HOST="127.0.0.1",
            GRAPHRUN_REDIS_URL=url,
            GRAPHRUN_DATABASE_URL=f"sqlite:///{data / 'graphrun.db'}",
            GRAPHRUN_API_WORKERS="2",
            GRAPHRUN_DATA_DIR=str(data / "unused"),
        )
        api = Proc("api", [PY, "-m", "graphrun", "api"], env=env, cwd=data, logs=tmp, stop_sig=signal.SIGTERM)
        procs.append(api)
        workers = Proc(
            "worker",
            [PY, "-m", "graphrun", "worker", "--processes", "2"],
            env=env,
            cwd=data,
            logs=tmp,
            stop_sig=signal.SIGTERM,
        )
        procs.append(workers)
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/readyz", api, 60)
        deadline = time.monotonic() + 30
        while len(descendants(workers.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert redis.process is not None
        system = System(
            "deployed",
            "graphrun api + 2 workers",
            port,
            "graphrun",
            create_workflows(base, plan.chatty_emit),
            STEPS,
            {
                "api": [api.pid, *descendants(api.pid)],
                "worker": [workers.pid, *descendants(workers.pid)],
                "redis": [redis.process.pid],
            },
        )
        yield system
    finally:
        for proc in reversed(procs):
            proc.stop()
        redis.stop()


def peer_versions() -> dict[str, str]:
    code = (
        f"import importlib.metadata as m, json; print(json.dumps({{p: m.version(p) for p in {list(PEER_PACKAGES)!r}}}))"
    )
    out = subprocess.run(
        [str(PEER_VENV / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    versions: dict[str, str] = json.loads(out.stdout)
    return versions


def ensure_peer() -> tuple[dict[str, str] | None, str]:
    """Install langgraph-cli[inmem] into bench/.peer-venv unless a complete install is there.
    Returns (versions, note) or (None, why it is unavailable)."""
    marker = PEER_VENV / ".installed"
    if marker.exists() and (PEER_VENV / "bin" / "langgraph").exists():
        try:
            same = json.loads(marker.read_text()).get("requirement") == PEER_REQUIREMENT
            if same:
                return peer_versions(), "reused bench/.peer-venv"
        except (subprocess.SubprocessError, OSError, ValueError, AttributeError):
            pass
    shutil.rmtree(PEER_VENV, ignore_errors=True)
    t0 = time.monotonic()
    try:
        subprocess.run([PY, "-m", "venv", str(PEER_VENV)], check=True, capture_output=True, timeout=120)
        done = subprocess.run(
            [
                str(PEER_VENV / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                PEER_REQUIREMENT,
            ],
            capture_output=True,
            text=True,
            timeout=420,
            check=False,
        )
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            return None, f"pip install {PEER_REQUIREMENT} failed: {tail[:300]}"
        versions = peer_versions()
    except (subprocess.SubprocessError, OSError, ValueError) as exc:
        return None, f"could not install {PEER_REQUIREMENT}: {exc}"
    marker.write_text(json.dumps({"requirement": PEER_REQUIREMENT, "versions": versions}))
    return versions, f"installed into bench/.peer-venv in {time.monotonic() - t0:.0f} s"


@contextlib.contextmanager
def langgraph_dev(tmp: Path, plan: Plan) -> Iterator[System]:
    port = free_port()
    project = tmp / "peer"
    project.mkdir()
    shutil.copy(PEER_GRAPH, project / "peer_graph.py")
    graphs = {name: f"./peer_graph.py:{name}" for name in ("chain", "chatty", "slow")}
    (project / "langgraph.json").write_text(json.dumps({"dependencies": ["."], "graphs": graphs}))
    env = clean_env(
        BENCH_CHATTY_EMIT=str(plan.chatty_emit),
        LANGGRAPH_CLI_NO_ANALYTICS="1",  # no calls home: everything stays on 127.0.0.1
        LANGGRAPH_NO_VERSION_CHECK="true",
        LANGSMITH_TRACING="false",
    )
    args = [
        str(PEER_VENV / "bin" / "langgraph"),
        "dev",
        "--no-browser",
        "--no-reload",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--config",
        "langgraph.json",
    ]
    proc = Proc("langgraph-dev", args, env=env, cwd=project, logs=tmp, stop_sig=signal.SIGINT)
    try:
        wait_ready(f"http://127.0.0.1:{port}/ok", proc, 120)
        yield System(
            "peer",
            "langgraph dev",
            port,
            "peer",
            {"chain": ["chain", "updates"], "chatty": ["chatty", ["updates", "custom"]], "slow": ["slow", "updates"]},
            STEPS,
            {"api": [proc.pid, *descendants(proc.pid)]},
            worker_in_api=True,
        )
    finally:
        proc.stop(15)


# --- measuring --------------------------------------------------------------------------------


def load_average() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return fh.read().split()[0]
    except OSError:
        return "?"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def measure_http(system: System, plan: Plan, results: dict[str, Any], tmp: Path, profile: bool) -> None:
    out: dict[str, Any] = {}
    results[system.key] = out
    lg = [PY, str(LOADGEN)]
    runs = plan.peer_latency_runs if system.kind == "peer" else plan.latency_runs
    warmup = 3 if system.kind == "peer" else plan.latency_warmup
    phases: list[tuple[str, dict[str, Any], float]] = [
        ("latency", {"warmup": warmup, "runs": runs}, 60 + 3 * (runs + warmup)),
        (
            "throughput",
            {
                "levels": list(plan.levels),
                "warmup_s": plan.warmup_s,
                "window_s": plan.window_s,
                "drain_s": plan.drain_s,
            },
            len(plan.levels) * (plan.warmup_s + plan.window_s + plan.drain_s + 5) + 30,
        ),
        ("chatty", {"runs": plan.chatty_runs}, 60 * plan.chatty_runs + 30),
    ]
    for phase, kw, timeout in phases:
        log(f"{system.title}: {phase}")
        try:
            out[phase] = run_json([*lg, json.dumps(system.spec(phase, **kw))], timeout, f"{system.title} {phase}")
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
            out[phase] = {"error": str(exc)}
            log(f"  {exc}")
    if profile:
        log(f"{system.title}: profile at concurrency 50")
        results["profile"] = profile_c50(system, plan, tmp)
    log(f"{system.title}: {plan.idle_clients} idle SSE clients")
    try:
        out["idle"] = run_json(
            [*lg, json.dumps(system.spec("idle", clients=plan.idle_clients))], 240, f"{system.title} idle"
        )
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
        out["idle"] = {"error": str(exc)}
        log(f"  {exc}")


def measure_raw(plan: Plan, results: dict[str, Any]) -> None:
    raw: dict[str, Any] = {}
    results["raw"] = raw
    base = {"warmup_s": plan.warmup_s, "window_s": plan.window_s}
    timeout = len(plan.levels) * (plan.warmup_s + plan.window_s + 30) + 120
    log("raw LangGraph: latency, throughput, chatty (one event loop)")
    raw["main"] = run_json(
        [
            PY,
            str(RAW),
            json.dumps(
                {
                    **base,
                    "latency": True,
                    "warmup": 20,
                    "runs": plan.raw_latency_runs,
                    "levels": list(plan.levels),
                    "chatty": plan.chatty_runs,
                    "chatty_emit": plan.chatty_emit,
                }
            ),
        ],
        timeout,
        "raw LangGraph",
    )
    log("raw LangGraph: single core, one loop per core, graphrun's stream modes (concurrency 50)")
    raw["pinned"] = run_json([PY, str(RAW), json.dumps({**base, "levels": [50], "cpu": 0})], 120, "raw pinned")
    cores = sorted(os.sched_getaffinity(0))
    procs = [
        subprocess.Popen(
            [PY, str(RAW), json.dumps({**base, "levels": [50], "cpu": cpu})],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        for cpu in cores
    ]
    try:
        outs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    per = [json.loads(o.strip().splitlines()[-1])["throughput"]["50"]["runs_per_s"] for o in outs]
    raw["per_core"] = {"processes": len(cores), "runs_per_s": sum(per), "each": per}
    raw["graphrun_modes"] = run_json(
        [
            PY,
            str(RAW),
            json.dumps(
                {
                    **base,
                    "graphrun_modes": True,
                    "latency": True,
                    "warmup": 20,
                    "runs": plan.raw_latency_runs,
                    "levels": [50],
                    "chatty": 1,
                    "chatty_emit": plan.chatty_emit,
                }
            ),
        ],
        120,
        "raw graphrun modes",
    )


def top_frames(path: Path, n: int = 10) -> dict[str, Any]:
    """Self time (leaf frame) and graphrun's inclusive time from a py-spy raw (collapsed) file."""
    leaf: Counter[str] = Counter()
    package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        leaf[frames[-1]] += count
        name = frames[-1].rpartition(" (")[2].rstrip(")")
        package[name.split("/", 1)[0] if "/" in name else name] += count
        for frame in set(frames):
            if "(graphrun/" in frame and "(graphrun/cli/" not in frame and "(graphrun/__main__" not in frame:
                inclusive[frame] += count
    return {
        "samples": total,
        "self": [(f, c / total * 100) for f, c in leaf.most_common(n)] if total else [],
        "packages": [(p, c / total * 100) for p, c in package.most_common(8)] if total else [],
        "graphrun_inclusive": [(f, c / total * 100) for f, c in inclusive.most_common(8)] if total else [],
    }


CLK_TCK = os.sysconf("SC_CLK_TCK")


def thread_ticks(pid: int) -> dict[int, int]:
    """CPU ticks (user + system) of each thread of a process."""
    out = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                out[int(tid)] = int(fields[11]) + int(fields[12])
    return out


def wall_states(path: Path) -> dict[str, Any]:
    """Where the threads of a process spend wall-clock time, from a py-spy raw file recorded with
    --idle --native --threads: the event loop's thread, the store's SQLite threads, and aiosqlite's
    one thread per connection (the SQLite checkpointer)."""
    states: dict[str, Counter[str]] = {"main": Counter(), "store": Counter(), "aiosqlite": Counter()}
    threads: dict[str, set[str]] = {"main": set(), "store": set(), "aiosqlite": set()}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        count = int(count_text)
        thread = frames[0]
        python = [f for f in frames if ".py)" in f]
        if "MainThread" in thread:
            kind = "main"
            idle = any(f.startswith(("epoll_wait", "epoll_pwait")) for f in frames[-3:]) or (
                python and python[-1].startswith("EpollSelector.select")
            )
            state = "waiting in epoll (idle)" if idle else "running"
        elif "graphrun-sqlite" in thread or "_connection_worker_thread" in stack:
            kind = "store" if "graphrun-sqlite" in thread else "aiosqlite"
            if "sqlite3InvokeBusyHandler" in stack or ("usleep" in stack and "libsqlite3" in stack):
                state = "sleeping in SQLite's busy handler (database locked)"
            elif "SimpleQueue_get" in stack:
                state = "waiting for work"
            elif any(x in stack for x in ("fdatasync", "fsync", "pwrite", "pread")):
                state = "file I/O"
            else:
                state = "running SQL or Python"
        else:
            continue
        states[kind][state] += count
        threads[kind].add(thread.split(":", 1)[0])
    out: dict[str, Any] = {}
    for kind, counter in states.items():
        total = sum(counter.values())
        out[kind] = {
            "threads": len(threads[kind]),
            "samples": total,
            "states": [(state, c / total * 100) for state, c in counter.most_common()] if total else [],
        }
    return out


def _sampled_window(
    system: System, targets: dict[str, int], pyspy_args: list[str], seconds: float, tmp: Path, tag: str
) -> tuple[dict[str, Path | str], dict[str, Any], dict[str, dict[str, Any]]]:
    """Run the concurrency-50 load; after its warm-up, record each target with py-spy for ``seconds``.
    Returns (raw file or error per target, the load's result, CPU per thread per target)."""
    pyspy = Path(PY).parent / "py-spy"
    spec = system.spec("throughput", levels=[50], warmup_s=2.0, window_s=seconds + 1.0, drain_s=30.0)
    load = subprocess.Popen(
        [PY, str(LOADGEN), json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,  # noqa: PLW1509
    )
    spies: dict[str, tuple[subprocess.Popen[str], Path]] = {}
    files: dict[str, Path | str] = {}
    usage: dict[str, dict[str, Any]] = {}
    try:
        time.sleep(2.0)  # past the warm-up
        t0 = time.monotonic()
        before = {name: thread_ticks(pid) for name, pid in targets.items()}
        for name, pid in targets.items():
            dest = tmp / f"pyspy-{tag}-{pid}.txt"
            args = [str(pyspy), "record", "-p", str(pid), "-d", str(int(seconds)), *pyspy_args]
            args += ["-f", "raw", "--nolineno", "-o", str(dest)]
            spy = subprocess.Popen(
                args,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509
            )
            spies[name] = (spy, dest)
        for name, (spy, dest) in spies.items():
            text = spy.communicate(timeout=seconds + 60)[0]
            ok = spy.returncode == 0 and dest.exists()
            files[name] = dest if ok else f"py-spy failed: {text.strip()[-300:]}"
        wall = time.monotonic() - t0
        for name, pid in targets.items():
            use = [(tid, (t - before[name].get(tid, 0)) / CLK_TCK / wall) for tid, t in thread_ticks(pid).items()]
            others = sorted((c for tid, c in use if tid != pid), reverse=True)
            usage[name] = {"main": next((c for tid, c in use if tid == pid), 0.0), "others": others, "count": len(use)}
        load_out, load_err = load.communicate(timeout=seconds + 60)
        try:
            result: dict[str, Any] = json.loads(load_out.strip().splitlines()[-1])["50"]
        except (ValueError, IndexError, KeyError):
            result = {"error": load_err.strip()[-300:]}
    finally:
        for proc in [load, *(s for s, _ in spies.values())]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return files, result, usage


def profile_c50(system: System, plan: Plan, tmp: Path) -> dict[str, Any]:
    """Two sampled concurrency-50 windows on graphrun serve: CPU (samples holding the GIL) and wall
    clock (every thread, idle included, with native frames, so that waits inside C show)."""
    if not (Path(PY).parent / "py-spy").exists():
        return {"error": "py-spy is not installed (uv sync --group dev)"}
    targets = {"API process": system.pids["api"][0]}
    if system.pids.get("worker"):
        targets["worker process"] = system.pids["worker"][0]
    out: dict[str, Any] = {"rate_hz": 100, "seconds": plan.profile_s, "wall_rate_hz": 50, "wall_seconds": 4.0}
    files, out["load"], usage = _sampled_window(system, targets, ["-r", "100", "--gil"], plan.profile_s, tmp, "gil")
    for name, f in files.items():
        out[name] = {"error": f} if isinstance(f, str) else {**top_frames(f), "threads": usage.get(name, {})}
    args = ["-r", "50", "--idle", "--native", "--threads"]
    files, out["wall_load"], _usage = _sampled_window(system, targets, args, 4.0, tmp, "wall")
    for name, f in files.items():
        if name in out and "error" not in out[name]:
            out[name]["wall"] = {"error": f} if isinstance(f, str) else wall_states(f)
    return out


# --- the report -------------------------------------------------------------------------------

COLUMNS = [("raw", "raw LangGraph (in process)"), ("serve", "graphrun serve"), ("deployed", "graphrun api + 2 workers")]
COLUMNS.append(("peer", "langgraph dev"))


def get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def figures(results: dict[str, Any], key: str) -> dict[str, Any]:
    """One system's headline figures (None where not measured)."""
    if key == "raw":
        main = results.get("raw", {}).get("main", {})
        lat, thr, chat = main.get("latency", {}), main.get("throughput", {}), main.get("chatty", {})
    else:
        sysres = results.get(key, {})
        lat, thr, chat = sysres.get("latency", {}), sysres.get("throughput", {}), sysres.get("chatty", {})
    f: dict[str, Any] = {
        "p50": lat.get("p50_ms"),
        "p99": lat.get("p99_ms"),
        "runs": lat.get("runs"),
        "first": lat.get("first_event_p50_ms"),
        "first_node": lat.get("first_node_p50_ms"),
        "chatty": chat.get("median_events_per_s"),
    }
    for level in ("10", "50", "200"):
        f[f"c{level}"] = get(thr, level, "runs_per_s")
    return f


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def mib(kib: int | None) -> str:
    return "—" if kib is None else f"{kib / 1024:.0f}"


def memory_cell(results: dict[str, Any], key: str, group: str) -> str:
    if key == "raw":
        return "n/a"
    if key == "peer" and group == "worker":
        return "n/a (one process)"
    if key == "peer" and group == "redis":
        return "n/a (in memory)"
    idle = get(results, key, "idle")
    if not isinstance(idle, dict) or "error" in idle:
        return "error" if idle else "—"
    before = idle["rss_before_kib"].get(group)
    after = idle["rss_with_clients_kib"].get(group)
    return f"{mib(before)} → {mib(after)}"


def _reasons(phase: Any) -> list[str]:
    """Failure reasons of a latency phase or of every level of a throughput phase."""
    if not isinstance(phase, dict):
        return []
    found = list(phase.get("failure_reasons", {}))
    for value in phase.values():
        if isinstance(value, dict):
            found += list(value.get("failure_reasons", {}))
    return found


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def render(results: dict[str, Any], meta: dict[str, Any], plan: Plan) -> str:
    lines: list[str] = []
    add = lines.append
    title = "end to end: graphrun vs langgraph dev vs raw LangGraph"
    # One paragraph per header line, so that the Markdown file shows them as lines.
    add("\n\n".join(header(title, "langgraph", "fastapi", "uvicorn", "redis").rstrip().splitlines()))
    peer = meta.get("peer_versions")
    add("")
    if peer:
        add("peer (bench/.peer-venv): " + ", ".join(f"{k} {v}" for k, v in peer.items()))
    else:
        add(f"peer: NOT MEASURED — {meta.get('peer_note')}")
    add("")
    add(f"redis-server {meta.get('redis_version', '?')} · RLIMIT_NOFILE {meta['nofile']}")
    add("")
    add(
        f"load average (1 min) at start {meta.get('load_start', '?')}, at end {meta.get('load_end', '?')}: "
        "the machine is shared and other processes were not stopped (their CPU during each window: 'other' below)"
    )
    add("")
    add(
        f'Graph `chain`, 5 steps, delay 0, input {{"n": 0}}. Client: submit, then follow the events to the end '
        f"(graphrun: POST …/executions + GET …/events; langgraph dev: POST /runs/stream, stream_mode updates), "
        f"HTTP/1.1 keep-alive over raw asyncio streams in a separate process. Latency: {plan.latency_runs} runs "
        f"({plan.peer_latency_runs} on langgraph dev, {plan.raw_latency_runs} raw) after warm-up, one at a time. "
        f"Throughput: closed loop, runs ending in a {plan.window_s:.0f} s window after {plan.warmup_s:.0f} s warm-up."
    )
    add("")
    figs = {key: figures(results, key) for key, _ in COLUMNS}
    unavailable = {key: None for key, _ in COLUMNS}
    if not peer:
        unavailable["peer"] = f"not measured: {meta.get('peer_note')}"
    for key, _ in COLUMNS:
        if key in results and isinstance(results[key], dict) and "error" in results[key]:
            unavailable[key] = f"failed: {results[key]['error']}"

    def cell(key: str, value: str) -> str:
        return "not measured" if unavailable[key] else value

    add("| figure | " + " | ".join(title for _, title in COLUMNS) + " |")
    add("|---|" + "---:|" * len(COLUMNS))
    rows: list[tuple[str, Any]] = [
        ("submit → terminal event, p50 ms (concurrency 1)", lambda k: fmt(figs[k]["p50"], 2)),
        ("submit → terminal event, p99 ms (concurrency 1)", lambda k: fmt(figs[k]["p99"], 2)),
        ("time to first event, p50 ms", lambda k: fmt(figs[k]["first"], 2)),
        ("time to first node output, p50 ms", lambda k: fmt(figs[k]["first_node"], 2)),
        ("completed runs/s, concurrency 10", lambda k: fmt(figs[k]["c10"])),
        ("completed runs/s, concurrency 50", lambda k: fmt(figs[k]["c50"])),
        ("completed runs/s, concurrency 200", lambda k: fmt(figs[k]["c200"])),
        (
            f"chatty run ({plan.chatty_emit:,} custom events): events/s to one client",
            lambda k: fmt(figs[k]["chatty"]),
        ),
        (
            f"API RSS MiB, idle → {plan.idle_clients:,} SSE clients",
            lambda k: memory_cell(results, k, "api"),
        ),
        (
            f"worker RSS MiB, idle → {plan.idle_clients:,} SSE clients",
            lambda k: memory_cell(results, k, "worker"),
        ),
        (f"Redis RSS MiB, idle → {plan.idle_clients:,} SSE clients", lambda k: memory_cell(results, k, "redis")),
    ]
    for label, value in rows:
        add(f"| {label} | " + " | ".join(cell(k, value(k)) for k, _ in COLUMNS) + " |")
    add("")
    for key, title in COLUMNS:
        if unavailable[key]:
            add(f"- {title}: {unavailable[key]}")

    # Ratios, pair by pair, same run.
    add("")
    add("Ratios graphrun / other, from the figures above (same run):")
    add("")
    pairs = [("serve", "peer"), ("serve", "raw"), ("deployed", "peer"), ("deployed", "raw")]
    names = dict(COLUMNS)
    add("| figure | " + " | ".join(f"{names[a].replace('graphrun ', '')} / {names[b]}" for a, b in pairs) + " |")
    add("|---|" + "---:|" * len(pairs))

    def ratio_cell(a: str, b: str, metric: str, lower_better: bool) -> str:
        r = ratio(figs[a][metric], figs[b][metric])
        if r is None or unavailable[a] or unavailable[b]:
            return "—"
        if lower_better:
            return f"{r:.3f}× ({1 / r:.1f}× lower)" if r < 1 else f"{r:.2f}× ({r:.1f}× higher)"
        return f"{r:.2f}×"

    for label, metric, lower in [
        ("latency p50, concurrency 1", "p50", True),
        ("latency p99, concurrency 1", "p99", True),
        ("time to first event p50", "first", True),
        ("runs/s, concurrency 10", "c10", False),
        ("runs/s, concurrency 50", "c50", False),
        ("runs/s, concurrency 200", "c200", False),
        ("chatty events/s", "chatty", False),
    ]:
        add(f"| {label} | " + " | ".join(ratio_cell(a, b, metric, lower) for a, b in pairs) + " |")

    # Floor variants.
    raw = results.get("raw", {})
    add("")
    add("Raw LangGraph, concurrency 50, other shapes of the floor:")
    add("")
    pinned = get(raw, "pinned", "throughput", "50", "runs_per_s")
    per_core = get(raw, "per_core")
    gm = raw.get("graphrun_modes", {}) if isinstance(raw, dict) else {}
    add(f"- one event loop pinned to one core (the single-core figure): {fmt(pinned)} runs/s")
    if per_core:
        each = " + ".join(fmt(x) for x in per_core["each"])
        total = fmt(per_core["runs_per_s"])
        add(f"- one event loop per core ({per_core['processes']} processes): {total} runs/s ({each})")
    if gm:
        add(
            "- with graphrun's stream modes (tasks, custom, messages, values; subgraphs=True) instead of `updates`: "
            f"p50 {fmt(get(gm, 'latency', 'p50_ms'), 2)} ms, {fmt(get(gm, 'throughput', '50', 'runs_per_s'))} runs/s, "
            f"chatty {fmt(get(gm, 'chatty', 'median_events_per_s'))} events/s"
        )
    serve_c50 = figs["serve"]["c50"]
    if serve_c50 and per_core:
        add(
            f"- graphrun serve / one loop per core: {ratio(serve_c50, per_core['runs_per_s']) or 0:.2f}×; "
            f"/ pinned single core: {ratio(serve_c50, pinned) or 0:.2f}×"
        )

    # Targets.
    add("")
    add("Targets (issue #7), on graphrun serve:")
    add("")

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else ("met" if ok else "NOT met")

    s, p, r = figs["serve"], figs["peer"], figs["raw"]
    peer_ok = not unavailable["peer"]
    lat_ratio = ratio(p["p50"], s["p50"]) if peer_ok else None
    thr_peer = ratio(s["c50"], p["c50"]) if peer_ok else None
    thr_raw = ratio(s["c50"], r["c50"])
    checks = [
        (
            f"latency p50 at concurrency 1 ≤ {TARGET_LATENCY_MS:.0f} ms",
            s["p50"],
            None if s["p50"] is None else s["p50"] <= TARGET_LATENCY_MS,
            " ms",
        ),
        (
            f"latency p50 at concurrency 1 ≥ {TARGET_LATENCY_VS_PEER:.0f}× lower than langgraph dev",
            lat_ratio,
            None if lat_ratio is None else lat_ratio >= TARGET_LATENCY_VS_PEER,
            "×",
        ),
        (
            f"throughput at concurrency 50 ≥ {TARGET_THROUGHPUT_VS_PEER:.0f}× langgraph dev",
            thr_peer,
            None if thr_peer is None else thr_peer >= TARGET_THROUGHPUT_VS_PEER,
            "×",
        ),
        (
            f"throughput at concurrency 50 ≥ {TARGET_THROUGHPUT_VS_RAW}× raw LangGraph (one event loop)",
            thr_raw,
            None if thr_raw is None else thr_raw >= TARGET_THROUGHPUT_VS_RAW,
            "×",
        ),
        (
            f"chatty run ≥ {TARGET_CHATTY:,.0f} events/s to one client",
            s["chatty"],
            None if s["chatty"] is None else s["chatty"] >= TARGET_CHATTY,
            " events/s",
        ),
    ]
    add("| target | graphrun serve | verdict | graphrun api + 2 workers |")
    add("|---|---:|---|---:|")
    d = figs["deployed"]
    deployed_values = [
        d["p50"],
        ratio(p["p50"], d["p50"]) if peer_ok else None,
        ratio(d["c50"], p["c50"]) if peer_ok else None,
        ratio(d["c50"], r["c50"]),
        d["chatty"],
    ]
    for (label, value, ok, unit), dv in zip(checks, deployed_values, strict=True):
        digits = 2 if unit == "×" else 1
        shown = f"{fmt(value, digits)}{unit if value is not None else ''}"
        dshown = f"{fmt(dv, digits)}{unit if dv is not None else ''}"
        add(f"| {label} | {shown} | {verdict(ok if value is not None else None)} | {dshown} |")

    # Details.
    add("")
    add("Details:")
    add("")
    raw_thr = get(results, "raw", "main", "throughput") or {}
    if raw_thr:
        parts = [
            f"c={level}: {t['counted']} runs, p50 {fmt(t['p50_ms'], 2)} ms, p99 {fmt(t['p99_ms'], 2)} ms; "
            f"CPU (share of one core): itself {t['cpu'] * 100:.0f}%, other {t.get('other_cpu', 0) * 100:.0f}%"
            for level, t in raw_thr.items()
        ]
        add("- raw LangGraph throughput: " + "; ".join(parts))
    for key, title in COLUMNS[1:]:
        sysres = results.get(key)
        if not isinstance(sysres, dict) or unavailable[key]:
            continue
        thr = sysres.get("throughput", {})
        if "error" in thr:
            add(f"- {title} throughput: {thr['error']}")
        else:
            parts = []
            reasons: Counter[str] = Counter()
            for level, t in thr.items():
                cpu = ", ".join(
                    f"{g.removesuffix('_cpu')} {t[g] * 100:.0f}%" for g in t if g.endswith("_cpu") and t[g] is not None
                )
                parts.append(
                    f"c={level}: {t['counted']} runs, p50 {fmt(t['p50_ms'])} ms, p99 {fmt(t['p99_ms'])} ms, "
                    f"{t['failures']} failed, {t['abandoned']} abandoned; CPU (share of one core): {cpu}"
                )
                reasons.update(t.get("failure_reasons", {}))
            add(f"- {title} throughput: " + "; ".join(parts))
            if reasons:
                add(f"  - failed runs (not counted), by reason: {dict(reasons.most_common(3))}")
        chat = sysres.get("chatty", {})
        if chat.get("runs"):
            c = chat["runs"][0]
            add(
                f"- {title} chatty: {c['events']} events per run ({c['custom']} custom, {c['truncated']} truncated), "
                f"submit → end {c['total_s'] * 1000:.0f} ms; rate = custom events / (last − first custom event), "
                f"median of {len(chat['runs'])}"
            )
        elif "error" in chat:
            add(f"- {title} chatty: {chat['error']}")
        idle = sysres.get("idle", {})
        if "error" in idle:
            add(f"- {title} idle clients: {idle['error']}")
        elif idle and key == "peer":
            add(
                f"- {title} idle clients: {idle['connected']}/{idle['clients']} connected "
                f"in {idle['connect_s']:.1f} s, then disconnected (on_disconnect=cancel)"
            )
        elif idle:
            add(
                f"- {title} idle clients: {idle['connected']}/{idle['clients']} connected "
                f"in {idle['connect_s']:.1f} s; "
                f"stopped in {idle['cancel_s']:.1f} s, streams ended with {idle['ended_with']}"
                + (f", {idle['not_ended']} never ended" if idle.get("not_ended") else "")
                + (f", {idle['cancel_errors']} cancel errors" if idle.get("cancel_errors") else "")
            )
        lat = sysres.get("latency", {})
        if "error" in lat:
            add(f"- {title} latency: {lat['error']}")
        elif lat.get("failures"):
            add(
                f"- {title} latency: {lat['failures']} failed run(s) replaced (not in the figures): "
                f"{lat['failure_reasons']}"
            )
    lost = any(
        "after 0 of" in reason
        for key in ("serve", "deployed")
        for phase in ("latency", "throughput")
        for reason in _reasons(get(results, key, phase))
    )
    if lost:
        add(
            "- 'stream ended with complete after 0 of 5 node outputs (1 events in all)': the events stream "
            "answered with nothing but a terminal event rebuilt from the store, so the client lost the run's "
            "events. In src/graphrun/events/follow.py the catch-up checks that the log exists *before* it reads "
            "the stored status; a run that starts and finishes in between is taken for one whose log expired. "
            "Counted as failed, not in the figures."
        )
    add(
        "- Memory: VmRSS summed over the processes of each role (Gunicorn master + 2 workers; worker supervisor "
        "+ 2 workers; forked processes share pages, so sums overcount). 'idle' is read after the runs above, just "
        "before the clients connect. graphrun clients follow `chain` executions with delay_s 60 (queued or "
        "running), then cancelled through the API; langgraph dev clients hold POST /runs/stream of the same slow "
        "graph (on_disconnect=cancel), then disconnect."
    )
    add(
        "- langgraph dev runs with its defaults (one background job at a time; a queue that polls about once a "
        "second when idle, which is most of its concurrency-1 latency) and its default INFO logging, as is graphrun."
    )

    prof = results.get("profile")
    add("")
    add("## Profile")
    add("")
    if not prof:
        add("not measured")
    elif "error" in prof:
        add(f"not measured: {prof['error']}")
    else:
        load = prof.get("load", {})
        wall_load = prof.get("wall_load", {})
        add(
            f"py-spy, {prof['rate_hz']} Hz for {prof['seconds']:.0f} s, on graphrun serve during an extra "
            f"concurrency-50 window ({fmt(load.get('runs_per_s'))} runs/s while sampled), `--gil`: only samples "
            "of the thread holding the GIL, so waits and C code that releases the GIL (SQLite in the store's "
            "and aiosqlite's threads, socket I/O) do not count; the per-thread CPU line shows what those threads "
            "cost. Self time = samples whose innermost frame is that function, as a share of the process's "
            "samples. Then a second window "
            f"({fmt(wall_load.get('runs_per_s'))} runs/s: native sampling slows the processes), "
            f"{prof['wall_rate_hz']} Hz for {prof['wall_seconds']:.0f} s with `--idle --native --threads`: where "
            "the threads spend wall-clock time, waits included."
        )
        for name in ("API process", "worker process"):
            p = prof.get(name)
            if not p:
                continue
            add("")
            if "error" in p:
                add(f"**{name}**: {p['error']}")
                continue
            busy = p["samples"] / (prof["rate_hz"] * prof["seconds"]) * 100
            th = p.get("threads", {})
            others = ", ".join(f"{c * 100:.0f}%" for c in th.get("others", [])[:4] if c >= 0.005) or "none above 0.5%"
            add(
                f"**{name}**: {p['samples']} samples holding the GIL (≈ {busy:.0f}% of the time). CPU per thread "
                f"(/proc, same {prof['seconds']:.0f} s): main {th.get('main', 0) * 100:.0f}%, "
                f"others ({th.get('count', 1) - 1}) {others}"
            )
            add("")
            add("| # | function (file) | self % |")
            add("|---:|---|---:|")
            for i, (frame, share) in enumerate(p["self"], 1):
                add(f"| {i} | `{frame}` | {share:.1f} |")
            add("")
            add("self time by package: " + ", ".join(f"{pkg} {share:.0f}%" for pkg, share in p["packages"]))
            add("")
            inclusive = "; ".join(f"`{f}` {share:.0f}%" for f, share in p["graphrun_inclusive"])
            add(f"graphrun frames by inclusive time: {inclusive}")
            wall = p.get("wall")
            if wall and "error" in wall:
                add("")
                add(f"wall clock: {wall['error']}")
            elif wall:
                add("")
                for kind, label in (
                    ("main", "event-loop thread"),
                    ("store", "store's SQLite threads"),
                    ("aiosqlite", "aiosqlite threads (checkpointer)"),
                ):
                    w = wall[kind]
                    if not w["samples"]:
                        continue
                    shares = ", ".join(f"{state} {share:.0f}%" for state, share in w["states"])
                    add(f"wall clock, {label} ({w['threads']} seen): {shares}")
                    add("")
    return "\n".join(lines) + "\n"


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and shorter windows (a smoke test)")
    parser.add_argument("--no-peer", action="store_true", help="skip langgraph dev")
    parser.add_argument("--no-profile", action="store_true", help="skip py-spy")
    parser.add_argument("--only", choices=["raw", "serve", "deployed", "peer"], action="append")
    parser.add_argument("--out", type=Path, default=DOC, help="report file (default docs/benchmarks.md)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, py-spy output)")
    args = parser.parse_args()
    plan = Plan.quick() if args.quick else Plan()
    only = set(args.only or ["raw", "serve", "deployed", "peer"])
    if args.no_peer:
        only.discard("peer")

    # Ctrl-C and SIGTERM unwind through the finally blocks that stop every process we started, even
    # when the bench was started with SIGINT ignored (a background job of a non-interactive shell).
    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)

    started = time.monotonic()
    meta: dict[str, Any] = {"nofile": raise_nofile()[0]}
    with contextlib.suppress(OSError, subprocess.SubprocessError, IndexError):
        version_cmd = [redis_server_binary(), "--version"]
        text = subprocess.run(version_cmd, capture_output=True, text=True, timeout=10, check=False).stdout
        meta["redis_version"] = next(w for w in text.split() if w.startswith("v=")).removeprefix("v=")
    if "peer" in only:
        log("langgraph dev: installing or reusing bench/.peer-venv")
        meta["peer_versions"], meta["peer_note"] = ensure_peer()
        log(f"  {meta['peer_note']}")
    else:
        meta["peer_versions"], meta["peer_note"] = None, "skipped (--no-peer)"

    meta["load_start"] = load_average()
    results: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="graphrun-bench-e2e-"))
    try:
        if "raw" in only:
            try:
                measure_raw(plan, results)
            except (RuntimeError, subprocess.SubprocessError, ValueError, KeyError) as exc:
                results["raw"] = {"error": str(exc)}
        for key, start in (("serve", graphrun_serve), ("deployed", graphrun_deployed), ("peer", langgraph_dev)):
            if key not in only or (key == "peer" and not meta["peer_versions"]):
                continue
            try:
                with start(tmp, plan) as system:
                    measure_http(system, plan, results, tmp, profile=key == "serve" and not args.no_profile)
            except (RuntimeError, OSError, AssertionError, subprocess.SubprocessError) as exc:
                log(f"{key}: {exc}")
                results[key] = {"error": str(exc).splitlines()[0][:300]}
                if key == "peer":
                    why = " ".join(str(exc).split())[:300]
                    meta["peer_versions"], meta["peer_note"] = None, f"langgraph dev did not start: {why}"
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    meta["load_end"] = load_average()
    report = render(results, meta, plan)
    report += f"\nbench/e2e.py wall time: {time.monotonic() - started:.0f} s\n"
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        preamble = (
            "# Benchmarks\n\nWritten by `make bench` (bench/e2e.py); do not edit by hand. "
            "Every figure below comes from one run on the machine named in its header.\n\n"
        )
        # What the profiles found and what was changed: written by people, kept beside the bench.
        findings = ROOT / "bench" / "FINDINGS.md"
        notes = "\n" + findings.read_text() if findings.is_file() else ""
        args.out.write_text(preamble + report.replace("# end to end", "## End to end", 1) + notes)
        (args.out.with_suffix(".json")).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
        log(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        log("interrupted; every process the bench started has been stopped")
        raise SystemExit(130) from None
