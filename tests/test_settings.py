from pathlib import Path

import pytest

from graphrun.errors import ConfigError
from graphrun.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("GRAPHRUN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env or graphrun.toml


def test_defaults_match_the_contract() -> None:
    s = load_settings()
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.data_dir == Path("./.graphrun")
    assert s.redis_url is None and s.database_url is None
    assert s.api_keys == ()
    assert (s.event_ttl_s, s.execution_timeout_s, s.max_input_bytes) == (3600, 3600, 1048576)
    assert s.sqlalchemy_url.startswith("sqlite+aiosqlite:///") and s.sqlalchemy_url.endswith("/.graphrun/graphrun.db")


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GRAPHRUN_PORT=18000\nGRAPHRUN_API_KEYS=a, b ,,c\n")
    monkeypatch.setenv("GRAPHRUN_DATABASE_URL", "postgresql://u@h:5432/db")
    s = load_settings()
    assert s.port == 18000
    assert s.api_keys == ("a", "b", "c")
    assert s.sqlalchemy_url == "postgresql+psycopg://u@h:5432/db"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("GRAPHRUN_PORT", "eighty", "GRAPHRUN_PORT"),
        ("GRAPHRUN_PORT", "70000", "GRAPHRUN_PORT"),
        ("GRAPHRUN_REDIS_URL", "localhost:6379", "GRAPHRUN_REDIS_URL"),
        ("GRAPHRUN_DATABASE_URL", "mysql://x", "GRAPHRUN_DATABASE_URL"),
        ("GRAPHRUN_EVENT_TTL_S", "0", "GRAPHRUN_EVENT_TTL_S"),
        ("GRAPHRUN_EXECUTION_TIMEOUT_S", "-1", "GRAPHRUN_EXECUTION_TIMEOUT_S"),
        ("GRAPHRUN_MAX_INPUT_BYTES", "lots", "GRAPHRUN_MAX_INPUT_BYTES"),
        ("GRAPHRUN_LOG_LEVEL", "LOUD", "GRAPHRUN_LOG_LEVEL"),
        ("GRAPHRUN_START_GRACE_MS", "-1", "GRAPHRUN_START_GRACE_MS"),
        ("GRAPHRUN_START_GRACE_MS", "60000", "GRAPHRUN_START_GRACE_MS"),
        ("GRAPHRUN_START_GRACE_MS", "half a second", "GRAPHRUN_START_GRACE_MS"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=fragment):
        load_settings()


def test_api_and_worker_need_a_redis_url() -> None:
    with pytest.raises(ConfigError, match="GRAPHRUN_REDIS_URL"):
        load_settings().require_redis_url()
