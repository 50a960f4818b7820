"""API keys, and short-lived tokens that let a browser EventSource follow one execution.

A token is ``<expiry>.<hmac>`` over the execution id and expiry, keyed by a secret derived from the
configured API keys, so it is valid on every API process and for that one execution only.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from fastapi import HTTPException, Request


class Auth:
    def __init__(self, keys: tuple[str, ...], token_ttl_s: int) -> None:
        self.keys = tuple(k.encode() for k in keys)
        self.token_ttl_s = token_ttl_s
        self._secret = hashlib.sha256(b"graphrun-events\x00" + b"\x00".join(sorted(self.keys))).digest()

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def key_ok(self, request: Request) -> bool:
        """A right key in ``Authorization: Bearer <key>``, or in ``X-Api-Key: <key>`` (what the
        LangGraph SDKs and agent-chat-ui send)."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        given = [value.strip()] if scheme.lower() == "bearer" else []
        given.append(request.headers.get("x-api-key", "").strip())
        return any(hmac.compare_digest(g.encode(), k) for g in given if g for k in self.keys)

    def require_key(self, request: Request) -> None:
        if self.enabled and not self.key_ok(request):
            raise HTTPException(
                401,
                "missing or wrong API key: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def token_for(self, execution_id: str) -> str:
        expiry = int(time.time()) + self.token_ttl_s
        return f"{expiry}.{self._sign(execution_id, expiry)}"

    def token_ok(self, execution_id: str, token: str) -> bool:
        expiry_text, _, sig = token.partition(".")
        if not expiry_text.isdigit() or int(expiry_text) < time.time():
            return False
        return hmac.compare_digest(sig, self._sign(execution_id, int(expiry_text)))

    def _sign(self, execution_id: str, expiry: int) -> str:
        return hmac.new(self._secret, f"{execution_id}.{expiry}".encode(), hashlib.sha256).hexdigest()
