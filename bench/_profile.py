"""Where graphrun serve's processes spend their time at concurrency 50: py-spy samples (CPU with
`--gil`, then wall clock with `--idle --native --threads`) and each thread's CPU from psutil, during
extra load windows; summarised here into the typed Profile the report renders."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench._common import log
from bench._procs import thread_cpu_seconds
from bench._systems import System, child
from bench.results import Level, Plan, ProcessProfile, Profile, ThreadCpu, WallThreads, from_json

PY = sys.executable
LOADGEN = Path(__file__).resolve().parent / "_loadgen.py"


def stacks(path: Path) -> Iterator[tuple[list[str], int]]:
    """The (frames, outermost first; sample count) of a py-spy raw (collapsed) file."""
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            yield stack.split(";"), int(count_text)


def top_frames(path: Path, n: int = 10) -> ProcessProfile:
    """Self time (leaf frame) and graphrun's inclusive time from a py-spy raw (collapsed) file."""
    leaf: Counter[str] = Counter()
    package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for frames, count in stacks(path):
        total += count
        leaf[frames[-1]] += count
        name = frames[-1].rpartition(" (")[2].rstrip(")")
        package[name.split("/", 1)[0] if "/" in name else name] += count
        for frame in set(frames):
            if "(graphrun/" in frame and "(graphrun/cli/" not in frame and "(graphrun/__main__" not in frame:
                inclusive[frame] += count
    if not total:
        return ProcessProfile()
    return ProcessProfile(
        samples=total,
        self_time=[(f, c / total * 100) for f, c in leaf.most_common(n)],
        packages=[(p, c / total * 100) for p, c in package.most_common(8)],
        graphrun_inclusive=[(f, c / total * 100) for f, c in inclusive.most_common(8)],
    )


def wall_states(path: Path) -> dict[str, WallThreads]:
    """Where the threads of a process spend wall-clock time, from a py-spy raw file recorded with
    --idle --native --threads: the event loop's thread, the store's SQLite threads, and aiosqlite's
    one thread per connection (the SQLite checkpointer)."""
    states: dict[str, Counter[str]] = {"main": Counter(), "store": Counter(), "aiosqlite": Counter()}
    threads: dict[str, set[str]] = {"main": set(), "store": set(), "aiosqlite": set()}
    for frames, count in stacks(path):
        stack = ";".join(frames)
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
    out: dict[str, WallThreads] = {}
    for kind, counter in states.items():
        total = sum(counter.values())
        shares = [(state, c / total * 100) for state, c in counter.most_common()] if total else []
        out[kind] = WallThreads(threads=len(threads[kind]), samples=total, states=shares)
    return out


def _sampled_window(
    system: System, targets: dict[str, int], pyspy_args: list[str], seconds: float, tmp: Path, tag: str
) -> tuple[dict[str, Path | str], Level | None, dict[str, ThreadCpu]]:
    """Run the concurrency-50 load; after its warm-up, record each target with py-spy for ``seconds``.
    Returns (raw file or error per target, the load's result if it has one, CPU per thread per target)."""
    pyspy = Path(PY).parent / "py-spy"
    spec = system.spec("throughput", levels=[50], warmup_s=2.0, window_s=seconds + 1.0, drain_s=30.0)
    load = child([PY, str(LOADGEN), json.dumps(spec)], stderr=subprocess.PIPE)
    spies: dict[str, tuple[subprocess.Popen[str], Path]] = {}
    files: dict[str, Path | str] = {}
    usage: dict[str, ThreadCpu] = {}
    try:
        time.sleep(2.0)  # past the warm-up
        t0 = time.monotonic()
        before = {name: thread_cpu_seconds(pid) for name, pid in targets.items()}
        for name, pid in targets.items():
            dest = tmp / f"pyspy-{tag}-{pid}.txt"
            args = [str(pyspy), "record", "-p", str(pid), "-d", str(int(seconds)), *pyspy_args]
            args += ["-f", "raw", "--nolineno", "-o", str(dest)]
            spy = child(args, stderr=subprocess.STDOUT)
            spies[name] = (spy, dest)
        for name, (spy, dest) in spies.items():
            text = spy.communicate(timeout=seconds + 60)[0]
            ok = spy.returncode == 0 and dest.exists()
            files[name] = dest if ok else f"py-spy failed: {text.strip()[-300:]}"
        wall = time.monotonic() - t0
        for name, pid in targets.items():
            now = thread_cpu_seconds(pid)
            use = [(tid, (t - before[name].get(tid, 0.0)) / wall) for tid, t in now.items()]
            others = sorted((c for tid, c in use if tid != pid), reverse=True)
            main = next((c for tid, c in use if tid == pid), 0.0)
            usage[name] = ThreadCpu(main=main, others=others, count=len(use))
        load_out, load_err = load.communicate(timeout=seconds + 60)
        # Without the load's figures the profile still stands; the report shows "—" for its rate.
        result: Level | None = None
        try:
            result = from_json(Level, json.loads(load_out.strip().splitlines()[-1])["50"])
        except (ValueError, IndexError, KeyError, TypeError):
            log(f"  load during the profile: {load_err.strip()[-300:]}")
    finally:
        for proc in [load, *(s for s, _ in spies.values())]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return files, result, usage


def profile_c50(system: System, plan: Plan, tmp: Path) -> Profile:
    """Two sampled concurrency-50 windows on graphrun serve: CPU (samples holding the GIL) and wall
    clock (every thread, idle included, with native frames, so that waits inside C show)."""
    if not (Path(PY).parent / "py-spy").exists():
        return Profile(error="py-spy is not installed (uv sync --group dev)")
    targets = {"API process": system.pids["api"][0]}
    if system.pids.get("worker"):
        targets["worker process"] = system.pids["worker"][0]
    out = Profile(rate_hz=100, seconds=plan.profile_s, wall_rate_hz=50, wall_seconds=4.0)
    files, out.load, usage = _sampled_window(system, targets, ["-r", "100", "--gil"], plan.profile_s, tmp, "gil")
    for name, f in files.items():
        if isinstance(f, str):
            out.processes[name] = ProcessProfile(error=f)
        else:
            out.processes[name] = top_frames(f)
            out.processes[name].threads = usage.get(name)
    args = ["-r", "50", "--idle", "--native", "--threads"]
    files, out.wall_load, _usage = _sampled_window(system, targets, args, out.wall_seconds, tmp, "wall")
    for name, f in files.items():
        p = out.processes.get(name)
        if p is not None and not p.error:
            if isinstance(f, str):
                p.wall_error = f
            else:
                p.wall = wall_states(f)
    return out
