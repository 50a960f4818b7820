"""CPU and memory of a system under test, read from outside while a scenario runs.

CPU: user + system seconds of each of the system's processes over the scenario, plus its PostgreSQL
backends: the server processes whose title names the system's own database (bench/_procs.py's
pg_backends and ChurningGroup: found again at every sample, since pools open and close connections;
a backend first seen during the scenario counts from zero). The cluster's shared processes (WAL
writer, checkpointer) serve every database on this shared server and are left out.

Memory: VmRSS summed over the system's processes (not the PostgreSQL backends, whose RSS is mostly
shared buffers), before the scenario and at its peak.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field

from bench._procs import ChurningGroup, cpu_seconds, machine_busy_seconds, pg_backends, rss_kib


@dataclass
class Usage:
    wall_s: float
    cpu_s: dict[str, float]  # the system's roles (and "postgres"), each summed over its processes
    rss_before_kib: int
    rss_peak_kib: int
    outside_cpu_s: dict[str, float] = field(default_factory=dict)  # fake LLM, client, everything else

    @property
    def system_cpu_s(self) -> float:
        return sum(self.cpu_s.values())


def children_cpu() -> float:
    # The client process is our child: its CPU is in RUSAGE_CHILDREN once it has been waited for.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Meter:
    def __init__(self, pids: dict[str, list[int]], pg_database: str | None, fake: list[int]) -> None:
        self.pids, self.fake = pids, fake
        # Found again at every sample: pools open and close backends while the scenario runs.
        self._pg = ChurningGroup(lambda: pg_backends(pg_database)) if pg_database else None
        self._cpu0: dict[int, float] = {}
        self._t0 = self._machine0 = self._children0 = 0.0
        self._rss0 = self._rss_peak = 0

    def _rss(self) -> int:
        return sum(rss_kib(p) for ps in self.pids.values() for p in ps)

    def start(self) -> None:
        every = [p for ps in self.pids.values() for p in ps] + self.fake
        self._cpu0 = {p: cpu_seconds(p) for p in every}
        if self._pg:
            self._pg.start()
        self._rss0 = self._rss_peak = self._rss()
        self._t0, self._machine0, self._children0 = time.perf_counter(), machine_busy_seconds(), children_cpu()

    def sample(self) -> None:
        """Every half second or so: a backend that exits between samples takes its last slice with it."""
        if self._pg:
            self._pg.sample()
        self._rss_peak = max(self._rss_peak, self._rss())

    def stop(self) -> Usage:
        self.sample()
        wall = time.perf_counter() - self._t0
        cpu = {
            role: sum(max(0.0, cpu_seconds(p) - self._cpu0.get(p, 0.0)) for p in ps) for role, ps in self.pids.items()
        }
        if self._pg:
            cpu["postgres"] = self._pg.used()
        fake = sum(cpu_seconds(p) - self._cpu0.get(p, 0.0) for p in self.fake)
        client = children_cpu() - self._children0
        other = machine_busy_seconds() - self._machine0 - sum(cpu.values()) - fake - client
        outside = {"fake LLM": fake, "client": client, "other": max(0.0, other)}
        return Usage(wall, cpu, self._rss0, self._rss_peak, outside)
