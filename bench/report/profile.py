"""Where graphrun serve's API and worker processes spend their time at concurrency 50 (py-spy)."""

from __future__ import annotations

from bench._common import table
from bench.report._format import fmt
from bench.report._view import View
from bench.results import ProcessProfile, Profile

WALL_KINDS = (
    ("main", "event-loop thread"),
    ("store", "store's SQLite threads"),
    ("aiosqlite", "aiosqlite threads (checkpointer)"),
)


def _explained(prof: Profile) -> str:
    return (
        f"py-spy, {prof.rate_hz} Hz for {prof.seconds:.0f} s, on graphrun serve during an extra "
        f"concurrency-50 window ({fmt(prof.load.runs_per_s if prof.load else None)} runs/s while sampled), "
        "`--gil`: only samples of the thread holding the GIL, so waits and C code that releases the GIL (SQLite "
        "in the store's and aiosqlite's threads, socket I/O) do not count; the per-thread CPU line shows what "
        "those threads cost. Self time = samples whose innermost frame is that function, as a share of the "
        "process's samples. Then a second window "
        f"({fmt(prof.wall_load.runs_per_s if prof.wall_load else None)} runs/s: native sampling slows the "
        f"processes), {prof.wall_rate_hz} Hz for {prof.wall_seconds:.0f} s with `--idle --native --threads`: where "
        "the threads spend wall-clock time, waits included."
    )


def _process(name: str, p: ProcessProfile, prof: Profile) -> list[str]:
    if p.error:
        return [f"**{name}**: {p.error}"]
    busy = p.samples / (prof.rate_hz * prof.seconds) * 100
    main, others, count = (p.threads.main, p.threads.others, p.threads.count) if p.threads else (0.0, [], 1)
    shown = ", ".join(f"{c * 100:.0f}%" for c in others[:4] if c >= 0.005) or "none above 0.5%"
    lines = [
        f"**{name}**: {p.samples} samples holding the GIL (≈ {busy:.0f}% of the time). CPU per thread "
        f"(/proc, same {prof.seconds:.0f} s): main {main * 100:.0f}%, others ({count - 1}) {shown}",
        "",
        *table(
            ["#", "function (file)", "self %"],
            "rlr",
            ([str(i), f"`{frame}`", f"{share:.1f}"] for i, (frame, share) in enumerate(p.self_time, 1)),
        ),
        "",
        "self time by package: " + ", ".join(f"{pkg} {share:.0f}%" for pkg, share in p.packages),
        "",
        "graphrun frames by inclusive time: " + "; ".join(f"`{f}` {share:.0f}%" for f, share in p.graphrun_inclusive),
    ]
    if p.wall_error:
        lines += ["", f"wall clock: {p.wall_error}"]
    elif p.wall:
        lines.append("")
        for kind, label in WALL_KINDS:
            w = p.wall[kind]
            if not w.samples:
                continue
            shares = ", ".join(f"{state} {share:.0f}%" for state, share in w.states)
            lines += [f"wall clock, {label} ({w.threads} seen): {shares}", ""]
    return lines


def profile(view: View) -> list[str]:
    prof = view.run.profile
    lines = ["## Profile", ""]
    if prof is None:
        return [*lines, "not measured"]
    if prof.error:
        return [*lines, f"not measured: {prof.error}"]
    lines.append(_explained(prof))
    for name in ("API process", "worker process"):
        if name in prof.processes:
            lines += ["", *_process(name, prof.processes[name], prof)]
    return lines
