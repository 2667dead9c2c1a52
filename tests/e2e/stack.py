"""An in-process stack for end-to-end tests: both sandboxes, both receivers, real infrastructure.

Everything listens on loopback sockets of this test process; sandboxes sign and deliver webhooks
to our receivers exactly as in production, and the receivers publish to the run's RabbitMQ vhost.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import aiohttp
import asyncpg
from cryptography.fernet import Fernet

from sandboxes.qbo.app import create_app as create_qbo_sandbox
from sandboxes.qbo.settings import SandboxSettings as QboSandboxSettings
from sandboxes.released.app import create_app as create_released_sandbox
from sandboxes.released.settings import SandboxSettings as ReleasedSandboxSettings
from shared.adapters.clients import ClientFactory
from shared.adapters.http.auth import basic_authorization
from shared.adapters.postgres.connections import ConnectionRepository
from shared.adapters.qbo.tokens import QboTokens
from shared.bootstrap.consumer import run_consumer
from shared.bootstrap.receiver import create_qbo_receiver, create_released_receiver
from shared.domain.connections import Connection
from shared.infra.settings import (
    EngineSettings,
    QboWebhookSettings,
    ReleasedWebhookSettings,
)
from shared.sync.engine import Direction
from tests.support.servers import serving
from tests.support.waiting import eventually as eventually

QBO_CLIENT_ID, QBO_SECRET, QBO_VERIFIER = "e2e-qbo-client", "e2e-qbo-secret", "e2e-verifier"
RL_CLIENT_ID, RL_SECRET, RL_KEY = "e2e-rl-client", "e2e-rl-secret", "e2e-rl-key"
SMALL_POOL = 4
# The company the Re-Leased sandbox starts with for the demo connection (DEMO_RELEASED_COMPANY_ID).
DEMO_COMPANY = "e2e-demo-company"


@dataclass
class Stack:
    qbo_base: str
    released_base: str
    qbo_hook: str
    released_hook: str
    http: aiohttp.ClientSession
    pool: asyncpg.Pool
    settings: EngineSettings
    factory: ClientFactory

    async def call(self, method: str, url: str, **kw: Any) -> Any:
        async with self.http.request(method, url, **kw) as response:
            text = await response.text()
            assert response.status < 400, f"{method} {url}: {response.status} {text}"
            return await response.json(content_type=None) if text else None

    # -- QBO side ------------------------------------------------------------------------------

    async def qbo_realm(self, drop_rate: float = 0.0) -> tuple[str, QboTokens]:
        made = await self.call(
            "POST", f"{self.qbo_base}/_sandbox/realms", json={"companyName": "E"}
        )
        realm = str(made["realmId"])
        body = await self.call("POST", f"{self.qbo_base}/_sandbox/realms/{realm}/tokens")
        if drop_rate:
            await self.call(
                "PUT",
                f"{self.qbo_base}/_sandbox/realms/{realm}/faults",
                json={"webhook_drop_rate": drop_rate},
            )
        return realm, QboTokens.from_response(body)

    # -- Re-Leased side ------------------------------------------------------------------------

    async def released_token(self) -> str:
        body = await self.call(
            "POST",
            f"{self.released_base}/api/v1/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic_authorization(RL_CLIENT_ID, RL_SECRET)},
        )
        return str(body["access_token"])

    async def released_company(self, drop_rate: float = 0.0) -> str:
        made = await self.call(
            "POST", f"{self.released_base}/_sandbox/companies", json={"name": "E2E Holdings"}
        )
        company = str(made["id"])
        await self.released_api(
            company, "POST", "/webhooks", json={"url": self.released_hook, "key": RL_KEY}
        )
        if drop_rate:
            await self.call(
                "PUT",
                f"{self.released_base}/_sandbox/companies/{company}/faults",
                json={"deliveries": {"dropRate": drop_rate}},
            )
        return company

    async def qbo_writes(self, realm: str) -> int:
        log = await self.call("GET", f"{self.qbo_base}/_sandbox/realms/{realm}/requests")
        return int(log["writes"])

    async def released_writes(self, company: str) -> list[dict[str, Any]]:
        log = await self.call("GET", f"{self.released_base}/_sandbox/companies/{company}/requests")
        return [r for r in log["items"] if r["method"] in ("POST", "PATCH", "DELETE")]

    async def qbo_peek(self, realm: str, entity: str, obj_id: str) -> Any:
        return await self.call(
            "GET", f"{self.qbo_base}/_sandbox/realms/{realm}/objects/{entity}/{obj_id}"
        )

    async def released_api(
        self, company: str, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> Any:
        headers = {
            "Authorization": f"Bearer {await self.released_token()}",
            "X-Company-Id": company,
            **(headers or {}),
        }
        return await self.call(method, f"{self.released_base}/api/v1{path}", headers=headers, **kw)

    # -- the product's side --------------------------------------------------------------------

    async def connect(self, realm: str, tokens: QboTokens, company: str) -> Connection:
        async with self.pool.acquire() as conn:
            conn_id: UUID = await conn.fetchval(
                "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
                "VALUES ($1, $2, 'active') RETURNING id",
                company,
                realm,
            )
        await self.factory.tokens.save(conn_id, tokens)
        found = await ConnectionRepository(self.pool).get(conn_id)
        assert found is not None
        return found


DIRECTIONS: tuple[Direction, ...] = ("qbo_to_released", "released_to_qbo")


@asynccontextmanager
async def consumers(settings: EngineSettings, replicas: int = 1) -> AsyncIterator[None]:
    """Both directions of the engine, ``replicas`` consumers each, until the block ends."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_consumer(settings, direction, stop, retry_tiers=(1,), drain_s=5))
        for direction in DIRECTIONS
        for _ in range(replicas)
    ]
    await asyncio.sleep(0.3)
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


