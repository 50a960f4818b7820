"""The one typed settings object.

Built once by the composition roots (the CLI, ``create_app``, the worker process) and passed down;
no other module reads the environment. Every bad value fails here, at start-up, with the variable's
name in the message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from graphrun.errors import ConfigError
from graphrun.projects import GRAPHRUN_TOML, LANGGRAPH_JSON, load_project


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRAPHRUN_", env_file=".env", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Path("./.graphrun")
    redis_url: str | None = None
    database_url: str | None = None
    config: Path | None = None
    api_keys: Annotated[tuple[str, ...], NoDecode] = ()
    # Browser origins allowed to call the API (comma-separated; "*" any). Unset: any local origin
    # (localhost, 127.0.0.1, [::1], any port) and http.cors of a langgraph.json; empty: none.
    cors_origins: Annotated[tuple[str, ...] | None, NoDecode] = None
    event_ttl_s: int = Field(3600, ge=1)
    execution_timeout_s: float = Field(3600, gt=0)
    max_input_bytes: int = Field(1_048_576, ge=1)

    # Beyond API.md §5: documented in the README's configuration table.
    redis_prefix: str = Field("graphrun:", min_length=1)
    event_maxlen: int = Field(10_000, ge=100)
    heartbeat_s: float = Field(15.0, gt=0, le=15.0)
    api_workers: int = Field(2, ge=1, le=64)
    api_timeout_s: int = Field(30, ge=1)
    worker_processes: int = Field(1, ge=1, le=64)
    # At most this many executions per worker process; above 4, a new one only while the process's
    # event loop lags less than worker_admit_lag_ms (0: the fixed limit alone). See worker/admission.py.
    worker_concurrency: int = Field(100, ge=1, le=10_000)
    worker_admit_lag_ms: int = Field(50, ge=0, le=10_000)
    # `graphrun worker` on a machine of its own has no API to report through: its processes'
    # /metrics on this port (on GRAPHRUN_HOST), if set; 0 is off.
    worker_metrics_port: int | None = Field(None, ge=0, le=65535)
    lease_s: float = Field(5.0, ge=0.5, le=300)
    sweep_interval_s: float = Field(1.0, gt=0, le=60)
    requeue_after_s: float = Field(30.0, gt=0)
    max_attempts: int = Field(3, ge=1, le=100)
    shutdown_grace_s: float = Field(30.0, ge=0)
    loop_stall_ms: int = Field(200, ge=1)
    # How long after its pick-up a fresh execution's first node waits for a cancel, unless a client
    # follows its events (see cancel.py): a cancel sent the moment submit returns wins.
    start_grace_ms: int = Field(500, ge=0, le=10_000)
    graph_cache_size: int = Field(64, ge=1)
    # Where LangGraph checkpoints of running executions live: beside their event log in Redis
    # (one round trip per step), or in the SQL database (one transaction per step).
    checkpoints: Literal["redis", "database"] = "redis"
    prewarm_workflows: int = Field(8, ge=0, le=1000)
    token_ttl_s: int = Field(3600, ge=10)
    # How long `graphrun api` and `graphrun worker` wait at start-up for an external Redis that is not
    # up yet (a fleet whose services start together) before they stop with one line.
    startup_wait_s: float = Field(30.0, ge=0, le=3600)
    llm: str | None = None
    api_key: str | None = None  # what `graphrun run` sends; defaults to the first of api_keys
    log_level: str = "INFO"

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(k.strip() for k in value.split(",") if k.strip())
        return value

    @field_validator("worker_admit_lag_ms")
    @classmethod
    def _check_admit_lag(cls, value: int) -> int:
        if 0 < value < 10:
            raise ValueError("must be 0 (no lag limit) or at least 10 (ms): the loop's timers are not finer")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgresql", "postgres://", "sqlite")):
            raise ValueError("must be a postgresql://… or sqlite:///… URL")
        return value or None

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @property
    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL for the configured database (SQLite in the data dir if unset)."""
        url = self.database_url
        if url is None:
            return f"sqlite+aiosqlite:///{(self.data_dir / 'graphrun.db').resolve()}"
        if url.startswith("sqlite:"):
            return "sqlite+aiosqlite:" + url[len("sqlite:") :]
        for scheme in ("postgresql://", "postgres://", "postgresql+psycopg2://", "postgresql+asyncpg://"):
            if url.startswith(scheme):
                return "postgresql+psycopg://" + url[len(scheme) :]
        return url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise ConfigError(
                "GRAPHRUN_REDIS_URL is not set: `graphrun api` and `graphrun worker` need a shared Redis "
                "(`graphrun serve` starts an embedded one on a single machine)"
            )
        return self.redis_url

    @property
    def registry_file(self) -> Path | None:
        """The configuration file: GRAPHRUN_CONFIG, else ./langgraph.json or ./graphrun.toml."""
        if self.config is not None:
            return self.config
        found = [path for path in (Path(LANGGRAPH_JSON), Path(GRAPHRUN_TOML)) if path.is_file()]
        if len(found) > 1:
            raise ConfigError(
                f"both ./{LANGGRAPH_JSON} and ./{GRAPHRUN_TOML} exist: set GRAPHRUN_CONFIG to the one to use"
            )
        return found[0] if found else None


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (and ``.env``); a bad value raises ConfigError.

    A langgraph.json's ``env`` joins the environment here, before anything else reads it, so that
    the project's GRAPHRUN_* values are settings too and every child process inherits them (the real
    environment still wins: see Project.activate).
    """
    settings = _build(overrides)
    path = settings.registry_file
    if path is not None and path.suffix.lower() == ".json":
        project = load_project(path)
        project.activate()
        if any(name.startswith("GRAPHRUN_") for name in project.env):
            settings = _build(overrides)
    return settings


def _build(overrides: dict[str, object]) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"GRAPHRUN_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
