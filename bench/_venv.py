"""The peers' own virtual environments (bench/.peer-venv for `langgraph dev`, bench/.aegra-venv for
Aegra): installed from PyPI on first use with pip, kept apart from the project's .venv so that their
pins never meet graphrun's, and reused while their marker file names the same requirement."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _short(venv: Path) -> str:
    return str(venv.relative_to(ROOT)) if venv.is_relative_to(ROOT) else str(venv)


def installed_versions(venv: Path, packages: Sequence[str]) -> dict[str, str]:
    """The versions of ``packages`` inside ``venv`` (asked of its own interpreter)."""
    code = f"import importlib.metadata as m, json; print(json.dumps({{p: m.version(p) for p in {list(packages)!r}}}))"
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    versions: dict[str, str] = json.loads(out.stdout)
    return versions


def python_at_least(python: str, version: tuple[int, int]) -> bool:
    """Whether ``python`` runs and is at least ``version`` (a pyenv shim on PATH may not run)."""
    check = f"import sys; sys.exit(0 if sys.version_info >= {version!r} else 1)"
    try:
        return subprocess.run([python, "-c", check], capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def find_python(version: tuple[int, int], env_var: str) -> str | None:
    """An interpreter of at least ``version``: ``env_var`` if set, else pythonX.Y on PATH, else pyenv's."""
    wanted = f"{version[0]}.{version[1]}"
    candidates = [os.environ.get(env_var, ""), shutil.which(f"python{wanted}") or ""]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{wanted}.*/bin/python{wanted}")))
    candidates += [shutil.which(name) or "" for name in ("python3.13", "python3.14", "python3")]
    return next((c for c in candidates if c and python_at_least(c, version)), None)


def ensure_venv(
    venv: Path, requirement: str, python: str, packages: Sequence[str], entry: str, timeout_s: float = 600
) -> tuple[dict[str, str] | None, str]:
    """Install ``requirement`` into ``venv`` with ``python`` unless a complete install of the same
    requirement is there (its marker file, and ``entry`` inside it). Returns (versions of
    ``packages``, a note on what was done) or (None, why it is unavailable)."""
    marker = venv / ".installed"
    if marker.exists() and (venv / entry).exists():
        try:
            if json.loads(marker.read_text()).get("requirement") == requirement:
                return installed_versions(venv, packages), f"reused {_short(venv)}"
        except (subprocess.SubprocessError, OSError, ValueError, AttributeError):
            pass
    shutil.rmtree(venv, ignore_errors=True)
    t0 = time.monotonic()
    try:
        subprocess.run([python, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        done = subprocess.run([*pip, requirement], capture_output=True, text=True, timeout=timeout_s, check=False)
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            return None, f"pip install {requirement} failed: {tail[:300]}"
        versions = installed_versions(venv, packages)
    except (subprocess.SubprocessError, OSError, ValueError) as exc:
        return None, f"could not install {requirement}: {exc}"
    marker.write_text(json.dumps({"requirement": requirement, "python": python, "versions": versions}))
    return versions, f"installed into {_short(venv)} in {time.monotonic() - t0:.0f} s"
