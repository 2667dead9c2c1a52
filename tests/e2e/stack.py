"""An in-process stack for end-to-end tests: both sandboxes, both receivers, real infrastructure.

Everything listens on loopback sockets of this test process; sandboxes sign and deliver webhooks
to our receivers exactly as in production, and the receivers publish to the run's RabbitMQ vhost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

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
from shared.admin.connect import ConnectFlow
from shared.admin.settings import AdminServiceSettings
from shared.admin.store import AdminConnections
from shared.bootstrap.consumer import run_consumer
from shared.bootstrap.receiver import create_qbo_receiver, create_released_receiver
from shared.domain.connections import Connection, default_settings
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
ADMIN_TOKEN = "e2e-admin-token"
SET_UP_PATHS = ("/company/accounting-connection", "/webhooks")
WIDE_BUDGETS: dict[str, Any] = {
    "released_requests_per_minute": 6000,
    "released_concurrency": 10,
    "qbo_requests_per_minute": 6000,
}
# Connections sync from here: before every date the tests' records carry.
SYNC_FROM = dt.date(2020, 1, 1)
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

    async def released_token(self, company: str) -> str:
        """A Re-Leased user's token for ``company`` (minted by the control API).

        Tests act in Re-Leased as a person would: once the product has made the company's
        accounting connection, the product's client is the accounting side and a user is refused
        what only that side may do (ARCHIVE_IN_ACCOUNTING, MANAGED_IN_ACCOUNTING,
        REVERSE_IN_ACCOUNTING), exactly as in production."""
        body = await self.call("POST", f"{self.released_base}/_sandbox/companies/{company}/tokens")
        return str(body["access_token"])

    async def product_token(self) -> str:
        """A token with the product's client credentials (the accounting side once connected)."""
        body = await self.call(
            "POST",
            f"{self.released_base}/api/v1/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic_authorization(RL_CLIENT_ID, RL_SECRET)},
        )
        return str(body["access_token"])

    async def released_company(
        self, drop_rate: float = 0.0, *, user_subscribes: bool = True
    ) -> str:
        """A new company. ``user_subscribes``: a person subscribes our webhook before connecting,
        through the public API, which spends one of the company's 60 requests a minute that our
        budget cannot know of; without it the connect flow subscribes, inside the budget (the
        real-limits tests, which count every 429)."""
        made = await self.call(
            "POST", f"{self.released_base}/_sandbox/companies", json={"name": "E2E Holdings"}
        )
        company = str(made["id"])
        if user_subscribes:
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
        """Writes received by Re-Leased's public API, but for the connect flow's set-up (the
        accounting connection and the webhook subscription)."""
        log = await self.call("GET", f"{self.released_base}/_sandbox/companies/{company}/requests")
        return [
            r
            for r in log["items"]
            if r["method"] in ("POST", "PATCH", "DELETE") and not r["path"].endswith(SET_UP_PATHS)
        ]

    async def qbo_peek(self, realm: str, entity: str, obj_id: str) -> Any:
        return await self.call(
            "GET", f"{self.qbo_base}/_sandbox/realms/{realm}/objects/{entity}/{obj_id}"
        )

    async def released_api(
        self, company: str, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> Any:
        headers = {
            "Authorization": f"Bearer {await self.released_token(company)}",
            "X-Company-Id": company,
            **(headers or {}),
        }
        return await self.call(method, f"{self.released_base}/api/v1{path}", headers=headers, **kw)

    async def released_refusal(self, company: str, method: str, path: str, **kw: Any) -> str:
        """What a Re-Leased user is refused: the 4xx business code of the answer."""
        headers = {
            "Authorization": f"Bearer {await self.released_token(company)}",
            "X-Company-Id": company,
        }
        url = f"{self.released_base}/api/v1{path}"
        async with self.http.request(method, url, headers=headers, **kw) as response:
            body = await response.json(content_type=None)
            assert 400 <= response.status < 500, f"{method} {path}: {response.status} {body}"
        return str(body["elements"][0]["validationErrors"][0]["code"])

    # -- the product's side --------------------------------------------------------------------

    def admin_settings(self) -> AdminServiceSettings:
        values = {
            **self.settings.model_dump(),
            "admin_token": ADMIN_TOKEN,
            "qbo_authorize_url": f"{self.qbo_base}/connect/oauth2",
            "released_webhook_public_url": self.released_hook,
        }
        return AdminServiceSettings(**values)

    async def connect(self, realm: str, tokens: QboTokens | None, company: str) -> Connection:
        """Connect ``company`` to ``realm`` through the real flow, as a person would: the QBO
        OAuth grant (the sandbox approves at once for the realm named), our callback, which binds
        the pair and makes Re-Leased's accounting connection with our client (so connected-mode
        rules hold from here on), and the webhook subscription. ``tokens`` is not used: the flow
        gets its own grant (kept so callers that made a realm with tokens need not change)."""
        del tokens
        flow = ConnectFlow(self.admin_settings(), self.pool, self.factory, self.http)
        settings = default_settings(SYNC_FROM)
        row, _ = await AdminConnections(self.pool).create(company, settings)
        url = f"{flow.authorize_url(row.id)}&{urlencode({'sandbox_realm_id': realm})}"
        async with self.http.get(url, allow_redirects=False) as response:
            assert response.status == 302, await response.text()
            query = parse_qs(urlsplit(response.headers["Location"]).query)
        result = await flow.complete(query["code"][0], query["state"][0], query["realmId"][0])
        assert result.connection.qbo_realm_id == realm
        found = await ConnectionRepository(self.pool).get(result.connection.id)
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
    database_url: str,
    amqp_url: str,
    pool: asyncpg.Pool,
    *,
    real_limits: bool = False,
    product_pools: bool = False,
) -> AsyncIterator[Stack]:
    """``real_limits``: both sandboxes enforce their platform's limits (QBO 500/min and 10 at
    once per realm, Re-Leased 60/min and 5 at once per company) and the product runs on its real
    budgets; otherwise the limits are off and the budgets wide (most tests are about behaviour,
    not pace). ``product_pools``: the consumers' prefetch and database pool at the product's
    defaults (benchmarks), not the small ones that let CI's PostgreSQL hold many stacks."""
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
                        qbo_sandbox_rate_limits=real_limits,
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
                        released_sandbox_rate_limits=real_limits,
                        released_sandbox_seed=11,
                        demo_released_company_id=DEMO_COMPANY,
                    )
                )
            )
        )
        http = await stack.enter_async_context(aiohttp.ClientSession())
        pools: dict[str, Any] = (
            {} if product_pools else {"amqp_prefetch": SMALL_POOL, "db_pool_max": SMALL_POOL}
        )
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
            # Off: the sandboxes run without limits and the budgets, still running, are wider.
            # Real: the product's defaults (the platforms' published limits).
            **({} if real_limits else WIDE_BUDGETS),
            # Several stacks and replicas share one PostgreSQL (max_connections 100) in CI.
            **pools,
        )
        factory = ClientFactory(settings, pool, http)
        yield Stack(qbo_base, released_base, qbo_hook, released_hook, http, pool, settings, factory)
        # Let in-flight webhook deliveries finish before the receivers go away.
        await asyncio.sleep(0.2)


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:6]}"
