"""The graphs the run tests register (``tests.langgraph.rungraphs:…`` in a langgraph.json): a chat
whose model streams word by word and answers with every user message so far (so a second turn
shows it saw the first), five slow steps that report their start on the custom stream (to join
mid-way and to cancel mid-node), and one that stops at ``interrupt()``."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypedDict

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import interrupt


def answer(messages: list[BaseMessage]) -> str:
    said = [str(m.content) for m in messages if isinstance(m, HumanMessage)]
    return f"turn {len(said)}: " + " | ".join(said)


class EchoModel(BaseChatModel):
    @property
    def _llm_type(self) -> str:
        return "echo"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=answer(messages)))])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for i, word in enumerate(answer(messages).split(" ")):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=word if i == 0 else " " + word))
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


_model = EchoModel()


async def respond(state: MessagesState) -> dict[str, Any]:
    get_stream_writer()({"thinking": True})
    return {"messages": [await _model.ainvoke(state["messages"])]}


_chat = StateGraph(MessagesState)
_chat.add_node(respond)
_chat.add_edge(START, "respond")
_chat.add_edge("respond", END)
chat = _chat.compile()


class Steps(TypedDict, total=False):
    items: Annotated[list[str], operator.add]
    delay: float


def _step(i: int) -> Any:
    async def node(state: Steps) -> dict[str, Any]:
        get_stream_writer()({"started": f"step_{i}"})
        await asyncio.sleep(state.get("delay", 0.0))
        return {"items": [f"item-{i}"]}

    return node


_steps = StateGraph(Steps)
_previous = START
for _i in range(1, 6):
    _steps.add_node(f"step_{_i}", _step(_i))
    _steps.add_edge(_previous, f"step_{_i}")
    _previous = f"step_{_i}"
_steps.add_edge(_previous, END)
steps = _steps.compile()


class Ask(TypedDict, total=False):
    n: int
    log: Annotated[list[str], operator.add]


def a(s: Ask) -> dict[str, Any]:
    return {"n": s.get("n", 0) + 1, "log": ["a"]}


def ask(s: Ask) -> dict[str, Any]:
    reply = interrupt({"question": "ok?", "n": s["n"]})
    return {"log": [f"ans:{reply}"]}


_approval = StateGraph(Ask)
_approval.add_node(a)
_approval.add_node(ask)
_approval.add_edge(START, "a")
_approval.add_edge("a", "ask")
_approval.add_edge("ask", END)
approval = _approval.compile()
