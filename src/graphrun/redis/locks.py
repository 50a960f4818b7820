"""A lock across processes: one owner at a time, lost if its owner stops renewing it.

The key holds the owner's token, random per :class:`Lock` object, so that:
- taking it is one atomic ``SET NX PX`` (it never exists without its expiry);
- renewing and releasing are Lua scripts that act only while the key still holds this owner's
  token: an owner that was paused past the expiry, and whose lock another process has since taken,
  can neither extend nor delete the new owner's lock.

What the lock does not give: an owner paused past the expiry may still be running its critical
section while the next owner starts. Whatever it guards must tolerate that (the sweeper's moves are
conditional writes in the store; see ``worker/sweeper.py``).
"""

from __future__ import annotations

import secrets

from redis.asyncio import Redis

# Owner-checked scripts, shared with execution leases (lease.py), whose owner token is the attempt.
# KEYS[1]: the key. ARGV: token, ttl in ms.
RENEW_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS[1]: the key. ARGV: token.
RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Lock:
    """Straight to Redis, not through the process's batcher: a renewal must not wait behind a
    large batch (as lease renewals, ``lease.py``). ``label`` (host:pid, say) goes before the random
    part of the token, so that ``GET`` on the key tells who holds it."""

    def __init__(self, redis: Redis, key: str, ttl_s: float, *, label: str = "") -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.token = f"{label}:{secrets.token_hex(8)}" if label else secrets.token_hex(8)

    async def acquire(self) -> bool:
        """Take the lock if nobody holds it."""
        return bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    async def renew(self) -> bool:
        """Extend the lock by its ttl if this owner still holds it."""
        return bool(await self.redis.eval(RENEW_IF_OWNER, 1, self.key, self.token, self.ttl_ms))

    async def hold(self) -> bool:
        """Renew the lock, or take it if it is free: whether this owner holds it now."""
        return await self.renew() or await self.acquire()

    async def release(self) -> bool:
        """Give the lock up if this owner holds it (someone else's lock is left alone)."""
        return bool(await self.redis.eval(RELEASE_IF_OWNER, 1, self.key, self.token))
