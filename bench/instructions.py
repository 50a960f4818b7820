"""Instructions per completed run of graphrun's API and worker processes, counted by callgrind.

    .venv/bin/python bench/instructions.py [--src DIR] [--runs N] [--concurrency C] [--path native|thread|stateless]

CPU time on a shared machine moves with whatever else runs there; the number of instructions a run
costs does not (much). This starts graphrun as `graphrun serve` lays it out (one Uvicorn API process,
one worker process, an embedded Redis), the two Python processes under valgrind's callgrind with
instrumentation off (so that they start in seconds, not minutes), warms them up with 10 runs, then
counts the instructions of both processes over ``--runs`` runs of the `chain` graph (5 steps, delay 0)
made by ``--concurrency`` clients. Redis is not counted.

A process also works while idle (timers: the sweeper, lease renewals, the loop-lag monitor), as
often as time passes, and under valgrind on a busy machine a run takes more time: so the idle
processes are counted first for ``--idle`` seconds, and what they do idle in the time the runs took
is taken off (``net``; ``raw`` is without that). Batches still form as timing allows: compare figures
of the same command, and take differences under about 3% for noise.

``--src DIR`` serves from another source tree (PYTHONPATH=DIR), e.g. an earlier commit's
``git archive`` for a before/after comparison. Needs valgrind.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import log, machine, stamp
from bench._procs import http_json, wait_ok
from graphrun.redis.embedded import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

# The API as `graphrun serve` runs it: one Uvicorn process on the app, INFO logging, access log off.
API = """
import logging, os, sys
import uvicorn
logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
for name in ("alembic", "uvicorn.error"):
    logging.getLogger(name).setLevel(logging.WARNING)
from graphrun.api import create_app
from graphrun.heap import freeze_startup_heap
from graphrun.settings import load_settings
app = create_app(load_settings())
freeze_startup_heap()
config = uvicorn.Config(app, host="127.0.0.1", port=int(os.environ["GRAPHRUN_PORT"]), log_level=None,
                        access_log=False, log_config=None, timeout_graceful_shutdown=3)
uvicorn.Server(config).run()
"""
MIGRATE = """
import asyncio
from graphrun.settings import load_settings
from graphrun.store import open_store
async def main():
    await (await open_store(load_settings().sqlalchemy_url)).close()
asyncio.run(main())
"""


def _client(spec: dict[str, object], runs: int) -> None:
    out = subprocess.run(
        [PY, str(ROOT / "bench" / "cpu.py"), "--client", json.dumps({**spec, "runs": runs})],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"client failed: {out.stderr.strip()[-1000:]}")


def _dump(procs: dict[str, subprocess.Popen[bytes]], tmp: Path) -> dict[str, int]:
    """Each process's instructions since the last dump (a dump starts the count again)."""
    for proc in procs.values():
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
    return {role: _total(f"{tmp}/cg.{role}") for role in procs}


def _total(prefix: str) -> int:
    """The instruction total of the newest callgrind dump of ``prefix``."""
    newest = max(glob.glob(f"{prefix}*"), key=os.path.getmtime)
    with open(newest) as fh:
        for line in fh:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {newest}")


def measure(src: Path | None, runs: int, concurrency: int, path: str, idle_s: float) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="graphrun-bench-instr-"))
    redis = EmbeddedRedis(tmp / "redis")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHRUN_")}
    port = free_port()
    env.update(
        GRAPHRUN_REDIS_URL=redis.start(),
        GRAPHRUN_DATABASE_URL=f"sqlite:///{tmp}/graphrun.db",
        GRAPHRUN_DATA_DIR=str(tmp / "data"),
        GRAPHRUN_PORT=str(port),
        GRAPHRUN_HOST="127.0.0.1",
        GRAPHRUN_WORKER_METRICS_PORT="0",
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),  # as serve: metrics shared through files
        PYTHONHASHSEED="0",
    )
    if src is not None:
        env["PYTHONPATH"] = str(src)
    (tmp / "metrics").mkdir()
    subprocess.run([PY, "-c", MIGRATE], env=env, cwd=tmp, check=True)
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--dump-instr=no"]
    commands = {"api": [PY, "-c", API], "worker": [PY, "-m", "graphrun", "worker", "--processes", "1"]}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for role, command in commands.items():
            with open(tmp / f"{role}.log", "wb") as out:
                args = [*valgrind, f"--callgrind-out-file={tmp}/cg.{role}", *command]
                procs[role] = subprocess.Popen(args, env=env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        wait_ok(f"{base}/readyz", procs["api"], "api", lambda: (tmp / "api.log").read_text()[-2000:], 600)
        body = {"name": "instructions", "graph": "chain", "config": {"steps": 5, "delay_s": 0}}
        status, workflow = http_json("POST", f"{base}/workflows", body, timeout=600)
        if status != 201:
            raise RuntimeError(f"creating the workflow: HTTP {status} {workflow}")
        spec: dict[str, object] = {
            "kind": "graphrun",
            "port": port,
            "targets": {"chain": workflow["id"]},
            "steps": {"chain": 5},
            "pids": {},
            "path": path,
            "concurrency": concurrency,
        }
        if path == "stateless":
            spec.update(kind="peer", targets={"chain": ["chain", "updates"]})
        _client(spec, 10)  # warm-up: imports, caches, the first runs' one-off work
        time.sleep(1.0)
        for proc in procs.values():
            subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
        t0 = time.monotonic()
        time.sleep(idle_s)
        idle = _dump(procs, tmp)
        idle_wall = time.monotonic() - t0
        t0 = time.monotonic()
        _client(spec, runs)
        busy = _dump(procs, tmp)
        wall = time.monotonic() - t0
        out = {}
        for role in procs:
            out[f"{role} raw"] = busy[role] / runs / 1e6
            out[role] = (busy[role] - idle[role] * wall / idle_wall) / runs / 1e6
        return out
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, action="append", help="source tree to serve from (repeatable)")
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--path", choices=["native", "thread", "stateless"], default="native")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle processes counted first")
    args = parser.parse_args()
    log(machine())
    results = []
    for src in args.src or [None]:
        got = measure(src, args.runs, args.concurrency, args.path, args.idle)
        results.append((src, got))
        log(f"{src or 'src'}: " + ", ".join(f"{role} {m:.2f}" for role, m in got.items()) + " M instructions/run")
    print(f"\n{stamp()} · {machine()} · {args.path}, {args.runs} runs at concurrency {args.concurrency}")
    for src, got in results:
        net = sum(m for role, m in got.items() if not role.endswith(" raw"))
        parts = ", ".join(f"{role} {m:.2f}" for role, m in got.items())
        print(f"{src or 'src'}: {net:.2f} M instructions/run, net ({parts})")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
