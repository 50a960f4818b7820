"""Aegra (PyPI `aegra-api`), an open-source server of LangGraph's API on PostgreSQL and Redis, as a
peer of graphrun in bench/e2e.py; another bench (an agent-load one) can start it with graphs of its
own through the same ``aegra()`` (``graphs``, ``project_files``).

It runs as its documentation says to run it in production (Aegra's docs/guides/deployment.mdx and
worker-architecture.mdx): `aegra serve`, which is `python -m uvicorn aegra_api.main:app` in one
process, with REDIS_BROKER_ENABLED=true, so runs go through its Redis job queue to the worker loops
inside that process (WORKER_COUNT × N_JOBS_PER_WORKER at once) and events through Redis pub/sub;
JSON logs (ENV_MODE=PRODUCTION); every other setting at its default, printed with the results.
The uvicorn command is started directly rather than through `aegra serve` (package aegra-cli), which
would only add an idle parent process that prints a banner. Each start gets a database of its own
on the local PostgreSQL (created empty, migrated by Aegra on start-up, dropped on the way out) and
a private Redis server (EmbeddedRedis, as graphrun deployed has).

Aegra 0.11 needs Python >= 3.12, so it lives in bench/.aegra-venv, made with the first such
interpreter found (BENCH_AEGRA_PYTHON names one). BENCH_AEGRA_REQUIREMENT pins another release;
BENCH_AEGRA_SET_<NAME>=v passes NAME=v to Aegra (e.g. BENCH_AEGRA_SET_WORKER_COUNT=6), to measure
another setting; BENCH_AEGRA_POSTGRES_URL is the server to create the database on.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from bench._pg import drop_database, fresh_database, postgres_settings
from bench._procs import descendants
from bench._systems import BENCH, PEER_GRAPH, PEER_TARGETS, STEPS, Proc, System, clean_env, wait_ready
from bench._venv import ensure_venv, find_python
from bench.results import Plan
from graphrun.redis.embedded import EmbeddedRedis, free_port

AEGRA_VENV = BENCH / ".aegra-venv"
# The release measured last; BENCH_AEGRA_REQUIREMENT=aegra-api (unpinned) tries the newest.
AEGRA_REQUIREMENT = os.environ.get("BENCH_AEGRA_REQUIREMENT", "aegra-api==0.11.0")
AEGRA_PACKAGES = ("aegra-api", "langgraph", "langgraph-checkpoint-postgres", "fastapi", "uvicorn", "redis")
PYTHON_AT_LEAST = (3, 12)
ADMIN_URL = os.environ.get("BENCH_AEGRA_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
OVERRIDE_PREFIX = "BENCH_AEGRA_SET_"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The settings the report prints, read back from Aegra's own settings object (so a default that
# changes in a new release shows as it is).
REPORTED = {
    "worker": ("WORKER_COUNT", "N_JOBS_PER_WORKER", "BG_JOB_TIMEOUT_SECS", "HEARTBEAT_INTERVAL_SECONDS"),
    "pool": ("SQLALCHEMY_POOL_SIZE", "SQLALCHEMY_MAX_OVERFLOW", "LANGGRAPH_MIN_POOL_SIZE", "LANGGRAPH_MAX_POOL_SIZE"),
    "redis": ("REDIS_BROKER_ENABLED", "REDIS_MAX_CONNECTIONS"),
    "app": ("ENV_MODE", "LOG_LEVEL", "AUTH_TYPE"),
    "checkpointer": ("AEGRA_CHECKPOINT_DURABILITY",),
}


def ensure_aegra() -> tuple[dict[str, str] | None, str]:
    """Install aegra-api into bench/.aegra-venv unless a complete install of the same requirement is
    there. Returns (versions, note) or (None, why it is unavailable)."""
    python = find_python(PYTHON_AT_LEAST, "BENCH_AEGRA_PYTHON")
    if python is None:
        return None, "no Python >= 3.12 found for aegra-api (set BENCH_AEGRA_PYTHON to one)"
    return ensure_venv(AEGRA_VENV, AEGRA_REQUIREMENT, python, AEGRA_PACKAGES, "bin/uvicorn")


def effective_settings(env: dict[str, str]) -> dict[str, str]:
    """Aegra's settings as its process will see them, asked of Aegra's own settings object."""
    groups = {group: list(names) for group, names in REPORTED.items()}
    code = (
        "import json; from aegra_api.settings import settings as s; "
        f"print(json.dumps({{g: {{n: str(getattr(getattr(s, g), n)) for n in ns}} for g, ns in {groups!r}.items()}}))"
    )
    done = subprocess.run(
        [str(AEGRA_VENV / "bin" / "python"), "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        return {"settings": f"could not be read: {done.stderr.strip().splitlines()[-1:]}"}
    values: dict[str, dict[str, str]] = json.loads(done.stdout)
    flat = {name: value for group in values.values() for name, value in group.items()}
    if flat.get("AEGRA_CHECKPOINT_DURABILITY") == "None":
        flat["AEGRA_CHECKPOINT_DURABILITY"] = "LangGraph's default (async)"
    return flat


def logged_errors(log: Path) -> list[str]:
    """The errors in Aegra's JSON log so far, run ids masked so that the same error counts as one."""
    found = []
    with contextlib.suppress(OSError), log.open(errors="replace") as lines:
        for line in lines:
            with contextlib.suppress(ValueError, AttributeError):
                entry = json.loads(line)
                if entry.get("level") in ("error", "critical"):
                    found.append(UUID.sub("…", str(entry.get("event", ""))[:200]))
    return found


