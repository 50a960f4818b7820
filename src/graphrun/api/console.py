"""``/console``: the built web console (docs/console.md), served from the package.

Its files hold no data, so they need no API key: the page asks for one and sends it with every API
call it makes. Any path that names no file answers ``index.html``, so a reload on a deep link works.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

from graphrun.console import STATIC_DIR

router = APIRouter(include_in_schema=False)

# Vite names its built assets by content hash, so they never change under their name; index.html
# names the current ones, so it must be fetched anew each time.
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
_NO_CACHE = {"Cache-Control": "no-cache"}


def _file(path: str, root: Path = STATIC_DIR) -> Path | None:
    base = root.resolve()
    candidate = (base / path).resolve()
    # resolve() folds "..": anything outside the static folder is not ours to serve.
    if candidate.is_relative_to(base) and candidate.is_file():
        return candidate
    return None


@router.api_route("/console", methods=["GET", "HEAD"])
async def console_root() -> RedirectResponse:
    # The trailing slash makes the page's relative URLs resolve under /console/.
    return RedirectResponse("/console/", status_code=308)


@router.api_route("/console/{path:path}", methods=["GET", "HEAD"])
async def console_file(path: str) -> FileResponse:
    found = _file(path) if path else None
    if found is not None:
        return FileResponse(found, headers=_IMMUTABLE if path.startswith("assets/") else _NO_CACHE)
    if path.startswith("assets/"):
        raise HTTPException(404, f"no console asset {path!r}")
    index = _file("index.html")
    if index is None:
        raise HTTPException(404, "the console is not built: run `make console`")
    return FileResponse(index, headers=_NO_CACHE)