@asynccontextmanager
async def running_stack(
    database_url: str, amqp_url: str, pool: asyncpg.Pool
) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as stack:
        qbo_hook_base = await stack.enter_async_context(
            serving(
                create_qbo_receiver(
                    QboWebhookSettings(
                        database_url=database_url,
                        amqp_url=amqp_url,
                        qbo_webhook_verifier_token=QBO_VERIFIER,
                        db_pool_max=SMALL_POOL,
                    ),
                    relay_interval_s=0.3,
                )
            )
        )
        released_hook_base = await stack.enter_async_context(
            serving(
                create_released_receiver(
                    ReleasedWebhookSettings(
                        database_url=database_url,
                        amqp_url=amqp_url,
                        released_webhook_key=RL_KEY,
                        db_pool_max=SMALL_POOL,
                    ),
                    relay_interval_s=0.3,
                )
            )
        )
        qbo_hook = f"{qbo_hook_base}/webhooks/qbo"
        released_hook = f"{released_hook_base}/webhooks/released"
        qbo_base = await stack.enter_async_context(
            serving(
                create_qbo_sandbox(
                    QboSandboxSettings(
                        qbo_client_id=QBO_CLIENT_ID,
                        qbo_client_secret=QBO_SECRET,
                        qbo_webhook_verifier_token=QBO_VERIFIER,
                        qbo_sandbox_webhook_url=qbo_hook,
                        qbo_sandbox_rate_limits=False,
                        qbo_sandbox_seed=11,
                    )
                )
            )
        )
        released_base = await stack.enter_async_context(
            serving(
                create_released_sandbox(
                    ReleasedSandboxSettings(
                        released_client_id=RL_CLIENT_ID,
                        released_client_secret=RL_SECRET,
                        released_webhook_key=RL_KEY,
                        released_sandbox_rate_limits=False,
                        released_sandbox_seed=11,
                        demo_released_company_id=DEMO_COMPANY,
                    )
                )
            )
        )
        http = await stack.enter_async_context(aiohttp.ClientSession())
        settings = EngineSettings(
            database_url=database_url,
            amqp_url=amqp_url,
            qbo_api_base=qbo_base,
            qbo_oauth_base=qbo_base,
            qbo_client_id=QBO_CLIENT_ID,
            qbo_client_secret=QBO_SECRET,
            qbo_webhook_verifier_token=QBO_VERIFIER,
            released_api_base=f"{released_base}/api/v1",
            released_client_id=RL_CLIENT_ID,
            released_client_secret=RL_SECRET,
            released_webhook_key=RL_KEY,
            token_encryption_key=Fernet.generate_key().decode(),
            # The sandboxes run with their limits off; the budgets still run, just wider.
            released_requests_per_minute=6000,
            released_concurrency=10,
            qbo_requests_per_minute=6000,
            # Several stacks and replicas share one PostgreSQL (max_connections 100) in CI.
            amqp_prefetch=SMALL_POOL,
            db_pool_max=SMALL_POOL,
        )
        factory = ClientFactory(settings, pool, http)
        yield Stack(qbo_base, released_base, qbo_hook, released_hook, http, pool, settings, factory)
        # Let in-flight webhook deliveries finish before the receivers go away.
        await asyncio.sleep(0.2)


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:6]}"
