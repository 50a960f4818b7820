"""A Redis pub/sub subscription that outlives Redis outages.

Messages published while the subscriber is away are lost (that is pub/sub): whoever listens must be
correct without them, and ``on_subscribed`` (run after every (re)subscription) is where it catches
up.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from graphrun.redis.errors import UNAVAILABLE
from graphrun.redis.retry import RECONNECT

log = logging.getLogger("graphrun.redis.pubsub")


async def listen_forever(
    redis: Redis,
    handlers: Mapping[str, Callable[[bytes], object]],
    on_subscribed: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Call ``handlers[channel](data)`` for every message, on one connection for all the channels."""
    by_channel = {channel.encode(): handle for channel, handle in handlers.items()}
    pubsub: PubSub | None = None

    async def next_message() -> Any:
        # The unit the retry policy repeats: (re)subscribe if need be, then wait for one message.
        # A message received ends an outage, so the next one backs off from the start again.
        nonlocal pubsub
        try:
            if pubsub is None:
                pubsub = redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(*handlers)
                if on_subscribed is not None:
                    await on_subscribed()
            return await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
        except UNAVAILABLE:
            await _close(pubsub)
            pubsub = None
            raise

    try:
        while True:
            message = await RECONNECT.call(next_message, f"subscription to {', '.join(handlers)}", log)
            handle = by_channel.get(message["channel"]) if message is not None else None
            if handle is None:
                continue  # a subscribe confirmation, or not a message of ours (a pong, say)
            try:
                handle(message["data"])
            except Exception:  # one bad message must not end the subscription
                log.exception("a message on %r was not handled", message.get("channel"))
    finally:
        await _close(pubsub)


async def _close(pubsub: PubSub | None) -> None:
    if pubsub is not None:
        with suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]
