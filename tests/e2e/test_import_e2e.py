"""Initial import: master data from QBO, contacts matched by name before anything is created."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import EventPublisher
from shared.ingest.importer import InitialImport
from tests.e2e.stack import Stack, consumers, unique

pytestmark = pytest.mark.e2e


async def released_contacts(stack: Stack, company: str) -> list[dict[str, Any]]:
    page = await stack.released_api(company, "GET", "/contacts?pageSize=1000")
    return list(page["items"])


async def test_import_links_matches_and_creates_the_rest(
    stack: Stack, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    shared_name, qbo_only, rl_only = unique("Both Places"), unique("QBO Only"), unique("RL Only")
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    # Existing data on both sides, from before the connection (no webhooks for these matter).
    await qbo.write("Customer", {"DisplayName": shared_name}, request_id="i1")
    await qbo.write("Customer", {"DisplayName": qbo_only}, request_id="i2")
    await stack.released_api(company, "POST", "/contacts", json={"name": shared_name})
    await stack.released_api(company, "POST", "/contacts", json={"name": rl_only})
    await asyncio.sleep(1.0)
    publisher = await EventPublisher.open(broker)
    async with consumers(stack.settings):
        progress = await InitialImport(pool, publisher).run(
            connection, qbo, stack.factory.released(connection)
        )
        assert progress.stages["qbo_account"] > 5

        async def done() -> bool:
            names = [c["name"] for c in await released_contacts(stack, company)]
            in_qbo = await qbo.query_all("Customer", f"DisplayName = '{rl_only}'")
            return qbo_only in names and bool(in_qbo)

        for _ in range(100):
            if await done():
                break
            await asyncio.sleep(0.3)
        await asyncio.sleep(2)
    await publisher.close()
    names = [c["name"] for c in await released_contacts(stack, company)]
    assert names.count(shared_name) == 1, "matched by name, not duplicated"
    assert qbo_only in names
    assert len(await qbo.query_all("Customer", f"DisplayName = '{shared_name}'")) == 1
    assert len(await qbo.query_all("Customer", f"DisplayName = '{rl_only}'")) == 1
    accounts = await stack.released_api(company, "GET", "/accounts?pageSize=1000")
    qbo_accounts = await qbo.query_all("Account")
    codes = {a["code"] for a in accounts["items"]}
    assert all((a.get("AcctNum") or f"QBO-{a['Id']}") in codes for a in qbo_accounts)
