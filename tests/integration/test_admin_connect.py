"""The QBO connect flow against both sandboxes: binding, encrypted tokens, the one-to-one rule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit
from uuid import UUID

import asyncpg
import pytest
from structlog.testing import capture_logs

from shared.admin.oauth_state import sign_state
from tests.e2e.stack import Stack, running_stack
from tests.integration.admin_helpers import (
    ADMIN_TOKEN,
    Admin,
    query_of,
    running_admin,
    stack_settings,
)

pytestmark = pytest.mark.integration


@dataclass
class World:
    stack: Stack
    admin: Admin

    async def company(self) -> str:
        """A Re-Leased sandbox company with no webhook subscription yet (ours will be the first)."""
        made = await self.stack.call(
            "POST", f"{self.stack.released_base}/_sandbox/companies", json={"name": "Admin Co"}
        )
        return str(made["id"])

    async def realm(self) -> str:
        """A QBO sandbox company nobody has granted access to yet."""
        made = await self.stack.call(
            "POST", f"{self.stack.qbo_base}/_sandbox/realms", json={"companyName": "Other"}
        )
        return str(made["realmId"])

    async def has_live_grant(self, realm: str) -> bool:
        listed = await self.stack.call("GET", f"{self.stack.qbo_base}/_sandbox/realms")
        (found,) = [r for r in listed["realms"] if r["realmId"] == realm]
        return bool(found["connected"])

    async def row(self, connection_id: UUID) -> asyncpg.Record:
        async with self.stack.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT qbo_realm_id, status, qbo_tokens FROM connections WHERE id = $1",
                connection_id,
            )
        assert row is not None
        return row

    async def released_company(self, company: str) -> dict[str, object]:
        found: dict[str, object] = await self.stack.released_api(company, "GET", "/company")
        return found

    async def subscriptions(self, company: str) -> list[dict[str, str]]:
        listed = await self.stack.released_api(company, "GET", "/webhooks")
        items: list[dict[str, str]] = listed["items"]
        return items

    async def bound(self, pick_realm: str | None = None) -> tuple[UUID, str, str]:
        """A connection through the whole flow: (connection id, company, realm)."""
        company = await self.company()
        connection_id = await self.admin.create(company)
        status, body = await self.admin.connect(connection_id, pick_realm)
        assert status == 200, body
        return connection_id, company, str(body["qbo_realm_id"])


@pytest.fixture
async def world(database_url: str, amqp_url: str, pool: asyncpg.Pool) -> AsyncIterator[World]:
    async with (
        running_stack(database_url, amqp_url, pool) as stack,
        running_admin(stack_settings(stack)) as admin,
    ):
        yield World(stack, admin)


async def test_connect_binds_the_realm_and_sets_up_released(world: World) -> None:
    company = await world.company()
    connection_id = await world.admin.create(company, sync_from_date="2025-02-01")

    status, body = await world.admin.connect(connection_id)

    assert status == 200, body
    realm = body["qbo_realm_id"]
    assert realm
    assert body["webhook_status"] == "ACTIVE"
    _, listing = await world.admin.api("GET", "/api/connections")
    assert {
        "id": str(connection_id),
        "released_company_id": company,
        "qbo_realm_id": realm,
        "status": "active",
    } in listing
    connection = (await world.released_company(company))["accountingConnection"]
    assert isinstance(connection, dict)
    assert connection["provider"] == "QBO"
    assert connection["externalOrgId"] == realm
    assert connection["syncFromDate"] == "2025-02-01"
    subscriptions = await world.subscriptions(company)
    assert [(s["url"], s["status"]) for s in subscriptions] == [
        (world.stack.released_hook, "ACTIVE")
    ]


async def test_tokens_are_stored_encrypted_and_work(world: World) -> None:
    connection_id, _, realm = await world.bound()
    blob = bytes((await world.row(connection_id))["qbo_tokens"])
    tokens = world.stack.factory.cipher.open(blob)
    for secret in (tokens["access_token"], tokens["refresh_token"]):
        assert secret.encode() not in blob
    _, details = await world.admin.api("GET", f"/api/connections/{connection_id}")
    assert tokens["access_token"] not in str(details)
    assert tokens["refresh_token"] not in str(details)
    # The stored grant is real: the QBO sandbox accepts it for this realm.
    info = await world.stack.call(
        "GET",
        f"{world.stack.qbo_base}/v3/company/{realm}/companyinfo/{realm}",
        headers={"Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json"},
    )
    assert info


async def test_reconnecting_the_same_realm_replaces_tokens(world: World) -> None:
    connection_id, company, realm = await world.bound()
    before = bytes((await world.row(connection_id))["qbo_tokens"])
    status, _ = await world.admin.api("POST", f"/api/connections/{connection_id}/pause")
    assert status == 200
    assert (await world.row(connection_id))["status"] == "paused"

    status, body = await world.admin.connect(connection_id, pick_realm=realm)

    assert status == 200, body
    assert body["reconnected"] is True
    row = await world.row(connection_id)
    assert (row["qbo_realm_id"], row["status"]) == (realm, "active")
    cipher = world.stack.factory.cipher
    assert (
        cipher.open(bytes(row["qbo_tokens"]))["refresh_token"]
        != cipher.open(before)["refresh_token"]
    )
    # Still one subscription: an ACTIVE one to our receiver is reused, not duplicated.
    assert len(await world.subscriptions(company)) == 1


async def test_reconnecting_to_another_realm_is_refused_and_the_binding_kept(world: World) -> None:
    connection_id, company, realm = await world.bound()
    before = await world.row(connection_id)
    other = await world.realm()

    status, body = await world.admin.connect(connection_id, pick_realm=other)

    assert status == 409
    assert body["error"] == "ONE_TO_ONE_CONNECTION"
    assert body["reason"] == "realm_mismatch"
    assert realm in body["message"]
    after = await world.row(connection_id)
    assert after["qbo_realm_id"] == realm
    assert after["status"] == "active"
    assert bytes(after["qbo_tokens"]) == bytes(before["qbo_tokens"])
    connection = (await world.released_company(company))["accountingConnection"]
    assert isinstance(connection, dict)
    assert connection["externalOrgId"] == realm
    # The refused grant is not kept anywhere: revoked at Intuit, while ours stays live.
    assert not await world.has_live_grant(other)
    assert await world.has_live_grant(realm)


async def test_a_realm_owned_by_another_connection_is_refused(world: World) -> None:
    _, _, realm = await world.bound()
    company = await world.company()
    second = await world.admin.create(company)

    status, body = await world.admin.connect(second, pick_realm=realm)

    assert status == 409
    assert body["error"] == "ONE_TO_ONE_CONNECTION"
    assert body["reason"] == "realm_taken"
    row = await world.row(second)
    assert (row["qbo_realm_id"], row["status"], row["qbo_tokens"]) == (None, "pending", None)
    assert "accountingConnection" not in await world.released_company(company) or (
        (await world.released_company(company))["accountingConnection"] is None
    )


async def test_released_refusing_the_connection_leaves_nothing_bound(world: World) -> None:
    company = await world.company()
    await world.stack.released_api(
        company,
        "POST",
        "/company/accounting-connection",
        json={"provider": "QBO", "externalOrgId": "someone-else", "syncFromDate": "2025-01-01"},
    )
    connection_id = await world.admin.create(company)

    status, body = await world.admin.connect(connection_id)

    assert status == 409
    assert body["reason"] == "released_bound_elsewhere"
    row = await world.row(connection_id)
    assert (row["qbo_realm_id"], row["status"], row["qbo_tokens"]) == (None, "pending", None)


@pytest.mark.parametrize("how", ["tampered", "foreign_key", "expired", "other_connection"])
async def test_a_bad_state_is_refused(world: World, how: str) -> None:
    company = await world.company()
    connection_id = await world.admin.create(company)
    callback = await world.admin.callback_url(connection_id)
    query = query_of(callback)
    state = query["state"]
    if how == "tampered":
        state = state[:-2] + ("AA" if not state.endswith("AA") else "BB")
    elif how == "foreign_key":
        state = sign_state("not-the-admin-token", connection_id, 600)
    elif how == "expired":
        state = sign_state(ADMIN_TOKEN, connection_id, -5)
    else:
        victim = await world.admin.create(await world.company())
        payload, _, signature = state.rpartition(".")
        state = ".".join([victim.hex, *payload.split(".")[1:], signature])
    url = urlsplit(callback)._replace(query=urlencode({**query, "state": state})).geturl()

    async with world.admin.http.get(url, allow_redirects=False) as response:
        assert response.status == 400
        body = await response.json()
    assert body["error"] == "invalid_state"
    row = await world.row(connection_id)
    assert (row["qbo_realm_id"], row["qbo_tokens"]) == (None, None)


async def test_pause_and_resume(world: World) -> None:
    connection_id, _, _ = await world.bound()
    status, body = await world.admin.api("POST", f"/api/connections/{connection_id}/pause")
    assert (status, body["status"]) == (200, "paused")
    _, details = await world.admin.api("GET", f"/api/connections/{connection_id}")
    assert details["status"] == "paused"
    assert details["status_reason"]
    status, body = await world.admin.api("POST", f"/api/connections/{connection_id}/resume")
    assert (status, body["status"]) == (200, "active")
    assert (await world.row(connection_id))["status"] == "active"


async def test_log_lines_name_the_outcome_and_hold_no_secrets(world: World) -> None:
    company = await world.company()
    connection_id = await world.admin.create(company)
    with capture_logs() as bound_logs:
        status, body = await world.admin.connect(connection_id)
    assert status == 200
    realm = body["qbo_realm_id"]
    other = await world.realm()
    with capture_logs() as refused_logs:
        status, _ = await world.admin.connect(connection_id, pick_realm=other)
    assert status == 409

    (bound,) = [e for e in bound_logs if e["event"] == "connection_bound"]
    assert (bound["connection_id"], bound["qbo_realm_id"]) == (str(connection_id), realm)
    (refused,) = [e for e in refused_logs if e["event"] == "connection_refused"]
    assert refused["reason"] == "realm_mismatch"
    assert (refused["bound_realm_id"], refused["offered_realm_id"]) == (realm, other)
    requests = [e for e in refused_logs if e["event"] == "admin_request"]
    assert [(e["path"], e["status"]) for e in requests] == [
        (f"/api/connections/{connection_id}/authorize", 302),
        ("/oauth/qbo/callback", 409),
    ]
    assert all(isinstance(e["latency_ms"], float) for e in requests)
    blob = bytes((await world.row(connection_id))["qbo_tokens"])
    tokens = world.stack.factory.cipher.open(blob)
    everything = repr(bound_logs + refused_logs)
    assert tokens["access_token"] not in everything
    assert tokens["refresh_token"] not in everything
    assert ADMIN_TOKEN not in everything


async def test_a_callback_naming_another_realm_than_the_grant_is_refused(world: World) -> None:
    connection_id = await world.admin.create(await world.company())
    granted = await world.realm()
    callback = await world.admin.callback_url(connection_id, pick_realm=granted)
    query = query_of(callback)
    assert query["realmId"] == granted
    elsewhere = await world.realm()
    url = urlsplit(callback)._replace(query=urlencode({**query, "realmId": elsewhere})).geturl()

    async with world.admin.http.get(url, allow_redirects=False) as response:
        assert response.status == 400
        body = await response.json()

    assert body["error"] == "invalid_callback"
    row = await world.row(connection_id)
    assert (row["qbo_realm_id"], row["qbo_tokens"]) == (None, None)
    assert not await world.has_live_grant(granted)
