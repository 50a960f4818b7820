"""The executions this process runs now, each with its :class:`ActiveRun`, and the follow hints of
those it may run next.

What must stay true: an execution is registered here from its claim until its outcome is recorded
(or it is let go), so that a cancel or a follow that arrives meanwhile reaches it; ``idle`` is set
exactly when none is registered.
"""

from __future__ import annotations

import asyncio
import time

from graphrun.worker.grace import FollowHints
from graphrun.worker.state import ActiveRun


class ActiveRuns:
    def __init__(self, *, keep_hints: bool) -> None:
        self._runs: dict[str, ActiveRun] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        # Only a start grace has a use for hints that come before the claim.
        self._hints = FollowHints() if keep_hints else None

    def __len__(self) -> int:
        return len(self._runs)

    def ids(self) -> list[str]:
        return list(self._runs)

    def add(self, execution_id: str) -> ActiveRun:
        run = self._runs[execution_id] = ActiveRun()
        if self._hints is not None and (followed_at := self._hints.pop(execution_id)) is not None:
            run.follow(followed_at)
        self._idle.clear()
        return run

    def remove(self, execution_id: str) -> None:
        self._runs.pop(execution_id, None)
        if not self._runs:
            self._idle.set()

    def cancel(self, execution_id: str) -> bool:
        """Ask a running execution to stop; whether it runs here."""
        run = self._runs.get(execution_id)
        if run is None:
            return False
        run.cancel()
        return True

    def followed(self, execution_id: str) -> None:
        run = self._runs.get(execution_id)
        if run is not None:
            run.follow(time.monotonic())
        elif self._hints is not None:
            self._hints.add(execution_id, time.monotonic())

    def hand_over_all(self) -> int:
        for run in self._runs.values():
            run.hand_over()
        return len(self._runs)

    async def wait_idle(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True
