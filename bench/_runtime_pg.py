"""LangGraph's stock Agent Server (PyPI `langgraph-api`, Elastic-2.0) on the open
`langgraph-runtime-pg` runtime (MIT; PostgreSQL + Redis, LANGGRAPH_RUNTIME_EDITION=pg), as a peer of
graphrun in the agent bench (bench/agent, issue #18).

It runs as the runtime's repository README (github.com/langhost/langhost) runs it in production:
`langhost serve --workers N -c langgraph.json` with DATABASE_URI and REDIS_URI, the schema migrated
once before start-up (`langgraph-runtime-pg-migrate upgrade`, the README's "run migrate once before
rollout; disable auto-migrate": LG_RUNTIME_PG_AUTO_MIGRATE=false). `langhost serve` (PyPI `langhost`,
the runtime's own CLI, which pulls in the runtime and the langgraph-api release it targets) calls
langgraph-api's own `run_server` with runtime edition `pg`: uvicorn with N worker processes, each
serving the API and running up to N_JOBS_PER_WORKER runs from the runtime's queue (PostgreSQL
`SKIP LOCKED` claims, woken through Redis), events through Redis. No license key: the edition's
license module is a no-op, and nothing calls out (no LangSmith key, no version check, no tracing).

Settings: N = 2 uvicorn workers (one per core of the bench machine; the README's example says 4,
"scale workers as needed"), and --n-jobs-per-worker 10: langgraph-api's own default for its
N_JOBS_PER_WORKER, which `langhost serve` (through run_server) lowers to 1 unless given, as the
`langgraph dev` peer does; every other setting at its default, read back from the installed
packages and printed with the results. BENCH_RUNTIME_PG_WORKERS and BENCH_RUNTIME_PG_JOBS change
those two; BENCH_RUNTIME_PG_SET_<NAME>=v passes NAME=v to the server; BENCH_RUNTIME_PG_REQUIREMENT
installs another release; BENCH_RUNTIME_PG_PYTHON names the interpreter of its venv (default: the
bench's own; the runtime needs >= 3.11); BENCH_RUNTIME_PG_POSTGRES_URL is the server to create the
database on.

Each start gets a database of its own on the local PostgreSQL (created empty, migrated, dropped on
the way out) and a private Redis server (EmbeddedRedis), as Aegra and graphrun deployed have. It
lives in bench/.runtime-pg-venv (a .gitignore inside it keeps it out of git).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench._pg import drop_database, fresh_database, postgres_settings
from bench._procs import descendants
from bench._systems import BENCH, PY, Proc, clean_env, wait_ready
from bench._venv import ensure_venv
from graphrun.redis.embedded import EmbeddedRedis, free_port

VENV = BENCH / ".runtime-pg-venv"
# The release measured; langhost pins langgraph-runtime-pg, which pins langgraph-api.
REQUIREMENT = os.environ.get("BENCH_RUNTIME_PG_REQUIREMENT", "langhost==0.11.1.post1")
PACKAGES = (
    "langhost",
    "langgraph-runtime-pg",
    "langgraph-api",
    "langgraph",
    "langgraph-checkpoint-postgres",
    "uvicorn",
    "redis",
)
WORKERS = int(os.environ.get("BENCH_RUNTIME_PG_WORKERS", "2"))
JOBS_PER_WORKER = int(os.environ.get("BENCH_RUNTIME_PG_JOBS", "10"))
ADMIN_URL = os.environ.get("BENCH_RUNTIME_PG_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
OVERRIDE_PREFIX = "BENCH_RUNTIME_PG_SET_"
STARTED = re.compile(rb"Application startup complete")

# Read back inside its venv, from the modules that use them (langgraph_api.config is read at import).
_SETTINGS_CODE = """
import json, os, sys
from langgraph_api import config as c
from langgraph_runtime_pg import redis_stream as r
g = os.environ.get
out = {
    "N_JOBS_PER_WORKER": c.N_JOBS_PER_WORKER,
    "BG_JOB_TIMEOUT_SECS": c.BG_JOB_TIMEOUT_SECS,
    "BG_JOB_MAX_RETRIES": c.BG_JOB_MAX_RETRIES,
    "BG_JOB_ISOLATED_LOOPS": c.BG_JOB_ISOLATED_LOOPS,
    "BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS": c.BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS,
    "run heartbeat s": r.bg_job_heartbeat_secs(),
    "PG_POOL_SIZE + PG_MAX_OVERFLOW": g("PG_POOL_SIZE", "20") + " + " + g("PG_MAX_OVERFLOW", "20"),
    "REDIS_MAX_CONNECTIONS": g("REDIS_MAX_CONNECTIONS", "64"),
    "LANGGRAPH_ALLOW_BLOCKING": g("LANGGRAPH_ALLOW_BLOCKING", "false"),
    "python": sys.version.split()[0],
}
print(json.dumps({k: str(v) for k, v in out.items()}))
"""

# The schema the README's pre-deploy step migrates, plus the checkpoint and store tables that every
# worker process would otherwise create at start-up, side by side (the same runtime functions, once).
_MIGRATE_CODE = """
import asyncio
from langgraph_runtime_pg import checkpoint, store
from langgraph_runtime_pg.migrate import upgrade_head
print("alembic head", upgrade_head())
async def tables():
    await checkpoint.setup_checkpointer()
    await store.setup_store()
    await store.teardown_store()
    await checkpoint.teardown_checkpointer()
