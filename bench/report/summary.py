"""The head of the report: where and how it was measured, the figures side by side, their ratios,
the targets of issue #7, and the targets on CPU per run and on the peers' throughput."""

from __future__ import annotations

import math
from collections.abc import Callable

from bench._common import table
from bench.report._format import fmt, mib, ratio
from bench.report._view import COLUMNS, NAMES, PEERS, View, cpu_ms_per_run

TITLE = "end to end: graphrun vs langgraph dev vs Aegra vs raw LangGraph"
TARGET_LATENCY_MS = 15.0
TARGET_LATENCY_VS_PEER = 50.0
TARGET_THROUGHPUT_VS_PEER = 6.0
TARGET_THROUGHPUT_VS_RAW = 0.4
TARGET_CHATTY = 20_000.0


def intro(view: View) -> list[str]:
    meta, plan = view.run.meta, view.run.plan
    # One paragraph per header line, so that the Markdown file shows them as lines.
    lines = [f"# {TITLE}", "", f"{meta.stamp} · {meta.machine}", "", meta.versions, ""]
    if meta.peer_versions:
        lines.append("peer (bench/.peer-venv): " + ", ".join(f"{k} {v}" for k, v in meta.peer_versions.items()))
    else:
        lines.append(f"peer: NOT MEASURED — {meta.peer_note}")
    lines.append("")
    if meta.aegra_versions:
        lines.append("Aegra (bench/.aegra-venv): " + ", ".join(f"{k} {v}" for k, v in meta.aegra_versions.items()))
    else:
        lines.append(f"Aegra: NOT MEASURED — {meta.aegra_note or 'not part of this run'}")
    lines += [
        "",
        f"redis-server {meta.redis_version} · RLIMIT_NOFILE {meta.nofile}",
        "",
        f"load average (1 min) at start {meta.load_start}, at end {meta.load_end}: the machine is shared and "
        "other processes were not stopped (their CPU during each window: 'other' below)",
        "",
        f'Graph `chain`, 5 steps, delay 0, input {{"n": 0}}. Client: submit, then follow the events to the end '
        f"(graphrun: POST …/executions + GET …/events; langgraph dev and Aegra: POST /runs/stream, stream_mode "
        f"updates), HTTP/1.1 keep-alive over raw asyncio streams in a separate process. Latency: {plan.latency_runs} "
        f"runs ({plan.peer_latency_runs} on langgraph dev and Aegra, {plan.raw_latency_runs} raw) after warm-up, one "
        f"at a time. "
        f"Throughput: closed loop, runs ending in a {plan.window_s:.0f} s window after {plan.warmup_s:.0f} s warm-up.",
    ]
    return lines


def _memory(view: View, key: str, group: str) -> str:
    if key == "raw":
        return "n/a"
    if key in PEERS and group == "worker":
        return "n/a (one process)" if key == "peer" else "n/a (in the API process)"
    if key == "peer" and group == "redis":
        return "n/a (in memory)"
    system = view.run.systems.get(key)
    if system is None or system.idle is None:
        return "error" if system and "idle" in system.errors else "—"
    before = system.idle.rss_before_kib.get(group)
    after = system.idle.rss_with_clients_kib.get(group)
    return f"{mib(before)} → {mib(after)}"


