"""The one retry policy: what graphrun does while a backend it needs is away.

Exponential backoff with "equal jitter": the n-th wait is drawn between half of and all of
``min(max_s, initial_s * 2**(n-1))``. Every process of a deployment loses Redis at the same moment
and would otherwise come back in lockstep; the random half spreads them, and the fixed half keeps a
floor, so a connection that fails at once is never retried in a tight loop.

Only errors that say "unreachable" are retried (by default ``errors.UNAVAILABLE``); anything else,
and cancellation, passes straight through. An outage logs one warning, at its first failure, and
one line when it is over, not a line per try.

Long-lived readers (pub/sub, the task queue, the stream hub) retry one unit of work at a time
(connect if need be, then read one reply), so a successful read ends the outage and the next one
starts its backoff from ``initial_s`` again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    stop_never,
    wait_exponential,
    wait_random_exponential,
)

from graphrun.redis.errors import UNAVAILABLE

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial_s: float = 0.1
    max_s: float = 5.0
    deadline_s: float | None = None
    """Give up after this long and raise the last error; None: retry until it succeeds (or the
    caller is cancelled)."""
    retry_on: tuple[type[BaseException], ...] = UNAVAILABLE

    def retrying(self, what: str, log: logging.Logger) -> AsyncRetrying:
        """A tenacity retrier for one outage; ``what`` names the operation in its log lines."""
        half, cap = self.initial_s / 2, self.max_s / 2
        deadline = self.deadline_s

        def warn_once(state: RetryCallState) -> None:
            if state.attempt_number == 1 and state.outcome is not None:
                exc = state.outcome.exception()
                until = f" for up to {deadline:g} s" if deadline is not None else ""
                log.warning("%s failed (%s: %s); retrying%s", what, type(exc).__name__, exc, until)

        return AsyncRetrying(
            retry=retry_if_exception_type(self.retry_on),
            wait=wait_exponential(multiplier=half, max=cap) + wait_random_exponential(multiplier=half, max=cap),
            stop=stop_never if deadline is None else stop_after_delay(deadline),
            before_sleep=warn_once,
            reraise=True,  # the caller sees the backend's own error, not tenacity's RetryError
        )

    async def call(self, fn: Callable[[], Awaitable[T]], what: str, log: logging.Logger) -> T:
        """``await fn()``, retried under this policy (its deadline counted from the first failure)."""
        # The first try runs bare: it is on hot paths (every stream-hub read, every event write),
        # and building a retrier costs about 30 µs. Only a failure pays for one; the retrier then
        # counts that failure as its first attempt.
        try:
            return await fn()
        except self.retry_on as exc:
            failed: list[BaseException] = [exc]

        async def again() -> T:
            if failed:
                raise failed.pop()
            return await fn()

        retrying = self.retrying(what, log)
        result: T = await retrying(again)
        tries = retrying.statistics.get("attempt_number", 1)
        if tries > 1:
            log.info("%s succeeded again after %d tries", what, tries)
        return result


RECONNECT = RetryPolicy()
"""For a process's long-lived Redis readers: 0.1 s growing to 5 s, for as long as Redis is away."""
