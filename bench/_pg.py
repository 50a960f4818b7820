"""The bench's PostgreSQL server, for the peers that keep their state there (Aegra, langgraph-api on
langgraph-runtime-pg): a fresh database per start, dropped afterwards, and the server settings that
bound a commit's cost, for the report. ``admin_url`` is a superuser URL to the server's maintenance
database (each peer reads its own from the environment)."""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

import psycopg


def _admin(admin_url: str, sql: str) -> None:
    # CREATE and DROP DATABASE cannot run inside a transaction.
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.encode())  # built from our own names


def fresh_database(admin_url: str, name: str) -> str:
    """An empty database ``name`` on the server; returns its URL."""
    _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    return urlsplit(admin_url)._replace(path=f"/{name}").geturl()


def drop_database(admin_url: str, name: str) -> None:
    """Drop ``name`` (its connections with it); a server already gone is not an error here."""
    with contextlib.suppress(psycopg.Error):
        _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_settings(admin_url: str) -> str:
    """The server's version and the settings that bound a commit's cost, which a peer pays per run."""
    names = ("server_version", "fsync", "synchronous_commit", "shared_buffers", "max_connections")
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [list(names)]).fetchall()
    got = {str(name): str(value) for name, value in rows}
    return ", ".join(f"{name} {got.get(name, '?')}" for name in names)