def _project(project: Path, graphs: dict[str, str] | None, project_files: list[Path] | None) -> dict[str, str]:
    """Lay out the project Aegra serves: the graph files and an aegra.json naming the graphs."""
    project.mkdir(parents=True, exist_ok=True)
    for path in project_files if project_files is not None else [PEER_GRAPH]:
        shutil.copy(path, project / path.name)
    if graphs is None:
        graphs = {name: f"./{PEER_GRAPH.name}:{name}" for name in PEER_TARGETS}
    (project / "aegra.json").write_text(json.dumps({"dependencies": ["."], "graphs": graphs}, indent=1))
    return graphs


@contextlib.contextmanager
def aegra(
    tmp: Path, plan: Plan, graphs: dict[str, str] | None = None, project_files: list[Path] | None = None
) -> Iterator[System]:
    """Aegra serving ``graphs`` (name -> "./file.py:attribute", relative to the project folder, into
    which ``project_files`` are copied; by default bench/_peer_graph.py's chain, chatty and slow),
    stopped with its Redis, and its database dropped, on the way out."""
    port = free_port()
    project = tmp / f"aegra-{port}"
    served = _project(project, graphs, project_files)
    database = f"bench_aegra_{port}"  # one per running Aegra: another bench may run one meanwhile
    redis = EmbeddedRedis(project / "redis")
    proc: Proc | None = None
    try:
        env = clean_env(
            AEGRA_CONFIG=str(project / "aegra.json"),
            DATABASE_URL=fresh_database(ADMIN_URL, database),
            REDIS_BROKER_ENABLED="true",
            REDIS_URL=redis.start(),
            AUTH_TYPE="noop",
            ENV_MODE="PRODUCTION",
            HOST="127.0.0.1",
            PORT=str(port),
            OTEL_TARGETS="",  # no tracing: nothing leaves 127.0.0.1
            LANGSMITH_TRACING="false",
            BENCH_CHATTY_EMIT=str(plan.chatty_emit),
        )
        env.update({k.removeprefix(OVERRIDE_PREFIX): v for k, v in os.environ.items() if k.startswith(OVERRIDE_PREFIX)})
        settings = {
            "processes": "1 (uvicorn, as `aegra serve`)",
            **effective_settings(env),
            "PostgreSQL": postgres_settings(ADMIN_URL),
        }
        python = str(AEGRA_VENV / "bin" / "python")
        args = [python, "-m", "uvicorn", "aegra_api.main:app", "--host", "127.0.0.1", "--port", str(port)]
        proc = Proc("aegra", args, env=env, cwd=project, logs=project, stop_sig=signal.SIGTERM)
        # Start-up applies its migrations to the empty database first.
        wait_ready(f"http://127.0.0.1:{port}/health", proc, 120)
        log_path = proc.log_path
        assert redis.process is not None
        default = graphs is None
        yield System(
            "aegra",
            "Aegra",
            port,
            "peer",
            PEER_TARGETS if default else {name: [name, "updates"] for name in served},
            STEPS if default else {},
            {"api": [proc.pid, *descendants(proc.pid)], "redis": [redis.process.pid]},
            worker_in_api=True,
            pg_database=database,
            settings=settings,
            log_errors=lambda: logged_errors(log_path),
        )
    finally:
        if proc is not None:
            # Aegra drains its workers for up to WORKER_DRAIN_TIMEOUT (30 s) on SIGTERM.
            proc.stop(45)
        redis.stop()
        drop_database(ADMIN_URL, database)
