"""The HTTP API (FastAPI). It stores, enqueues and streams; it never runs a workflow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphrun.api.app import create_app


def __getattr__(name: str) -> Any:
    # Imported on first use, not with the package: the LangGraph routes (graphrun.langgraph) import
    # modules of this package, and api/app.py imports them, which would be an import cycle.
    if name == "create_app":
        from graphrun.api.app import create_app

        return create_app
    raise AttributeError(name)


__all__ = ["create_app"]
