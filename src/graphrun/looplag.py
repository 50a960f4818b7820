"""Watching a process's event loop for stalls: code that blocks it delays everything the process
does (a worker's executions, an API process's requests and SSE streams).

A watchdog thread posts a callback to the loop every ``interval_s`` and times how long the loop
takes to run it. That delay is the loop's lag (``graphrun_event_loop_lag_seconds``). When it passes
the threshold the loop is stalled: the thread notes, while the stall lasts, where the loop's thread
is stuck (the innermost frames of its stack) and, in a worker, which executions are running; when
the loop is back it counts the stall (``graphrun_event_loop_stalls_total``) and logs one line naming
them. Both metrics carry the process's ``role`` (``worker`` or ``api``), and the log line comes from
the logger ``graphrun.<role>.looplag``.

The thread never touches the loop's objects but through ``call_soon_threadsafe``, and reads the
running executions through a callable that only copies a dict's keys.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Literal

from graphrun.metrics import LOOP_LAG, LOOP_STALLS

_STACK_SHOWN = 3  # innermost frames named in a stall's log line

Role = Literal["worker", "api"]


class LoopLagMonitor:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        threshold_s: float,
        role: Role,
        running: Callable[[], Iterable[str]] | None = None,
        interval_s: float = 0.1,
    ) -> None:
        """``role`` labels the metrics and names the logger; ``running`` (the ids of the executions
        running now) is named in a stall's log line when given."""
        self.loop = loop
        self.threshold_s = threshold_s
        self.interval_s = min(interval_s, threshold_s)
        self.role = role
        self.running = running
        self.stalls = 0
        self._log = logging.getLogger(f"graphrun.{role}.looplag")
        # The children are made now so that /metrics shows the role's series (at 0) from the start.
        self._stall_count = LOOP_STALLS.labels(role=role)
        self._lag = LOOP_LAG.labels(role=role)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop_thread_id: int | None = None

    def start(self) -> None:
        """Start watching; call from the loop's own thread."""
        self._loop_thread_id = threading.get_ident()
        self._thread = threading.Thread(target=self._watch, name="graphrun-looplag", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.is_set():
            answered = threading.Event()
            posted = time.monotonic()
            try:
                self.loop.call_soon_threadsafe(answered.set)
            except RuntimeError:
                return  # the loop is closed
            if answered.wait(self.threshold_s):
                self._lag.observe(time.monotonic() - posted)
            else:
                # Stalled now: look at what it is doing while it is still doing it.
                executions = self._running_now()
                where = self._loop_stack()
                while not answered.wait(0.05):
                    if self._stop.is_set():
                        return
                lag = time.monotonic() - posted
                self._lag.observe(lag)
                self._stall_count.inc()
                self.stalls += 1
                running = "" if executions is None else f"; executions running: {', '.join(executions) or 'none'}"
                self._log.warning(
                    "event loop stalled for %.0f ms (threshold %.0f ms) at %s%s",
                    lag * 1000,
                    self.threshold_s * 1000,
                    where,
                    running,
                )
            self._stop.wait(self.interval_s)

    def _running_now(self) -> list[str] | None:
        if self.running is None:
            return None
        for _ in range(3):
            try:
                return sorted(self.running())
            except RuntimeError:  # the dict changed size while being copied: the loop moved on
                continue
        return []

    def _loop_stack(self) -> str:
        frame = sys._current_frames().get(self._loop_thread_id or 0)
        if frame is None:
            return "an unknown place"
        frames = traceback.extract_stack(frame)[-_STACK_SHOWN:]
        return " <- ".join(f"{f.name} ({f.filename}:{f.lineno})" for f in reversed(frames))