def figures_table(view: View) -> list[str]:
    figs, plan = view.figs, view.run.plan
    clients = f"{plan.idle_clients:,} SSE clients"

    def figure(metric: str, digits: int = 1) -> Callable[[str], str]:
        def cell(key: str) -> str:
            value = figs[key].get(metric)
            if view.phase_failed(key, metric):
                return "failed" if value is None else f"{fmt(value, digits)} (failing)"
            return fmt(value, digits)

        return cell

    rows: list[tuple[str, Callable[[str], str]]] = [
        ("submit → terminal event, p50 ms (concurrency 1)", figure("p50", 2)),
        ("submit → terminal event, p99 ms (concurrency 1)", figure("p99", 2)),
        ("time to first event, p50 ms", figure("first", 2)),
        ("time to first node output, p50 ms", figure("first_node", 2)),
        ("completed runs/s, concurrency 10", figure("c10")),
        ("completed runs/s, concurrency 50", figure("c50")),
        ("completed runs/s, concurrency 200", figure("c200")),
        ("CPU ms per completed run, concurrency 10 (all the system's processes)", figure("cpu10", 2)),
        ("CPU ms per completed run, concurrency 50 (all the system's processes)", figure("cpu50", 2)),
        (f"chatty run ({plan.chatty_emit:,} custom events): events/s to one client", figure("chatty")),
        (f"API RSS MiB, idle → {clients}", lambda k: _memory(view, k, "api")),
        (f"worker RSS MiB, idle → {clients}", lambda k: _memory(view, k, "worker")),
        (f"Redis RSS MiB, idle → {clients}", lambda k: _memory(view, k, "redis")),
    ]
    lines = table(
        ["figure", *(title for _, title in COLUMNS)],
        "l" + "r" * len(COLUMNS),
        ([label, *("not measured" if view.unavailable[k] else value(k) for k, _ in COLUMNS)] for label, value in rows),
    )
    lines.append("")
    lines += [f"- {title}: {view.unavailable[key]}" for key, title in COLUMNS if view.unavailable[key]]
    for key, title in COLUMNS:
        for phase, what in view.failing.get(key, {}).items():
            lines.append(f"- {title} FAILING in {phase}: {what}")
    return lines


def ratios(view: View) -> list[str]:
    """graphrun's figures over the others', pair by pair, from the same run."""
    pairs = [
        ("serve", "peer"),
        ("serve", "aegra"),
        ("serve", "raw"),
        ("deployed", "peer"),
        ("deployed", "aegra"),
        ("deployed", "raw"),
    ]

    def cell(a: str, b: str, metric: str, lower_better: bool) -> str:
        r = ratio(view.figs[a].get(metric), view.figs[b].get(metric))
        if r is None or view.unavailable[a] or view.unavailable[b]:
            return "—"
        if lower_better:
            return f"{r:.3f}× ({1 / r:.1f}× lower)" if r < 1 else f"{r:.2f}× ({r:.1f}× higher)"
        return f"{r:.2f}×"

    metrics = [
        ("latency p50, concurrency 1", "p50", True),
        ("latency p99, concurrency 1", "p99", True),
        ("time to first event p50", "first", True),
        ("runs/s, concurrency 10", "c10", False),
        ("runs/s, concurrency 50", "c50", False),
        ("runs/s, concurrency 200", "c200", False),
        ("chatty events/s", "chatty", False),
        ("CPU per completed run, concurrency 50", "cpu50", True),
    ]
    head = ["figure", *(f"{NAMES[a].replace('graphrun ', '')} / {NAMES[b]}" for a, b in pairs)]
    rows = ([label, *(cell(a, b, metric, lower) for a, b in pairs)] for label, metric, lower in metrics)
    return [
        "Ratios graphrun / other, from the figures above (same run):",
        "",
        *table(head, "l" + "r" * len(pairs), rows),
    ]


def targets(view: View) -> list[str]:
    s, p, r, d = (view.figs[k] for k in ("serve", "peer", "raw", "deployed"))
    peer_ok = not view.unavailable["peer"]
    lat_ratio = ratio(p.p50, s.p50) if peer_ok else None
    thr_peer = ratio(s.c50, p.c50) if peer_ok else None
    thr_raw = ratio(s.c50, r.c50)

    def check(value: float | None, ok: Callable[[float], bool]) -> bool | None:
        return None if value is None else ok(value)

    # (target, graphrun serve's value, met?, unit, graphrun api + 2 workers' value)
    checks = [
        (
            f"latency p50 at concurrency 1 ≤ {TARGET_LATENCY_MS:.0f} ms",
            s.p50,
            check(s.p50, lambda v: v <= TARGET_LATENCY_MS),
            " ms",
            d.p50,
        ),
        (
            f"latency p50 at concurrency 1 ≥ {TARGET_LATENCY_VS_PEER:.0f}× lower than langgraph dev",
            lat_ratio,
            check(lat_ratio, lambda v: v >= TARGET_LATENCY_VS_PEER),
            "×",
            ratio(p.p50, d.p50) if peer_ok else None,
        ),
        (
            f"throughput at concurrency 50 ≥ {TARGET_THROUGHPUT_VS_PEER:.0f}× langgraph dev",
            thr_peer,
            check(thr_peer, lambda v: v >= TARGET_THROUGHPUT_VS_PEER),
            "×",
            ratio(d.c50, p.c50) if peer_ok else None,
        ),
        (
            f"throughput at concurrency 50 ≥ {TARGET_THROUGHPUT_VS_RAW}× raw LangGraph (one event loop)",
            thr_raw,
            check(thr_raw, lambda v: v >= TARGET_THROUGHPUT_VS_RAW),
            "×",
            ratio(d.c50, r.c50),
        ),
        (
            f"chatty run ≥ {TARGET_CHATTY:,.0f} events/s to one client",
            s.chatty,
            check(s.chatty, lambda v: v >= TARGET_CHATTY),
            " events/s",
            d.chatty,
        ),
    ]

    def shown(value: float | None, unit: str) -> str:
        return f"{fmt(value, 2 if unit == '×' else 1)}{unit if value is not None else ''}"

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else ("met" if ok else "NOT met")

    rows = ([label, shown(v, unit), verdict(ok), shown(dv, unit)] for label, v, ok, unit, dv in checks)
    head = ["target", "graphrun serve", "verdict", "graphrun api + 2 workers"]
    return ["Targets (issue #7), on graphrun serve:", "", *table(head, "lrlr", rows)]


