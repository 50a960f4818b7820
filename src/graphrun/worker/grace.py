"""The start grace: a first attempt waits, before its first node, until its grace after the pick-up
is over, a client follows it (and a few ms more), or it is asked to stop.

Why: a cancel sent the moment submit returned lands in the grace, and the execution ends without a
node having run. A client that follows the execution is watching and can stop it mid-node, so its
run need not be held.

What must stay true:
- the grace counts from the pick-up, not the submit: the API queues an execution only once its 202
  has gone out, so a busy API that is slow to answer submits (and cancels) does not eat into it;
- it is part of the time limit (counted from the claim) and never takes more than half of it;
- an execution queued for twice the grace already (a backlog) gets none: a cancel sent right after
  the submit's 202 would have been found at the claim, so holding a worker slot buys nothing;
- a follow hint may arrive before the pick-up: it is kept, by number not age, until the claim.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from datetime import datetime

from graphrun.worker.state import ActiveRun

# Follow hints kept for executions not claimed yet (a client often attaches before the pick-up):
# about 1.5 MB; at 200 executions/s, the last 80 s.
FOLLOWED_KEPT = 16_384
# A follow hint ends the start grace this long after it arrived: a client that opens the stream and
# cancels in the same instant sends both requests together, and its cancel lands within this.
FOLLOW_SETTLE_S = 0.002


class FollowHints:
    """Ids of executions a client follows, not claimed (yet) by this process; oldest first. Most
    hints are for other processes' executions: they drop out by number."""

    def __init__(self, kept: int = FOLLOWED_KEPT) -> None:
        self._kept = kept
        self._at: OrderedDict[str, float] = OrderedDict()

    def add(self, execution_id: str, at: float) -> None:
        # Kept by number, not age: under a backlog the pick-up may come long after the hint.
        if execution_id in self._at:
            return
        self._at[execution_id] = at
        if len(self._at) > self._kept:
            self._at.popitem(last=False)

    def pop(self, execution_id: str) -> float | None:
        return self._at.pop(execution_id, None)


async def start_grace(active: ActiveRun, created_at: datetime, grace_s: float, timeout_s: float) -> None:
    """Hold a first attempt for its start grace (see the module's docstring)."""
    # Twice: the 202 of a very busy API leaves some time after the execution was stored.
    if time.time() - created_at.timestamp() > 2 * grace_s:
        return
    ends = active.started + min(grace_s, timeout_s / 2)
    if not active.followed.is_set():
        await _first_of((active.followed, active.stopping), ends - time.monotonic())
    if active.followed_at is not None and not active.stopping.is_set():
        await _first_of((active.stopping,), min(ends, active.followed_at + FOLLOW_SETTLE_S) - time.monotonic())


async def _first_of(events: tuple[asyncio.Event, ...], timeout_s: float) -> None:
    """Wait until one of ``events`` is set, at most ``timeout_s``."""
    if timeout_s <= 0 or any(event.is_set() for event in events):
        return
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
