"""A chat agent whose answer streams token by token: the example for LangGraph's clients.

State ``{"messages": [...]}`` (LangGraph's ``add_messages``), so a thread accumulates the conversation
and every turn appends a user message and the model's answer. The model is ``init_chat_model``
(``GRAPHRUN_LLM``) when one is configured, else :class:`EchoChatModel`, a local fake that needs no key
or network and streams its answer a word at a time; its answer depends on the whole conversation,
so a second turn shows that the first turn's state was there.

Config (plain, or under ``configurable`` as a LangGraph assistant or ``langgraph.json`` passes it):
``delay_s`` (the fake model's pause before each token, default 0.02) and ``system_prompt``. From a
langgraph.json: ``"chat": "graphrun.examples.chat:build"``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, TypedDict

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from pydantic import BaseModel, ConfigDict, Field

from graphrun import factory


class ChatState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


class ChatConfig(BaseModel):
    # Unknown keys are ignored: a LangGraph RunnableConfig carries tags, metadata, recursion_limit.
    model_config = ConfigDict(extra="ignore")

    delay_s: float = Field(0.02, ge=0, le=5, description="the fake model's pause before each token")
    system_prompt: str | None = None


def echo_answer(messages: list[BaseMessage]) -> str:
    """What :class:`EchoChatModel` says after ``messages``: the last user message, the turn number and
    the conversation's first user message."""
    said = [m.text for m in messages if isinstance(m, HumanMessage)]
    if not said:
        return "Hello! Say something and I will echo it."
    answer = f'You said "{said[-1]}". This is turn {len(said)}'
    if len(said) > 1:
        answer += f'; you began with "{said[0]}"'
    return answer + "."


class EchoChatModel(BaseChatModel):
    """A local chat model: streams :func:`echo_answer` one word per chunk, ``delay_s`` apart."""

    delay_s: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "graphrun-echo"

    def _tokens(self, messages: list[BaseMessage]) -> list[str]:
        words = echo_answer(messages).split(" ")
        return [word if i == 0 else " " + word for i, word in enumerate(words)]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(echo_answer(messages)))])

    # LangChain reports each yielded chunk to the callbacks itself (LangGraph's "messages" stream).
    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for token in self._tokens(messages):
            if self.delay_s:
                time.sleep(self.delay_s)
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for token in self._tokens(messages):
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))


def _options(config: dict[str, Any]) -> ChatConfig:
    configurable = config.get("configurable")
    return ChatConfig.model_validate({**(configurable if isinstance(configurable, dict) else {}), **config})


def build(config: dict[str, Any], *, chat_model: BaseChatModel | None = None) -> StateGraph:  # type: ignore[type-arg]
    """A chat agent that streams its answer token by token (uses GRAPHRUN_LLM if set, else a local
    echo model; config: delay_s, system_prompt)."""
    cfg = _options(config)
    model = chat_model
    if model is None and (name := factory.configured_llm()) is not None:
        # Imported here: langchain's provider machinery is only worth loading when a model is configured.
        from langchain.chat_models import init_chat_model

        model = init_chat_model(name)
    if model is None:
        model = EchoChatModel(delay_s=cfg.delay_s)
    prompt = [SystemMessage(cfg.system_prompt)] if cfg.system_prompt else []

    async def respond(state: ChatState) -> dict[str, Any]:
        # ainvoke, not astream: LangGraph's "messages" stream mode still receives every token.
        reply = await model.ainvoke([*prompt, *state["messages"]])
        return {"messages": [reply]}

    graph = StateGraph(ChatState)
    graph.add_node("respond", respond)
    graph.add_edge(START, "respond")
    return graph


build.config_model = ChatConfig  # type: ignore[attr-defined]
