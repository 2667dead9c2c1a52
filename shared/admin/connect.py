"""The QBO connect flow: authorize URL, callback, and the one-to-one rule (guarantee 11).

A Re-Leased company binds to exactly one QBO realm, forever. The callback checks the binding under
a row lock, writes the realm and the encrypted tokens, and tells Re-Leased about the connection in
the same database transaction, so a refusal from either side leaves the old binding and tokens
untouched. A refused grant is revoked at Intuit: we never keep tokens for a realm we will not sync.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import aiohttp
import asyncpg

from shared.adapters.clients import ClientFactory
from shared.adapters.qbo.tokens import QboTokens
from shared.adapters.released.client import ReleasedClient
from shared.admin.oauth_state import InvalidState, sign_state, verify_state
from shared.admin.settings import AdminServiceSettings
from shared.admin.state_uses import claim_state
from shared.admin.store import AdminConnections, ConnectionRow, fetch_row
from shared.domain.connections import Connection, effective_settings
from shared.domain.errors import NotFound, PermanentError, SyncError, TransientError
from shared.infra.logging import get_logger

ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
ONE_TO_ONE = "ONE_TO_ONE_CONNECTION"
_REALM_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")

log = get_logger("admin.connect")


class GrantRealmMismatch(ValueError):
    """The callback's realmId is not the company the grant is for (a tampered redirect)."""


