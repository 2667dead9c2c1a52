"""The console's session: the admin token, once, turns into a signed cookie.

The cookie holds an expiry and a CSRF secret, signed with HMAC-SHA256 under a key derived from
the admin token (so changing the token signs every session out). It is HttpOnly (no script reads
it), SameSite=Strict (no other site's page sends it) and Secure when the console is served over
https. Every form carries the CSRF secret in a hidden field; a POST whose field does not match its
session's secret is refused. The sign-in form, before any session exists, is protected the same
way by a short-lived signed cookie of its own (double submit).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from starlette.responses import Response

COOKIE = "console_session"
LOGIN_COOKIE = "console_signin"
LOGIN_TTL_S = 900


@dataclass(frozen=True)
class Session:
    csrf: str
    expires_at: float


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Sessions:
    def __init__(self, admin_token: str, *, ttl_s: float, secure: bool) -> None:
        self._token = admin_token.encode()
        self._key = hashlib.sha256(b"console-session\0" + self._token).digest()
        self.ttl_s = ttl_s
        self.secure = secure

    def token_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.strip().encode(), self._token)

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return f"{payload}.{_b64(mac)}"

    def _verify(self, value: str | None) -> str | None:
        if not value or "." not in value:
            return None
        payload, _, _mac = value.rpartition(".")
        if not hmac.compare_digest(self._sign(payload).encode(), value.encode()):
            return None
        return payload

    def issue(self, kind: str = "s", ttl_s: float | None = None) -> tuple[str, Session]:
        """A new signed cookie value and the session it stands for."""
        session = Session(secrets.token_urlsafe(24), time.time() + (ttl_s or self.ttl_s))
        return self._sign(f"{kind}:{int(session.expires_at)}:{session.csrf}"), session

    def read(self, value: str | None, kind: str = "s") -> Session | None:
        """The session of a cookie value, or None (missing, forged, expired, other kind)."""
        payload = self._verify(value)
        if payload is None:
            return None
        found_kind, _, rest = payload.partition(":")
        expires, _, csrf = rest.partition(":")
        if found_kind != kind or not expires.isdigit() or not csrf:
            return None
        if int(expires) < time.time():
            return None
        return Session(csrf, float(expires))

    @staticmethod
    def csrf_ok(session: Session, given: object) -> bool:
        return isinstance(given, str) and hmac.compare_digest(given.encode(), session.csrf.encode())

    def set_cookie(self, response: Response, name: str, value: str, max_age: float) -> None:
        response.set_cookie(
            name,
            value,
            max_age=int(max_age),
            httponly=True,
            samesite="strict",
            secure=self.secure,
            path="/console",
        )
