"""Both webhook receivers on a real socket for the hostile-input tests: signed posts, a fresh
connection row, ready-made bodies."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import asyncpg
import uvicorn
from starlette.types import ASGIApp

from shared.bootstrap.http_guard import uvicorn_config
from shared.bootstrap.receiver import create_qbo_receiver, create_released_receiver
from shared.domain.signatures import sign
from shared.infra.settings import InfraSettings, QboWebhookSettings, ReleasedWebhookSettings
from tests.support.servers import free_port

VERIFIER = "fuzz-verifier-token"
RELEASED_KEY = "fuzz-released-key"


@asynccontextmanager
async def served(app: ASGIApp, settings: InfraSettings) -> AsyncIterator[str]:
    """Like ``serving``, but with the uvicorn settings production uses (limits, deadlines)."""
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, settings))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server exited during start-up")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@asynccontextmanager
async def qbo_receiver(database_url: str, amqp_url: str, **extra: Any) -> AsyncIterator[str]:
    settings = QboWebhookSettings(
        database_url=database_url,
        amqp_url=amqp_url,
        qbo_webhook_verifier_token=VERIFIER,
        **extra,
    )
    async with served(create_qbo_receiver(settings, relay_interval_s=0.2), settings) as base:
        yield f"{base}/webhooks/qbo"


@asynccontextmanager
async def released_receiver(database_url: str, amqp_url: str, **extra: Any) -> AsyncIterator[str]:
    settings = ReleasedWebhookSettings(
        database_url=database_url, amqp_url=amqp_url, released_webhook_key=RELEASED_KEY, **extra
    )
    app = create_released_receiver(settings, relay_interval_s=0.2)
    async with served(app, settings) as base:
        yield f"{base}/webhooks/released"


async def add_connection(pool: asyncpg.Pool) -> tuple[str, str]:
    """A connection row binding a fresh realm to a fresh company: (realm, company)."""
    realm, company = f"r-{uuid.uuid4().hex[:8]}", f"co-{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
            "VALUES ($1, $2, 'active')",
            company,
            realm,
        )
    return realm, company


def cloud_event(n: int | str, realm: str, **changes: object) -> dict[str, object]:
    event: dict[str, object] = {
        "specversion": "1.0",
        "id": f"ce-{n}-{uuid.uuid4().hex[:8]}",
        "source": "intuit.test",
        "type": "qbo.invoice.updated.v1",
        "time": "2026-11-26T11:59:00Z",
        "intuitentityid": str(n),
        "intuitaccountid": realm,
    }
    event.update(changes)
    return event


def released_event(n: int | str, company: str, **changes: object) -> dict[str, object]:
    event: dict[str, object] = {
        "eventId": str(uuid.uuid4()),
        "eventCategory": "INVOICE",
        "eventType": "UPDATE",
        "eventName": "invoice.approved",
        "resourceId": f"inv-{n}",
        "resourceUrl": f"http://x/api/v1/invoices/inv-{n}",
        "companyId": company,
        "resourceVersion": 2,
        "eventDateUtc": "2026-11-26T11:00:00Z",
    }
    event.update(changes)
    return event


async def post_signed(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    released: bool = False,
    signed: bool = True,
) -> tuple[int, bytes]:
    header, key = (
        ("x-released-signature", RELEASED_KEY)
        if released
        else (
            "intuit-signature",
            VERIFIER,
        )
    )
    headers = {"Content-Type": "application/json"}
    if signed:
        headers[header] = sign(key, body)
    async with session.post(url, data=body, headers=headers) as response:
        return response.status, await response.read()
