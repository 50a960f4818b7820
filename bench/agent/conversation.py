"""One user of the agent, through `langgraph_sdk` as an application would use it: a thread, then turns
streamed with `stream_mode=["messages-tuple", "values"]`, a pause between them; on some turns a second
message sent during the answer (double-texting, the server's default multitask strategy), on some
the connection dropped mid-answer and the run rejoined with `runs.join_stream(last_event_id=...)`.

Everything it sees goes into a `Tally` shared by the client process's conversations: each token id
received (to be checked against what the fake LLM sent), the added latency of tokens that came
live, turn outcomes and errors.
"""

from __future__ import annotations

import asyncio
import importlib.metadata as md
import random
import re
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import StreamMode, StreamPart

MODES: list[StreamMode] = ["messages-tuple", "values"]
# What an app that rejoins dropped streams asks for: a stream it can resume, and a run that goes on
# while its client is away. "continue" is LangGraph's default; said outright, it holds everywhere.
RESUMABLE: dict[str, Any] = {"stream_resumable": True, "on_disconnect": "continue"}
TOKEN = re.compile(r"([A-Za-z0-9-]+:\d+:\d+:\d+)@(\d+) ")
ASSISTANT = "agent"


@dataclass
class Shape:
    """What the conversations do; the same for every system."""

    turns: int = 3
    tokens: int = 30
    pace_ms: int = 20
    pause_s: tuple[float, float] = (1.0, 3.0)
    double_text_share: float = 0.1
    rejoin_share: float = 0.1
    drop_after_tokens: int = 5  # a dropped or double-texted answer: after this many tokens
    rejoin_gap_s: tuple[float, float] = (0.2, 0.5)  # offline this long, so the replay has tokens in it
    seed: int = 18


@dataclass
class Tally:
    received: Counter[str] = field(default_factory=Counter)  # token id -> times received
    latency_ms: list[float] = field(default_factory=list)  # live tokens: receive - send
    replayed: int = 0  # tokens received after a rejoin that were sent before it
    turn_s: list[float] = field(default_factory=list)  # submit -> end of a completed turn
    turns_ok: int = 0
    turns_failed: int = 0  # an error: an exception, an `error` event, a run that ended without its answer
    turns_unanswered: int = 0  # still being answered at the scenario's time limit
    unanswered_status: dict[str, int] = field(default_factory=dict)  # of a sample of those
    conversations_complete: int = 0  # every turn answered
    errors: Counter[str] = field(default_factory=Counter)
    double_text: Counter[str] = field(default_factory=Counter)
    rejoins: int = 0
    first_turn_start: float | None = None
    last_turn_end: float | None = None


@dataclass
class Follow:
    """What one stream of one run showed."""

    run_id: str | None = None
    last_id: str | None = None
    tokens: int = 0
    ended: bool = False
    error: str | None = None
    replay_before_ns: int = 0  # tokens sent before this are a rejoin's replay: not live latency
    answered: bool = False  # the last `values` ends with the agent's text answer
    replayed: int = 0

    def failure(self) -> str | None:
        """Why this run's turn is not a success for its user, or None."""
        if self.error:
            return self.error
        if not self.ended:
            return "the stream ended before the run"
        return None if self.answered else "the stream ended without the answer in its last `values`"


def consume(part: StreamPart, follow: Follow, tally: Tally) -> None:
    now = time.time_ns()
    data: Any = part.data  # typed as a dict, but a `messages` event's is a [chunk, metadata] list
    if part.id:
        follow.last_id = part.id
    if part.event == "metadata" and isinstance(data, dict) and "run_id" in data:
        follow.run_id = follow.run_id or str(data["run_id"])
    elif part.event == "messages" and isinstance(data, list) and data:
        chunk: dict[str, Any] = data[0] if isinstance(data[0], dict) else {}
        # Only what the chunk itself carries: `content` and the raw `tool_call_chunks` args. Its
        # `tool_calls` are those args parsed again, and would count every token twice.
        texts = [chunk.get("content")] + [c.get("args") for c in chunk.get("tool_call_chunks") or []]
        for text in texts:
            if not isinstance(text, str):
                continue
            for token, sent_ns in TOKEN.findall(text):
                tally.received[token] += 1
                follow.tokens += 1
                if int(sent_ns) < follow.replay_before_ns:
                    tally.replayed += 1
                    follow.replayed += 1
                else:
                    tally.latency_ms.append((now - int(sent_ns)) / 1e6)
    elif part.event == "values" and isinstance(data, dict):
        messages = data.get("messages") or [{}]
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        follow.answered = last.get("type") == "ai" and not last.get("tool_calls") and bool(last.get("content"))
    elif part.event == "error":
        follow.error = str(data.get("message") if isinstance(data, dict) else data)[:120]


