"""The one retry policy (graphrun/redis/retry.py), in process: no Redis needed."""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from tenacity import RetryCallState

from graphrun.redis.retry import RECONNECT, RetryPolicy

QUICK = RetryPolicy(initial_s=0.001, max_s=0.004)
log = logging.getLogger("graphrun.test.retry")


def flaky(failures: int, exc: Exception | None = None):  # type: ignore[no-untyped-def]
    calls = [0]

    async def fn() -> str:
        calls[0] += 1
        if calls[0] <= failures:
            raise exc or RedisConnectionError("Connection refused")
        return "ok"

    return fn, calls


async def test_a_first_success_is_returned_as_is() -> None:
    fn, calls = flaky(0)
    assert await QUICK.call(fn, "reading", log) == "ok"
    assert calls == [1]


async def test_an_outage_is_retried_with_one_warning_and_one_line_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fn, calls = flaky(6)
    with caplog.at_level(logging.INFO, logger=log.name):
        assert await QUICK.call(fn, "reading the queue", log) == "ok"
    assert calls == [7]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "reading the queue failed" in warnings[0].getMessage()
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "reading the queue succeeded again after 7 tries"
    ]


async def test_what_is_not_an_outage_is_not_retried() -> None:
    fn, calls = flaky(1, ResponseError("WRONGTYPE"))
    with pytest.raises(ResponseError):
        await QUICK.call(fn, "reading", log)
    assert calls == [1]


async def test_past_its_deadline_the_backends_own_error_is_raised() -> None:
    fn, calls = flaky(10**9)
    with pytest.raises(RedisConnectionError, match="refused"):
        await RetryPolicy(initial_s=0.001, max_s=0.002, deadline_s=0.05).call(fn, "writing", log)
    assert calls[0] > 2


def test_waits_grow_to_the_cap_and_are_spread() -> None:
    retrying = RECONNECT.retrying("x", log)

    def wait(attempt: int) -> float:
        state = RetryCallState(retrying, None, (), {})
        state.attempt_number = attempt
        return float(retrying.wait(state))

    for attempt, full in [(1, 0.1), (2, 0.2), (3, 0.4), (6, 3.2), (7, 5.0), (30, 5.0)]:
        waits = [wait(attempt) for _ in range(200)]
        # Equal jitter: between half and all of the capped exponential, and not all the same.
        assert all(full / 2 <= w <= full + 1e-9 for w in waits), (attempt, min(waits), max(waits))
        assert max(waits) - min(waits) > full / 10