asyncio.run(tables())
"""


@dataclass
class RuntimePg:
    port: int
    url: str
    pids: dict[str, list[int]]  # role -> processes
    pg_database: str
    settings: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None


def python() -> str:
    return os.environ.get("BENCH_RUNTIME_PG_PYTHON") or PY


def ensure_runtime_pg() -> tuple[dict[str, str] | None, str]:
    """Install langhost (with langgraph-runtime-pg and langgraph-api) into bench/.runtime-pg-venv
    unless a complete install of the same requirement is there. Returns (versions, note) or (None,
    why it is unavailable)."""
    versions, note = ensure_venv(VENV, REQUIREMENT, python(), PACKAGES, "bin/langhost", timeout_s=900)
    if VENV.is_dir():
        with contextlib.suppress(OSError):
            (VENV / ".gitignore").write_text("*\n")
    return versions, note


def _in_venv(code: str, env: dict[str, str], what: str, timeout_s: float) -> str:
    done = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{what} failed: {tail[:400]}")
    return done.stdout


def effective_settings(env: dict[str, str]) -> dict[str, str]:
    try:
        values: dict[str, str] = json.loads(_in_venv(_SETTINGS_CODE, env, "reading settings", 60).splitlines()[-1])
    except (RuntimeError, ValueError, IndexError, subprocess.SubprocessError) as exc:
        return {"settings": f"could not be read: {exc}"}
    return values


def _wait_workers(proc: Proc, workers: int, timeout_s: float) -> None:
    """Until each uvicorn worker has logged its start-up (the first one answers /ok alone)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"langhost serve exited during start-up:\n{proc.log_tail()}")
        with contextlib.suppress(OSError):
            if len(STARTED.findall(proc.log_path.read_bytes())) >= workers:
                return
        time.sleep(0.5)
    raise RuntimeError(f"not every langhost worker started within {timeout_s:.0f} s:\n{proc.log_tail()}")


@contextlib.contextmanager
def runtime_pg(tmp: Path, project_files: list[Path], extra_env: dict[str, str] | None = None) -> Iterator[RuntimePg]:
    """langgraph-api on langgraph-runtime-pg serving the langgraph.json among ``project_files``
    (copied into a project folder of its own), stopped with its Redis, and its database dropped,
    on the way out."""
    port = free_port()
    project = tmp / f"runtime-pg-{port}"
    project.mkdir(parents=True)
    for path in project_files:
        shutil.copy(path, project / path.name)
    database = f"bench_runtime_pg_{port}"  # one per running server: another bench may run one meanwhile
    redis = EmbeddedRedis(project / "redis")
    proc: Proc | None = None
    try:
        try:
            env, args, settings = _prepare(port, database, redis, extra_env)
        except psycopg.Error as exc:
            raise RuntimeError(f"PostgreSQL at {ADMIN_URL}: {' '.join(str(exc).split())[:300]}") from exc
        proc = Proc("runtime-pg", args, env=env, cwd=project, logs=project, stop_sig=signal.SIGTERM)
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/ok", proc, 120)
        _wait_workers(proc, WORKERS, 90)
        assert redis.process is not None
        pids = {"api": [proc.pid, *descendants(proc.pid)], "redis": [redis.process.pid]}
        yield RuntimePg(port, url, pids, database, settings, proc.log_path)
    finally:
        if proc is not None:
            proc.stop(45)
        redis.stop()
        drop_database(ADMIN_URL, database)


def _prepare(
    port: int, database: str, redis: EmbeddedRedis, extra_env: dict[str, str] | None
) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """The server's environment (its database created and migrated, its Redis started), command
    line and settings."""
    env = clean_env(
        DATABASE_URI=fresh_database(ADMIN_URL, database),
        REDIS_URI=redis.start(),
        LG_RUNTIME_PG_AUTO_MIGRATE="false",  # migrated below, before start-up
        LANGGRAPH_RUNTIME_EDITION="pg",  # langhost sets it too; the read-back needs it
        LANGGRAPH_NO_VERSION_CHECK="true",  # nothing leaves 127.0.0.1
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGSMITH_TRACING="false",
        **(extra_env or {}),
    )
    env.update({k.removeprefix(OVERRIDE_PREFIX): v for k, v in os.environ.items() if k.startswith(OVERRIDE_PREFIX)})
    _in_venv(_MIGRATE_CODE, env, "migrating the database", 180)
    args = [str(VENV / "bin" / "langhost"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--config", "langgraph.json", "--workers", str(WORKERS), "--n-jobs-per-worker", str(JOBS_PER_WORKER)]
    settings = {
        "processes": f"{WORKERS} uvicorn workers (each the API and up to {JOBS_PER_WORKER} runs) + Redis",
        "start": " ".join(["langhost serve", *args[2:]]) + " (migrated before, auto-migrate off)",
        **effective_settings({**env, "N_JOBS_PER_WORKER": str(JOBS_PER_WORKER)}),
        "checkpointer and store pools": "psycopg 1–10 each per process (fixed in the runtime)",
        "PostgreSQL": postgres_settings(ADMIN_URL),
    }
    return env, args, settings
