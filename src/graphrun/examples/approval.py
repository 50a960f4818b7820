"""A human approval step: the example of ``interrupt()``.

Node ``ask`` stops the run with ``interrupt(value)``; the run ends, its thread (or native execution)
waits, and a resume (``command.resume`` in the LangGraph API, ``POST /executions/{id}/resume`` in the
native one) continues it with the answer. Node ``act`` then carries the decision out.

Input ``{"request": "deploy v2"}`` (or a user message, whose text is the request). The interrupt's
value carries ``question`` (what a terminal or a plain client shows) and the fields of agent-chat-ui's
approval card (``action_request``, ``config``, ``description``). Accepted answers: ``true``/``false``;
``"approve"``/``"yes"``/``"reject"``/``"no"``…; ``{"approved": bool, "reason"?: str}``; and
agent-chat-ui's responses ``[{"type": "accept" | "edit" | "ignore" | "response", "args": ...}]``. An
answer that is none of these rejects. From a langgraph.json: ``"approval": "graphrun.examples.approval:build"``.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import interrupt

_YES = frozenset({"approve", "approved", "accept", "accepted", "yes", "y", "ok", "true"})
_NO = frozenset({"reject", "rejected", "deny", "denied", "no", "n", "false", "ignore"})


class ApprovalState(TypedDict, total=False):
    request: str
    approved: bool
    reason: str | None
    messages: Annotated[list[AnyMessage], add_messages]


def _request(state: ApprovalState) -> str:
    if state.get("request"):
        return state["request"]
    asked = [m.text for m in state.get("messages", []) if isinstance(m, HumanMessage)]
    return asked[-1] if asked else "the action"


def decide(answer: Any) -> tuple[bool, str | None]:
    """(approved, reason) from any accepted answer form (see the module docstring)."""
    if isinstance(answer, list) and answer:
        answer = answer[0]  # agent-chat-ui sends a list of responses
    if isinstance(answer, bool):
        return answer, None
    if isinstance(answer, str):
        word = answer.strip().lower()
        # Any other text is a rejection that says why.
        return word in _YES, None if word in _YES or word in _NO else answer
    if isinstance(answer, dict):
        if "approved" in answer:
            reason = answer.get("reason")
            return answer["approved"] is True, str(reason) if reason else None
        kind, args = answer.get("type"), answer.get("args")
        if kind in ("accept", "edit"):
            return True, None
        if kind == "response":
            return False, str(args) if args else None
        if kind == "ignore":
            return False, None
    return False, f"answer not understood: {answer!r}"


def ask(state: ApprovalState) -> dict[str, Any]:
    request = _request(state)
    question = f"Approve {request!r}?"
    answer = interrupt(
        {
            "question": question,
            "request": request,
            "choices": ["approve", "reject"],
            "action_request": {"action": "approve", "args": {"request": request}},
            "config": {"allow_accept": True, "allow_ignore": True, "allow_respond": True, "allow_edit": False},
            "description": question,
        }
    )
    approved, reason = decide(answer)
    return {"request": request, "approved": approved, "reason": reason}


def act(state: ApprovalState) -> dict[str, Any]:
    if state["approved"]:
        text = f"Approved: {state['request']}. Done."
    else:
        text = f"Rejected: {state['request']}." + (f" Reason: {state['reason']}" if state.get("reason") else "")
    return {"messages": [AIMessage(text)]}


def build(config: dict[str, Any] | None = None) -> StateGraph:  # type: ignore[type-arg]
    """Asks a human to approve a request (interrupt), then acts on the answer (input: request)."""
    graph = StateGraph(ApprovalState)
    graph.add_node("ask", ask)
    graph.add_node("act", act)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", "act")
    graph.add_edge("act", END)
    return graph
