"""Holding a lease: renewals, a lost lease, a renewal that fails (no Redis: a fake Leases)."""

from __future__ import annotations

import asyncio

from graphrun.redis.lease import Leases
from graphrun.worker.lease import HeldLease


class FakeLeases:
    """Renewals answer from ``answers`` in turn (True: held, False: gone, an exception: raised)."""

    def __init__(self, *answers: bool | Exception) -> None:
        self.ttl_ms = 30  # a renewal every 10 ms
        self.answers = list(answers)
        self.renewals = 0
        self.released: list[tuple[str, int]] = []

    def key(self, execution_id: str) -> str:
        return f"lease:{execution_id}"

    async def renew(self, execution_id: str, attempt: int) -> bool:
        self.renewals += 1
        answer = self.answers.pop(0) if self.answers else True
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def release(self, execution_id: str, attempt: int) -> None:
        self.released.append((execution_id, attempt))
        raise ConnectionError("Redis away")


def held(leases: FakeLeases) -> HeldLease:
    return HeldLease(leases, "ex1", 3)  # type: ignore[arg-type]


async def test_its_fence_is_the_lease_key_and_the_attempt() -> None:
    assert held(FakeLeases()).fence == ("lease:ex1", 3)


async def test_a_renewal_that_finds_it_gone_stops_the_run_once() -> None:
    leases = FakeLeases(True, False)
    lost = asyncio.Event()
    lease = held(leases)
    lease.keep(on_lost=lost.set)
    await asyncio.wait_for(lost.wait(), 5)
    await asyncio.sleep(0.05)
    assert leases.renewals == 2  # no renewal after the loss
    lease.stop()


async def test_a_failed_renewal_is_not_a_loss() -> None:
    leases = FakeLeases(ConnectionError("Redis away"), ConnectionError("Redis away"), True)
    lost: list[bool] = []
    lease = held(leases)
    lease.keep(on_lost=lambda: lost.append(True))
    while leases.renewals < 4:
        await asyncio.sleep(0.01)
    lease.stop()
    assert not lost


async def test_a_release_that_fails_is_left_to_expire() -> None:
    leases = FakeLeases()
    await held(leases).release()  # does not raise
    assert leases.released == [("ex1", 3)]


def test_the_fake_stands_for_leases() -> None:
    for name in ("key", "renew", "release"):
        assert callable(getattr(Leases, name)) and callable(getattr(FakeLeases, name))
