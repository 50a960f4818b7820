"""Which browser origins may call the API (CORS), from GRAPHRUN_CORS_ORIGINS and a langgraph.json's
``http.cors``.

By default any page served from this machine (``localhost``, ``127.0.0.1``, ``[::1]``, any port and
scheme) may call it, which is what a local browser app such as agent-chat-ui needs, while a website
the user happens to visit may not (``langgraph dev`` allows every origin; set
``GRAPHRUN_CORS_ORIGINS=*`` for that). Whatever the policy, the headers the LangGraph SDKs read
cross-origin (``Content-Location``, ``Location``, pagination) are exposed, so that they can reconnect
to a stream by themselves.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

LOCAL_ORIGINS = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?"
EXPOSE_HEADERS = ("content-location", "location", "x-pagination-total", "x-pagination-next")


def cors_options(origins: tuple[str, ...] | None, project: dict[str, Any] | None) -> dict[str, Any] | None:
    """CORSMiddleware's arguments, or None when no other origin may call the API.

    ``project`` (``http.cors``) replaces the defaults key by key; ``origins`` (the environment) wins
    over both for which origins are allowed. ``expose_headers`` only ever adds to EXPOSE_HEADERS.
    """
    options: dict[str, Any] = {
        "allow_origins": [],
        "allow_origin_regex": LOCAL_ORIGINS,
        "allow_methods": ["*"],
        "allow_headers": ["*"],
        "max_age": 600,
        # Chrome's Private Network Access: a page on a public origin that is allowed above may call
        # a server on this machine's network.
        "allow_private_network": True,
    }
    project = dict(project or {})
    expose = [*EXPOSE_HEADERS, *(h.lower() for h in project.pop("expose_headers", []))]
    options["expose_headers"] = list(dict.fromkeys(expose))
    if "allow_origins" in project or "allow_origin_regex" in project:
        options["allow_origin_regex"] = None
    options.update(project)
    if origins is not None:
        options["allow_origins"], options["allow_origin_regex"] = list(origins), None
    if not options["allow_origins"] and not options["allow_origin_regex"]:
        return None
    # Cookies and HTTP authentication only with named origins, never with "*" (as LangGraph's server).
    options.setdefault("allow_credentials", "*" not in options["allow_origins"])
    return options


def install(app: FastAPI, origins: tuple[str, ...] | None, project: dict[str, Any] | None) -> None:
    """Add the CORS middleware (call it after the others but the fast path: it must wrap the rest, so
    that every answer, a 401 or a 413 too, carries its headers and a preflight never reaches
    authentication; the fast path, outside it, hands every request with an Origin header to it)."""
    options = cors_options(origins, project)
    if options is not None:
        app.add_middleware(CORSMiddleware, **options)
