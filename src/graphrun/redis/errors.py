"""Redis's failures in graphrun's exception tree, mapped here once (as ``store/runner.py``'s
``database_errors`` maps the database's).

- Unreachable: connection refused or lost, a timeout, Redis still loading its data set (a
  ``ConnectionError`` in redis-py), or a socket error redis-py did not wrap. These become
  :class:`~graphrun.errors.BackendUnavailableError` ``("redis")``, and they are exactly what the
  retry policy (``retry.py``) retries: trying again later may succeed.
- A command Redis refused (``ResponseError``) is not mapped: it is either a bug or a condition the
  caller reads itself (the event log's ``FENCED``), and retrying would not change it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from graphrun.errors import BackendUnavailableError

CLIENT_UNAVAILABLE: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)
"""What redis-py raises when Redis cannot be reached (the API answers these with 503)."""

UNAVAILABLE: tuple[type[Exception], ...] = (*CLIENT_UNAVAILABLE, OSError)
"""The same, plus socket errors that code reading a connection directly may meet."""


def unavailable(exc: BaseException) -> BackendUnavailableError:
    return BackendUnavailableError("redis", exc)


@contextmanager
def redis_errors() -> Iterator[None]:
    """Redis unreachable inside the block: :class:`BackendUnavailableError`, the cause chained."""
    try:
        yield
    except UNAVAILABLE as exc:
        raise unavailable(exc) from exc
