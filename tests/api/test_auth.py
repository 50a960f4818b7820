"""GRAPHRUN_API_KEYS: every route but /healthz needs a key; events_url carries a scoped token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from graphrun.settings import Settings
from tests.conftest import ServerHandle


@pytest.fixture
async def keyed(api_factory: Callable[[Settings], Awaitable[ServerHandle]], settings: Settings) -> ServerHandle:
    return await api_factory(settings.model_copy(update={"api_keys": ("k1", "k2")}))


async def test_keys_and_event_tokens(keyed: ServerHandle) -> None:
    async with httpx.AsyncClient(base_url=keyed.url) as anon:
        assert (await anon.get("/healthz")).status_code == 200
        for path in ["/readyz", "/graphs", "/workflows", "/executions", "/metrics"]:
            r = await anon.get(path)
            assert r.status_code == 401, path
            assert "detail" in r.json()
        assert (await anon.get("/workflows", headers={"Authorization": "Bearer wrong"})).status_code == 401
    async with httpx.AsyncClient(base_url=keyed.url, headers={"Authorization": "Bearer k2"}) as c:
        wf = (await c.post("/workflows", json={"name": "c", "graph": "chain"})).json()
        sub = (await c.post(f"/workflows/{wf['id']}/executions", json={"input": {"n": 0}})).json()
        other = (await c.post(f"/workflows/{wf['id']}/executions", json={"input": {"n": 0}})).json()
        await c.post(f"/executions/{sub['execution_id']}/cancel")
    url = sub["events_url"]
    assert "token=" in url
    token = url.split("token=")[1]
    async with httpx.AsyncClient() as browser:  # like EventSource: no headers
        async with browser.stream("GET", url) as r:
            assert r.status_code == 200
            body = (await r.aread()).decode()
        assert "event: cancelled" in body
        wrong = other["events_url"].split("?")[0] + f"?token={token}"
        assert (await browser.get(wrong)).status_code == 401  # scoped to one execution
        assert (await browser.get(url.split("?")[0])).status_code == 401