class ConnectRefused(Exception):
    """The grant would break the one-to-one rule; ``reason`` is a stable snake_case code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ConnectResult:
    connection: ConnectionRow
    reconnected: bool
    webhook_status: str

    def document(self) -> dict[str, Any]:
        return {
            **self.connection.summary(),
            "reconnected": self.reconnected,
            "webhook_status": self.webhook_status,
        }


class ConnectFlow:
    def __init__(
        self,
        settings: AdminServiceSettings,
        pool: asyncpg.Pool,
        factory: ClientFactory,
        http: aiohttp.ClientSession,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._factory = factory
        self._http = http
        self._secret = settings.admin_token.get_secret_value()

    def authorize_url(self, connection_id: UUID) -> str:
        query = {
            "client_id": self._settings.qbo_client_id,
            "response_type": "code",
            "scope": ACCOUNTING_SCOPE,
            "redirect_uri": self._settings.redirect_uri,
            "state": sign_state(self._secret, connection_id, self._settings.oauth_state_ttl_s),
        }
        return f"{self._settings.qbo_authorize_url}?{urlencode(query)}"

    async def complete(self, code: str, state: str, realm_id: str) -> ConnectResult:
        """Finish the flow; raises ``InvalidState``, ``GrantRealmMismatch``, ``ConnectRefused``
        or a ``SyncError`` (nothing changed)."""
        connection_id = verify_state(self._secret, state)
        row = await AdminConnections(self._pool).get(connection_id)
        if row is None:
            raise InvalidState("the connection this grant was started for no longer exists")
        if not await claim_state(self._pool, state, self._settings.oauth_state_ttl_s):
            raise InvalidState("state was used already; start the connect flow again")
        tokens = await self._factory.oauth.exchange_code(code, self._settings.redirect_uri)
        try:
            await self._check_grant_realm(tokens, realm_id)
            bound = await self._bind(row, realm_id, tokens)
        except ConnectRefused as refused:
            log.warning(
                "connection_refused",
                connection_id=str(row.id),
                released_company_id=row.released_company_id,
                bound_realm_id=row.qbo_realm_id,
                offered_realm_id=realm_id,
                reason=refused.reason,
            )
            await self._revoke(tokens)
            raise
        except Exception:
            # Not stored, so not ours to keep: the person retries the flow from the start.
            await self._revoke(tokens)
            raise
        webhook_status = await self.ensure_webhook(bound)
        reconnected = row.qbo_realm_id == realm_id
        log.info(
            "connection_bound",
            connection_id=str(bound.id),
            released_company_id=bound.released_company_id,
            qbo_realm_id=realm_id,
            reconnected=reconnected,
            webhook_status=webhook_status,
        )
        return ConnectResult(bound, reconnected, webhook_status)

    async def _check_grant_realm(self, tokens: QboTokens, realm_id: str) -> None:
        # realmId arrives as a plain query parameter beside the code: only QBO itself can say
        # which company the grant opens, so ask it before binding anything.
        if not _REALM_ID.fullmatch(realm_id):
            raise GrantRealmMismatch(f"realmId {realm_id!r} is not a QBO company id")
        base = self._settings.qbo_api_base.rstrip("/")
        url = f"{base}/v3/company/{realm_id}/companyinfo/{realm_id}"
        headers = {"Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json"}
        try:
            async with self._http.get(url, headers=headers) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"QBO unreachable: {exc}") from exc
        if status in (401, 403):
            raise GrantRealmMismatch(f"the grant does not open QBO company {realm_id}")
        if status >= 300:
            raise TransientError(f"QBO answered {status} to companyinfo")

    async def _bind(self, row: ConnectionRow, realm_id: str, tokens: QboTokens) -> ConnectionRow:
        async with self._pool.acquire() as conn, conn.transaction():
            current = await fetch_row(conn, row.id, for_update=True)
            assert current is not None, "connections are never deleted"
            await _check_one_to_one(conn, current, realm_id)
            try:
                await conn.execute(
                    "UPDATE connections SET qbo_realm_id = $2, status = 'active', "
                    "status_reason = NULL, qbo_tokens = $3, "
                    "qbo_tokens_version = qbo_tokens_version + 1 WHERE id = $1",
                    current.id,
                    realm_id,
                    self._factory.cipher.seal(tokens.as_document()),
                )
            except asyncpg.UniqueViolationError:
                raise _realm_taken(realm_id) from None
            except asyncpg.CheckViolationError:
                raise _realm_mismatch(current, realm_id) from None
            # Inside the transaction: if Re-Leased refuses, our binding rolls back with it.
            await self._bind_released(self._released(current, realm_id), current, realm_id)
            bound = await fetch_row(conn, row.id)
        assert bound is not None
        return bound

    def _released(self, row: ConnectionRow, realm_id: str) -> ReleasedClient:
        connection = Connection(
            row.id, row.released_company_id, realm_id, row.status, row.settings, row.created_at
        )
        return self._factory.released(connection)

    async def _bind_released(self, client: ReleasedClient, row: ConnectionRow, realm: str) -> None:
        company = await client.get("/company")
        existing = company.get("accountingConnection")
        if isinstance(existing, dict):
            if str(existing.get("externalOrgId")) == realm:
                return  # reconnecting the same realm: Re-Leased already knows it
            raise ConnectRefused(
                "released_bound_elsewhere",
                f"Re-Leased company {row.released_company_id} is already connected to "
                f"organisation {existing.get('externalOrgId')}, not QBO realm {realm} "
                f"({ONE_TO_ONE})",
            )
        body = {
            "provider": "QBO",
            "externalOrgId": realm,
            "syncFromDate": str(effective_settings(row.settings).sync_from_date),
        }
        try:
            await client.request(
                "POST",
                "/company/accounting-connection",
                body=body,
                idempotency_key=f"connect:{row.id}:{realm}",
            )
        except PermanentError as exc:
            if ONE_TO_ONE in str(exc):
                raise ConnectRefused(
                    "released_bound_elsewhere",
                    f"Re-Leased refused to connect company {row.released_company_id} to QBO "
                    f"realm {realm} ({ONE_TO_ONE})",
                ) from exc
            raise

    async def company_exists(self, row: ConnectionRow) -> bool:
        """Whether Re-Leased still knows the company (in-memory sandboxes forget on restart)."""
        try:
            await self._released(row, row.qbo_realm_id or "").get("/company")
        except NotFound:
            return False
        return True

    async def ensure_webhook(self, row: ConnectionRow) -> str:
        """Subscribe our receiver unless an ACTIVE subscription to it exists; the status."""
        client = self._released(row, row.qbo_realm_id or "")
        url = self._settings.released_webhook_public_url
        try:
            listed = await client.request("GET", "/webhooks")
            ours = [
                sub
                for sub in (listed.get("items", []) if isinstance(listed, dict) else [])
                if sub.get("url") == url
            ]
            if any(sub.get("status") == "ACTIVE" for sub in ours):
                return "ACTIVE"
            if ours:
                # Re-run the intent-to-receive handshake rather than stacking duplicates.
                made = await client.request("POST", f"/webhooks/{ours[0]['id']}/enable")
            else:
                key = self._settings.released_webhook_key.get_secret_value()
                made = await client.request("POST", "/webhooks", body={"url": url, "key": key})
        except SyncError as exc:
            log.warning(
                "released_webhook_subscribe_failed", connection_id=str(row.id), error=str(exc)
            )
            return "FAILED"
        status = str(made.get("status", "UNKNOWN")) if isinstance(made, dict) else "UNKNOWN"
        log.info("released_webhook_subscribed", connection_id=str(row.id), url=url, status=status)
        return status

    async def _revoke(self, tokens: QboTokens) -> None:
        try:
            await self._factory.oauth.revoke(tokens.refresh_token)
        except SyncError as exc:
            log.warning("qbo_grant_revoke_failed", error=str(exc))


async def _check_one_to_one(conn: Any, current: ConnectionRow, realm_id: str) -> None:
    if current.qbo_realm_id is not None and current.qbo_realm_id != realm_id:
        raise _realm_mismatch(current, realm_id)
    owner = await conn.fetchval(
        "SELECT id FROM connections WHERE qbo_realm_id = $1 AND id <> $2", realm_id, current.id
    )
    if owner is not None:
        raise _realm_taken(realm_id)


def _realm_mismatch(current: ConnectionRow, realm_id: str) -> ConnectRefused:
    return ConnectRefused(
        "realm_mismatch",
        f"Re-Leased company {current.released_company_id} is bound to QBO realm "
        f"{current.qbo_realm_id} forever; the grant was for realm {realm_id}. Reconnect and "
        f"choose the original QuickBooks company ({ONE_TO_ONE}).",
    )


def _realm_taken(realm_id: str) -> ConnectRefused:
    return ConnectRefused(
        "realm_taken",
        f"QBO realm {realm_id} is already bound to another Re-Leased company ({ONE_TO_ONE}).",
    )
