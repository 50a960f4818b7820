"""The servers the agent bench measures, each serving bench/agent/graph.py as graph `agent`, each
started with its documented production settings and stopped (its database dropped) on the way out:

- `graphrun serve`, GRAPHRUN_CONFIG naming bench/agent/langgraph.json, every setting at its default;
- `graphrun api` (2 Gunicorn workers) + `graphrun worker --processes 2` on a fresh PostgreSQL database
  and a private Redis (EmbeddedRedis), as bench/e2e.py's deployed graphrun but on PostgreSQL;
- `langgraph dev` from bench/.peer-venv (bench/_systems.py's ensure_peer) with
  `--n-jobs-per-worker 10`: the default its `--help` and LangGraph's server document (the dev CLI
  silently runs 1 job at a time without the flag, which no production server does);
- Aegra through bench/_aegra.py, when that module is there and works;
- LangGraph's stock server (langgraph-api) on the open langgraph-runtime-pg runtime, through
  bench/_runtime_pg.py: `langhost serve --workers 2 --n-jobs-per-worker 10` on a fresh PostgreSQL
  database (migrated before start-up) and a private Redis.

The peers' environments get langchain-openai added (the version this project locks), which
graph.py needs; the marker files of their installs are left as they are.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._pg import drop_database, fresh_database
from bench._procs import descendants, exe_name
from bench._systems import PEER_VENV, PY, Proc, clean_env, ensure_peer, wait_ready
from bench.results import Plan
from graphrun.redis.embedded import EmbeddedRedis, free_port

AGENT = Path(__file__).resolve().parent
CONFIG = AGENT / "langgraph.json"
PROJECT_FILES = [AGENT / "graph.py", CONFIG]
PG_ADMIN = os.environ.get("BENCH_AGENT_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
GRAPHRUN_PACKAGES = ("graphrun", "langgraph", "langgraph-prebuilt", "langchain-core", "langchain-openai", "openai")


@dataclass
class Served:
    key: str
    title: str
    kind: str  # graphrun | peer
    url: str
    pids: dict[str, list[int]]  # role -> processes whose CPU and memory are the system's
    pg_database: str | None = None  # its PostgreSQL backends are the system's too
    settings: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


def local_versions(*packages: str) -> dict[str, str]:
    out = {}
    for p in packages:
        with contextlib.suppress(md.PackageNotFoundError):
            out[p] = md.version(p)
    return out


def add_openai(venv: Path) -> str | None:
    """langchain-openai (the version this project locks) in a peer's venv; None, or why not."""
    python = str(venv / "bin" / "python")
    check = subprocess.run([python, "-c", "import langchain_openai"], capture_output=True, timeout=60, check=False)
    if check.returncode == 0:
        return None
    want = f"langchain-openai=={md.version('langchain-openai')}"
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", want]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        return f"pip install {want} into {venv.name} failed: {' '.join(done.stderr.split()[-30:])}"
    return None


@contextlib.contextmanager
def database(name: str) -> Iterator[str]:
    """A fresh database on the local PostgreSQL, dropped afterwards; yields its URL."""
    url = fresh_database(PG_ADMIN, name)
    try:
        yield url
    finally:
        drop_database(PG_ADMIN, name)


