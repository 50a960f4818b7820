"""The floor's other shapes, and the details behind each system's figures."""

from __future__ import annotations

from collections import Counter

from bench.report._format import fmt, ratio
from bench.report._view import COLUMNS, PEERS, View, cpu_ms_per_run
from bench.results import Level, SystemResult


def floor(view: View) -> list[str]:
    raw = view.run.raw
    pinned_level = raw.pinned.throughput.get("50") if raw and raw.pinned else None
    pinned = pinned_level.runs_per_s if pinned_level else None
    per_core = raw.per_core if raw else None
    lines = [
        "Raw LangGraph, concurrency 50, other shapes of the floor:",
        "",
        f"- one event loop pinned to one core (the single-core figure): {fmt(pinned)} runs/s",
    ]
    if per_core:
        each = " + ".join(fmt(x) for x in per_core.each)
        lines.append(
            f"- one event loop per core ({per_core.processes} processes): {fmt(per_core.runs_per_s)} runs/s ({each})"
        )
    gm = raw.graphrun_modes if raw else None
    if gm:
        c50 = gm.throughput.get("50")
        lines.append(
            "- with graphrun's stream modes (tasks, custom, messages, values; subgraphs=True) instead of `updates`: "
            f"p50 {fmt(gm.latency.p50_ms if gm.latency else None, 2)} ms, "
            f"{fmt(c50.runs_per_s if c50 else None)} runs/s, "
            f"chatty {fmt(gm.chatty.median_events_per_s if gm.chatty else None)} events/s"
        )
    serve_c50 = view.figs["serve"].c50
    if serve_c50 and per_core:
        lines.append(
            f"- graphrun serve / one loop per core: {ratio(serve_c50, per_core.runs_per_s) or 0:.2f}×; "
            f"/ pinned single core: {ratio(serve_c50, pinned) or 0:.2f}×"
        )
    return lines


def _raw_throughput(levels: dict[str, Level]) -> str:
    return "- raw LangGraph throughput: " + "; ".join(
        f"c={level}: {t.counted} runs, p50 {fmt(t.p50_ms, 2)} ms, p99 {fmt(t.p99_ms, 2)} ms; "
        f"CPU (share of one core): itself {(t.cpu.get('itself') or 0) * 100:.0f}%, "
        f"other {(t.cpu.get('other') or 0) * 100:.0f}%; {fmt(cpu_ms_per_run(t), 2)} ms CPU per run"
        for level, t in levels.items()
    )


def _throughput(title: str, system: SystemResult) -> list[str]:
    if "throughput" in system.errors:
        return [f"- {title} throughput: {system.errors['throughput']}"]
    if not system.throughput:
        return []
    parts = []
    reasons: Counter[str] = Counter()
    for level, t in system.throughput.items():
        cpu = ", ".join(f"{role} {share * 100:.0f}%" for role, share in t.cpu.items() if share is not None)
        parts.append(
            f"c={level}: {t.counted} runs, p50 {fmt(t.p50_ms)} ms, p99 {fmt(t.p99_ms)} ms, "
            f"{t.failures} failed, {t.abandoned} abandoned; CPU (share of one core): {cpu}; "
            f"{fmt(cpu_ms_per_run(t), 2)} ms CPU per run"
        )
        reasons.update(t.failure_reasons)
    lines = [f"- {title} throughput: " + "; ".join(parts)]
    if reasons:
        lines.append(f"  - failed runs (not counted), by reason: {dict(reasons.most_common(3))}")
    return lines


def _chatty(title: str, system: SystemResult) -> list[str]:
    chat = system.chatty
    if chat and chat.runs:
        c = chat.runs[0]
        return [
            f"- {title} chatty: {c.events} events per run ({c.custom} custom, {c.truncated} truncated), "
            f"submit → end {c.total_s * 1000:.0f} ms; rate = custom events / (last − first custom event), "
            f"median of {len(chat.runs)}"
        ]
    if "chatty" in system.errors:
        return [f"- {title} chatty: {system.errors['chatty']}"]
    return []


