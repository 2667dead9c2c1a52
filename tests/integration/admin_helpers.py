"""Run the admin service on a real socket beside the in-process sandboxes, and act as a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import aiohttp
from cryptography.fernet import Fernet
from starlette.applications import Starlette

from shared.admin.settings import AdminServiceSettings
from shared.bootstrap.admin import create_app
from tests.e2e.stack import Stack
from tests.support.servers import free_port, serving

ADMIN_TOKEN = "test-admin-token"


def standalone_settings(database_url: str, amqp_url: str) -> dict[str, Any]:
    """Settings for tests that never reach a sandbox (auth, listing, settings)."""
    return {
        "database_url": database_url,
        "amqp_url": amqp_url,
        "qbo_client_id": "admin-test-client",
        "qbo_client_secret": "admin-test-secret",
        "qbo_webhook_verifier_token": "admin-test-verifier",
        "released_client_id": "admin-test-rl",
        "released_client_secret": "admin-test-rl-secret",
        "released_webhook_key": "admin-test-rl-key",
        "token_encryption_key": Fernet.generate_key().decode(),
    }


def stack_settings(stack: Stack) -> dict[str, Any]:
    return {
        **stack.settings.model_dump(),
        "qbo_authorize_url": f"{stack.qbo_base}/connect/oauth2",
        "released_webhook_public_url": stack.released_hook,
    }


@dataclass
class Admin:
    base: str
    http: aiohttp.ClientSession
    settings: AdminServiceSettings
    app: Starlette

    async def api(
        self, method: str, path: str, *, token: str | None = ADMIN_TOKEN, **kw: Any
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        async with self.http.request(
            method, self.base + path, headers=headers, allow_redirects=False, **kw
        ) as response:
            text = await response.text()
            body = await response.json(content_type=None) if text else None
            return response.status, body

    async def create(self, company: str, **extra: Any) -> UUID:
        status, body = await self.api(
            "POST", "/api/connections", json={"released_company_id": company, **extra}
        )
        assert status in (200, 201), body
        return UUID(body["id"])

    async def callback_url(self, connection_id: UUID, pick_realm: str | None = None) -> str:
        """Play the browser up to Intuit's redirect back to us; the callback URL it points at."""
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        path = f"{self.base}/api/connections/{connection_id}/authorize"
        async with self.http.get(path, headers=headers, allow_redirects=False) as response:
            assert response.status == 302, await response.text()
            authorize = response.headers["Location"]
        if pick_realm is not None:  # the person picks an existing QuickBooks company
            authorize += f"&sandbox_realm_id={pick_realm}"
        async with self.http.get(authorize, allow_redirects=False) as response:
            assert response.status == 302, await response.text()
            return response.headers["Location"]

    async def connect(
        self, connection_id: UUID, pick_realm: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        url = await self.callback_url(connection_id, pick_realm)
        async with self.http.get(url, allow_redirects=False) as response:
            return response.status, await response.json(content_type=None)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@asynccontextmanager
async def running_admin(values: dict[str, Any], **overrides: Any) -> AsyncIterator[Admin]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = AdminServiceSettings(
        **{
            **values,
            "admin_token": ADMIN_TOKEN,
            "admin_public_url": base,
            "admin_port": port,
            **overrides,
        }
    )
    app = create_app(settings)
    async with serving(app, port), aiohttp.ClientSession() as http:
        yield Admin(base, http, settings, app)
