"""The agent bench's client process: one scenario per invocation against one system, result as JSON.

    python bench/agent/load.py '<json spec>'

- `load`: N conversations at once (started over `ramp_s`), each its turns with pauses (conversation.py),
  a turn begun only within `duration_s`; what is still being answered `drain_s` later is left
  unanswered (an overloaded system: counted apart from errors, with the status of a sample of them);
- `storm`: N conversations each start an answer; at one moment every client drops its
  connection, and each rejoins at a random instant within the next second with
  `runs.join_stream(last_event_id=...)`. Settle time: from the drop until the last client that
  rejoined has received its replay (its last token sent before it rejoined; a client with nothing to
  replay is settled when it rejoins).

Afterwards the token ids received are checked against what the fake LLM says it sent (`GET /sent`):
lost = sent by a completed model call, never received; repeated = received more than once.
Conversations the client gave up on (a failed turn, or still going at the scenario's time limit) are
left out of that check and counted as unchecked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langgraph_sdk.client import LangGraphClient

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench._common import pct_or_none
from bench._procs import raise_nofile
from bench.agent.conversation import (
    MODES,
    RESUMABLE,
    Conversation,
    Follow,
    Shape,
    Tally,
    read,
    reason,
    sample_statuses,
    shared_client,
    with_status,
)


@dataclass
class StormFacts:
    at_drop: Counter[str] = field(default_factory=Counter)  # mid-answer / waiting / ended
    rejoin_failed: int = 0
    settle_s: float | None = None  # to the last replayed token of the clients that rejoined
    rejoin_window_s: float = 0.0  # first to last rejoin


@dataclass
class Outcome:
    unchecked: set[str]  # conversations left out of the token check
    kinds: dict[str, str]  # conv id -> what it did (rejoined, double-texted, storm)
    extra: dict[str, Any]  # the scenario's own figures


async def loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    """How late this process's event loop wakes: the share of measured latency that is the client's own."""
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0.05)
        samples.append((time.perf_counter() - t - 0.05) * 1000)


async def load(spec: dict[str, Any], shape: Shape, tally: Tally) -> Outcome:
    n, duration, drain = spec["conversations"], spec["duration_s"], spec["drain_s"]
    ramp = random.Random(shape.seed)
    client = shared_client(spec["url"])
    convs = [Conversation(client, f"{spec['tag']}-{i}", i, shape, tally) for i in range(n)]
    deadline = time.perf_counter() + duration

    async def one(c: Conversation, delay: float) -> None:
        await asyncio.sleep(delay)
        await c.run(deadline)

    # Turns begin until `duration` is over (a system that falls behind answers fewer), and those
    # begun get `drain` more seconds to end; one still going then is a failure.
    tasks = {asyncio.ensure_future(one(c, ramp.uniform(0, spec["ramp_s"]))): c for c in convs}
    _done, pending = await asyncio.wait(tasks, timeout=duration + drain)
    cut = [tasks[t] for t in pending if tasks[t].in_turn]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    tally.turns_unanswered += len(cut)
    runs = [(c.client, c.thread_id, c.current.run_id if c.current else None) for c in cut]
    tally.unanswered_status = await sample_statuses(runs)
    # A conversation with a failed turn may have left output nobody followed: not checkable.
    unchecked = {c.conv for c in cut} | {c.conv for c in convs if c.failed}
    await client.aclose()
    kinds = {c.conv: " and ".join(sorted(c.did)) for c in convs if c.did}
    return Outcome(unchecked, kinds, {})


async def storm(spec: dict[str, Any], shape: Shape, tally: Tally) -> Outcome:
    n, cap = spec["conversations"], spec["drain_s"]
    rng = random.Random(shape.seed)
    client = shared_client(spec["url"])
    convs = [Conversation(client, f"{spec['tag']}-{i}", i, shape, tally) for i in range(n)]
    facts = StormFacts()
    gate = asyncio.Semaphore(100)  # threads are created before the storm, 100 at a time

    async def opened(c: Conversation) -> None:
        async with gate:
            await c.open()

    await asyncio.gather(*(opened(c) for c in convs))
    follows = [Follow() for _ in convs]
    caught_up: list[float | None] = [None] * n
    rejoin_times: list[float] = []

    async def ask(c: Conversation, f: Follow) -> None:
        msg = c.message(1, tool=False, tokens=spec["storm_tokens"], pace_ms=spec["storm_pace_ms"])
        stream = c.client.runs.stream(c.thread_id, "agent", input=msg, stream_mode=MODES, **RESUMABLE)
        await read(stream, f, tally)

    readers = []
    for c, f in zip(convs, follows, strict=True):
        readers.append(asyncio.ensure_future(ask(c, f)))
        await asyncio.sleep(spec["ramp_s"] / n)
    tally.first_turn_start = time.perf_counter()
    await asyncio.sleep(spec["drop_after_s"])

    # The storm: every connection dropped at once ...
    t_drop = time.perf_counter()
    for r in readers:
        r.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for f in follows:
        facts.at_drop["ended before the drop" if f.ended else "mid-answer" if f.tokens else "no token yet"] += 1

    async def rejoin(i: int, c: Conversation, f: Follow) -> None:
        await asyncio.sleep(rng.uniform(0, 1.0))  # ... and rejoined within one second
        if f.ended:
            caught_up[i] = time.perf_counter()
            return
        try:
            if f.run_id is None:  # dropped before the run's first event: find it as an app would
                f.run_id = await find_run(c)
            f.replay_before_ns = time.time_ns()
            caught_up[i] = time.perf_counter()  # nothing to catch up on, until a replayed token says otherwise
            rejoin_times.append(caught_up[i] or 0.0)
            tally.rejoins += 1
            stream = c.client.runs.join_stream(c.thread_id, f.run_id, last_event_id=f.last_id)
            replayed = f.replayed

            def note_replay() -> bool:
                nonlocal replayed
                if f.replayed > replayed:  # a token sent before the rejoin: the replay is still coming
                    replayed, caught_up[i] = f.replayed, time.perf_counter()
                return False

            await read(stream, f, tally, note_replay)
        except Exception as exc:
            facts.rejoin_failed += 1
            f.error = f"rejoin: {reason(exc)}: {str(exc)[:80]}"

    tasks = {asyncio.ensure_future(rejoin(i, c, f)): i for i, (c, f) in enumerate(zip(convs, follows, strict=True))}
    _done, pending = await asyncio.wait(tasks, timeout=cap)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    unchecked: set[str] = set()
    unanswered: list[tuple[LangGraphClient, str, str | None]] = []
    for c, f in zip(convs, follows, strict=True):
        failure = f.failure()
        if failure is None:
            tally.turns_ok += 1
            tally.last_turn_end = max(tally.last_turn_end or 0.0, time.perf_counter())
            continue
        unchecked.add(c.conv)
        if not f.ended and not f.error:
            tally.turns_unanswered += 1
            unanswered.append((c.client, c.thread_id, f.run_id))
        else:
            tally.turns_failed += 1
            tally.errors[await with_status(c.client, c.thread_id, f, failure)] += 1
    tally.unanswered_status = await sample_statuses(unanswered)
    await client.aclose()
    ups = [t for t in caught_up if t is not None]
    facts.rejoin_window_s = max(rejoin_times) - min(rejoin_times) if rejoin_times else 0.0
    facts.settle_s = max(ups) - t_drop if ups else None
    # asdict would rebuild the Counter from (key, count) pairs, counting the pairs: a plain dict instead.
    storm_facts = asdict(facts) | {"at_drop": dict(facts.at_drop)}
    return Outcome(unchecked, {c.conv: "storm" for c in convs}, {"storm": storm_facts})


async def find_run(c: Conversation, wait_s: float = 10.0) -> str:
    """The run a dropped request made, looked for as an app would: the server may still be working on
    the request when the client comes back, so it is asked again for a while."""
    deadline = time.perf_counter() + wait_s
    while True:
        runs = await c.client.runs.list(c.thread_id, limit=1)
        if runs:
            return str(runs[0]["run_id"])
        if time.perf_counter() > deadline:
            raise LookupError(f"no run on the thread {wait_s:.0f} s after the drop")
        await asyncio.sleep(0.5)


def check_tokens(
    fake_url: str, tag: str, received: Counter[str], unchecked: set[str], kinds: dict[str, str]
) -> dict[str, Any]:
    """Every token of a completed model call of a checked conversation received, and no token of any
    conversation received twice; the lost and repeated ones also by kind of conversation (``kinds``:
    conv id -> what it did)."""
    with urllib.request.urlopen(f"{fake_url}/sent?prefix={tag}-", timeout=60) as resp:
        sent: dict[str, list[list[Any]]] = json.loads(resp.read())
    expected: set[str] = set()
    aborted: set[str] = set()
    aborted_calls = 0
    for conv, calls in sent.items():
        for turn, call, count, completed in calls:
            ids = {f"{conv}:{turn}:{call}:{seq}" for seq in range(count)}
            if conv in unchecked:
                continue
            if completed:
                expected |= ids
            else:
                aborted_calls += 1
                aborted |= ids
    checked = {k: v for k, v in received.items() if k.split(":", 1)[0] not in unchecked}
    lost = expected - checked.keys()
    lost_in = Counter(kinds.get(k.split(":", 1)[0], "plain") for k in lost)
    # A repeat is one whatever became of its conversation: counted over everything received.
    repeated_in = Counter(kinds.get(k.split(":", 1)[0], "plain") for k, v in received.items() for _ in range(v - 1))
    return {
        "lost_in": dict(lost_in),
        "repeated_in": dict(repeated_in),
        "sent": sum(c for calls in sent.values() for _t, _c, c, _d in calls),
        "expected": len(expected),
        "lost": len(lost),
        "repeated": sum(v - 1 for v in received.values() if v > 1),
        "unexpected": sum(1 for k in checked if k not in expected and k not in aborted),
        "aborted_calls": aborted_calls,
        "unchecked_conversations": len(unchecked),
    }


async def tidy(url: str, wait_s: float = 30.0) -> dict[str, Any]:
    """After a scenario that left runs going (turns cut short): cancel every pending and running run,
    then wait until no thread is busy, so that the next scenario starts on an idle system. Run outside
    the metered window; what it found is reported."""
    client = shared_client(url)
    out: dict[str, Any] = {}
    try:
        await asyncio.wait_for(client.runs.cancel_many(status="all"), wait_s)
        out["cancel"] = "cancelled all pending and running runs"
    except TimeoutError:
        out["cancel"] = f"cancelling the runs left took over {wait_s:.0f} s"
    except Exception as exc:
        out["cancel"] = f"could not cancel the runs left: {reason(exc)}"
    t0 = time.perf_counter()
    while True:
        try:
            busy = len(await client.threads.search(status="busy", limit=1000))
        except Exception as exc:
            out["busy_threads"] = f"unknown: {reason(exc)}"
            break
        out["busy_threads"] = busy
        if busy == 0 or time.perf_counter() - t0 > wait_s:
            break
        await asyncio.sleep(1.0)
    out["waited_s"] = round(time.perf_counter() - t0, 1)
    await client.aclose()
    return out


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    if spec["scenario"] == "tidy":
        return await tidy(spec["url"])
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["shape"].items()}
    shape = Shape(**fields)
    tally = Tally()
    lag: list[float] = []
    stop = asyncio.Event()
    lagging = asyncio.ensure_future(loop_lag(lag, stop))
    t0 = time.perf_counter()
    scenario = load if spec["scenario"] == "load" else storm
    outcome = await scenario(spec, shape, tally)
    wall = time.perf_counter() - t0
    stop.set()
    await lagging
    span = (tally.last_turn_end or 0.0) - (tally.first_turn_start or 0.0)
    return {
        "conversations": spec["conversations"],
        "turns_ok": tally.turns_ok,
        "conversations_complete": tally.conversations_complete,
        "turns_failed": tally.turns_failed,
        "turns_unanswered": tally.turns_unanswered,
        "unanswered_status": tally.unanswered_status,
        "turns_per_s": tally.turns_ok / span if span > 0 else None,
        "turn_s_p50": pct_or_none(tally.turn_s, 50),
        "turn_s_p99": pct_or_none(tally.turn_s, 99),
        "latency_ms_p50": pct_or_none(tally.latency_ms, 50),
        "latency_ms_p99": pct_or_none(tally.latency_ms, 99),
        "latency_ms_max": max(tally.latency_ms, default=None),
        "live_tokens": len(tally.latency_ms),
        "replayed_tokens": tally.replayed,
        "errors": dict(tally.errors.most_common(8)),
        "error_count": sum(tally.errors.values()),
        "double_text": dict(tally.double_text),
        "rejoins": tally.rejoins,
        "client_loop_lag_ms_p99": pct_or_none(lag, 99),
        "wall_s": wall,
        "tokens": check_tokens(spec["fake_url"], spec["tag"], tally.received, outcome.unchecked, outcome.kinds),
        **outcome.extra,
    }


if __name__ == "__main__":
    raise_nofile()
    for var in ("LANGGRAPH_API_KEY", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"):
        os.environ.pop(var, None)  # the SDK would send them as X-Api-Key
    with contextlib.suppress(KeyboardInterrupt):
        import uvloop

        result = uvloop.run(main(json.loads(sys.argv[1])))
        sys.stdout.write(json.dumps(result) + "\n")
