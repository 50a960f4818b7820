"""What every benchmark prints about where and when it ran."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import statistics
from datetime import UTC, datetime


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def versions(*packages: str) -> str:
    out = []
    for p in packages:
        try:
            out.append(f"{p} {md.version(p)}")
        except md.PackageNotFoundError:
            out.append(f"{p} (not installed)")
    return ", ".join(out)


def header(title: str, *packages: str) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"# {title}\n{now} · {machine()}\n{versions('graphrun', *packages)}\n"


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0–100), nearest-rank."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def median(values: list[float]) -> float:
    return statistics.median(values)
