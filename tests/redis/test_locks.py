"""The cross-process lock (graphrun/redis/locks.py), against a real Redis server."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from graphrun.redis.locks import Lock


async def test_one_owner_at_a_time(redis: Redis, prefix: str) -> None:
    first, second = Lock(redis, f"{prefix}lock", 10), Lock(redis, f"{prefix}lock", 10)
    assert await first.acquire()
    assert not await second.acquire()
    assert not await second.hold()
    assert await first.hold()
    assert await redis.get(f"{prefix}lock") == first.token.encode()


async def test_taking_it_sets_its_expiry_in_the_same_step(redis: Redis, prefix: str) -> None:
    lock = Lock(redis, f"{prefix}lock", 10)
    assert await lock.acquire()
    assert 0 < await redis.pttl(f"{prefix}lock") <= 10_000


async def test_only_the_owner_renews_it(redis: Redis, prefix: str) -> None:
    owner, other = Lock(redis, f"{prefix}lock", 10), Lock(redis, f"{prefix}lock", 10)
    assert await owner.acquire()
    await redis.pexpire(f"{prefix}lock", 500)
    assert not await other.renew()
    assert await redis.pttl(f"{prefix}lock") <= 500  # the other's renewal changed nothing
    assert await owner.renew()
    assert await redis.pttl(f"{prefix}lock") > 500


async def test_an_expired_lock_goes_to_another_and_its_old_owner_cannot_renew_it(redis: Redis, prefix: str) -> None:
    old, new = Lock(redis, f"{prefix}lock", 0.05), Lock(redis, f"{prefix}lock", 10)
    assert await old.acquire()
    while await redis.exists(f"{prefix}lock"):  # expiry, not a wall-clock guess
        await asyncio.sleep(0.01)
    assert await new.acquire()
    assert not await old.renew()  # paused past its expiry: it must not extend the new owner's lock
    assert not await old.hold()
    assert await redis.get(f"{prefix}lock") == new.token.encode()


async def test_release_by_another_is_a_no_op(redis: Redis, prefix: str) -> None:
    owner, other = Lock(redis, f"{prefix}lock", 10), Lock(redis, f"{prefix}lock", 10)
    assert await owner.acquire()
    assert not await other.release()
    assert await redis.get(f"{prefix}lock") == owner.token.encode()
    assert await owner.release()
    assert not await redis.exists(f"{prefix}lock")
    assert await other.acquire()  # free again


async def test_tokens_differ_per_lock_even_with_one_label(redis: Redis, prefix: str) -> None:
    a, b = Lock(redis, f"{prefix}lock", 10, label="host:1"), Lock(redis, f"{prefix}lock", 10, label="host:1")
    assert a.token != b.token and a.token.startswith("host:1:")
    assert await a.acquire()
    assert not await b.renew() and not await b.release()
