"""The start grace, on its own: what ends it, and when there is none."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from graphrun.worker.grace import FOLLOW_SETTLE_S, FollowHints, start_grace
from graphrun.worker.state import ActiveRun


async def timed(run: ActiveRun, grace_s: float, timeout_s: float = 60, queued_s: float = 0) -> float:
    started = time.monotonic()
    await start_grace(run, datetime.now(UTC) - timedelta(seconds=queued_s), grace_s, timeout_s)
    return time.monotonic() - started


async def test_a_run_nobody_follows_waits_out_its_grace() -> None:
    assert await timed(ActiveRun(), 0.2) >= 0.15


async def test_a_grace_takes_at_most_half_the_time_limit() -> None:
    assert await timed(ActiveRun(), 30, timeout_s=0.2) < 5


async def test_a_run_queued_for_twice_its_grace_gets_none() -> None:
    assert await timed(ActiveRun(), 30, queued_s=61) < 1


async def test_a_request_to_stop_ends_it() -> None:
    run = ActiveRun()
    asyncio.get_running_loop().call_later(0.05, run.cancel)
    assert await timed(run, 30) < 5


async def test_a_follower_ends_it_shortly_after() -> None:
    run = ActiveRun()
    asyncio.get_running_loop().call_later(0.05, lambda: run.follow(time.monotonic()))
    assert await timed(run, 30) < 5
    followed_before = ActiveRun()
    followed_before.follow(time.monotonic() - 10 * FOLLOW_SETTLE_S)
    assert await timed(followed_before, 30) < 1


def test_follow_hints_keep_the_first_time_and_drop_the_oldest() -> None:
    hints = FollowHints(kept=2)
    hints.add("a", 1.0)
    hints.add("a", 2.0)
    hints.add("b", 3.0)
    hints.add("c", 4.0)
    assert hints.pop("a") is None
    assert hints.pop("b") == 3.0
    assert hints.pop("b") is None
    assert hints.pop("c") == 4.0