@contextlib.contextmanager
def graphrun_serve(tmp: Path, llm_url: str) -> Iterator[Served]:
    port = free_port()
    data = tmp / "serve"
    data.mkdir()
    env = clean_env(
        GRAPHRUN_PORT=str(port),
        GRAPHRUN_HOST="127.0.0.1",
        GRAPHRUN_DATA_DIR=str(data / "data"),
        GRAPHRUN_CONFIG=str(CONFIG),
        AGENT_BENCH_LLM_URL=llm_url,
    )
    proc = Proc("serve", [PY, "-m", "graphrun", "serve"], env=env, cwd=data, logs=tmp, stop_sig=signal.SIGINT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/readyz", proc, 90)
        kids = descendants(proc.pid)
        redis = [p for p in kids if exe_name(p).startswith("redis")]
        pids = {"api": [proc.pid], "worker": [p for p in kids if p not in redis], "redis": redis}
        settings = {"processes": "serve: API + 1 worker process + embedded Redis", "store": "SQLite (default)"}
        yield Served(
            "serve", "graphrun serve", "graphrun", url, pids, None, settings, local_versions(*GRAPHRUN_PACKAGES)
        )
    finally:
        proc.stop()


@contextlib.contextmanager
def graphrun_postgres(tmp: Path, llm_url: str) -> Iterator[Served]:
    data = tmp / "deployed"
    data.mkdir()
    redis = EmbeddedRedis(data / "redis")
    # Redis listens first: a port picked before it started could be the one Redis then picks.
    redis_url = redis.start()
    try:
        with _graphrun_postgres(tmp, data, llm_url, redis, redis_url) as served:
            yield served
    finally:
        redis.stop()


@contextlib.contextmanager
def _graphrun_postgres(tmp: Path, data: Path, llm_url: str, redis: EmbeddedRedis, redis_url: str) -> Iterator[Served]:
    port = free_port()
    name = f"bench_agent_graphrun_{port}"  # one per run: another bench may run meanwhile
    procs: list[Proc] = []
    with database(name) as db_url:
        try:
            env = clean_env(
                GRAPHRUN_PORT=str(port),
                GRAPHRUN_HOST="127.0.0.1",
                GRAPHRUN_REDIS_URL=redis_url,
                GRAPHRUN_DATABASE_URL=db_url,
                GRAPHRUN_API_WORKERS="2",
                GRAPHRUN_DATA_DIR=str(data / "unused"),
                GRAPHRUN_CONFIG=str(CONFIG),
                AGENT_BENCH_LLM_URL=llm_url,
            )
            api = Proc("api", [PY, "-m", "graphrun", "api"], env=env, cwd=data, logs=tmp, stop_sig=signal.SIGTERM)
            procs.append(api)
            worker_args = [PY, "-m", "graphrun", "worker", "--processes", "2"]
            workers = Proc("worker", worker_args, env=env, cwd=data, logs=tmp, stop_sig=signal.SIGTERM)
            procs.append(workers)
            url = f"http://127.0.0.1:{port}"
            wait_ready(f"{url}/readyz", api, 90)
            assert redis.process is not None
            pids = {
                "api": [api.pid, *descendants(api.pid)],
                "worker": [workers.pid, *descendants(workers.pid)],
                "redis": [redis.process.pid],
            }
            settings = {
                "processes": "graphrun api --workers 2 (Gunicorn) + graphrun worker --processes 2 + Redis",
                "store": f"PostgreSQL 127.0.0.1, fresh database {name}; checkpoints GRAPHRUN_CHECKPOINTS default",
            }
            title = "graphrun api + 2 workers (PostgreSQL)"
            yield Served("deployed", title, "graphrun", url, pids, name, settings, local_versions(*GRAPHRUN_PACKAGES))
        finally:
            for proc in reversed(procs):
                proc.stop()


@contextlib.contextmanager
def langgraph_dev(tmp: Path, llm_url: str) -> Iterator[Served]:
    versions, note = ensure_peer()
    if versions is None:
        raise RuntimeError(f"langgraph dev not available: {note}")
    why = add_openai(PEER_VENV)
    if why:
        raise RuntimeError(f"langgraph dev not available: {why}")
    port = free_port()
    project = tmp / "peer"
    project.mkdir()
    for path in PROJECT_FILES:
        shutil.copy(path, project / path.name)  # it writes .langgraph_api/ beside its config
    env = clean_env(
        AGENT_BENCH_LLM_URL=llm_url,
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGGRAPH_NO_VERSION_CHECK="true",
        LANGSMITH_TRACING="false",
    )
    jobs = "10"
    args = [str(PEER_VENV / "bin" / "langgraph"), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1"]
    args += ["--port", str(port), "--config", "langgraph.json", "--n-jobs-per-worker", jobs]
    proc = Proc("langgraph-dev", args, env=env, cwd=project, logs=tmp, stop_sig=signal.SIGINT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/ok", proc, 120)
        settings = {"processes": "1 (in-memory runtime)", "n-jobs-per-worker": jobs, "note": note}
        versions |= local_versions_in(PEER_VENV, "langchain-openai", "openai")
        pids = {"api": [proc.pid, *descendants(proc.pid)]}
        yield Served("peer", "langgraph dev", "peer", url, pids, None, settings, versions)
    finally:
        proc.stop(15)


def local_versions_in(venv: Path, *packages: str) -> dict[str, str]:
    code = "import importlib.metadata as m, sys; print(' '.join(m.version(p) for p in sys.argv[1:]))"
    args = [str(venv / "bin" / "python"), "-c", code, *packages]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    return dict(zip(packages, out.stdout.split(), strict=False))


@contextlib.contextmanager
def aegra(tmp: Path, llm_url: str, quick: bool) -> Iterator[Served]:
    """bench/_aegra.py's Aegra (another bench's module, imported only here) serving graph.py."""
    try:
        from bench import _aegra
    except Exception as exc:
        raise RuntimeError(f"Aegra not available: bench/_aegra.py could not be imported ({exc})") from exc
    versions, note = _aegra.ensure_aegra()
    if versions is None:
        raise RuntimeError(f"Aegra not available: {note}")
    why = add_openai(_aegra.AEGRA_VENV)
    if why:
        raise RuntimeError(f"Aegra not available: {why}")
    os.environ["AGENT_BENCH_LLM_URL"] = llm_url  # _aegra builds its environment from ours
    plan = Plan.quick() if quick else Plan()
    start: Callable[..., AbstractContextManager[Any]] = _aegra.aegra
    with start(tmp, plan, graphs={"agent": "./graph.py:graph"}, project_files=[AGENT / "graph.py"]) as system:
        versions |= local_versions_in(_aegra.AEGRA_VENV, "langchain-openai", "openai")
        settings = {k: str(v) for k, v in (getattr(system, "settings", None) or {}).items()}
        settings["note"] = note
        url = f"http://127.0.0.1:{system.port}"
        pg = getattr(system, "pg_database", None)
        yield Served("aegra", "Aegra", "peer", url, dict(system.pids), pg, settings, versions)


@contextlib.contextmanager
def runtime_pg(tmp: Path, llm_url: str) -> Iterator[Served]:
    """bench/_runtime_pg.py's langgraph-api on langgraph-runtime-pg serving graph.py."""
    from bench import _runtime_pg

    title = "langgraph-api + runtime-pg"
    versions, note = _runtime_pg.ensure_runtime_pg()
    if versions is None:
        raise RuntimeError(f"{title} not available: {note}")
    why = add_openai(_runtime_pg.VENV)
    if why:
        raise RuntimeError(f"{title} not available: {why}")
    with _runtime_pg.runtime_pg(tmp, PROJECT_FILES, {"AGENT_BENCH_LLM_URL": llm_url}) as system:
        versions |= local_versions_in(_runtime_pg.VENV, "langchain-openai", "openai")
        settings = {**system.settings, "note": note}
        yield Served("runtime-pg", title, "peer", system.url, system.pids, system.pg_database, settings, versions)


STARTERS: dict[str, Callable[[Path, str, bool], AbstractContextManager[Served]]] = {
    "serve": lambda tmp, url, _quick: graphrun_serve(tmp, url),
    "deployed": lambda tmp, url, _quick: graphrun_postgres(tmp, url),
    "peer": lambda tmp, url, _quick: langgraph_dev(tmp, url),
    "aegra": aegra,
    "runtime-pg": lambda tmp, url, _quick: runtime_pg(tmp, url),
}
