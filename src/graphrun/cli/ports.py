"""Taking a listening port, with a message that says which setting to change when it is taken."""

from __future__ import annotations

import socket

from graphrun.errors import ConfigError


def bind(host: str, port: int, setting: str) -> socket.socket:
    """A socket bound to ``host:port`` (not yet listening), or ConfigError naming ``setting``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As Uvicorn and Gunicorn do: a restart need not wait for the old connections' TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); is something else using it? "
            f"choose another with {setting}"
        ) from None
    except OverflowError:  # a port outside 0-65535 from the environment
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: not a port number; fix {setting}") from None
    return sock


def url(host: str, port: int) -> str:
    """The address to print or connect to: a wildcard host is reached through loopback."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
