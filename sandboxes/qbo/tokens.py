"""OAuth grants for the one configured app: codes, rotating refresh tokens, access tokens.

Lifetimes are Intuit's (access 3600 s, refresh 100 days rolling) divided by the time scale.
A refresh token works once: using it rotates it, and the old value then fails with
``invalid_grant``, which is the behaviour the product's client must survive.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import Enum

from sandboxes.qbo.clock import ScaledClock

ACCESS_SECONDS = 3600
REFRESH_SECONDS = 100 * 24 * 3600
CODE_SECONDS = 600


class TokenCheck(Enum):
    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    WRONG_REALM = "wrong_realm"


@dataclass
class Grant:
    realm_id: str
    refresh_token: str
    refresh_expires: float
    revoked: bool = False
    access_tokens: set[str] = field(default_factory=set)


@dataclass
class AccessToken:
    grant: Grant
    expires: float


@dataclass
class PendingCode:
    realm_id: str
    redirect_uri: str
    expires: float


class TokenStore:
    def __init__(self, clock: ScaledClock) -> None:
        self.clock = clock
        self.codes: dict[str, PendingCode] = {}
        self.grants_by_refresh: dict[str, Grant] = {}
        self.access: dict[str, AccessToken] = {}
        self.grants: list[Grant] = []

    def issue_code(self, realm_id: str, redirect_uri: str) -> str:
        code = "AB11" + secrets.token_urlsafe(36)
        self.codes[code] = PendingCode(realm_id, redirect_uri, self.clock.deadline(CODE_SECONDS))
        return code

    def exchange_code(self, code: str, redirect_uri: str | None) -> dict[str, object] | None:
        """Codes are single use; a wrong redirect_uri or an expired code is invalid_grant."""
        pending = self.codes.pop(code, None)
        if pending is None or pending.expires < self.clock.monotonic():
            return None
        if redirect_uri is not None and redirect_uri != pending.redirect_uri:
            return None
        return self.mint(pending.realm_id)

    def mint(self, realm_id: str) -> dict[str, object]:
        grant = Grant(realm_id, "", 0.0)
        self.grants.append(grant)
        return self._rotate(grant)

    def _rotate(self, grant: Grant) -> dict[str, object]:
        self.grants_by_refresh.pop(grant.refresh_token, None)
        grant.refresh_token = "RT1-" + secrets.token_urlsafe(40)
        grant.refresh_expires = self.clock.deadline(REFRESH_SECONDS)
        self.grants_by_refresh[grant.refresh_token] = grant
        access = "eyJ" + secrets.token_urlsafe(96)
        self.access[access] = AccessToken(grant, self.clock.deadline(ACCESS_SECONDS))
        grant.access_tokens.add(access)
        return {
            "token_type": "bearer",
            "access_token": access,
            # Scaled, so clients that refresh ahead of expiry behave as they would in an hour.
            "expires_in": max(1, round(self.clock.seconds(ACCESS_SECONDS))),
            "refresh_token": grant.refresh_token,
            "x_refresh_token_expires_in": max(1, round(self.clock.seconds(REFRESH_SECONDS))),
        }

    def refresh(self, refresh_token: str) -> dict[str, object] | None:
        grant = self.grants_by_refresh.get(refresh_token)
        if grant is None or grant.revoked or grant.refresh_expires < self.clock.monotonic():
            return None
        return self._rotate(grant)

    def revoke(self, token: str) -> bool:
        grant = self.grants_by_refresh.get(token)
        if grant is None and token in self.access:
            grant = self.access[token].grant
        if grant is None:
            return False
        self._kill(grant)
        return True

    def _kill(self, grant: Grant) -> None:
        grant.revoked = True
        self.grants_by_refresh.pop(grant.refresh_token, None)

    def check(self, access_token: str | None, realm_id: str) -> TokenCheck:
        if not access_token:
            return TokenCheck.MISSING
        token = self.access.get(access_token)
        if token is None:
            return TokenCheck.INVALID
        if token.grant.revoked:
            return TokenCheck.REVOKED
        if token.expires < self.clock.monotonic():
            return TokenCheck.EXPIRED
        if token.grant.realm_id != realm_id:
            return TokenCheck.WRONG_REALM
        return TokenCheck.OK

    def realm_of(self, access_token: str) -> str | None:
        token = self.access.get(access_token)
        return token.grant.realm_id if token else None

    def expire_realm(self, realm_id: str) -> int:
        """Fault switch: every access token of the realm expires now (refresh still works)."""
        expired = 0
        now = self.clock.monotonic()
        for token in self.access.values():
            if token.grant.realm_id == realm_id and token.expires >= now:
                token.expires = now - 1
                expired += 1
        return expired

    def revoke_realm(self, realm_id: str) -> int:
        """Fault switch: the user disconnected the app; all grants for the realm die."""
        live = [g for g in self.grants if g.realm_id == realm_id and not g.revoked]
        for grant in live:
            self._kill(grant)
        return len(live)

    def connected(self, realm_id: str) -> bool:
        return any(g.realm_id == realm_id and not g.revoked for g in self.grants)

    def clear(self) -> None:
        self.codes.clear()
        self.grants_by_refresh.clear()
        self.access.clear()
        self.grants.clear()
