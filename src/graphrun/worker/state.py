"""An execution's life on this worker (:class:`ActiveRun`, a small state machine) and how its run
ended (:class:`Outcome`).

What must stay true:
- the first request to stop decides: a cancel, or a hand-over when this worker shuts down; a later
  request of the other kind changes nothing (a cancel's flag stays in Redis, so the attempt that
  takes a handed-over execution reads it at its claim);
- a lost lease overrides every other phase and is never left: another attempt may own the
  execution, and nothing this one writes lands any more;
- ``stopping`` is set exactly when the phase is no longer ``RUNNING``: whoever awaits a stop awaits it.
"""

from __future__ import annotations

import asyncio
import time
from enum import Enum, StrEnum

from graphrun.store.base import ExecutionStatus


class Phase(Enum):
    RUNNING = "running"
    """Claimed, its lease held; nothing asked it to stop."""
    CANCELLING = "cancelling"
    """A cancel was requested: the outcome is ``cancelled``, unless the run has ended already."""
    HANDING_OVER = "handing over"
    """This worker shuts down: back to the queue, for another worker to resume."""
    LEASE_LOST = "lease lost"
    """Its lease is gone (this worker was paused or cut off): stop, decide nothing."""


_NEXT: dict[Phase, frozenset[Phase]] = {
    Phase.RUNNING: frozenset({Phase.CANCELLING, Phase.HANDING_OVER, Phase.LEASE_LOST}),
    Phase.CANCELLING: frozenset({Phase.LEASE_LOST}),
    Phase.HANDING_OVER: frozenset({Phase.LEASE_LOST}),
    Phase.LEASE_LOST: frozenset(),
}


class ActiveRun:
    """One execution claimed by this process."""

    def __init__(self) -> None:
        self.phase = Phase.RUNNING
        self.stopping = asyncio.Event()
        self.started = time.monotonic()
        # A client follows it (since ``followed_at``): it need not wait out its start grace. Not a
        # phase: a followed run can still be cancelled, handed over or lose its lease.
        self.followed = asyncio.Event()
        self.followed_at: float | None = None

    def to(self, phase: Phase) -> bool:
        """Move to ``phase`` if the machine allows it from here; whether it moved."""
        if phase not in _NEXT[self.phase]:
            return False
        self.phase = phase
        self.stopping.set()
        return True

    def cancel(self) -> bool:
        return self.to(Phase.CANCELLING)

    def hand_over(self) -> bool:
        return self.to(Phase.HANDING_OVER)

    def lose_lease(self) -> bool:
        return self.to(Phase.LEASE_LOST)

    @property
    def cancelling(self) -> bool:
        return self.phase is Phase.CANCELLING

    @property
    def lease_lost(self) -> bool:
        return self.phase is Phase.LEASE_LOST

    @property
    def letting_go(self) -> bool:
        """It stops without deciding its outcome: another attempt will."""
        return self.phase in (Phase.HANDING_OVER, Phase.LEASE_LOST)

    def follow(self, at: float) -> None:
        if not self.followed.is_set():
            self.followed_at = at
            self.followed.set()


class Outcome(StrEnum):
    """How one attempt ended. The first five are final statuses this attempt decided and stored;
    the last two leave the execution to another attempt."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    INTERRUPTED = "interrupted"
    ABANDONED = "abandoned"
    """Its lease was lost: whoever holds it now decides, or the sweeper re-queues it."""
    HANDED_OVER = "handed over"
    """Put back on the queue, lease released, by a worker shutting down."""

    @property
    def status(self) -> ExecutionStatus | None:
        """The final status this outcome stores; None when it is left to another attempt."""
        return _STATUS_OF.get(self)

    @classmethod
    def of(cls, status: ExecutionStatus) -> Outcome:
        return cls(status.value)


_STATUS_OF = {
    Outcome.SUCCEEDED: ExecutionStatus.SUCCEEDED,
    Outcome.FAILED: ExecutionStatus.FAILED,
    Outcome.CANCELLED: ExecutionStatus.CANCELLED,
    Outcome.TIMED_OUT: ExecutionStatus.TIMED_OUT,
    Outcome.INTERRUPTED: ExecutionStatus.INTERRUPTED,
}
