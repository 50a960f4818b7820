"""A knowledge-base agent and its retrieval tool, over the shipped handbook of the fictional "Acme Cloud".

``kb_search`` builds its BM25 index in the factory, on purpose: set-up belongs in the factory, done once
per build and shared by every run that graphrun's graph cache serves from it. ``kb_agent`` shows one stored
workflow calling another one as a LangChain tool, and answers without any network when no chat model
is configured, so the example runs anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.tools import StructuredTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from pydantic import BaseModel, ConfigDict, Field
from rank_bm25 import BM25Okapi

from graphrun import factory

# Chunk sizes in words. Short paragraphs are folded into the previous passage because BM25's length
# normalisation would otherwise rank a one-line aside above the paragraph that explains the topic.
_MIN_WORDS = 20
_TARGET_WORDS = 60
_MAX_WORDS = 90

_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

_SYSTEM_PROMPT = (
    "You answer questions about the Acme Cloud operations handbook. Use only the numbered passages "
    "you are given; if they do not contain the answer, say that the handbook does not cover it. "
    "Be brief, and name the documents you used in square brackets, e.g. [billing]."
)
_NO_ANSWER = "The knowledge base has nothing on that question."


def _tokens(text: str) -> list[str]:
    # Folding a plural "s" lets "backups" match "backup" without pulling in a stemmer dependency;
    # queries and passages go through the same function, so odd stems like "statu" still match.
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        if word in _STOPWORDS:
            continue
        plural = len(word) > 3 and word.endswith("s") and not word.endswith("ss")
        out.append(word[:-1] if plural else word)
    return out


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s]


@dataclass(frozen=True, slots=True)
class _Passage:
    doc: str
    title: str
    text: str


def _chunks(body: str) -> list[str]:
    chunks: list[str] = []
    for block in re.split(r"\n\s*\n", body):
        paragraph = " ".join(block.split())
        if not paragraph:
            continue
        words = len(paragraph.split())
        if chunks and words < _MIN_WORDS and len(chunks[-1].split()) + words <= _MAX_WORDS:
            chunks[-1] = f"{chunks[-1]} {paragraph}"
        elif words <= _MAX_WORDS:
            chunks.append(paragraph)
        else:
            piece: list[str] = []
            for sentence in _sentences(paragraph):
                piece.append(sentence)
                if sum(len(s.split()) for s in piece) >= _TARGET_WORDS:
                    chunks.append(" ".join(piece))
                    piece = []
            if piece:
                chunks.append(" ".join(piece))
    return chunks


def _read_corpus() -> list[_Passage]:
    # importlib.resources, not a path next to __file__, so the corpus is found inside an installed wheel.
    root = resources.files("graphrun.examples").joinpath("corpus")
    passages: list[_Passage] = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".md"):
            continue
        doc = entry.name.removesuffix(".md")
        title, body_lines = doc, []
        for line in entry.read_text(encoding="utf-8").splitlines():
            if line.startswith("# ") and title == doc:
                title = line[2:].strip()
            elif not line.startswith("#"):
                body_lines.append(line)
        passages.extend(_Passage(doc, title, text) for text in _chunks("\n".join(body_lines)))
    return passages


class SearchState(TypedDict):
    query: str
    passages: list[dict[str, Any]]


class SearchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    top_k: int = Field(3, ge=1, le=20)


def build_search(config: dict[str, Any]) -> StateGraph[SearchState]:
    """Search the shipped knowledge base with BM25 (config: top_k)."""
    cfg = SearchConfig.model_validate(config)
    corpus = _read_corpus()
    # The title is indexed with every passage: a question names the topic ("feature flags") more often
    # than the passage itself repeats it.
    index = BM25Okapi([_tokens(f"{p.title} {p.text}") for p in corpus])

    def search(state: SearchState) -> dict[str, Any]:
        scores = index.get_scores(_tokens(state["query"]))
        ranked = sorted(zip(corpus, map(float, scores), strict=True), key=lambda hit: hit[1], reverse=True)
        return {
            "passages": [
                {"doc": p.doc, "title": p.title, "text": p.text, "score": score}
                for p, score in ranked[: cfg.top_k]
                if score > 0
            ]
        }

    graph = StateGraph(SearchState)
    graph.add_node("search", search)
    graph.add_edge(START, "search")
    graph.add_edge("search", END)
    return graph


class AgentInput(TypedDict):
    question: str


class AgentState(TypedDict):
    question: str
    messages: Annotated[list[AnyMessage], add_messages]
    passages: list[dict[str, Any]]
    answer: str


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A stored kb_search workflow (id, or name for its newest version). When set, its own top_k applies.
    search_workflow: int | str | None = None
    top_k: int = Field(3, ge=1, le=20)


def _search_tool(search_graph: Any) -> StructuredTool:
    async def search_knowledge_base(query: str) -> list[dict[str, Any]]:
        result = await search_graph.ainvoke({"query": query, "passages": []})
        return list(result["passages"])

    return StructuredTool.from_function(
        coroutine=search_knowledge_base,
        name="search_knowledge_base",
        description="Search the Acme Cloud operations handbook; returns the best-matching passages.",
    )


def _extractive_answer(question: str, passages: list[dict[str, Any]]) -> str:
    """Quote the sentences that share the most words with the question: deterministic and offline,
    so kb_agent is useful (and testable) without a chat model."""
    if not passages:
        return _NO_ANSWER
    wanted = set(_tokens(question))
    best = passages[0]
    best_overlap = -1
    for passage in passages:  # ranked by score: ties go to the better passage
        overlap = max(len(wanted & set(_tokens(s))) for s in _sentences(passage["text"]))
        if overlap > best_overlap:
            best, best_overlap = passage, overlap
    sentences = _sentences(best["text"])
    overlaps = [len(wanted & set(_tokens(s))) for s in sentences]
    keep = sorted(sorted(range(len(sentences)), key=lambda i: -overlaps[i])[:2])
    if best_overlap > 0:
        keep = [i for i in keep if overlaps[i] > 0]
    quote = " ".join(sentences[i] for i in keep)
    sources = ", ".join(dict.fromkeys(f"{p['title']} ({p['doc']})" for p in passages))
    return f"Based on {best['title']}: {quote}\n\nSources: {sources}"


def _prompt(question: str, passages: list[dict[str, Any]]) -> list[BaseMessage]:
    context = "\n\n".join(f"[{n}] {p['title']} [{p['doc']}]\n{p['text']}" for n, p in enumerate(passages, start=1))
    return [
        SystemMessage(_SYSTEM_PROMPT),
        HumanMessage(f"Passages:\n\n{context or '(none found)'}\n\nQuestion: {question}"),
    ]


async def build_agent(
    config: dict[str, Any], *, chat_model: BaseChatModel | None = None
) -> StateGraph[AgentState, None, AgentInput, AgentState]:
    """Answer questions from the knowledge base, using a stored kb_search workflow as its tool
    (config: search_workflow, top_k; uses GRAPHRUN_LLM if set, else answers by quoting passages)."""
    cfg = AgentConfig.model_validate(config)
    if cfg.search_workflow is not None:
        search_graph: Any = await factory.load_workflow(cfg.search_workflow)
    else:
        search_graph = build_search({"top_k": cfg.top_k}).compile()
    tool = _search_tool(search_graph)

    model = chat_model
    if model is None and (name := factory.configured_llm()) is not None:
        # Imported here: langchain's provider machinery is only worth loading when a model is configured.
        from langchain.chat_models import init_chat_model

        model = init_chat_model(name)

    async def retrieve(state: AgentState) -> dict[str, Any]:
        # Retrieval is a fixed step rather than a model-chosen tool call, so runs are reproducible and
        # work the same with or without a model.
        passages = await tool.ainvoke({"query": state["question"]})
        return {"passages": passages, "messages": [HumanMessage(state["question"])]}

    async def answer(state: AgentState) -> dict[str, Any]:
        if model is None:
            text = _extractive_answer(state["question"], state["passages"])
            return {"answer": text, "messages": [AIMessage(text)]}
        # ainvoke, not astream: LangGraph's "messages" stream mode still receives the tokens.
        response = await model.ainvoke(_prompt(state["question"], state["passages"]))
        return {"answer": response.text, "messages": [response]}

    graph = StateGraph(AgentState, input_schema=AgentInput)
    graph.add_node("retrieve", retrieve)
    graph.add_node("answer", answer)
    graph.add_edge(START, "retrieve")
    graph.add_edge("retrieve", "answer")
    graph.add_edge("answer", END)
    return graph


# Let the API check configs when a workflow is created, not when it first runs.
build_search.config_model = SearchConfig  # type: ignore[attr-defined]
build_agent.config_model = AgentConfig  # type: ignore[attr-defined]
