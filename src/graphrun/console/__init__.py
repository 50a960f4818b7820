"""The console's built files (``static/``, made by ``make console`` from ``console/`` at the repo root).

They are committed and ship in the wheel, so a server needs no Node and no network to serve them.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
