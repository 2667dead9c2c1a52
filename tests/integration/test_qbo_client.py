"""The QBO client and token store against the QBO sandbox (real sockets, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
from cryptography.fernet import Fernet

from sandboxes.qbo.app import create_app
from shared.adapters.crypto import TokenCipher
from shared.adapters.postgres.budgets import ApiBudget, Limits
from shared.adapters.qbo.client import QboClient
from shared.adapters.qbo.tokens import QboOAuth, QboTokens, QboTokenStore
from shared.domain.errors import ConnectionRevoked, StaleVersion, TransientError
from tests.integration.qbo_sandbox_helpers import CLIENT_ID, CLIENT_SECRET, settings
from tests.support.servers import serving

pytestmark = pytest.mark.integration


@dataclass
class World:
    base: str
    http: aiohttp.ClientSession
    pool: asyncpg.Pool
    store: QboTokenStore
    budget: ApiBudget
    oauth: QboOAuth

    async def realm(self) -> tuple[str, uuid.UUID]:
        async with self.http.post(f"{self.base}/_sandbox/realms", json={"companyName": "T"}) as r:
            realm = str((await r.json())["realmId"])
        async with self.http.post(f"{self.base}/_sandbox/realms/{realm}/tokens") as r:
            tokens = QboTokens.from_response(await r.json())
        async with self.pool.acquire() as conn:
            conn_id: uuid.UUID = await conn.fetchval(
                "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
                "VALUES ($1, $2, 'active') RETURNING id",
                f"qboclient-{uuid.uuid4().hex[:8]}",
                realm,
            )
        await self.store.save(conn_id, tokens)
        return realm, conn_id

    def client(self, realm: str, conn_id: uuid.UUID) -> QboClient:
        return QboClient(self.http, self.base, realm, conn_id, self.store, self.budget)

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.base}/_sandbox{path}", json=body) as r:
            return await r.json(content_type=None) if r.status != 204 else None


@pytest.fixture
async def world(pool: asyncpg.Pool) -> AsyncIterator[World]:
    app = create_app(settings(qbo_sandbox_rate_limits=False))
    async with serving(app) as base, aiohttp.ClientSession() as http:
        oauth = QboOAuth(http, base, CLIENT_ID, CLIENT_SECRET)
        store = QboTokenStore(pool, TokenCipher(Fernet.generate_key().decode()), oauth)
        budget = ApiBudget(pool, Limits(per_minute=6000, concurrent=10, burst=1000))
        yield World(base, http, pool, store, budget, oauth)
    async with pool.acquire() as conn:
        # Sandbox realm ids repeat from one sandbox process to the next.
        await conn.execute("DELETE FROM connections WHERE released_company_id LIKE 'qboclient-%'")


async def test_tokens_are_encrypted_at_rest(world: World) -> None:
    _, conn_id = await world.realm()
    tokens = await world.store.load(conn_id)
    async with world.pool.acquire() as conn:
        blob = await conn.fetchval("SELECT qbo_tokens FROM connections WHERE id = $1", conn_id)
    assert tokens.access_token.encode() not in blob
    assert tokens.refresh_token.encode() not in blob


async def test_expired_access_token_is_refreshed_and_rotation_persisted(world: World) -> None:
    realm, conn_id = await world.realm()
    before = await world.store.load(conn_id)
    await world.control("POST", f"/realms/{realm}/tokens/expire")
    customer = await world.client(realm, conn_id).write(
        "Customer", {"DisplayName": "Refresh Co"}, request_id="r-1"
    )
    assert customer["DisplayName"] == "Refresh Co"
    after = await world.store.load(conn_id)
    assert after.refresh_token != before.refresh_token, "the rotated refresh token is stored"
    with pytest.raises(ConnectionRevoked):
        await world.oauth.refresh(before.refresh_token)  # the old one is dead


async def test_concurrent_refreshes_rotate_once(world: World) -> None:
    realm, conn_id = await world.realm()
    stale = await world.store.load(conn_id)
    results = await asyncio.gather(*(world.store.refresh(conn_id, stale=stale) for _ in range(4)))
    assert len({r.refresh_token for r in results}) == 1
    # The survivor still works: one more refresh succeeds.
    await world.store.refresh(conn_id, stale=results[0])


async def test_revoked_grant_is_connection_revoked(world: World) -> None:
    realm, conn_id = await world.realm()
    await world.control("POST", f"/realms/{realm}/tokens/revoke")
    with pytest.raises(ConnectionRevoked):
        await world.client(realm, conn_id).get("Customer", "1")


async def test_stale_sync_token_is_stale_version(world: World) -> None:
    realm, conn_id = await world.realm()
    client = world.client(realm, conn_id)
    created = await client.write("Customer", {"DisplayName": "Stale Co"}, request_id="s-1")
    await client.write(
        "Customer",
        {"Id": created["Id"], "SyncToken": created["SyncToken"], "sparse": True, "Notes": "a"},
        request_id="s-2",
    )
    with pytest.raises(StaleVersion):
        await client.write(
            "Customer",
            {"Id": created["Id"], "SyncToken": created["SyncToken"], "sparse": True, "Notes": "b"},
            request_id="s-3",
        )


async def test_request_id_makes_a_retried_create_idempotent(world: World) -> None:
    realm, conn_id = await world.realm()
    client = world.client(realm, conn_id)
    first = await client.write("Customer", {"DisplayName": "Once Co"}, request_id="same")
    second = await client.write("Customer", {"DisplayName": "Once Co"}, request_id="same")
    assert first["Id"] == second["Id"]
    rows = await client.query_all("Customer", "DisplayName = 'Once Co'")
    assert len(rows) == 1


async def test_cdc_and_paged_query(world: World) -> None:
    realm, conn_id = await world.realm()
    client = world.client(realm, conn_id)
    since = datetime.now(UTC) - timedelta(minutes=1)
    for i in range(3):
        await client.write("Customer", {"DisplayName": f"CDC {i}"}, request_id=f"c-{i}")
    changed = await client.cdc(["Customer", "Invoice"], since)
    assert {c["DisplayName"] for c in changed["Customer"]} >= {"CDC 0", "CDC 1", "CDC 2"}
    accounts = await client.query_all("Account")
    assert len(accounts) > 5


async def test_429_blocks_that_realm_only(world: World) -> None:
    realm, conn_id = await world.realm()
    other_realm, other_id = await world.realm()
    await world.control("PUT", f"/realms/{realm}/faults", {"error_429_rate": 1.0})
    with pytest.raises(TransientError):
        await world.client(realm, conn_id).get("Customer", "1")
    assert await world.budget.blocked_for(f"qbo:{realm}") > 0
    assert await world.budget.blocked_for(f"qbo:{other_realm}") == 0
    accounts = await world.client(other_realm, other_id).query_all("Account")
    assert accounts
