"""Browsers on another origin: CORS preflights and answers (GRAPHRUN_CORS_ORIGINS, http.cors of a
langgraph.json), and API keys sent as X-Api-Key, as the LangGraph SDKs and agent-chat-ui send them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from graphrun.api.cors import EXPOSE_HEADERS, LOCAL_ORIGINS, cors_options
from graphrun.settings import Settings
from tests.conftest import ServerHandle

StartApi = Callable[[Settings], Awaitable[ServerHandle]]


def _preflight(origin: str, method: str = "POST", headers: str = "content-type,x-api-key") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}


async def test_default_lets_a_local_browser_app_in(api: ServerHandle) -> None:
    async with httpx.AsyncClient(base_url=api.url) as c:
        for origin in ("http://localhost:3000", "http://127.0.0.1:5173", "http://[::1]:8080"):
            r = await c.options("/workflows", headers=_preflight(origin))
            assert r.status_code == 200, origin
            assert r.headers["access-control-allow-origin"] == origin
            assert "POST" in r.headers["access-control-allow-methods"]
            assert r.headers["access-control-allow-headers"] == "content-type,x-api-key"

        r = await c.get("/graphs", headers={"Origin": "http://localhost:3000"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
        exposed = r.headers["access-control-expose-headers"].lower().replace(" ", "").split(",")
        assert {"content-location", "location"} <= set(exposed)

        # A website the user visits is not a local app.
        r = await c.options("/workflows", headers=_preflight("https://evil.example"))
        assert r.status_code == 400
        assert "access-control-allow-origin" not in r.headers
        r = await c.get("/graphs", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


async def test_any_origin_when_configured(api_factory: StartApi, settings: Settings) -> None:
    api = await api_factory(settings.model_copy(update={"cors_origins": ("*",)}))
    async with httpx.AsyncClient(base_url=api.url) as c:
        r = await c.options("/workflows", headers=_preflight("https://studio.example"))
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "*"
        r = await c.get("/graphs", headers={"Origin": "https://studio.example"})
        assert r.headers["access-control-allow-origin"] == "*"


async def test_http_cors_of_a_langgraph_json(api_factory: StartApi, settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "g.py").write_text("from graphrun.examples.chain import build\ngraph = build({}).compile()\n")
    project = tmp_path / "langgraph.json"
    cors = {"allow_origins": ["https://app.example"], "max_age": 60, "expose_headers": ["X-Custom"]}
    project.write_text(json.dumps({"graphs": {"g": "./g.py:graph"}, "http": {"cors": cors}}))
    api = await api_factory(settings.model_copy(update={"config": project}))
    async with httpx.AsyncClient(base_url=api.url) as c:
        r = await c.options("/workflows", headers=_preflight("https://app.example"))
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        assert r.headers["access-control-max-age"] == "60"
        r = await c.get("/graphs", headers={"Origin": "https://app.example"})
        assert "g" in {g["name"] for g in r.json()}
        exposed = r.headers["access-control-expose-headers"].lower()
        assert "x-custom" in exposed and "content-location" in exposed
        # Naming origins replaces the local default.
        assert (await c.options("/workflows", headers=_preflight("http://localhost:3000"))).status_code == 400


async def test_x_api_key(api_factory: StartApi, settings: Settings) -> None:
    api = await api_factory(settings.model_copy(update={"api_keys": ("k1", "k2")}))
    origin = {"Origin": "http://localhost:3000"}
    async with httpx.AsyncClient(base_url=api.url) as c:
        assert (await c.get("/graphs", headers={"X-Api-Key": "k2"})).status_code == 200
        assert (await c.get("/graphs", headers={"Authorization": "Bearer k1"})).status_code == 200
        # Either header may carry the right key.
        both = {"Authorization": "Bearer wrong", "X-Api-Key": "k1"}
        assert (await c.get("/graphs", headers=both)).status_code == 200

        wrong = await c.get("/graphs", headers={"X-Api-Key": "nope", **origin})
        assert wrong.status_code == 401
        assert "X-Api-Key" in wrong.json()["detail"]
        # A browser can read the 401 (CORS headers on errors too) ...
        assert wrong.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert (await c.get("/graphs", headers={"X-Api-Key": ""})).status_code == 401
        # ... and a preflight, which never carries the key, is not refused.
        assert (await c.options("/graphs", headers=_preflight("http://localhost:3000", "GET"))).status_code == 200


@pytest.mark.parametrize(
    ("origins", "project", "expected"),
    [
        (None, None, {"allow_origins": [], "allow_origin_regex": LOCAL_ORIGINS, "allow_credentials": True}),
        (("*",), None, {"allow_origins": ["*"], "allow_origin_regex": None, "allow_credentials": False}),
        (None, {"allow_origins": ["https://a"]}, {"allow_origins": ["https://a"], "allow_origin_regex": None}),
        (("https://env",), {"allow_origins": ["https://a"]}, {"allow_origins": ["https://env"]}),  # env wins
        (None, {"allow_origin_regex": "https://.*\\.a"}, {"allow_origins": [], "allow_origin_regex": "https://.*\\.a"}),
        (
            None,
            {"allow_methods": ["GET"], "allow_credentials": False},
            {"allow_methods": ["GET"], "allow_credentials": False},
        ),
    ],
)
def test_cors_options(
    origins: tuple[str, ...] | None, project: dict[str, object] | None, expected: dict[str, object]
) -> None:
    options = cors_options(origins, project)
    assert options is not None
    assert {k: options[k] for k in expected} == expected
    assert options["expose_headers"][: len(EXPOSE_HEADERS)] == list(EXPOSE_HEADERS)


def test_no_cross_origin_access_at_all() -> None:
    assert cors_options((), None) is None
    assert cors_options((), {"allow_origins": ["https://a"]}) is None  # GRAPHRUN_CORS_ORIGINS="" wins


@pytest.mark.parametrize(
    ("value", "parsed"),
    [(None, None), ("", ()), ("*", ("*",)), ("http://a:1, https://b ,", ("http://a:1", "https://b"))],
)
def test_graphrun_cors_origins(monkeypatch: pytest.MonkeyPatch, value: str | None, parsed: object) -> None:
    if value is None:
        monkeypatch.delenv("GRAPHRUN_CORS_ORIGINS", raising=False)
    else:
        monkeypatch.setenv("GRAPHRUN_CORS_ORIGINS", value)
    assert Settings(_env_file=None).cors_origins == parsed  # type: ignore[call-arg]
