"""A chat graph whose model streams its answer word by word with no network: the answer names the
turn and every earlier user message, so a second answer proves the model saw the first turn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.config import get_stream_writer
from langgraph.graph import START, MessagesState, StateGraph


def _text(message: BaseMessage) -> str:
    """A message's text, also when it arrives as a list of content blocks (as browsers send it)."""
    if isinstance(message.content, str):
        return message.content
    return " ".join(block["text"] for block in message.content if isinstance(block, dict) and "text" in block)


def answer(messages: list[BaseMessage]) -> str:
    """The fake model's reply: `turn <n>: <each user message so far, joined by " | ">`."""
    said = [_text(m) for m in messages if isinstance(m, HumanMessage)]
    return f"turn {len(said)}: " + " | ".join(said)


class EchoChatModel(BaseChatModel):
    """A chat model that streams :func:`answer` one word per chunk."""

    @property
    def _llm_type(self) -> str:
        return "echo-fake"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=answer(messages)))])

    def _words(self, messages: list[BaseMessage]) -> list[str]:
        words = answer(messages).split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for word in self._words(messages):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=word))
            if run_manager:
                run_manager.on_llm_new_token(word, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for word in self._words(messages):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=word))
            if run_manager:
                await run_manager.on_llm_new_token(word, chunk=chunk)
            yield chunk


model = EchoChatModel()


async def respond(state: MessagesState) -> dict[str, Any]:
    get_stream_writer()({"turn": sum(isinstance(m, HumanMessage) for m in state["messages"])})
    reply = await model.ainvoke(state["messages"])
    return {"messages": [reply]}


builder = StateGraph(MessagesState)
builder.add_node("respond", respond)
builder.add_edge(START, "respond")
graph = builder.compile()
