"""The typed results of bench/e2e.py: what one run measured, saved as docs/benchmarks.json and read
back by the report (bench/report/), so that the report can be rendered again without measuring.

One dataclass per section. A phase that failed is not a half-filled record: it is absent, and its
error is kept in ``errors`` under the phase's name, which is what the report prints in its place.
The JSON is ``dataclasses.asdict`` of an ``E2ERun``; ``load`` rebuilds it from the type hints, so a
field added here needs no reader of its own (give it a default, and older files still load).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Raised when the JSON's layout changes in a way a default cannot absorb.
SCHEMA = 2


@dataclass
class Plan:
    """How much to measure; recorded with the results because the report quotes it."""

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


@dataclass
class Latency:
    """Concurrency 1: submit → terminal event, one run at a time."""

    runs: int
    p50_ms: float
    p99_ms: float
    first_event_p50_ms: float
    first_node_p50_ms: float
    failures: int = 0
    failure_reasons: dict[str, int] = field(default_factory=dict)
    events_per_run: int | None = None


@dataclass
class Level:
    """One concurrency level of a closed loop: runs that ended inside the window."""

    concurrency: int
    runs_per_s: float
    counted: int
    p50_ms: float | None
    p99_ms: float | None
    window_s: float | None = None
    failures: int = 0
    failure_reasons: dict[str, int] = field(default_factory=dict)
    abandoned: int = 0
    # Share of one core per role, in the order the report lists them (api, worker, redis, client,
    # other; raw LangGraph: itself, other). None where a role was not sampled.
    cpu: dict[str, float | None] = field(default_factory=dict)


@dataclass
class ChattyRun:
    events: int
    custom: int
    truncated: int
    total_s: float
    events_per_s: float | None = None


@dataclass
class Chatty:
    """One run writing many custom events: the rate at which one client receives them."""

    median_events_per_s: float | None
    runs: list[ChattyRun] = field(default_factory=list)
    custom: int | None = None  # raw LangGraph reports the count instead of runs


@dataclass
class Idle:
    """Many SSE clients waiting on long executions: memory, connect and stop times."""

    clients: int
    connected: int
    connect_s: float
    rss_before_kib: dict[str, int]
    rss_with_clients_kib: dict[str, int]
    cancel_s: float
    cancel_errors: int
    ended_with: dict[str, int]
    not_ended: int


@dataclass
class SystemResult:
    """One system over HTTP (graphrun serve, graphrun deployed, langgraph dev, Aegra)."""

    latency: Latency | None = None
    throughput: dict[str, Level] | None = None  # by concurrency, as text (JSON keys)
    chatty: Chatty | None = None
    idle: Idle | None = None
    errors: dict[str, str] = field(default_factory=dict)  # phase → why it has no result
    error: str | None = None  # the system did not start: nothing was measured
    settings: dict[str, str] = field(default_factory=dict)  # how it was run (Aegra: workers, pools)
    server_errors: dict[str, str] = field(default_factory=dict)  # phase → errors the server logged in it


@dataclass
class RawRun:
    latency: Latency | None = None
    throughput: dict[str, Level] = field(default_factory=dict)
    chatty: Chatty | None = None


@dataclass
class PerCore:
    processes: int
    runs_per_s: float
    each: list[float]


@dataclass
class RawResult:
    """Raw LangGraph in one process: the floor, and other shapes of it."""

    main: RawRun | None = None
    pinned: RawRun | None = None  # one event loop pinned to one core
    per_core: PerCore | None = None  # one event loop per core, summed
    graphrun_modes: RawRun | None = None  # graphrun's stream modes instead of `updates`
    error: str | None = None


@dataclass
class ThreadCpu:
    main: float
    others: list[float]
    count: int


@dataclass
class WallThreads:
    threads: int
    samples: int
    states: list[tuple[str, float]]  # (state, share %), largest first


@dataclass
class ProcessProfile:
    samples: int = 0
    self_time: list[tuple[str, float]] = field(default_factory=list)  # (frame, share %)
    packages: list[tuple[str, float]] = field(default_factory=list)
    graphrun_inclusive: list[tuple[str, float]] = field(default_factory=list)
    threads: ThreadCpu | None = None
    wall: dict[str, WallThreads] | None = None  # main, store, aiosqlite
    wall_error: str | None = None
    error: str | None = None


@dataclass
class Profile:
    """py-spy on graphrun serve during extra concurrency-50 windows."""

    rate_hz: int = 100
    seconds: float = 0.0
    wall_rate_hz: int = 50
    wall_seconds: float = 0.0
    load: Level | None = None
    wall_load: Level | None = None
    processes: dict[str, ProcessProfile] = field(default_factory=dict)  # "API process", "worker process"
    error: str | None = None


@dataclass
class Meta:
    """Where, when and with what the run was made."""

    stamp: str  # when the measuring ended, e.g. "2026-11-25 00:13 UTC"
    machine: str
    versions: str
    nofile: int
    redis_version: str = "?"
    peer_versions: dict[str, str] | None = None
    peer_note: str | None = None
    aegra_versions: dict[str, str] | None = None  # None: not measured, and aegra_note says why
    aegra_note: str | None = None
    load_start: str = "?"
    load_end: str = "?"
    wall_s: float | None = None


@dataclass
class E2ERun:
    meta: Meta
    plan: Plan
    raw: RawResult | None = None
    systems: dict[str, SystemResult] = field(default_factory=dict)  # serve, deployed, peer, aegra
    profile: Profile | None = None
    schema: int = SCHEMA


def as_json(value: Any) -> Any:
    """A result (a dataclass, or a dict of them) as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    return value


def save(run: E2ERun, path: Path) -> None:
    path.write_text(json.dumps(as_json(run), indent=1) + "\n")


def load(path: Path) -> E2ERun:
    data = json.loads(path.read_text())
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: results schema {data.get('schema')!r}, this bench reads {SCHEMA}; run make bench")
    run: E2ERun = from_json(E2ERun, data)
    return run


def from_json(tp: Any, value: Any) -> Any:
    """``value`` (parsed JSON) as type ``tp``, following the dataclasses' type hints."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        # Only "X | None" is used here.
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return from_json(inner, value)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        return tp(**{k: from_json(hints[k], v) for k, v in value.items() if k in names})
    if origin is dict:
        _key, item = typing.get_args(tp)
        return {k: from_json(item, v) for k, v in value.items()}
    if origin is list:
        (item,) = typing.get_args(tp)
        return [from_json(item, v) for v in value]
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_json(args[0], v) for v in value)
        return tuple(from_json(a, v) for a, v in zip(args, value, strict=True))
    return value
