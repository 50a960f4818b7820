"""The knowledge-base example graphs: retrieval quality on the shipped corpus, config validation, and
kb_agent with no model, a fake chat model, a GRAPHRUN_LLM model and a stored search sub-workflow."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any, cast

import langchain.chat_models
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from pydantic import ValidationError

from graphrun import factory
from graphrun.examples import kb
from graphrun.factory import BuildContext


def _search(query: str, top_k: int = 3) -> list[dict[str, Any]]:
    graph = kb.build_search({"top_k": top_k}).compile()
    result: list[dict[str, Any]] = graph.invoke({"query": query, "passages": []})["passages"]
    return result


def _fake_model(text: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(content=text)]))


@contextlib.contextmanager
def _building(ctx: BuildContext) -> Iterator[None]:
    """What graphrun does around a factory call, so the graphrun.factory helpers work."""
    token = factory.current.set(ctx)
    try:
        yield
    finally:
        factory.current.reset(token)


def test_corpus_is_shipped_and_sized() -> None:
    passages = kb._read_corpus()
    docs = {p.doc for p in passages}
    assert 15 <= len(docs) <= 25
    assert all(p.title and p.title != p.doc for p in passages)
    assert all(len(p.text.split()) <= 90 for p in passages)


@pytest.mark.parametrize(
    ("question", "doc"),
    [
        ("How many requests per second can a Team plan API key send?", "rate-limits"),
        ("How long are application logs kept?", "data-retention"),
        ("When does the on-call rotation hand over?", "on-call"),
        ("How do I restore a database to a point in time?", "backups"),
        ("What should I do if a secret leaks?", "secrets"),
        ("How much does the bug bounty pay?", "security-reports"),
        ("What happens during a canary release?", "deploys"),
    ],
)
def test_search_finds_the_right_document(question: str, doc: str) -> None:
    passages = _search(question)
    assert passages, question
    assert passages[0]["doc"] == doc
    assert set(passages[0]) == {"doc", "title", "text", "score"}
    assert isinstance(passages[0]["score"], float) and passages[0]["score"] > 0


def test_search_respects_top_k_and_orders_by_score() -> None:
    assert len(_search("customers", top_k=1)) == 1
    five = _search("customers", top_k=5)
    assert len(five) == 5
    scores = [p["score"] for p in five]
    assert scores == sorted(scores, reverse=True)
    assert len(_search("How do I restore a database?")) == 3  # default top_k


def test_search_drops_zero_score_hits() -> None:
    assert _search("zebra xylophone quokka", top_k=20) == []


@pytest.mark.parametrize("config", [{"top_k": 0}, {"top_k": 21}, {"k": 3}])
def test_search_rejects_bad_config(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        kb.build_search(config)


@pytest.mark.asyncio
@pytest.mark.parametrize("config", [{"top_k": 0}, {"search": "kb"}])
async def test_agent_rejects_bad_config(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        await kb.build_agent(config)


def test_graphs_have_descriptions() -> None:
    assert (kb.build_search.__doc__ or "").startswith("Search the shipped knowledge base with BM25")
    assert (kb.build_agent.__doc__ or "").startswith("Answer questions from the knowledge base")


@pytest.mark.asyncio
async def test_agent_without_model_answers_from_passages() -> None:
    graph = (await kb.build_agent({})).compile()
    state = await graph.ainvoke({"question": "How long are application logs kept?"})
    assert state["passages"] and state["passages"][0]["doc"] == "data-retention"
    assert "Application logs are kept for thirty days" in state["answer"]
    assert "Data Retention (data-retention)" in state["answer"]
    assert isinstance(state["messages"][0], HumanMessage)
    assert state["messages"][-1].content == state["answer"]


@pytest.mark.asyncio
async def test_agent_without_model_says_when_nothing_matches() -> None:
    graph = (await kb.build_agent({"top_k": 1})).compile()
    state = await graph.ainvoke({"question": "zebra xylophone quokka"})
    assert state["passages"] == []
    assert state["answer"] == kb._NO_ANSWER


@pytest.mark.asyncio
async def test_agent_with_chat_model_returns_its_answer() -> None:
    reply = "Application logs are kept for thirty days [data-retention]."
    graph = (await kb.build_agent({}, chat_model=_fake_model(reply))).compile()
    state = await graph.ainvoke({"question": "How long are application logs kept?"})
    assert state["answer"] == reply
    assert isinstance(state["messages"][-1], AIMessage) and state["messages"][-1].content == reply
    assert state["passages"][0]["doc"] == "data-retention"


@pytest.mark.asyncio
async def test_agent_streams_model_tokens_from_answer_node() -> None:
    reply = "Rotate the secret first, then investigate [secrets]."
    graph = (await kb.build_agent({}, chat_model=_fake_model(reply))).compile()
    chunks: list[str] = []
    async for part in graph.astream({"question": "A secret leaked"}, stream_mode="messages"):
        # "messages" mode yields (message chunk, metadata) pairs; LangGraph's types don't say so.
        message, metadata = cast("tuple[object, dict[str, Any]]", part)
        if isinstance(message, AIMessageChunk) and metadata["langgraph_node"] == "answer":
            chunks.append(str(message.content))
    assert len(chunks) > 1
    assert "".join(chunks) == reply


@pytest.mark.asyncio
async def test_agent_uses_configured_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    requested: list[str] = []

    def init_chat_model(name: str) -> GenericFakeChatModel:
        requested.append(name)
        return _fake_model("From the configured model.")

    monkeypatch.setattr(langchain.chat_models, "init_chat_model", init_chat_model)
    with _building(BuildContext(load=_never_load, loop=asyncio.get_running_loop(), llm="fake:model")):
        graph = (await kb.build_agent({})).compile()
    state = await graph.ainvoke({"question": "How do I set up single sign-on?"})
    assert requested == ["fake:model"]
    assert state["answer"] == "From the configured model."


async def _never_load(ref: int | str) -> Any:
    raise AssertionError(f"unexpected sub-workflow load: {ref!r}")


@pytest.mark.asyncio
async def test_agent_calls_stored_search_workflow() -> None:
    requested: list[int | str] = []

    async def load(ref: int | str) -> Any:
        requested.append(ref)
        return kb.build_search({"top_k": 1}).compile()

    with _building(BuildContext(load=load, loop=asyncio.get_running_loop())):
        graph = (await kb.build_agent({"search_workflow": "acme-kb-search", "top_k": 5})).compile()
    assert requested == ["acme-kb-search"]

    state = await graph.ainvoke({"question": "When does the on-call rotation hand over?"})
    assert [p["doc"] for p in state["passages"]] == ["on-call"]  # the stored workflow's top_k wins
    assert "Monday at 10:00" in state["answer"]
    assert requested == ["acme-kb-search"]  # loaded once, at build time


@pytest.mark.asyncio
async def test_agent_accepts_workflow_id() -> None:
    requested: list[int | str] = []

    async def load(ref: int | str) -> Any:
        requested.append(ref)
        return kb.build_search({}).compile()

    with _building(BuildContext(load=load, loop=asyncio.get_running_loop())):
        await kb.build_agent({"search_workflow": 42})
    assert requested == [42]
