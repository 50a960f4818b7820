"""An execution's phase on its worker, and its outcome."""

from __future__ import annotations

import pytest

from graphrun.store.base import ExecutionStatus
from graphrun.worker.state import ActiveRun, Outcome, Phase


def test_a_run_starts_running_and_not_stopping() -> None:
    run = ActiveRun()
    assert run.phase is Phase.RUNNING
    assert not run.stopping.is_set()
    assert not (run.cancelling or run.letting_go or run.lease_lost)


@pytest.mark.parametrize(
    ("first", "then", "ends_in"),
    [
        (Phase.CANCELLING, Phase.HANDING_OVER, Phase.CANCELLING),
        (Phase.HANDING_OVER, Phase.CANCELLING, Phase.HANDING_OVER),
        (Phase.CANCELLING, Phase.LEASE_LOST, Phase.LEASE_LOST),
        (Phase.HANDING_OVER, Phase.LEASE_LOST, Phase.LEASE_LOST),
        (Phase.LEASE_LOST, Phase.CANCELLING, Phase.LEASE_LOST),
        (Phase.LEASE_LOST, Phase.HANDING_OVER, Phase.LEASE_LOST),
    ],
)
def test_the_first_request_to_stop_decides_but_a_lost_lease_overrides_it(
    first: Phase, then: Phase, ends_in: Phase
) -> None:
    run = ActiveRun()
    assert run.to(first)
    assert run.stopping.is_set()
    assert run.to(then) is (then is ends_in)
    assert run.phase is ends_in
    assert run.stopping.is_set()


def test_named_transitions() -> None:
    run = ActiveRun()
    assert run.cancel() and run.cancelling
    assert not run.cancel()  # a second cancel changes nothing
    assert not run.hand_over() and not run.letting_go
    assert run.lose_lease() and run.lease_lost and run.letting_go
    assert not run.to(Phase.RUNNING)


def test_following_is_no_phase_and_keeps_its_first_time() -> None:
    run = ActiveRun()
    run.follow(1.0)
    run.follow(2.0)
    assert run.followed.is_set() and run.followed_at == 1.0
    assert run.phase is Phase.RUNNING and not run.stopping.is_set()


def test_outcomes_that_store_a_final_status_and_those_that_leave_it_to_another_attempt() -> None:
    for status in ExecutionStatus:
        if status.finished:
            assert Outcome.of(status).status is status
    assert Outcome.ABANDONED.status is None
    assert Outcome.HANDED_OVER.status is None
    # The worker's one line per execution names the outcome in these words.
    assert f"{Outcome.HANDED_OVER}" == "handed over"
    assert f"{Outcome.SUCCEEDED}" == "succeeded"
