"""Initial import: master data from QBO, contacts matched by name before anything is created."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import BULK_SUFFIX, QBO_TO_RELEASED, EventPublisher
from shared.admin.store import AdminConnections
from shared.ingest.importer import InitialImport
from tests.e2e.stack import Stack, consumers, unique
from tests.integration.broker_helpers import queue_depth

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


async def test_connecting_maps_the_companys_master_data_and_archives_the_rest(
    stack: Stack, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()

    async def made(path: str, body: dict[str, Any]) -> str:
        return str((await stack.released_api(company, "POST", path, json=body))["id"])

    # The company's own master data, from before it connects (a user may write it then).
    by_code = await made("/accounts", {"code": "4100", "name": "RL Rent", "type": "REVENUE"})
    rent, parking = unique("Rental Income"), unique("Parking Income")
    # The same name as QBO's, but for case and spacing.
    body = {"code": "555", "name": parking.lower().replace(" ", "  "), "type": "REVENUE"}
    by_name = await made("/accounts", body)
    orphan = await made("/accounts", {"code": "777", "name": "Orphan Account"})
    rate = await made("/tax-rates", {"name": "State Sales Tax", "rate": "8"})
    lone_rate = await made("/tax-rates", {"name": "Orphan Rate", "rate": "3"})
    region = await made("/tracking-categories", {"name": "Region", "options": [{"name": "North"}]})
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    for number, name in (("4100", rent), ("4200", parking)):
        await qbo.write(
            "Account",
            {"Name": name, "AccountType": "Income", "AcctNum": number},
            request_id=f"acct-{number}",
        )
    publisher = await EventPublisher.open(broker)
    try:
        # The import lines the company's master data up before QBO's reaches the engine.
        await InitialImport(pool, publisher).run(
            connection, qbo, stack.factory.released(connection)
        )
        async with consumers(stack.settings):

            async def adopted() -> bool:
                one = await stack.released_api(company, "GET", f"/accounts/{by_code}")
                other = await stack.released_api(company, "GET", f"/accounts/{by_name}")
                return bool(one["name"] == rent and other["name"] == parking)

            for _ in range(100):
                if await adopted():
                    break
                await asyncio.sleep(0.3)
            await asyncio.sleep(1)
    finally:
        await publisher.close()

    async def status(path: str) -> str:
        return str((await stack.released_api(company, "GET", path))["status"])

    first = await stack.released_api(company, "GET", f"/accounts/{by_code}")
    assert (first["name"], first["status"]) == (rent, "ACTIVE")
    second = await stack.released_api(company, "GET", f"/accounts/{by_name}")
    assert (second["code"], second["name"], second["status"]) == ("4200", parking, "ACTIVE")
    accounts = await stack.released_api(company, "GET", "/accounts?pageSize=1000")
    assert [a["code"] for a in accounts["items"]].count("4200") == 1, "adopted, not duplicated"
    assert await status(f"/accounts/{orphan}") == "ARCHIVED"
    assert await status(f"/tax-rates/{rate}") == "ACTIVE"
    assert await status(f"/tax-rates/{lone_rate}") == "ARCHIVED"
    assert await status(f"/tracking-categories/{region}") == "ARCHIVED"
    report = (await AdminConnections(pool).import_state(connection.id))["master_data_alignment"]
    mapped = {(m["released_id"], m["by"]) for m in report["mapped"]}
    assert {(by_code, "code"), (by_name, "name"), (rate, "name")} <= mapped
    archived = {a["released_id"] for a in report["archived"]}
    assert {orphan, lone_rate, region} <= archived
    assert report["counts"]["account"]["archived"] >= 1
    # A user can no longer code a document to what QBO does not have.
    contact = (await stack.released_api(company, "GET", "/contacts"))["items"][0]
    draft = {
        "type": "INCOME",
        "contactId": contact["id"],
        "date": "2025-01-01",
        "lines": [{"unitAmount": "10.00", "accountId": orphan}],
    }
    code = await stack.released_refusal(company, "POST", "/invoices", json=draft)
    assert code == "ACCOUNT_ARCHIVED"


async def test_import_writes_plain_customers_in_batches_from_one_listing(
    stack: Stack, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    tag = unique("Batch")
    known = f"{tag} Known"
    # A contact Re-Leased already has, not yet a customer: the batch adds the role, not a twin.
    await stack.released_api(company, "POST", "/contacts", json={"name": known})
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    names = [known, *(f"{tag} Tenant {n:02d}" for n in range(54))]
    for n, name in enumerate(names):
        await qbo.write("Customer", {"DisplayName": name}, request_id=f"bc-{n}")
    # Re-Leased's own customers QBO lacks: created there in batches of 30.
    owners = [f"{tag} Owner {n:02d}" for n in range(35)]
    for name in owners:
        await stack.released_api(
            company, "POST", "/contacts", json={"name": name, "isCustomer": True}
        )
    qbo_writes = await stack.qbo_writes(realm)
    publisher = await EventPublisher.open(broker)
    try:
        progress = await InitialImport(pool, publisher).run(
            connection, qbo, stack.factory.released(connection)
        )
        assert progress.batched["Customer"] >= len(names)
        assert progress.batched["released_contact"] >= len(owners)
        assert await stack.qbo_writes(realm) - qbo_writes == 2, "35 creates: two /batch requests"
        writes = await stack.released_writes(company)
        batches = [w for w in writes if w["path"] == "/api/v1/contacts/batch"]
        assert len(batches) == 2, "55 contacts: two requests of at most 50"
        # Only the test's own contact went in alone (a user's write carries no key).
        assert not [w for w in writes if w["path"] == "/api/v1/contacts" and w["idempotencyKey"]]
        # Everything queued by the import waits in the bulk lane, apart from live changes.
        queued = sum(n for stage, n in progress.stages.items() if stage.startswith("qbo_"))
        assert await queue_depth(broker, QBO_TO_RELEASED + BULK_SUFFIX) == queued
        state = await AdminConnections(pool).import_state(connection.id)
        assert state["progress"]["stage"] == "applying"
        assert state["progress"]["total"] >= len(names) + len(owners)
        async with consumers(stack.settings):

            async def finished() -> bool:
                now = await AdminConnections(pool).import_state(connection.id)
                return bool(now["progress"]["stage"] == "done")

            for _ in range(100):
                if await finished():
                    break
                await asyncio.sleep(0.3)
            await asyncio.sleep(2)  # the batches' webhooks: echoes of what is linked
        progress = (await AdminConnections(pool).import_state(connection.id))["progress"]
        assert progress["done"] == progress["total"]
        assert (progress["stage"], progress["eta_s"]) == ("done", 0.0)
    finally:
        await publisher.close()
    listed = await released_contacts(stack, company)
    ours = [c for c in listed if c["name"].startswith(tag)]
    assert sorted(c["name"] for c in ours) == sorted([*names, *owners]), "no twin in Re-Leased"
    assert all(c["isCustomer"] for c in ours)
    customers = [c["DisplayName"] for c in await qbo.query_all("Customer")]
    everyone = sorted([*names, *owners])
    assert sorted(c for c in customers if c.startswith(tag)) == everyone, "no twin in QBO"
    async with pool.acquire() as conn:
        linked = await conn.fetchval(
            "SELECT count(*) FROM links WHERE connection_id = $1 AND qbo_type = 'Customer'",
            connection.id,
        )
    assert linked >= len(names) + len(owners)
