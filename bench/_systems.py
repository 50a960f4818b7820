"""The systems bench/e2e.py measures over HTTP, each started in a clean environment and stopped on
the way out: `graphrun serve`, graphrun as deployed (API + workers + external Redis), and
`langgraph dev` (installed into bench/.peer-venv on first use); Aegra is in bench/_aegra.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import log
from bench._procs import descendants, exe_name, http_json, wait_ok
from bench._venv import ensure_venv
from bench.results import Plan
from graphrun.redis.embedded import EmbeddedRedis, die_with_parent, free_port

BENCH = Path(__file__).resolve().parent
PEER_GRAPH = BENCH / "_peer_graph.py"
PEER_VENV = BENCH / ".peer-venv"
# Unpinned: the newest dev server from PyPI (its versions are printed); BENCH_PEER_REQUIREMENT pins one.
PEER_REQUIREMENT = os.environ.get("BENCH_PEER_REQUIREMENT", "langgraph-cli[inmem]")
PEER_PACKAGES = ("langgraph-cli", "langgraph-api", "langgraph-runtime-inmem", "langgraph")
PY = sys.executable


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


def wait_ready(url: str, proc: Proc, timeout_s: float) -> None:
    wait_ok(url, proc.popen, proc.name, proc.log_tail, timeout_s)


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GRAPHRUN_", "LANGSMITH_", "LANGCHAIN_", "VIRTUAL_ENV"))
    }
    env.update(extra)
    env.update({k.removeprefix("BENCH_"): v for k, v in os.environ.items() if k.startswith("BENCH_GRAPHRUN_")})
    return env


def child(args: list[str], **popen: Any) -> subprocess.Popen[str]:
    """A helper process (load generator, raw LangGraph, py-spy) whose output the bench reads as text;
    it dies with the bench, even if the bench is killed."""
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent, **popen)  # noqa: PLW1509


def run_json(args: list[str], timeout_s: float, what: str) -> dict[str, Any]:
    """Run a helper process that prints one JSON object; raise with its stderr if it fails."""
    proc = child(args, stderr=subprocess.PIPE)
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
    # The PostgreSQL database whose backends work for this system: the load generator counts their
    # CPU as the role "postgres" (they come and go with the pools, so they are found while measuring).
    pg_database: str | None = None
    # What the report prints about how the system was run (worker counts, pool sizes, ...).
    settings: dict[str, str] = field(default_factory=dict)
    # The errors the server has logged so far, oldest first (where its log can be read for them):
    # a phase that makes it log errors fails even if every client saw its runs end.
    log_errors: Callable[[], list[str]] | None = None

    def spec(self, phase: str, **kw: Any) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "port": self.port,
            "targets": self.targets,
            "steps": self.steps,
            "phase": phase,
            "pids": self.pids,
            "pg_database": self.pg_database,
            **kw,
        }


STEPS = {"chain": 5, "chatty": 1, "slow": 5}
# How a LangGraph-API server is driven (POST /runs/stream): role -> [graph, stream_mode].
PEER_TARGETS: dict[str, Any] = {
    "chain": ["chain", "updates"],
    "chatty": ["chatty", ["updates", "custom"]],
    "slow": ["slow", "updates"],
}


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


def ensure_peer() -> tuple[dict[str, str] | None, str]:
    """Install langgraph-cli[inmem] into bench/.peer-venv unless a complete install is there.
    Returns (versions, note) or (None, why it is unavailable)."""
    return ensure_venv(PEER_VENV, PEER_REQUIREMENT, PY, PEER_PACKAGES, "bin/langgraph", timeout_s=420)


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
            PEER_TARGETS,
            STEPS,
            {"api": [proc.pid, *descendants(proc.pid)]},
            worker_in_api=True,
        )
    finally:
        proc.stop(15)
