"""What a compiled graph says about itself, as LangGraph's server shows it: its drawable nodes and
edges, and the JSON schemas of its input, output, state, config and context. Pure."""

from __future__ import annotations

import logging
import typing
from typing import Any

from pydantic import TypeAdapter

from graphrun.errors import StoreError

log = logging.getLogger("graphrun.api")


def parse_xray(raw: str | None) -> bool | int:
    """``?xray=``: absent/false, true, or a depth of subgraphs to expand."""
    if raw is None or raw.lower() in ("", "false", "0"):
        return False
    if raw.lower() == "true":
        return True
    try:
        depth = int(raw)
    except ValueError:
        raise StoreError(f"xray must be true, false or a positive integer, not {raw!r}") from None
    if depth < 0:
        raise StoreError("xray must be true, false or a positive integer")
    return depth


def drawable(graph: Any, xray: bool | int) -> dict[str, Any]:
    """Nodes and edges of ``graph.get_graph(xray=…)``. A node's ``data`` keeps its name only (the
    class path of the runnable says nothing about the graph); schema nodes keep theirs."""
    drawn = graph.get_graph(xray=xray).to_json()
    nodes = []
    for node in drawn.get("nodes", []):
        data = node.get("data")
        keep_name_only = node.get("type") == "runnable" and isinstance(data, dict) and "name" in data
        nodes.append({**node, "data": {"name": data["name"]}} if keep_name_only else node)
    return {"nodes": nodes, "edges": drawn.get("edges", [])}


def _try(what: str, fn: Any) -> dict[str, Any] | None:
    try:
        schema: dict[str, Any] | None = fn()
        return schema
    except Exception as exc:  # noqa: BLE001 - a schema pydantic cannot express is left out, as the server does
        log.debug("no %s schema: %s", what, exc)
        return None


def _state_schema(graph: Any, graph_id: str) -> dict[str, Any] | None:
    """The state's keys, each with its type's schema where pydantic can say it (a TypedDict of
    Python < 3.12 cannot be taken whole, but its fields can)."""
    builder = getattr(graph, "builder", None)
    schema = getattr(builder, "state_schema", None)
    if schema is None:
        return None
    try:
        hints = typing.get_type_hints(schema)
    except Exception:  # noqa: BLE001 - unresolvable annotations: no schema
        return None
    properties: dict[str, Any] = {}
    for key, hint in hints.items():
        field = _try(f"state field {key}", lambda hint=hint: TypeAdapter(hint).json_schema()) or {}
        properties[key] = {"default": None, "title": key.replace("_", " ").title(), **field}
    return {"properties": properties, "title": f"{graph_id}_state", "type": "object"}


def schemas(graph: Any, graph_id: str) -> dict[str, Any]:
    return {
        "input_schema": _try("input", graph.get_input_jsonschema),
        "output_schema": _try("output", graph.get_output_jsonschema),
        "state_schema": _state_schema(graph, graph_id),
        "config_schema": _try("config", getattr(graph, "get_config_jsonschema", dict)) or {},
        "context_schema": _try("context", getattr(graph, "get_context_jsonschema", lambda: None)),
    }
