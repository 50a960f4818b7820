"""The agent under load: a tool-calling ReAct agent built as LangGraph users build one, with
LangGraph's prebuilt `create_react_agent` and `langchain-openai`'s `ChatOpenAI`, streaming, pointed at
the bench's fake OpenAI server (bench/agent/fake_llm.py).

Every system serves this same file through bench/agent/langgraph.json, so it imports nothing but
LangGraph and langchain-openai (the peers' environments have neither graphrun nor the bench).
The fake's URL comes from AGENT_BENCH_LLM_URL, which the bench puts in every server's environment.

`create_react_agent` rather than langchain's `create_agent`: it ships with LangGraph itself, so the
peers need only langchain-openai added, not `langchain` (whose pins could move their LangGraph).
"""

from __future__ import annotations

import os
import warnings

from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.prebuilt import create_react_agent


def llm_url() -> str:
    url = os.environ.get("AGENT_BENCH_LLM_URL")
    if not url:
        raise RuntimeError("set AGENT_BENCH_LLM_URL to the fake LLM's base URL (http://127.0.0.1:PORT/v1)")
    return url


@tool
def lookup(query: str) -> str:
    """Look something up."""
    # The answer names the query's size, not its text: the query is made of token ids, and the
    # client counts every id it sees in a message, so echoing it would count them twice.
    return f"found 3 documents for a query of {len(query.split())} words"


model = ChatOpenAI(model="fake-agent", base_url=llm_url(), api_key="fake", streaming=True)  # type: ignore[arg-type]

with warnings.catch_warnings():
    # create_react_agent is deprecated in favour of langchain's create_agent (see the docstring).
    warnings.simplefilter("ignore")
    graph = create_react_agent(model, tools=[lookup])
