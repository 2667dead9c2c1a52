"""Duplicates, reordering, two replicas, create races and token expiry: one correct result."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import asyncpg
import pytest

from shared.adapters.postgres.links import LinkRepository
from shared.adapters.qbo.client import QboClient
from tests.e2e.stack import Stack, consumers, eventually, unique

pytestmark = pytest.mark.e2e


async def named(stack: Stack, company: str, name: str) -> list[dict[str, Any]]:
    page = await stack.released_api(company, "GET", "/contacts?includeArchived=true&pageSize=1000")
    return [c for c in page["items"] if c["name"] == name]


async def test_duplicate_reordered_webhooks_and_two_replicas_give_one_result(
    stack: Stack,
) -> None:
    realm, tokens = await stack.qbo_realm()
    await stack.call(
        "PUT",
        f"{stack.qbo_base}/_sandbox/realms/{realm}/faults",
        json={"webhook_duplicate_rate": 1.0, "webhook_reorder": True},
    )
    company = await stack.released_company()
    await asyncio.sleep(1.1)
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    name = unique("Twice Told")
    async with consumers(stack.settings, replicas=2):
        made = await qbo.write("Customer", {"DisplayName": name}, request_id="d1")
        for step in range(3):
            current = await qbo.get("Customer", str(made["Id"]))
            await qbo.write(
                "Customer",
                {
                    "Id": made["Id"],
                    "SyncToken": current["SyncToken"],
                    "sparse": True,
                    "PrimaryEmailAddr": {"Address": f"v{step}@example.com"},
                },
                request_id=f"d-upd-{step}",
            )

        async def converged() -> bool:
            found = await named(stack, company, name)
            return len(found) == 1 and found[0].get("email") == "v2@example.com"

        await eventually(converged)
        await asyncio.sleep(2)
    assert len(await named(stack, company, name)) == 1, "no duplicate record"
    posts = [
        w
        for w in await stack.released_writes(company)
        if w["method"] == "POST" and w["path"].endswith("/contacts")
    ]
    assert len(posts) == 1


async def test_create_race_is_not_synced_back_as_new(
    stack: Stack, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our create's own webhook arrives while the link row is still uncommitted."""
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    await asyncio.sleep(1.1)
    connection = await stack.connect(realm, tokens, company)
    original = LinkRepository.save

    async def slow_save(self: LinkRepository, *args: Any, **kwargs: Any) -> int:
        await asyncio.sleep(1.5)  # QBO's webhook for the new Customer overtakes our commit
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(LinkRepository, "save", slow_save)
    name = unique("Raced Tenant")
    qbo = stack.factory.qbo(connection)
    async with consumers(stack.settings):
        await stack.released_api(company, "POST", "/contacts", json={"name": name})
        await eventually(lambda: qbo.query_all("Customer", f"DisplayName = '{name}'"))
        await asyncio.sleep(4)
    assert len(await named(stack, company, name)) == 1
    assert len(await qbo.query_all("Customer", f"DisplayName = '{name}'")) == 1
    async with pool.acquire() as conn:
        links = await conn.fetchval(
            "SELECT count(*) FROM links WHERE connection_id = $1 AND entity = 'contact'",
            connection.id,
        )
    assert links == 1


async def test_token_expiry_mid_run_refreshes_and_loses_nothing(
    stack: Stack, pool: asyncpg.Pool
) -> None:
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    await asyncio.sleep(1.1)
    connection = await stack.connect(realm, tokens, company)
    before = await stack.factory.tokens.load(connection.id)
    names = [unique("Expiry") for _ in range(4)]
    qbo = stack.factory.qbo(connection)
    async with consumers(stack.settings):
        for name in names[:2]:
            await stack.released_api(company, "POST", "/contacts", json={"name": name})
        await eventually(lambda: qbo.query_all("Customer", f"DisplayName = '{names[1]}'"))
        await stack.call("POST", f"{stack.qbo_base}/_sandbox/realms/{realm}/tokens/expire")
        for name in names[2:]:
            await stack.released_api(company, "POST", "/contacts", json={"name": name})
        for name in names:
            await eventually(
                functools.partial(qbo.query_all, "Customer", f"DisplayName = '{name}'")
            )
    after = await stack.factory.tokens.load(connection.id)
    assert after.refresh_token != before.refresh_token, "the rotated refresh token was stored"
    async with pool.acquire() as conn:
        dead = await conn.fetchval(
            "SELECT count(*) FROM dead_letters WHERE connection_id = $1", connection.id
        )
    assert dead == 0


async def test_stale_sync_token_is_refetched_remerged_and_retried(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, pool: asyncpg.Pool
) -> None:
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    await asyncio.sleep(1.1)
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    name = unique("Racing Edit")
    original = QboClient.write
    interfered: list[str] = []

    async def interfering_write(
        self: QboClient, entity: str, body: dict[str, Any], **kw: Any
    ) -> Any:
        if body.get("sparse") and not interfered:
            # A QBO user saves the same customer between our read and our write.
            interfered.append(str(body["Id"]))
            await stack.call(
                "POST",
                f"{stack.qbo_base}/_sandbox/realms/{realm}/ui/customer",
                json={"Id": body["Id"], "PrimaryPhone": {"FreeFormNumber": "021 000 999"}},
            )
        return await original(self, entity, body, **kw)

    monkeypatch.setattr(QboClient, "write", interfering_write)
    async with consumers(stack.settings):
        created = await stack.released_api(company, "POST", "/contacts", json={"name": name})
        customer = await eventually(lambda: qbo.query_all("Customer", f"DisplayName = '{name}'"))
        await asyncio.sleep(1.5)
        current = await stack.released_api(company, "GET", f"/contacts/{created['id']}")
        await stack.released_api(
            company,
            "PATCH",
            f"/contacts/{created['id']}",
            json={"email": "after-race@example.com"},
            headers={"If-Match": f'"{current["version"]}"'},
        )

        async def merged() -> bool:
            now = await qbo.get("Customer", str(customer[0]["Id"]))
            mail = (now.get("PrimaryEmailAddr") or {}).get("Address")
            phone = (now.get("PrimaryPhone") or {}).get("FreeFormNumber")
            return bool(mail == "after-race@example.com" and phone == "021 000 999")

        await eventually(merged)
    assert interfered, "the interfering save happened"
    async with pool.acquire() as conn:
        dead = await conn.fetchval(
            "SELECT count(*) FROM dead_letters WHERE connection_id = $1", connection.id
        )
    assert dead == 0
