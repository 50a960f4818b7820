"""The built-in ``chat`` and ``approval`` examples, run in process on an InMemorySaver thread."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from graphrun.examples import approval, chat
from graphrun.registry import GraphRegistry


def _thread() -> RunnableConfig:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


async def test_chat_streams_tokens_and_remembers_the_first_turn() -> None:
    graph = chat.build({"delay_s": 0}).compile(checkpointer=InMemorySaver())
    config = _thread()

    tokens: list[str] = []
    async for chunk, metadata in graph.astream(
        {"messages": [HumanMessage("hello there")]}, config, stream_mode="messages"
    ):
        assert isinstance(chunk, AIMessageChunk)
        assert isinstance(metadata, dict) and metadata["langgraph_node"] == "respond"
        tokens.append(chunk.text)
    assert len(tokens) > 3  # chunk by chunk, not one message
    assert "".join(tokens) == 'You said "hello there". This is turn 1.'

    second = await graph.ainvoke({"messages": [HumanMessage("and again")]}, config)
    assert [m.type for m in second["messages"]] == ["human", "ai", "human", "ai"]
    assert second["messages"][-1].text == 'You said "and again". This is turn 2; you began with "hello there".'


async def test_chat_reads_content_blocks_and_configurable() -> None:
    # As a browser sends a message (content blocks) and a LangGraph assistant its config.
    graph = chat.build({"configurable": {"delay_s": 0, "system_prompt": "be brief"}}).compile()
    out = await graph.ainvoke({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]})
    assert out["messages"][-1].text == 'You said "hi". This is turn 1.'


async def test_echo_model_waits_delay_s_per_token() -> None:
    model = chat.EchoChatModel(delay_s=0.01)
    started = time.perf_counter()
    tokens = [c.content async for c in model.astream([HumanMessage("one two three")]) if c.content]
    assert len(tokens) == 9
    assert time.perf_counter() - started >= 0.01 * len(tokens)


async def test_chat_and_approval_are_builtins() -> None:
    registry = GraphRegistry.load(None)
    for name in ("chat", "approval"):
        assert (await registry.build(name, {})).get_graph() is not None
    described = {g["name"]: g["description"] for g in registry.describe()}
    assert described["chat"] and described["approval"]


@pytest.mark.parametrize(
    ("answer", "approved", "reason"),
    [
        ("approve", True, None),
        (True, True, None),
        ({"approved": False, "reason": "too risky"}, False, "too risky"),
        ([{"type": "accept", "args": None}], True, None),  # agent-chat-ui
        ([{"type": "response", "args": "not today"}], False, "not today"),
        ("no", False, None),
        ("maybe later", False, "maybe later"),
        (42, False, "answer not understood: 42"),
    ],
)
def test_approval_answers(answer: Any, approved: bool, reason: str | None) -> None:
    assert approval.decide(answer) == (approved, reason)


async def test_approval_interrupts_then_acts_on_the_answer() -> None:
    graph = approval.build().compile(checkpointer=InMemorySaver())
    config = _thread()
    first = await graph.ainvoke({"request": "deploy v2"}, config)
    [pending] = first["__interrupt__"]
    assert pending.value["question"] == "Approve 'deploy v2'?"
    assert pending.value["action_request"] == {"action": "approve", "args": {"request": "deploy v2"}}
    assert (await graph.aget_state(config)).next == ("ask",)

    done = await graph.ainvoke(Command(resume="reject"), config)
    assert done["approved"] is False
    assert done["messages"][-1].text == "Rejected: deploy v2."
