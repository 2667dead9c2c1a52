"""The Re-Leased client as the accounting side: public API, auth, budget, keys and versions.

We make the company's accounting connection with our client, so the sandbox treats our client as
the accounting side; the writes a user is refused while connected go through ``/api/v1`` like any
other, with an ``Idempotency-Key``, ``If-Match`` when given, our budget and our retries.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest

from sandboxes.released.app import create_app
from shared.adapters.postgres.budgets import ApiBudget, Limits
from shared.adapters.released.client import ReleasedClient
from shared.domain.errors import StaleVersion, TransientError
from tests.integration.released_sandbox_helpers import CLIENT_ID, CLIENT_SECRET, sandbox_settings
from tests.support.servers import serving

pytestmark = pytest.mark.integration


@dataclass
class World:
    base: str
    http: aiohttp.ClientSession
    budget: ApiBudget

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.base}/_sandbox{path}", json=body) as r:
            assert r.status < 400, await r.text()
            return await r.json(content_type=None) if r.status != 204 else None

    async def connected_client(self) -> ReleasedClient:
        company = str((await self.control("POST", "/companies", {"name": "Client Co"}))["id"])
        client = ReleasedClient(
            self.http, f"{self.base}/api/v1", company, CLIENT_ID, CLIENT_SECRET, self.budget
        )
        body = {"provider": "QBO", "externalOrgId": "realm-c", "syncFromDate": "2024-01-01"}
        await client.request(
            "POST", "/company/accounting-connection", body=body, idempotency_key="connect"
        )
        return client


@pytest.fixture
async def world(pool: asyncpg.Pool) -> AsyncIterator[World]:
    app = create_app(sandbox_settings())
    async with serving(app) as base, aiohttp.ClientSession() as http:
        budget = ApiBudget(pool, Limits(per_minute=6000, concurrent=5, burst=1000))
        yield World(base, http, budget)


async def test_accounting_writes_go_through_the_public_api_with_key_and_version(
    world: World,
) -> None:
    client = await world.connected_client()
    contact = (await client.list_all("/contacts"))[0]
    with pytest.raises(StaleVersion):
        await client.accounting(
            "POST",
            f"/contacts/{contact['id']}/archive",
            idempotency_key=f"k-{uuid.uuid4().hex}",
            if_match=contact["version"] + 5,
        )
    archived = await client.accounting(
        "POST",
        f"/contacts/{contact['id']}/archive",
        idempotency_key="archive-1",
        if_match=contact["version"],
    )
    assert archived["status"] == "ARCHIVED"
    rate = await client.accounting(
        "POST", "/tax-rates", body={"name": "GST 9%", "rate": "9"}, idempotency_key="rate-1"
    )
    assert rate["status"] == "ACTIVE"
    log = await world.control("GET", f"/companies/{client.company_id}/requests")
    archives = [r for r in log["items"] if r["path"].endswith("/archive")]
    assert [(r["path"], r["status"]) for r in archives] == [
        (f"/api/v1/contacts/{contact['id']}/archive", 412),
        (f"/api/v1/contacts/{contact['id']}/archive", 200),
    ]
    assert all(r["idempotencyKey"] for r in log["items"])


async def test_accounting_writes_meet_faults_and_are_retried(world: World) -> None:
    client = await world.connected_client()
    payload = {"name": "Region", "options": []}
    faults = f"/companies/{client.company_id}/faults"
    await world.control("PUT", faults, {"errorRate": 1.0, "errorStatus": 503})
    with pytest.raises(TransientError):
        await client.accounting(
            "POST", "/tracking-categories", body=payload, idempotency_key="cat-1"
        )
    await world.control("PUT", faults, {"errorRate": 0.0})
    made = await client.accounting(
        "POST", "/tracking-categories", body=payload, idempotency_key="cat-1"
    )
    assert made["name"] == "Region"
    log = await world.control("GET", f"/companies/{client.company_id}/requests")
    sends = [(r["status"], r["idempotencyKey"]) for r in log["items"] if "tracking" in r["path"]]
    # The transport's in-process retries, then the later send: all under one key.
    assert sends == [(503, "cat-1")] * 3 + [(201, "cat-1")]