def _idle(title: str, key: str, system: SystemResult) -> list[str]:
    idle = system.idle
    if "idle" in system.errors:
        return [f"- {title} idle clients: {system.errors['idle']}"]
    if idle is None:
        return []
    connected = f"- {title} idle clients: {idle.connected}/{idle.clients} connected in {idle.connect_s:.1f} s"
    if key in PEERS:
        return [f"{connected}, then disconnected (on_disconnect=cancel)"]
    return [
        f"{connected}; stopped in {idle.cancel_s:.1f} s, streams ended with {idle.ended_with}"
        + (f", {idle.not_ended} never ended" if idle.not_ended else "")
        + (f", {idle.cancel_errors} cancel errors" if idle.cancel_errors else "")
    ]


def _latency(title: str, system: SystemResult) -> list[str]:
    if "latency" in system.errors:
        return [f"- {title} latency: {system.errors['latency']}"]
    lat = system.latency
    if lat and lat.failures:
        return [f"- {title} latency: {lat.failures} failed run(s) replaced (not in the figures): {lat.failure_reasons}"]
    return []


def _lost_events(view: View) -> bool:
    """Whether a graphrun run's stream held nothing but a terminal event rebuilt from the store."""
    reasons: list[str] = []
    for key in ("serve", "deployed"):
        system = view.run.systems.get(key)
        if system is None:
            continue
        if system.latency:
            reasons += system.latency.failure_reasons
        for level in (system.throughput or {}).values():
            reasons += level.failure_reasons
    return any("after 0 of" in reason for reason in reasons)


def details(view: View) -> list[str]:
    lines = ["Details:", ""]
    raw_main = view.run.raw.main if view.run.raw else None
    if raw_main and raw_main.throughput:
        lines.append(_raw_throughput(raw_main.throughput))
    for key, title in COLUMNS[1:]:
        system = view.run.systems.get(key)
        if system is None or view.unavailable[key]:
            continue
        lines += _throughput(title, system)
        lines += _chatty(title, system)
        lines += _idle(title, key, system)
        lines += _latency(title, system)
    if _lost_events(view):
        lines.append(
            "- 'stream ended with complete after 0 of 5 node outputs (1 events in all)': the events stream "
            "answered with nothing but a terminal event rebuilt from the store, so the client lost the run's "
            "events. In src/graphrun/events/follow.py the catch-up checks that the log exists *before* it reads "
            "the stored status; a run that starts and finishes in between is taken for one whose log expired. "
            "Counted as failed, not in the figures."
        )
    lines.append(
        "- Memory: VmRSS summed over the processes of each role (Gunicorn master + 2 workers; worker supervisor "
        "+ 2 workers; forked processes share pages, so sums overcount). 'idle' is read after the runs above, just "
        "before the clients connect. graphrun clients follow `chain` executions with delay_s 60 (queued or "
        "running), then cancelled through the API; langgraph dev and Aegra clients hold POST /runs/stream of the "
        "same slow graph (on_disconnect=cancel), then disconnect. Aegra's PostgreSQL backends are not in its memory "
        "figures."
    )
    lines.append(
        "- CPU per run: the CPU time (user + system) of every process of the system during the throughput window, "
        "divided by the runs completed in it: graphrun serve's API, worker and Redis; the deployed shape's API "
        "processes, worker processes and Redis; langgraph dev's one process; Aegra's API process (its workers are "
        "in it), its Redis and the PostgreSQL backends connected to its database (found by their process title "
        "every 0.25 s, so a backend that closes loses at most its last 0.25 s; the cluster's shared WAL writer and "
        "checkpointer are not counted); raw LangGraph's one process. The load generator and the rest of the "
        "machine are not counted: they are 'client' and 'other' in the shares above."
    )
    lines.append(
        "- langgraph dev runs with its defaults (one background job at a time; a queue that polls about once a "
        "second when idle, which is most of its concurrency-1 latency) and its default INFO logging, as is graphrun."
    )
    lines += _aegra(view)
    return lines


def _aegra(view: View) -> list[str]:
    aegra = view.run.systems.get("aegra")
    if aegra is None or not aegra.settings:
        return []
    settings = ", ".join(f"{name} {value}" for name, value in aegra.settings.items())
    return [
        "- Aegra runs as its documentation runs it in production (`aegra serve`: uvicorn `aegra_api.main:app`, "
        "REDIS_BROKER_ENABLED=true, so runs go through its Redis job queue to the worker loops inside the API "
        "process, events through Redis pub/sub), on the machine's PostgreSQL (a database created empty for the run, "
        "migrated by Aegra at start-up) and a private Redis (as graphrun deployed has), with JSON logs at INFO "
        f"(ENV_MODE=PRODUCTION) and every other setting at its default: {settings}."
    ]
