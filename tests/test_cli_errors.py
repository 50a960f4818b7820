"""Every failure a user can cause on the command line reads as one line saying what to do, with a
non-zero exit status, and no traceback: mapped in one place, graphrun.cli.main."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from graphrun.cli.main import main
from graphrun.redis.embedded import free_port
from graphrun.settings import Settings
from tests.conftest import ServerHandle


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("graphrun"), lines[0]
    return lines[0]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No GRAPHRUN_* from the environment, and no .env file from the working directory."""
    for key in list(os.environ):
        if key.startswith("GRAPHRUN_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    yield


def _cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHRUN_")}
    return subprocess.run(
        [sys.executable, "-m", "graphrun", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_run_with_nothing_listening_says_to_start_serve(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    monkeypatch.setenv("GRAPHRUN_PORT", str(port))  # how `graphrun run` finds the API without --url
    assert main(["run", "chain", "--input", '{"n": 0}']) == 1
    line = _one_line(capsys.readouterr().err)
    assert f"cannot reach the API at http://127.0.0.1:{port}" in line
    assert "`graphrun serve` running?" in line and "--url" in line


def test_bad_input_json_is_one_line(clean_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "chain", "--input", "[1"])
    assert exited.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert "--input: not valid JSON" in line and "graphrun run --help" in line


def test_bad_config_value_is_one_line(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GRAPHRUN_PORT", "eighty")
    assert main(["run", "chain"]) == 2
    assert "GRAPHRUN_PORT" in _one_line(capsys.readouterr().err)


async def test_unknown_workflow_and_refused_api_key(
    settings_factory: Callable[..., Settings], api_factory: Callable[[Settings], Awaitable[ServerHandle]]
) -> None:
    handle = await api_factory(settings_factory(api_keys=["the-key"]))

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return _cli("run", "nosuch", "--url", handle.url, *extra, env={}, timeout=60)

    refused = await asyncio.to_thread(run)
    assert refused.returncode == 2
    assert "refused the API key" in _one_line(refused.stderr) and "GRAPHRUN_API_KEY" in refused.stderr

    unknown = await asyncio.to_thread(run, "--api-key", "the-key")
    assert unknown.returncode == 2
    line = _one_line(unknown.stderr)
    assert "no workflow with id or name 'nosuch'" in line and "registered graphs" in line


def test_serve_on_a_taken_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _cli("serve", env={"GRAPHRUN_PORT": str(port), "GRAPHRUN_DATA_DIR": str(tmp_path / "data")})
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert f"cannot listen on 127.0.0.1:{port}" in line and "GRAPHRUN_PORT" in line
    # Refused before starting anything: no embedded Redis files.
    assert not any("appendonly" in p.name for p in (tmp_path / "data").iterdir())


@pytest.mark.parametrize("command", ["worker", "api"])
def test_unreachable_redis_is_one_line_without_the_password(command: str, tmp_path: Path) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    env = {"GRAPHRUN_REDIS_URL": url, "GRAPHRUN_DATA_DIR": str(tmp_path), "GRAPHRUN_STARTUP_WAIT_S": "1"}
    done = _cli(command, env=env)
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert "cannot reach Redis at redis://127.0.0.1:" in line and "GRAPHRUN_REDIS_URL" in line
    assert "hunter2" not in line


def test_worker_without_redis_url_is_one_line(tmp_path: Path) -> None:
    done = _cli("worker", env={"GRAPHRUN_DATA_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert "GRAPHRUN_REDIS_URL is not set" in _one_line(done.stderr)


def test_api_on_a_taken_port_is_one_line(redis_server: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"GRAPHRUN_REDIS_URL": redis_server, "GRAPHRUN_PORT": str(port), "GRAPHRUN_DATA_DIR": str(tmp_path)}
        done = _cli("api", env=env)
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in _one_line(done.stderr)


def test_unreachable_database_is_one_line(redis_server: str, tmp_path: Path) -> None:
    env = {
        "GRAPHRUN_REDIS_URL": redis_server,
        "GRAPHRUN_DATABASE_URL": f"postgresql://graphrun:secret@127.0.0.1:{free_port()}/graphrun",
        "GRAPHRUN_DATA_DIR": str(tmp_path),
    }
    done = _cli("worker", "--processes", "2", env=env)  # the supervisor migrates before it forks
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert "database is unreachable" in line and "GRAPHRUN_DATABASE_URL" in line
    assert "sqlalche.me" not in line
