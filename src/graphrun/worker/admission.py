"""How many executions a worker process takes on: a fixed ceiling, and below it as many as its event
loop keeps up with.

An agent's execution spends most of its life awaiting a model, and one process holds hundreds of
such waits at little cost (docs/decisions/0019). CPU-bound executions are the opposite: each one
admitted slows every other one of the process (one event loop, one GIL), and the loop's lag delays
their events, heartbeats and lease renewals. No fixed number suits both, so above ``floor`` running
executions a new one is taken only while the loop answers within ``max_lag_s``: I/O-bound work fills
the process up to ``limit``, CPU-bound work stops being taken where the loop saturates, and what is
not taken stays on the queue for another worker process.

The lag is measured here, on the loop itself: every ``TICK_S`` a timer notes how late it fired. A
timer later than ``max_lag_s`` closes the gate for ``HOLD_S``, and so does one overdue by more than
that right now (the loop is busy at this moment). While open, the gate lets in at most
``running / GROWTH`` executions per tick (at least one): a run loads the loop only some time after it
is taken (its claim, its graph), so a burst is taken in steps the lag can answer; from 4 to 500
runs in about 2 s when the loop keeps up.

What must stay true: at most ``limit`` slots are held; below ``floor`` a slot never waits for the
loop (a busy machine still runs executions); a cancelled ``acquire`` holds nothing. With
``max_lag_s`` 0 it is a plain semaphore of ``limit``.
"""

from __future__ import annotations

import asyncio
import time

from graphrun.metrics import ADMISSION_DEFERRED

FLOOR = 4
TICK_S = 0.05
HOLD_S = 0.25
GROWTH = 8  # while open, up to running / GROWTH more per tick (at least one)


class Admission:
    """The receiver's slots: ``await acquire()`` before taking a message, ``release()`` when its
    execution is over. ``watch()`` measures the loop; run it as a task for as long as the slots are
    used (while it does not run, the ceiling alone applies)."""

    def __init__(self, limit: int, max_lag_s: float, *, floor: int = FLOOR) -> None:
        self.limit = max(1, limit)
        self.max_lag_s = max_lag_s
        self.floor = max(1, min(floor, self.limit))
        self.held = 0
        self.lag_s = 0.0  # the latest timer's lateness
        self.deferred = 0  # acquisitions that waited for the loop
        self._due: float | None = None  # when the watch's timer should fire
        self._closed_until = 0.0
        self._allowance = 0  # none above the floor before the first measurement
        self._changed = asyncio.Event()

    @property
    def adaptive(self) -> bool:
        return self.max_lag_s > 0

    def lagging(self) -> bool:
        """Whether the loop lags now: a recent late timer, or the current one overdue."""
        if not self.adaptive:
            return False
        now = time.monotonic()
        return now < self._closed_until or (self._due is not None and now - self._due > self.max_lag_s)

    def _may_take(self) -> bool:
        if self.held >= self.limit:
            return False
        if self.held < self.floor or not self.adaptive or self._due is None:
            return True
        return self._allowance > 0 and not self.lagging()

    async def acquire(self) -> bool:
        counted = False
        while not self._may_take():
            if not counted and self.held < self.limit and self.lagging():
                counted = True
                self.deferred += 1
                ADMISSION_DEFERRED.inc()
            self._changed.clear()
            await self._changed.wait()
        self.held += 1
        if self.held > self.floor:
            self._allowance -= 1
        return True

    def release(self) -> None:
        self.held -= 1
        self._changed.set()

    async def watch(self) -> None:
        """Measure the loop's lag until cancelled, opening and closing the gate."""
        if not self.adaptive:
            return
        try:
            while True:
                self._due = time.monotonic() + TICK_S
                await asyncio.sleep(TICK_S)
                now = time.monotonic()
                self.lag_s = now - self._due
                if self.lag_s > self.max_lag_s:
                    self._closed_until = now + HOLD_S
                self._allowance = 0 if self.lagging() else max(1, self.held // GROWTH)
                self._changed.set()
        finally:
            self._due = None