async def close(stream: AsyncIterator[StreamPart]) -> None:
    # The SDK's streams are async generators; closing one closes its HTTP response (a real drop).
    await cast(AsyncGenerator[StreamPart, None], stream).aclose()


async def read(
    stream: AsyncIterator[StreamPart], follow: Follow, tally: Tally, drop: Callable[[], bool] | None = None
) -> None:
    """Follow ``stream`` until the SDK's iterator ends, which is the run's end (``follow.ended``):
    LangGraph's server sends no `end` event, it closes the stream, and the SDK reconnects by itself
    to a stream the server cut. Or until ``drop()`` says this client drops the connection."""
    try:
        async for part in stream:
            consume(part, follow, tally)
            if drop is not None and drop():
                return
        follow.ended = True
    finally:
        await close(stream)


async def run_status(client: LangGraphClient, thread_id: str, run_id: str | None) -> str:
    if not run_id:
        return "no run id yet"
    try:
        status: str = (await client.runs.get(thread_id, run_id))["status"]
    except Exception as exc:
        return f"unknown: {reason(exc)}"
    return status


async def with_status(client: LangGraphClient, thread_id: str, follow: Follow, failure: str) -> str:
    """A failed turn's reason, with its run's status as the server tells it afterwards."""
    if follow.error or not follow.run_id:
        return failure
    return f"{failure} (run status {await run_status(client, thread_id, follow.run_id)})"


async def sample_statuses(runs: list[tuple[LangGraphClient, str, str | None]], k: int = 20) -> dict[str, int]:
    """The statuses of a few of the runs left unanswered (all of them would load a busy server)."""
    found = await asyncio.gather(*(run_status(*run) for run in runs[:k]))
    return dict(Counter(found))


def reason(exc: BaseException) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "")


def shared_client(url: str) -> LangGraphClient:
    """The client every conversation of this process uses: langgraph_sdk's, over one httpx client
    without a connection cap. `get_client()` per conversation would be closer to one app per user,
    but each builds an SSL context (~20–90 ms of blocked event loop here), which at 1,000
    conversations would stall the very client that timestamps the tokens. The server sees the same
    either way: one connection per stream in flight."""
    http = httpx.AsyncClient(
        base_url=url,
        transport=httpx.AsyncHTTPTransport(retries=5, limits=httpx.Limits(max_connections=None)),
        timeout=httpx.Timeout(connect=30, read=300, write=300, pool=30),
        headers={"User-Agent": f"langgraph-sdk-py/{md.version('langgraph-sdk')} (graphrun bench/agent)"},
    )
    return LangGraphClient(http)


