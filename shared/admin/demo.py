"""The demo connection ``make run`` brings up: one Re-Leased company bound to a QBO realm.

The company is named by ``DEMO_RELEASED_COMPANY_ID`` (the Re-Leased sandbox reads the same setting
and has the company from its start: the product never calls a sandbox's control API). The admin
service drives the OAuth flow itself (the QBO sandbox auto-approves), exactly as a person's
browser would, so the demo exercises the real callback logic. Idempotent across restarts: with an
active connection present it does nothing.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

import aiohttp

from shared.admin.connect import ConnectFlow, ConnectRefused, ConnectResult
from shared.admin.settings import AdminServiceSettings
from shared.admin.store import AdminConnections, ConnectionRow
from shared.domain.connections import default_settings
from shared.domain.errors import PermanentError, TransientError
from shared.infra.logging import get_logger

log = get_logger("admin.demo")
RETRY_EVERY_S = 1.0
STALE_REASON = "the Re-Leased company no longer exists (the sandbox forgets on restart)"


class DemoNotReady(Exception):
    """A sandbox did not answer as expected yet; worth another try."""


def sandbox_root(released_api_base: str) -> str:
    base = released_api_base.rstrip("/")
    return base.removesuffix("/api/v1")


class DemoConnection:
    def __init__(
        self,
        settings: AdminServiceSettings,
        connections: AdminConnections,
        flow: ConnectFlow,
        http: aiohttp.ClientSession,
    ) -> None:
        self._settings = settings
        self._connections = connections
        self._flow = flow
        self._http = http
        self._deadline = 0.0

    async def run(self) -> ConnectionRow | None:
        """Retry until the sandboxes answer or the time runs out; the active connection."""
        self._deadline = time.monotonic() + self._settings.demo_timeout_s
        while True:
            try:
                return await self.ensure()
            except ConnectRefused as exc:
                log.error("demo_connection_failed", reason=exc.reason, error=exc.message)
                return None
            except PermanentError as exc:
                # Retrying cannot help (bad credentials, a refusal): say so once and stop.
                log.error("demo_connection_failed", error=str(exc))
                return None
            except (DemoNotReady, TransientError, aiohttp.ClientError, OSError) as exc:
                if time.monotonic() >= self._deadline:
                    log.error("demo_connection_failed", error=str(exc))
                    return None
                log.debug("demo_connection_waiting", error=str(exc))
                await asyncio.sleep(RETRY_EVERY_S)

    async def ensure(self) -> ConnectionRow:
        existing = [row for row in await self._connections.list() if row.status != "revoked"]
        live = [row for row in existing if await self._still_there(row)]
        bound = [row for row in live if row.qbo_realm_id is not None]
        if bound:
            # Active, or paused by a person: either way not the demo's to change.
            present = next((row for row in bound if row.status == "active"), bound[0])
            log.info(
                "demo_connection_present", connection_id=str(present.id), status=present.status
            )
            await self._wait_for_webhook(present)
            return present
        if live:
            row = live[0]
        else:
            company = self._settings.demo_released_company_id
            if not company:
                raise PermanentError("DEMO_RELEASED_COMPANY_ID is not set: the company to connect")
            row, _ = await self._connections.create(company, default_settings())
        result = await self._authorize(row)
        webhook_status = result.webhook_status
        if webhook_status != "ACTIVE":
            webhook_status = await self._wait_for_webhook(result.connection)
        self._announce(result.connection, webhook_status)
        return result.connection

    async def _still_there(self, row: ConnectionRow) -> bool:
        if await self._flow.company_exists(row):
            return True
        # The sandboxes keep companies in memory: after a restart the old row points nowhere.
        await self._connections.set_status(row.id, "revoked", STALE_REASON)
        log.warning("demo_connection_stale", connection_id=str(row.id))
        return False

    async def _wait_for_webhook(self, row: ConnectionRow) -> str:
        """Our receiver may start after us: retry the subscription until it validates."""
        while True:
            status = await self._flow.ensure_webhook(row)
            if status == "ACTIVE" or time.monotonic() >= self._deadline:
                return status
            await asyncio.sleep(RETRY_EVERY_S)

    async def _authorize(self, row: ConnectionRow) -> ConnectResult:
        url = self._flow.authorize_url(row.id)
        async with self._http.get(url, allow_redirects=False) as response:
            location = response.headers.get("Location")
            if response.status != 302 or not location:
                raise DemoNotReady(f"QBO sandbox answered {response.status} to authorize")
        query = parse_qs(urlsplit(location).query)
        try:
            code, state, realm = query["code"][0], query["state"][0], query["realmId"][0]
        except KeyError as exc:
            raise DemoNotReady(f"authorize redirect lacks {exc}") from None
        return await self._flow.complete(code, state, realm)

    def _announce(self, row: ConnectionRow, webhook_status: str) -> None:
        public = self._settings.admin_public_url.rstrip("/")
        log.info(
            "demo_connection_ready",
            connection_id=str(row.id),
            released_company_id=row.released_company_id,
            qbo_realm_id=row.qbo_realm_id,
            webhook_status=webhook_status,
            look_at=f"GET {public}/api/connections/{row.id} with the admin token",
            qbo_sandbox=self._settings.qbo_api_base,
            released_sandbox=sandbox_root(self._settings.released_api_base),
        )
