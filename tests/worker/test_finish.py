"""Storing a final status rides out a database outage (worker/finish.py)."""

from __future__ import annotations

from typing import Any

import pytest

from graphrun.errors import BackendUnavailableError
from graphrun.store.base import ExecutionStatus
from graphrun.worker import finish


class FlakyStore:
    """Refuses ``failures`` times with the store's own "unreachable" error, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def finish_execution(self, *args: Any) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise BackendUnavailableError("database unreachable")
        return "stored"


class Execution:
    id = "x1"
    attempt = 1


async def test_storing_is_retried_while_the_database_is_away() -> None:
    store = FlakyStore(failures=2)
    stored = await finish._store(store, Execution(), ExecutionStatus.SUCCEEDED, {}, None)  # type: ignore[arg-type]
    assert stored == "stored"
    assert store.calls == 3


async def test_storing_gives_up_after_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        finish,
        "_STORE_RETRY",
        finish._STORE_RETRY.__class__(initial_s=0.01, max_s=0.02, deadline_s=0.1, retry_on=(BackendUnavailableError,)),
    )
    store = FlakyStore(failures=10_000)
    with pytest.raises(BackendUnavailableError):
        await finish._store(store, Execution(), ExecutionStatus.SUCCEEDED, {}, None)  # type: ignore[arg-type]
    assert store.calls > 2
