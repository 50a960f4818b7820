"""A fake OpenAI chat-completions server for the agent bench, in its own process.

    python bench/agent/fake_llm.py --port PORT

`POST /v1/chat/completions` with `stream: true` answers as OpenAI does (SSE `chat.completion.chunk`
frames, then `data: [DONE]`). What it says is set by the last user message of the conversation,
which the bench's client writes as `bench conv=<id> tokens=<n> pace_ms=<ms> tool=<0|1>`:

- the first user turn of a conversation (with `tool=1`) is answered with a `lookup` tool call whose
  arguments stream as n tokens; the answer after the tool's result, and every later turn, is text
  of n tokens;
- each token is `<conv>:<turn>:<call>:<seq>@<send_ns> `: `turn` counts the user messages, `call`
  counts this server's answers for that turn (a retried call gets a new number), `send_ns` is
  `time.time_ns()` just before the chunk is handed to the server. The client subtracts it from its
  own receive time (same machine, same clock) and checks ids against `GET /sent`.

`GET /sent?prefix=P` answers, for each conversation id starting with P, the calls answered:
`[turn, call, tokens sent, completed]`. A call whose client went away before the end (a cancelled
run) is `completed: false`; its tokens are not expected anywhere.

Imports only starlette and uvicorn (already graphrun's dependencies), so it starts in a second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

PARAMS = re.compile(r"(\w+)=([\w.-]+)")

# conv id -> [[turn, call, sent, completed], ...]; the server is one event loop, so no lock.
SENT: dict[str, list[list[Any]]] = defaultdict(list)
CALLS: dict[tuple[str, int], int] = defaultdict(int)


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # the content-parts form some clients send
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def chunk(cid: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "fake-agent",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


async def answer(
    record: list[Any], prefix: str, n: int, pace_s: float, tool: bool, usage: bool
) -> AsyncIterator[bytes]:
    cid = f"chatcmpl-{prefix.replace(':', '-')}"
    # A client that goes away cancels this generator at a yield: its record stays completed=False.
    if tool:
        call = {"index": 0, "id": f"call_{cid[9:]}", "type": "function"}
        call["function"] = {"name": "lookup", "arguments": ""}
        yield chunk(cid, {"role": "assistant", "content": None, "tool_calls": [call]})
        yield chunk(cid, {"tool_calls": [{"index": 0, "function": {"arguments": '{"query": "'}}]})
    else:
        yield chunk(cid, {"role": "assistant", "content": ""})
    for seq in range(n):
        await asyncio.sleep(pace_s)
        token = f"{prefix}:{seq}@{time.time_ns()} "
        if tool:
            yield chunk(cid, {"tool_calls": [{"index": 0, "function": {"arguments": token}}]})
        else:
            yield chunk(cid, {"content": token})
        record[2] = seq + 1
    if tool:
        yield chunk(cid, {"tool_calls": [{"index": 0, "function": {"arguments": '"}'}}]})
    yield chunk(cid, {}, "tool_calls" if tool else "stop")
    if usage:
        body = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": "fake-agent"}
        body |= {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": n, "total_tokens": n + 1}}
        yield b"data: " + json.dumps(body).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"
    record[3] = True


async def completions(request: Request) -> Response:
    body = await request.json()
    messages: list[dict[str, Any]] = body.get("messages", [])
    users = [text_of(m) for m in messages if m.get("role") == "user"]
    if not users or not body.get("stream"):
        return JSONResponse({"error": {"message": "the fake serves streamed bench conversations only"}}, 400)
    first, last = dict(PARAMS.findall(users[0])), dict(PARAMS.findall(users[-1]))
    conv = first.get("conv", "anon")
    turn = len(users)
    CALLS[conv, turn] += 1
    call = CALLS[conv, turn]
    record: list[Any] = [turn, call, 0, False]
    SENT[conv].append(record)
    after_tool = messages[-1].get("role") == "tool"
    tool = not after_tool and turn == 1 and last.get("tool", "1") == "1"
    n = int(last.get("tokens", "30"))
    pace_s = float(last.get("pace_ms", "20")) / 1000
    usage = bool((body.get("stream_options") or {}).get("include_usage"))
    stream = answer(record, f"{conv}:{turn}:{call}", n, pace_s, tool, usage)
    return StreamingResponse(stream, media_type="text/event-stream")


async def sent(request: Request) -> Response:
    prefix = request.query_params.get("prefix", "")
    return JSONResponse({conv: calls for conv, calls in SENT.items() if conv.startswith(prefix)})


async def health(_request: Request) -> Response:
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/sent", sent),
        Route("/health", health),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # One process, no access log: the fake must cost little next to the systems it feeds.
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, backlog=4096)


if __name__ == "__main__":
    main()
