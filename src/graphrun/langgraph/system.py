"""``GET /ok`` and ``GET /info``: what LangGraph's clients ask a server before anything else."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter

from graphrun import __version__

router = APIRouter(tags=["langgraph: system"])


def _langgraph_version() -> str | None:
    try:
        return version("langgraph")
    except PackageNotFoundError:
        return None


@router.get("/ok", response_model=dict[str, Any])
async def ok() -> dict[str, Any]:
    return {"ok": True}


@router.get("/info", response_model=dict[str, Any])
async def info() -> dict[str, Any]:
    return {
        "version": __version__,
        "server": "graphrun",
        "langgraph_py_version": _langgraph_version(),
        "flags": {"assistants": True, "crons": False, "langsmith": False},
        "host": {"kind": "self-hosted", "project_id": None, "host_revision_id": None, "revision_id": None},
    }