TARGET_CPU_VS_PEER = 0.5
TARGET_CPU_VS_RAW_MODES = 2.5
TARGET_C50_VS_PEER = 3.0
TARGET_C50_VS_AEGRA = 10.0


def _raw_modes_cpu(view: View) -> float | None:
    """Raw LangGraph's CPU per run with graphrun's stream modes (subgraphs=True) at concurrency 50."""
    raw = view.run.raw
    modes = raw.graphrun_modes if raw and not raw.error else None
    return cpu_ms_per_run(modes.throughput.get("50")) if modes else None


def cpu_targets(view: View) -> list[str]:
    """CPU per completed run against langgraph dev and raw LangGraph, and throughput at concurrency
    50 against langgraph dev and Aegra: each target with its figures, ratio and verdict."""
    figs = view.figs

    def fig(key: str, metric: str) -> float | None:
        return None if view.unavailable[key] else figs[key].get(metric)

    raw_modes = _raw_modes_cpu(view)
    # (target, its system, figure, figure of the other, unit, the ratio it must meet, at most?)
    rows: list[tuple[str, str, float | None, float | None, str, float, bool]] = [
        (
            f"CPU per run ≤ {TARGET_CPU_VS_PEER}× langgraph dev's",
            "serve",
            fig("serve", "cpu50"),
            fig("peer", "cpu50"),
            "ms",
            TARGET_CPU_VS_PEER,
            True,
        ),
        (
            f"CPU per run ≤ {TARGET_CPU_VS_RAW_MODES}× raw LangGraph's with the same stream modes",
            "serve",
            fig("serve", "cpu50"),
            None if view.unavailable["raw"] else raw_modes,
            "ms",
            TARGET_CPU_VS_RAW_MODES,
            True,
        ),
    ]
    for key in ("serve", "deployed"):
        for other, target in (("peer", TARGET_C50_VS_PEER), ("aegra", TARGET_C50_VS_AEGRA)):
            rows.append(
                (
                    f"throughput at concurrency 50 ≥ {target:.0f}× {NAMES[other]}",
                    key,
                    fig(key, "c50"),
                    fig(other, "c50"),
                    "runs/s",
                    target,
                    False,
                )
            )

    def line(label: str, key: str, a: float | None, b: float | None, unit: str, bound: float, most: bool) -> list[str]:
        digits = 2 if unit == "ms" else 1
        figures = " vs ".join("not measured" if v is None else f"{fmt(v, digits)} {unit}" for v in (a, b))
        if a is None or b is None:
            return [NAMES[key], label, figures, "—", "not measured"]
        # The other completing no run in the window is an unbounded ratio, not a missing one.
        r = a / b if b else math.inf
        ok = r <= bound if most else r >= bound
        return [NAMES[key], label, figures, f"{r:.2f}×" if b else "∞", "met" if ok else "not met"]

    head = ["system", "target", "figures (this system vs the other)", "ratio", "verdict"]
    return [
        "Targets on CPU per completed run and on the peers' throughput (concurrency 50, same run; CPU: all the "
        "system's processes, raw LangGraph with graphrun's stream modes and subgraphs=True):",
        "",
        *table(head, "lllrl", (line(*row) for row in rows)),
    ]
