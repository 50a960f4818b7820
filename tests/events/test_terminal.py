"""The one builder of terminal events, for every writer and for the stream's fallback."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from graphrun.events.model import TERMINAL_KINDS, EventKind
from graphrun.events.terminal import stored_terminal_event, terminal_event
from graphrun.store.base import Execution, ExecutionStatus


def execution(status: ExecutionStatus, **fields: object) -> Execution:
    values: dict[str, object] = {
        "id": "ex1",
        "workflow_id": 1,
        "workflow_version": 1,
        "status": status,
        "input": {"n": 0},
        "output": None,
        "error": None,
        "attempt": 1,
        "timeout_s": None,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "started_at": None,
        "finished_at": None,
    }
    return Execution(**{**values, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "kind", "field"),
    [
        (ExecutionStatus.SUCCEEDED, EventKind.COMPLETE, "output"),
        (ExecutionStatus.FAILED, EventKind.ERROR, "error"),
        (ExecutionStatus.CANCELLED, EventKind.CANCELLED, None),
        (ExecutionStatus.TIMED_OUT, EventKind.TIMEOUT, "timeout_s"),
    ],
)
def test_each_final_status_has_its_event_with_only_its_own_field(
    status: ExecutionStatus, kind: EventKind, field: str | None
) -> None:
    given = {"output": {"n": 3}, "error": {"type": "RuntimeError", "message": "fail_at"}, "timeout_s": 2.5}
    event = terminal_event("ex1", status, **given, ts=12.5)  # type: ignore[arg-type]
    data = {field: given[field]} if field else {}
    assert event.kind is kind and event.terminal
    assert event.data == data
    assert json.loads(event.payload()) == {"execution_id": "ex1", **data, "ts": 12.5}


def test_a_complete_event_always_has_its_output() -> None:
    assert terminal_event("ex1", ExecutionStatus.SUCCEEDED).data == {"output": None}


def test_every_terminal_kind_has_a_status() -> None:
    kinds = {terminal_event("ex1", s).kind for s in ExecutionStatus if s.finished}
    assert kinds == TERMINAL_KINDS


@pytest.mark.parametrize("status", [ExecutionStatus.QUEUED, ExecutionStatus.RUNNING])
def test_an_unfinished_status_has_none(status: ExecutionStatus) -> None:
    with pytest.raises(ValueError, match="not a final status"):
        terminal_event("ex1", status)
    assert stored_terminal_event(execution(status), default_timeout_s=60) is None


def test_rebuilt_from_the_store_it_says_what_the_writer_wrote() -> None:
    finished = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    stored = execution(ExecutionStatus.SUCCEEDED, output={"n": 5}, finished_at=finished)
    rebuilt = stored_terminal_event(stored, default_timeout_s=60)
    assert rebuilt is not None
    assert (
        rebuilt.payload() == terminal_event("ex1", ExecutionStatus.SUCCEEDED, output={"n": 5}, ts=rebuilt.ts).payload()
    )
    assert rebuilt.ts == finished.timestamp()
    failed = execution(ExecutionStatus.FAILED, error={"type": "WorkerLost", "message": "m"})
    rebuilt = stored_terminal_event(failed, default_timeout_s=60)
    assert rebuilt is not None and rebuilt.data == {"error": {"type": "WorkerLost", "message": "m"}}
    assert rebuilt.ts == failed.created_at.timestamp()  # no finish time stored: the creation's


def test_a_rebuilt_timeout_names_the_submits_limit_else_the_default() -> None:
    own = stored_terminal_event(execution(ExecutionStatus.TIMED_OUT, timeout_s=3.0), default_timeout_s=60)
    default = stored_terminal_event(execution(ExecutionStatus.TIMED_OUT), default_timeout_s=60)
    assert own is not None and own.data == {"timeout_s": 3.0}
    assert default is not None and default.data == {"timeout_s": 60}
