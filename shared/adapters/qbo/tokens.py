"""QBO OAuth 2.0 tokens: exchange, refresh with rotation, revoke; stored encrypted per connection.

Intuit rotates the refresh token on use and the old one stops working, so a refresh is serialised
per connection across every replica (a row lock on the connection) and the rotated pair is
committed before the new access token is used. A replica that waited on the lock finds the fresh
pair already stored and uses it instead of refreshing again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import aiohttp
import asyncpg

from shared.adapters.crypto import TokenCipher
from shared.adapters.http.auth import basic_authorization
from shared.domain.errors import ConnectionRevoked, TransientError

# Refresh a little before expiry so a request never starts with an access token about to lapse.
EXPIRY_MARGIN_S = 120.0


@dataclass(frozen=True)
class QboTokens:
    access_token: str
    refresh_token: str
    access_expires_at: float
    refresh_expires_at: float

    @classmethod
    def from_response(cls, body: dict[str, Any], now: float | None = None) -> QboTokens:
        moment = time.time() if now is None else now
        return cls(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]),
            access_expires_at=moment + float(body.get("expires_in", 3600)),
            refresh_expires_at=moment + float(body.get("x_refresh_token_expires_in", 8_640_000)),
        )

    def fresh(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.access_expires_at - EXPIRY_MARGIN_S

    def as_document(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "access_expires_at": self.access_expires_at,
            "refresh_expires_at": self.refresh_expires_at,
        }

    def __repr__(self) -> str:  # never print the tokens themselves
        return f"QboTokens(access_expires_at={self.access_expires_at:.0f})"


class QboOAuth:
    """The token endpoint, spoken with HTTP Basic client authentication.

    Every call has its own deadline (``timeout_s``, whatever the session's default); a timeout,
    a dropped connection or an answer that is not a token document is a ``TransientError``.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        oauth_base: str,
        client_id: str,
        secret: str,
        *,
        timeout_s: float = 15.0,
    ) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._token_url = oauth_base.rstrip("/") + "/oauth2/v1/tokens/bearer"
        self._revoke_url = oauth_base.rstrip("/") + "/oauth2/v1/tokens/revoke"
        self._authorization = basic_authorization(client_id, secret)

    async def exchange_code(self, code: str, redirect_uri: str) -> QboTokens:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        return _tokens(await self._post(self._token_url, form))

    async def refresh(self, refresh_token: str) -> QboTokens:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return _tokens(await self._post(self._token_url, form))

    async def revoke(self, token: str) -> None:
        await self._post(self._revoke_url, {"token": token}, expect_json=False)

    async def _post(
        self, url: str, form: dict[str, str], *, expect_json: bool = True
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Authorization": self._authorization}
        try:
            async with self._session.post(
                url, data=form, headers=headers, timeout=self._timeout
            ) as r:
                text = await r.text()
                if r.status in (400, 401):
                    # invalid_grant: the refresh token was used up, revoked or expired.
                    raise ConnectionRevoked(
                        f"QBO token endpoint refused the grant ({r.status})",
                        remedy="reconnect the company to QuickBooks (admin: connect)",
                    )
                if r.status >= 500 or r.status == 429:
                    raise TransientError(f"QBO token endpoint answered {r.status}")
                if r.status >= 300:
                    raise TransientError(f"QBO token endpoint answered {r.status}")
                if not (expect_json and text):
                    return {}
                document = json.loads(text)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(
                f"QBO token endpoint unreachable: {type(exc).__name__}: {exc}"
            ) from exc
        except ValueError as exc:
            raise TransientError(f"QBO token endpoint answered no JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise TransientError("QBO token endpoint answered JSON that is not an object")
        return document


def _tokens(body: dict[str, Any]) -> QboTokens:
    try:
        return QboTokens.from_response(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise TransientError(f"QBO token endpoint answered no usable tokens: {exc!r}") from exc


class QboTokenStore:
    """Reads, refreshes and persists a connection's tokens (encrypted at rest)."""

    def __init__(self, pool: asyncpg.Pool, cipher: TokenCipher, oauth: QboOAuth) -> None:
        self._pool = pool
        self._cipher = cipher
        self._oauth = oauth

    async def save(self, connection_id: UUID, tokens: QboTokens) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE connections SET qbo_tokens = $2, "
                "qbo_tokens_version = qbo_tokens_version + 1 WHERE id = $1",
                connection_id,
                self._cipher.seal(tokens.as_document()),
            )

    async def load(self, connection_id: UUID) -> QboTokens:
        async with self._pool.acquire() as conn:
            blob = await conn.fetchval(
                "SELECT qbo_tokens FROM connections WHERE id = $1", connection_id
            )
        return self._decode(blob)

    async def access_token(self, connection_id: UUID, *, force_refresh: bool = False) -> str:
        tokens = await self.load(connection_id)
        if tokens.fresh() and not force_refresh:
            return tokens.access_token
        return (await self.refresh(connection_id, stale=tokens)).access_token

    async def refresh(self, connection_id: UUID, *, stale: QboTokens) -> QboTokens:
        async with self._pool.acquire() as conn, conn.transaction():
            blob = await conn.fetchval(
                "SELECT qbo_tokens FROM connections WHERE id = $1 FOR UPDATE", connection_id
            )
            current = self._decode(blob)
            if current.refresh_token != stale.refresh_token and current.fresh():
                return current  # another replica refreshed while we waited for the lock
            rotated = await self._oauth.refresh(current.refresh_token)
            await conn.execute(
                "UPDATE connections SET qbo_tokens = $2, "
                "qbo_tokens_version = qbo_tokens_version + 1 WHERE id = $1",
                connection_id,
                self._cipher.seal(rotated.as_document()),
            )
        return rotated

    def _decode(self, blob: bytes | None) -> QboTokens:
        if blob is None:
            raise ConnectionRevoked(
                "connection has no QBO tokens", remedy="connect the company to QuickBooks"
            )
        doc = self._cipher.open(blob)
        return QboTokens(
            access_token=str(doc["access_token"]),
            refresh_token=str(doc["refresh_token"]),
            access_expires_at=float(doc["access_expires_at"]),
            refresh_expires_at=float(doc["refresh_expires_at"]),
        )
