"""What every section of the report reads: the run, each system's headline figures, and which
systems have no figures (and why), computed once."""

from __future__ import annotations

from dataclasses import dataclass

from bench.results import E2ERun, Level, SystemResult

COLUMNS = [
    ("raw", "raw LangGraph (in process)"),
    ("serve", "graphrun serve"),
    ("deployed", "graphrun api + 2 workers"),
    ("peer", "langgraph dev"),
]
NAMES = dict(COLUMNS)


@dataclass
class Figures:
    """One system's headline figures (None where not measured)."""

    p50: float | None = None
    p99: float | None = None
    first: float | None = None
    first_node: float | None = None
    chatty: float | None = None
    c10: float | None = None
    c50: float | None = None
    c200: float | None = None

    def get(self, metric: str) -> float | None:
        value: float | None = getattr(self, metric)
        return value


def _runs_per_s(throughput: dict[str, Level] | None, level: str) -> float | None:
    found = (throughput or {}).get(level)
    return found.runs_per_s if found else None


def figures(run: E2ERun, key: str) -> Figures:
    if key == "raw":
        main = run.raw.main if run.raw else None
        lat, thr, chat = (main.latency, main.throughput, main.chatty) if main else (None, None, None)
    else:
        system = run.systems.get(key) or SystemResult()
        lat, thr, chat = system.latency, system.throughput, system.chatty
    return Figures(
        p50=lat.p50_ms if lat else None,
        p99=lat.p99_ms if lat else None,
        first=lat.first_event_p50_ms if lat else None,
        first_node=lat.first_node_p50_ms if lat else None,
        chatty=chat.median_events_per_s if chat else None,
        c10=_runs_per_s(thr, "10"),
        c50=_runs_per_s(thr, "50"),
        c200=_runs_per_s(thr, "200"),
    )


@dataclass
class View:
    run: E2ERun
    figs: dict[str, Figures]
    unavailable: dict[str, str | None]  # system → why it has no figures, None if it has

    @classmethod
    def of(cls, run: E2ERun) -> View:
        unavailable: dict[str, str | None] = {key: None for key, _ in COLUMNS}
        if not run.meta.peer_versions:
            unavailable["peer"] = f"not measured: {run.meta.peer_note}"
        if run.raw and run.raw.error:
            unavailable["raw"] = f"failed: {run.raw.error}"
        for key, system in run.systems.items():
            if system.error:
                unavailable[key] = f"failed: {system.error}"
        return cls(run, {key: figures(run, key) for key, _ in COLUMNS}, unavailable)
