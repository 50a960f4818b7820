"""The agent-load benchmark (issue #18): graphrun against its peers with a streaming tool-calling agent.

    make bench-agent        (or: .venv/bin/python -m bench.agent [--quick] [--only serve] [--out FILE])

One fake OpenAI server (bench/agent/fake_llm.py) for the whole run; then each system in turn
(bench/agent/systems.py) is started, warmed up with two conversations, and driven through each
scenario by a client process of its own (bench/agent/load.py) while its CPU and memory are read from
outside (bench/agent/meter.py). Writes docs/benchmarks-agent.json and the report rendered from it,
docs/benchmarks-agent.md (bench/agent/report.py), and prints the report. Every process it starts is
stopped on the way out, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench._common import load_average, log, machine, stamp, versions
from bench._procs import raise_nofile
from bench._systems import PY, Proc, child, clean_env, run_json, wait_ready
from bench.agent import report
from bench.agent.conversation import Shape
from bench.agent.meter import Meter
from bench.agent.systems import STARTERS, Served
from graphrun.redis.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
LOAD = ROOT / "bench" / "agent" / "load.py"
FAKE = ROOT / "bench" / "agent" / "fake_llm.py"
DOC = ROOT / "docs" / "benchmarks-agent.md"
SYSTEMS = ("serve", "deployed", "peer", "aegra", "runtime-pg")


@dataclass
class Scenario:
    name: str
    kind: str  # load | storm
    conversations: int
    duration_s: float  # load: turns begin until then (from the start)
    drain_s: float  # what is still being answered this long after that is left unanswered
    ramp_s: float = 2.0  # conversations (storm: answers) start spread over this
    drop_after_s: float = 1.5  # storm: the drop comes this long after the last answer was asked for
    storm_tokens: int = 30
    storm_pace_ms: int = 100


@dataclass
class AgentPlan:
    shape: Shape
    scenarios: list[Scenario]
    quick: bool = False

    @classmethod
    def full(cls) -> AgentPlan:
        return cls(
            Shape(),
            [
                Scenario("100 conversations", "load", 100, duration_s=20, drain_s=15),
                Scenario("1,000 conversations", "load", 1000, duration_s=15, drain_s=15, ramp_s=5.0),
                Scenario("reconnect storm, 1,000 clients", "storm", 1000, duration_s=0, drain_s=15, ramp_s=1.0),
            ],
        )

    @classmethod
    def quick_plan(cls) -> AgentPlan:
        return cls(
            Shape(),
            [
                Scenario("20 conversations", "load", 20, duration_s=15, drain_s=15),
                Scenario("100 conversations", "load", 100, duration_s=20, drain_s=15),
                Scenario("reconnect storm, 100 clients", "storm", 100, duration_s=0, drain_s=15, ramp_s=1.0),
            ],
            quick=True,
        )


@dataclass
class AgentRun:
    stamp: str
    machine: str
    nofile: int
    plan: AgentPlan
    load_start: str = ""
    load_end: str = ""
    wall_s: float = 0.0
    command: str = ""
    tools: str = ""  # the client's and the fake LLM's packages
    systems: dict[str, dict[str, Any]] = field(default_factory=dict)


def drive(
    served: Served, scenario: Scenario, shape: Shape, fake: Proc, fake_url: str, tag: str, last: bool = False
) -> dict[str, Any]:
    """One scenario: the client process runs it while the meter samples the system every 0.5 s.
    Unless it is the ``last`` (the system is stopped next), runs it left going are then cancelled."""
    spec = {
        **asdict(scenario),
        "scenario": scenario.kind,
        "url": served.url,
        "fake_url": fake_url,
        "tag": tag,
        "shape": asdict(shape),
    }
    meter = Meter(served.pids, served.pg_database, [fake.pid])
    meter.start()
    client = child([PY, str(LOAD), json.dumps(spec)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + scenario.duration_s + scenario.drain_s + 180
    while client.poll() is None and time.monotonic() < deadline:
        meter.sample()
        time.sleep(0.5)
    if client.poll() is None:
        client.kill()
    out, err = client.communicate()
    usage = meter.stop()
    if client.returncode != 0 or not out.strip():
        tail = " | ".join(err.strip().splitlines()[-4:])
        return {"error": f"client exited {client.returncode}: {tail[:400]}"}
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["usage"] = asdict(usage)
    if (result["turns_failed"] or result["turns_unanswered"]) and not last:
        # Runs the client gave up on may still be going: stopped before the next scenario, unmetered.
        result["tidy"] = tidy(served.url)
    turns = result["turns_ok"]
    result["cpu_ms_per_turn"] = usage.system_cpu_s * 1000 / turns if turns else None
    result["rss_kib_per_conversation"] = (usage.rss_peak_kib - usage.rss_before_kib) / scenario.conversations
    return result


def tidy(url: str) -> dict[str, Any]:
    spec = json.dumps({"scenario": "tidy", "url": url})
    try:
        return run_json([PY, str(LOAD), spec], 120, "tidy")
    except (RuntimeError, subprocess.SubprocessError, ValueError) as exc:
        return {"error": str(exc)[:300]}


def measure(key: str, tmp: Path, plan: AgentPlan, fake: Proc, fake_url: str, llm_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {"scenarios": {}}
    try:
        with STARTERS[key](tmp, llm_url, plan.quick) as served:
            out |= {"title": served.title, "kind": served.kind, "settings": served.settings}
            out["versions"] = served.versions
            log(f"{served.title}: warm-up")
            warm = Scenario("warm-up", "load", 2, duration_s=0, drain_s=60, ramp_s=0.1)
            warm_shape = replace(plan.shape, turns=1, double_text_share=0, rejoin_share=0)
            out["warmup"] = drive(served, warm, warm_shape, fake, fake_url, f"{key}-w")
            for i, scenario in enumerate(plan.scenarios):
                log(f"{served.title}: {scenario.name}")
                last = i == len(plan.scenarios) - 1
                result = drive(served, scenario, plan.shape, fake, fake_url, f"{key}-s{i}", last)
                out["scenarios"][scenario.name] = result
                log(f"  {report.one_line(result)}")
    except (RuntimeError, OSError, AssertionError, subprocess.SubprocessError) as exc:
        why = " ".join(str(exc).split())[:400]
        log(f"{key}: {why}")
        out["error"] = why
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20/100 conversations, a storm of 100: a smoke test")
    parser.add_argument("--only", choices=SYSTEMS, action="append", help="measure only this system (repeatable)")
    parser.add_argument("--out", type=Path, default=DOC, help="report file (default docs/benchmarks-agent.md)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server logs)")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    plan = AgentPlan.quick_plan() if quick else AgentPlan.full()

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    started = time.monotonic()
    run = AgentRun(stamp="", machine=machine(), nofile=raise_nofile(), plan=plan, load_start=load_average())
    run.command = (
        "python -m bench.agent" + (" --quick" if quick else "") + "".join(f" --only {o}" for o in args.only or [])
    )
    tmp = Path(tempfile.mkdtemp(prefix="graphrun-bench-agent-"))
    fake_port = free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    fake = Proc(
        "fake-llm",
        [PY, str(FAKE), "--port", str(fake_port)],
        env=clean_env(),
        cwd=tmp,
        logs=tmp,
        stop_sig=signal.SIGINT,
    )
    try:
        wait_ready(f"{fake_url}/health", fake, 30)
        for key in args.only or SYSTEMS:
            run.systems[key] = measure(key, tmp, plan, fake, fake_url, f"{fake_url}/v1")
    finally:
        fake.stop()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    run.tools = versions("langgraph-sdk", "httpx", "uvloop", "starlette", "uvicorn")
    run.load_end = load_average()
    run.stamp = stamp()
    run.wall_s = time.monotonic() - started
    data = asdict(run)
    text = report.render(data)
    print(text)
    if args.out:
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
        log(f"wrote {args.out} and {args.out.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        log("interrupted; every process the bench started has been stopped")
        raise SystemExit(130) from None
