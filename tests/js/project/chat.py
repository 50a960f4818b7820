"""A chat graph whose model streams its reply token by token with no network: the JS client test's
graph (tests/js/conversation.mjs), served by `graphrun serve` and by `langgraph dev` alike.

The reply says which turn it answers (how many human messages the thread holds), so a client sees
the thread's state accumulate in the tokens themselves. "say N words" asks for a reply of N words,
long enough for a client to read part of a run and rejoin it before it ends.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.graph import START, MessagesState, StateGraph

# Seconds between two tokens: a long reply lasts long enough to be joined mid-run.
TOKEN_DELAY_S = 0.02


def _reply_words(messages: list[BaseMessage]) -> list[str]:
    humans = [m for m in messages if isinstance(m, HumanMessage)]
    last = humans[-1].text if humans else ""
    asked = re.search(r"say (\d+) words", last)
    words = [f"turn {len(humans)}:"]
    if asked:
        words += [f"w{i}" for i in range(1, int(asked.group(1)) + 1)]
    else:
        words += ["you", "said", *last.split()]
    # Every token but the first starts with its space, so the joined tokens are the reply's text.
    return [words[0], *(f" {w}" for w in words[1:])]


class FakeStreamingChat(BaseChatModel):
    """Answers from the conversation alone, one token per chunk."""

    @property
    def _llm_type(self) -> str:
        return "fake-streaming-chat"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage("".join(_reply_words(messages))))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for token in _reply_words(messages):
            time.sleep(TOKEN_DELAY_S)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token))
            if run_manager:
                run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for token in _reply_words(messages):
            await asyncio.sleep(TOKEN_DELAY_S)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token))
            if run_manager:
                await run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk


model = FakeStreamingChat()


async def call_model(state: MessagesState) -> dict[str, list[BaseMessage]]:
    return {"messages": [await model.ainvoke(state["messages"])]}


builder = StateGraph(MessagesState)
builder.add_node("model", call_model)
builder.add_edge(START, "model")
graph = builder.compile()
