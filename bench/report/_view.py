"""What every section of the report reads: the run, each system's headline figures, which systems
have no figures (and why), and which failed in a phase (and what they did), computed once."""

from __future__ import annotations

from dataclasses import dataclass

from bench.results import E2ERun, Level, Plan, SystemResult

COLUMNS = [
    ("raw", "raw LangGraph (in process)"),
    ("serve", "graphrun serve"),
    ("deployed", "graphrun api + 2 workers"),
    ("peer", "langgraph dev"),
    ("aegra", "Aegra"),
]
NAMES = dict(COLUMNS)
# The servers of LangGraph's API, driven through POST /runs/stream.
PEERS = ("peer", "aegra")
# The CPU a level reports that is not the system's: the load generator's, and the rest of the machine's.
NOT_THE_SYSTEM = ("client", "other")
# Which phase each headline figure comes from, to say "failed" where the phase did.
PHASE_OF = {
    "p50": "latency",
    "p99": "latency",
    "first": "latency",
    "first_node": "latency",
    "c10": "throughput",
    "c50": "throughput",
    "c200": "throughput",
    "cpu10": "throughput",
    "cpu50": "throughput",
    "chatty": "chatty",
}
LEVEL_OF = {"c10": "10", "c50": "50", "c200": "200", "cpu10": "10", "cpu50": "50"}


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
    cpu10: float | None = None  # CPU ms per completed run at concurrency 10
    cpu50: float | None = None  # and at 50

    def get(self, metric: str) -> float | None:
        value: float | None = getattr(self, metric)
        return value


def cpu_ms_per_run(level: Level | None) -> float | None:
    """CPU time the system's processes used in the window (all roles but the load generator and the
    rest of the machine; raw LangGraph: its one process), in ms per run completed in that window."""
    if level is None or not level.runs_per_s:
        return None
    used = sum(share or 0.0 for role, share in level.cpu.items() if role not in NOT_THE_SYSTEM)
    return used / level.runs_per_s * 1000 if used else None


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
        cpu10=cpu_ms_per_run((thr or {}).get("10")),
        cpu50=cpu_ms_per_run((thr or {}).get("50")),
    )


def _reasons(reasons: dict[str, int]) -> str:
    return "; ".join(f"{reason} (×{n})" for reason, n in reasons.items())


def failures(system: SystemResult, plan: Plan) -> dict[str, str]:
    """The phases in which a system errored, timed out, failed runs or lost events: phase → what it did."""
    out = dict(system.errors)
    out.update({f"{phase} (server log)": errors for phase, errors in system.server_errors.items()})
    lat = system.latency
    if lat and lat.failures:
        out["latency"] = f"{lat.failures} run(s) failed and were replaced: {_reasons(lat.failure_reasons)}"
    for level, t in (system.throughput or {}).items():
        if not t.counted:
            out[f"throughput c={level}"] = (
                f"no run completed inside the {plan.window_s:.0f} s window ({t.failures} failed, "
                f"{t.abandoned} client(s) still waiting after the {plan.drain_s:.0f} s drain)"
            )
        elif t.failures or t.abandoned:
            why = f": {_reasons(t.failure_reasons)}" if t.failure_reasons else ""
            out[f"throughput c={level}"] = (
                f"{t.failures} run(s) failed, {t.abandoned} client(s) still waiting after the {plan.drain_s:.0f} s "
                f"drain ({t.counted} runs completed in the window){why}"
            )
    for run in system.chatty.runs if system.chatty else []:
        if run.custom < plan.chatty_emit or run.truncated:
            out["chatty"] = (
                f"a run delivered {run.custom:,} of {plan.chatty_emit:,} custom events ({run.truncated} truncated)"
            )
    idle = system.idle
    if idle and (idle.connected < idle.clients or idle.not_ended or idle.cancel_errors):
        out["idle"] = (
            f"{idle.connected}/{idle.clients} clients connected, {idle.not_ended} streams never ended, "
            f"{idle.cancel_errors} cancel errors"
        )
    return out


@dataclass
class View:
    run: E2ERun
    figs: dict[str, Figures]
    unavailable: dict[str, str | None]  # system → why it has no figures, None if it has
    failing: dict[str, dict[str, str]]  # system → phase → what it did, for the phases that failed

    @classmethod
    def of(cls, run: E2ERun) -> View:
        unavailable: dict[str, str | None] = {key: None for key, _ in COLUMNS}
        if not run.meta.peer_versions:
            unavailable["peer"] = f"not measured: {run.meta.peer_note}"
        if not run.meta.aegra_versions:
            unavailable["aegra"] = f"not measured: {run.meta.aegra_note or 'not part of this run'}"
        if run.raw and run.raw.error:
            unavailable["raw"] = f"failed: {run.raw.error}"
        for key, system in run.systems.items():
            if system.error:
                unavailable[key] = f"failed: {system.error}"
        failing = {
            key: found
            for key, system in run.systems.items()
            if not system.error and (found := failures(system, run.plan))
        }
        return cls(run, {key: figures(run, key) for key, _ in COLUMNS}, unavailable, failing)

    def phase_failed(self, key: str, metric: str) -> bool:
        """Whether what a figure comes from failed (an error, failed runs or lost events): its phase as
        a whole (an error, or errors in the server's log), or its concurrency level."""
        phase = PHASE_OF.get(metric, "")
        level = LEVEL_OF.get(metric)
        names = (phase, f"{phase} (server log)", f"{phase} c={level}" if level else phase)
        return any(name in names for name in self.failing.get(key, {}))
