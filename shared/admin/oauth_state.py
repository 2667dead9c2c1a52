"""The OAuth ``state`` parameter: signed, expiring, carrying the connection id.

The callback is public (Intuit redirects the user's browser to it), so the state is what ties a
grant to the connection that asked for it. It is HMAC-SHA256 signed with a key derived from the
admin token, so only this service can mint one, and it expires so a leaked URL goes stale. Pure
functions, no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from uuid import UUID

_CONTEXT = b"qbo-oauth-state/v1"
# Ours are about 110 characters; anything much longer is not one of ours.
MAX_STATE_CHARS = 256


class InvalidState(ValueError):
    """The state was tampered with, expired, or is not ours."""


def _key(secret: str) -> bytes:
    # A derived key, so the admin token itself never signs anything a browser sees.
    return hmac.new(secret.encode("utf-8"), _CONTEXT, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def sign_state(secret: str, connection_id: UUID, ttl_s: float, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + ttl_s)
    payload = f"{connection_id.hex}.{expires}.{secrets.token_hex(8)}"
    mac = hmac.new(_key(secret), payload.encode("ascii"), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def fingerprint(state: str) -> str:
    """What the single-use record keeps of a state (never the state itself)."""
    return hashlib.sha256(state.encode("utf-8", "replace")).hexdigest()


def verify_state(secret: str, state: str, now: float | None = None) -> UUID:
    """The connection id the state was minted for; ``InvalidState`` otherwise. Whether it was
    used before is the caller's to check (it needs the database)."""
    if not state.isascii() or len(state) > MAX_STATE_CHARS:
        raise InvalidState("state is malformed")
    payload, _, signature = state.rpartition(".")
    expected = _b64(
        hmac.new(_key(secret), payload.encode("ascii", "replace"), hashlib.sha256).digest()
    )
    if not payload or not hmac.compare_digest(signature, expected):
        raise InvalidState("state signature does not match")
    parts = payload.split(".")
    if len(parts) != 3:
        raise InvalidState("state is malformed")
    try:
        connection_id, expires = UUID(hex=parts[0]), int(parts[1])
    except ValueError as exc:
        raise InvalidState("state is malformed") from exc
    if (time.time() if now is None else now) > expires:
        raise InvalidState("state has expired; start the connect flow again")
    return connection_id
