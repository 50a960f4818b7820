"""What every benchmark prints about where and when it ran, and the statistics they share."""

from __future__ import annotations

import importlib.metadata as md
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime


def cpu_model() -> str:
    # psutil does not name the CPU; /proc/cpuinfo is the one place Linux does.
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    return (
        f"{os.cpu_count()} cores, {cpu_model()}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def nproc() -> int:
    """Cores this process may run on (what the benchmark could use)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def versions(*packages: str) -> str:
    out = []
    for p in packages:
        try:
            out.append(f"{p} {md.version(p)}")
        except md.PackageNotFoundError:
            out.append(f"{p} (not installed)")
    return ", ".join(out)


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def header(title: str, *packages: str) -> str:
    return f"# {title}\n{stamp()} · {machine()}\n{versions('graphrun', *packages)}\n"


def load_average(periods: int = 1) -> str:
    """The load average over 1 minute (then 5 and 15 with ``periods``): other work on this shared
    machine shows here."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg()[:periods])


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0–100), nearest rank: the smallest value with at least q% of the values
    at or below it (so p99 of 100 values is the 99th, not the maximum)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered) / 100) - 1)]


def pct_or_none(values: list[float], q: float) -> float | None:
    """``pct``, or None where nothing was measured (a JSON result says so as null)."""
    return pct(values, q) if values else None


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(head: list[str], align: str, rows: Iterable[list[str]]) -> list[str]:
    """A Markdown table's lines; ``align`` has one letter per column: l (left) or r (right)."""
    rule = "".join("---|" if a == "l" else "---:|" for a in align)
    return ["| " + " | ".join(head) + " |", "|" + rule, *("| " + " | ".join(row) + " |" for row in rows)]