class Conversation:
    def __init__(self, client: LangGraphClient, conv: str, index: int, shape: Shape, tally: Tally) -> None:
        self.conv, self.shape, self.tally = conv, shape, tally
        self.rng = random.Random(shape.seed * 1_000_003 + index)
        self.client = client
        self.thread_id = ""
        self.turns_ok = 0
        self.did: set[str] = set()  # "rejoined", "double-texted": which lost tokens go with what
        self.in_turn = False  # a turn is being answered (a cancel now cuts it short)
        self.current: Follow | None = None  # the run of the turn being answered
        self.failed = False

    def message(self, turn: int, tool: bool = True, tokens: int | None = None, pace_ms: int | None = None) -> Any:
        n = tokens or self.shape.tokens
        pace = pace_ms or self.shape.pace_ms
        text = f"bench conv={self.conv} turn={turn} tokens={n} pace_ms={pace} tool={int(tool)}"
        return {"messages": [{"role": "user", "content": text}]}

    async def open(self) -> None:
        thread = await self.client.threads.create()
        self.thread_id = str(thread["thread_id"])

    async def run(self, deadline: float) -> None:
        """Its turns, with pauses, each begun before ``deadline`` (perf_counter); a turn that fails is
        counted and the next one still tried."""
        shape, rng = self.shape, self.rng
        double_turn = rng.randint(1, shape.turns) if rng.random() < shape.double_text_share else 0
        rejoin_turn = rng.randint(1, shape.turns) if rng.random() < shape.rejoin_share else 0
        self.in_turn = True  # from here: the first turn begins with its thread
        try:
            await self.open()
        except Exception as exc:
            self.tally.errors[f"create thread: {reason(exc)}"] += 1
            self.tally.turns_failed += 1
            self.failed, self.in_turn = True, False
            return
        for turn in range(1, shape.turns + 1):
            if turn > 1:
                await asyncio.sleep(rng.uniform(*shape.pause_s))
                if time.perf_counter() >= deadline:
                    return
            self.in_turn = True
            self.did |= {"rejoined"} if turn == rejoin_turn else set()
            self.did |= {"double-texted"} if turn == double_turn else set()
            await self.turn(turn, double=turn == double_turn, rejoin=turn == rejoin_turn)
            self.in_turn = False
        if self.turns_ok == shape.turns:
            self.tally.conversations_complete += 1

    async def turn(self, turn: int, *, double: bool, rejoin: bool) -> None:
        tally, t0 = self.tally, time.perf_counter()
        tally.first_turn_start = min(tally.first_turn_start or t0, t0)
        follow, extra = Follow(), list[asyncio.Future[None]]()
        self.current = follow

        def midway() -> bool:
            """After a few tokens: the second message of a double-texter, or the drop of a rejoiner."""
            if follow.tokens < self.shape.drop_after_tokens:
                return False
            if double and not extra:
                extra.append(asyncio.ensure_future(self.double_text(turn, follow)))
            return rejoin

        try:
            stream = self.client.runs.stream(
                self.thread_id,
                ASSISTANT,
                input=self.message(turn),
                stream_mode=MODES,
                **RESUMABLE,
            )
            await read(stream, follow, tally, midway)
            if rejoin and not follow.ended and follow.run_id:
                await self.rejoin(follow)
            if extra:
                await asyncio.gather(*extra)
        except Exception as exc:
            follow.error = follow.error or reason(exc)
        failure = follow.failure()
        if failure is None:
            end = time.perf_counter()
            self.turns_ok += 1
            tally.turns_ok += 1
            tally.turn_s.append(end - t0)
            tally.last_turn_end = max(tally.last_turn_end or end, end)
        else:
            tally.turns_failed += 1
            tally.errors[await with_status(self.client, self.thread_id, follow, failure)] += 1
            self.failed = True

    async def rejoin(self, follow: Follow) -> None:
        assert follow.run_id
        await asyncio.sleep(self.rng.uniform(*self.shape.rejoin_gap_s))
        self.tally.rejoins += 1
        follow.replay_before_ns = time.time_ns()
        # No stream_mode: the run's own. LangGraph's dev server drops every `messages` event from a join
        # that names "messages-tuple" (the mode the run was created with), so naming it loses them all.
        stream = self.client.runs.join_stream(self.thread_id, follow.run_id, last_event_id=follow.last_id)
        await read(stream, follow, self.tally)

    async def double_text(self, turn: int, first: Follow) -> None:
        """A second message while the first is answered, streamed as a chat UI sends any message; what
        the server did with it (its default multitask strategy) is recorded."""
        second = Follow()
        try:
            stream = self.client.runs.stream(
                self.thread_id,
                ASSISTANT,
                input=self.message(turn, tool=False),
                stream_mode=MODES,
                **RESUMABLE,
            )
            await read(stream, second, self.tally)
        except httpx.HTTPStatusError as exc:
            self.tally.double_text[f"second message refused: HTTP {exc.response.status_code}"] += 1
            return
        except Exception as exc:
            self.tally.double_text[f"second message failed: {reason(exc)}"] += 1
            return
        try:
            runs = [first.run_id, second.run_id]
            statuses: list[str] = [(await self.client.runs.get(self.thread_id, rid))["status"] for rid in runs if rid]
        except Exception as exc:
            statuses = [f"status unknown ({reason(exc)})"]
        tokens = "with" if second.tokens else "WITHOUT"
        failure = f" ({second.failure()})" if second.failure() else ""
        outcome = f"first / second run: {' / '.join(statuses)}, second streamed {tokens} tokens{failure}"
        self.tally.double_text[outcome] += 1
