"""/console serves the built console from the package: index.html on any path that names no file (so
a deep link reloads), hashed assets cached for good, nothing outside the static folder."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from graphrun.api import console
from graphrun.console import STATIC_DIR


def client() -> TestClient:
    app = FastAPI()
    app.include_router(console.router)
    return TestClient(app)


def test_the_built_console_ships_in_the_package() -> None:
    index = (STATIC_DIR / "index.html").read_text()
    assert '<div id="root">' in index
    assets = sorted(p.name for p in (STATIC_DIR / "assets").iterdir())
    # Every asset index.html names is there, under /console/ (no CDN, no other origin).
    assert assets and all(f"/console/assets/{name}" in index for name in assets if name.endswith((".js", ".css")))
    assert "http://" not in index and "https://" not in index


def test_index_on_the_root_and_on_any_deep_link() -> None:
    c = client()
    moved = c.get("/console", follow_redirects=False)
    assert moved.status_code == 308 and moved.headers["location"] == "/console/"
    for path in ("/console/", "/console/runs/abc", "/console/chat/x/y"):
        answer = c.get(path)
        assert answer.status_code == 200 and '<div id="root">' in answer.text
        assert answer.headers["cache-control"] == "no-cache"
    assert c.head("/console/").status_code == 200


def test_assets_are_immutable_and_missing_ones_are_404() -> None:
    c = client()
    name = next(p.name for p in (STATIC_DIR / "assets").iterdir() if p.suffix == ".js")
    answer = c.get(f"/console/assets/{name}")
    assert answer.status_code == 200 and "immutable" in answer.headers["cache-control"]
    assert c.get("/console/assets/nope.js").status_code == 404


def test_nothing_outside_the_static_folder() -> None:
    c = client()
    for path in ("/console/..%2F__init__.py", "/console/..%2F..%2Fapi%2Fapp.py", "/console/%2Fetc%2Fpasswd"):
        answer = c.get(path)
        assert "from __future__" not in answer.text and "root:" not in answer.text
