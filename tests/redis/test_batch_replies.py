"""The batcher reads replies itself (batch.py) and runs them through redis-py's response callbacks:
for every command graphrun sends through it, its reply must equal what redis-py's own
``execute_command`` returns for the same command, types included (``True``, not ``b"OK"``; ``None``,
not ``False``; parsed stream entries). redis-py is pinned to one major version because the batcher
leans on its internals; this is the test that says whether a new version still fits.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from graphrun.redis.batch import CommandBatcher

SRC = Path(__file__).resolve().parents[2] / "src" / "graphrun"

_FENCED = "return redis.error_reply('FENCED lease not held by attempt ' .. ARGV[1])"
_OWNED_DEL = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

# name: (setup, command). "{k}" stands for a key prefix: each side gets its own, with the same setup.
CASES: dict[str, tuple[list[tuple[Any, ...]], tuple[Any, ...]]] = {
    "SET EX": ([], ("SET", "{k}flag", b"1", "EX", 60)),
    "SET NX PX, free": ([], ("SET", "{k}lease", "1", "NX", "PX", 60_000)),
    "SET NX PX, taken": ([("SET", "{k}lease", "2")], ("SET", "{k}lease", "1", "NX", "PX", 60_000)),
    "EXISTS, set": ([("SET", "{k}flag", "1")], ("EXISTS", "{k}flag")),
    "EXISTS, unset": ([], ("EXISTS", "{k}flag")),
    "DEL": ([("SET", "{k}a", "1"), ("SET", "{k}b", "1")], ("DEL", "{k}a", "{k}b", "{k}c")),
    "PUBLISH": ([], ("PUBLISH", "{k}channel", "ex-1")),
    "LPUSH": ([("LPUSH", "{k}q", "x")], ("LPUSH", "{k}q", b'{"args":["ex-1"]}')),
    "EXPIRE, set": ([("SET", "{k}s", "1")], ("EXPIRE", "{k}s", 60)),
    "EXPIRE, unset": ([], ("EXPIRE", "{k}s", 60)),
    "XADD": ([], ("XADD", "{k}ev", "MAXLEN", "~", 100, "5-0", "k", "start", "d", "{}", "t", "")),
    "XRANGE": (
        [("XADD", "{k}ev", "1-0", "k", "a", "d", "{}"), ("XADD", "{k}ev", "2-0", "k", "b", "d", "{}")],
        ("XRANGE", "{k}ev", "(1-0", "+", "COUNT", 10),
    ),
    "XRANGE, empty": ([], ("XRANGE", "{k}ev", "(0-0", "+", "COUNT", 10)),
    "XREVRANGE": (
        [("XADD", "{k}ev", "1-0", "k", "a", "d", "{}"), ("XADD", "{k}ev", "2-0", "k", "b", "d", "{}")],
        ("XREVRANGE", "{k}ev", "+", "-", "COUNT", 1),
    ),
    "XREVRANGE, empty": ([], ("XREVRANGE", "{k}ev", "+", "-", "COUNT", 1)),
    "ZRANGE": ([("ZADD", "{k}z", 1, "a", 2, "b")], ("ZRANGE", "{k}z", 0, -1)),
    "EVAL, integer": ([("SET", "{k}lease", "1")], ("EVAL", _OWNED_DEL, 1, "{k}lease", "1")),
    "EVAL, nil": ([], ("EVAL", "return redis.call('GET', KEYS[1])", 1, "{k}missing")),
    "EVAL, table": ([], ("EVAL", "return {1, 'two', {3}}", 0)),
    "EVAL, error": ([], ("EVAL", _FENCED, 0, "1")),
    "CLIENT UNBLOCK": ([], ("CLIENT", "UNBLOCK", 2**62)),  # no such client
}


def _on(prefix: str, command: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a.replace("{k}", prefix) if isinstance(a, str) else a for a in command)


@pytest.mark.parametrize("case", CASES)
async def test_the_batchers_reply_equals_redis_pys(
    redis: Redis, batcher: CommandBatcher, prefix: str, case: str
) -> None:
    setup, command = CASES[case]
    mine, theirs = f"{prefix}batcher:", f"{prefix}redis-py:"
    for step in setup:
        await redis.execute_command(*_on(mine, step))
        await redis.execute_command(*_on(theirs, step))
    (got,) = await batcher.execute([_on(mine, command)])
    try:
        want: Any = await redis.execute_command(*_on(theirs, command))
    except ResponseError as exc:  # the batcher returns a failing command's error in its place
        want = exc
    if isinstance(want, Exception):
        assert type(got) is type(want) and str(got) == str(want)
    else:
        assert got == want
        assert _types(got) == _types(want)


def _types(reply: Any) -> Any:
    """The reply's shape in types, nested (``[b"1", [2]]`` -> ``[bytes, [int]]``)."""
    if isinstance(reply, list | tuple):
        return type(reply), [_types(r) for r in reply]
    if isinstance(reply, dict):
        return {k: _types(v) for k, v in reply.items()}
    return type(reply)


# Commands built in these files are sent by another way: the stream hub's reader builds its XREAD
# itself and sends it on its own connection.
NOT_BATCHED = {"XREAD"}


def test_every_command_graphrun_batches_is_covered() -> None:
    """Every command name written in a module that uses the batcher is one of the cases above."""
    sent: set[str] = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        if "batcher" not in text or path.name == "batch.py":
            continue
        sent |= set(re.findall(r'\(\s*"([A-Z]{3,})",', text))
    covered = {case.split()[0].rstrip(",") for case in CASES}
    assert sent - NOT_BATCHED <= covered, f"no reply test for {sorted(sent - NOT_BATCHED - covered)}"
