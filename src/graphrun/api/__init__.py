"""The HTTP API (FastAPI). It stores, enqueues and streams; it never runs a workflow."""

from graphrun.api.app import create_app

__all__ = ["create_app"]
