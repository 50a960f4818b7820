"""A Redis pub/sub subscription that outlives Redis outages.

Messages published while the subscriber is away are lost (that is pub/sub): whoever listens must be
correct without them, and ``on_subscribed`` (run after every (re)subscription) is where it catches
up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("graphrun.redis.pubsub")


async def listen_forever(
    redis: Redis,
    handlers: Mapping[str, Callable[[bytes], object]],
    on_subscribed: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Call ``handlers[channel](data)`` for every message, on one connection for all the channels."""
    by_channel = {channel.encode(): handle for channel, handle in handlers.items()}
    backoff = 0.1
    while True:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*handlers)
            backoff = 0.1
            if on_subscribed is not None:
                await on_subscribed()
            async for message in pubsub.listen():
                handle = by_channel.get(message.get("channel"))
                if handle is None:
                    continue  # not a message of ours (a pong, say)
                try:
                    handle(message["data"])
                except Exception:  # one bad message must not end the subscription
                    log.exception("a message on %r was not handled", message.get("channel"))
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning("subscription to %s lost Redis (%s); reconnecting", ", ".join(handlers), exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
        finally:
            with suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
