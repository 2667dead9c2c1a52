"""Contacts and master data end to end: sandboxes -> webhooks -> RabbitMQ -> engine -> sandboxes."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import asyncpg
import pytest

from tests.e2e.conftest import Linked
from tests.e2e.readers import contacts_named
from tests.e2e.stack import Stack, consumers, eventually, unique

pytestmark = pytest.mark.e2e


async def outcomes(pool: asyncpg.Pool, entity_id: str) -> list[str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT outcome FROM sync_outcomes WHERE source_id = $1 ORDER BY id", entity_id
        )
    return [r["outcome"] for r in rows]


async def quiet(seconds: float = 2.0) -> None:
    """Let echoes travel the whole loop (webhook, queue, engine) before counting writes."""
    await asyncio.sleep(seconds)


async def test_qbo_customer_reaches_released_once(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    name = unique("Harbour Cafe")
    async with consumers(stack.settings):
        before_qbo = await stack.qbo_writes(linked.realm)
        made = await linked.qbo.write(
            "Customer",
            {"DisplayName": name, "PrimaryEmailAddr": {"Address": "cafe@example.com"}},
            request_id="t1",
        )
        (contact,) = await eventually(lambda: contacts_named(stack, linked.company, name))
        await quiet()
    assert contact["email"] == "cafe@example.com"
    assert contact["isCustomer"] is True
    rl_writes = [w for w in await stack.released_writes(linked.company) if "/contacts" in w["path"]]
    assert len(rl_writes) == 1, "exactly one propagation to Re-Leased"
    assert await stack.qbo_writes(linked.realm) == before_qbo + 1, "no write bounced back to QBO"
    assert "applied" in await outcomes(pool, str(made["Id"]))
    assert "echo" in await outcomes(pool, str(contact["id"]))


async def test_released_contact_both_roles_makes_customer_and_suffixed_vendor(
    stack: Stack, linked: Linked
) -> None:
    name = unique("Kauri Supplies")
    async with consumers(stack.settings):
        body = {"name": name, "email": "k@example.com", "isCustomer": True, "isSupplier": True}
        await stack.released_api(linked.company, "POST", "/contacts", json=body)

        async def both() -> bool:
            customers = await linked.qbo.query_all("Customer", f"DisplayName = '{name}'")
            vendors = await linked.qbo.query_all("Vendor", f"DisplayName = '{name} (Supplier)'")
            return bool(customers and vendors)

        await eventually(both)
        await quiet()
    writes = await stack.qbo_writes(linked.realm)
    assert writes <= 3, "customer, vendor (one suffixed retry at most): no ping-pong"
    rl_writes = [w for w in await stack.released_writes(linked.company) if w["method"] != "POST"]
    assert rl_writes == [], "nothing written back to Re-Leased"


@pytest.mark.usefixtures("engine")
async def test_qbo_inactivation_archives_and_merge_points_to_survivor(
    stack: Stack, linked: Linked
) -> None:
    keep, drop, gone = unique("Keep Ltd"), unique("Drop Ltd"), unique("Gone Ltd")
    ids = {}
    for n, name in enumerate((keep, drop, gone)):
        ids[name] = (await linked.qbo.write("Customer", {"DisplayName": name}, request_id=f"m{n}"))[
            "Id"
        ]
    for name in (keep, drop, gone):
        await eventually(functools.partial(contacts_named, stack, linked.company, name))
    await stack.call(
        "POST", f"{stack.qbo_base}/_sandbox/realms/{linked.realm}/ui/customer/{ids[gone]}/delete"
    )
    await stack.call(
        "POST",
        f"{stack.qbo_base}/_sandbox/realms/{linked.realm}/ui/customer/merge",
        json={"fromId": ids[drop], "toId": ids[keep]},
    )

    async def archived(name: str) -> dict[str, Any] | None:
        found = await contacts_named(stack, linked.company, name)
        return found[0] if found and found[0]["status"] == "ARCHIVED" else None

    archived_gone = await eventually(lambda: archived(gone))
    merged = await eventually(lambda: archived(drop))
    survivor = (await contacts_named(stack, linked.company, keep))[0]
    assert archived_gone["status"] == "ARCHIVED"
    assert merged["mergedToContactId"] == survivor["id"]
    assert survivor["status"] == "ACTIVE"


async def test_archive_in_released_is_refused_while_connected(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    """Archiving is QBO's: once we made the accounting connection, Re-Leased itself refuses a
    user's archive (the engine's revert-and-flag for one that slips through is covered by the
    engine's unit tests)."""
    name = unique("Archive Me")
    async with consumers(stack.settings):
        await linked.qbo.write("Customer", {"DisplayName": name}, request_id="a1")
        (contact,) = await eventually(lambda: contacts_named(stack, linked.company, name))
        await quiet(1)
        code = await stack.released_refusal(
            linked.company, "PATCH", f"/contacts/{contact['id']}", json={"status": "ARCHIVED"}
        )
        assert code == "ARCHIVE_IN_ACCOUNTING"
        action = await stack.released_refusal(
            linked.company, "POST", f"/contacts/{contact['id']}/archive"
        )
        assert action == "ARCHIVE_IN_ACCOUNTING"
        await quiet(1)
    (after,) = await contacts_named(stack, linked.company, name)
    assert after["status"] == "ACTIVE"
    customer = await linked.qbo.query_all("Customer", f"DisplayName = '{name}'")
    assert customer[0]["Active"] is True
    async with pool.acquire() as conn:
        flags = await conn.fetchval(
            "SELECT count(*) FROM conflicts WHERE entity = 'contact' AND connection_id = $1",
            linked.connection.id,
        )
    assert flags == 0


async def test_concurrent_edits_merge_field_by_field(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    name = unique("Both Sides")
    async with consumers(stack.settings):
        made = await linked.qbo.write("Customer", {"DisplayName": name}, request_id="b1")
        (contact,) = await eventually(lambda: contacts_named(stack, linked.company, name))
        await quiet(1.5)
    # Consumers are down: both sides change; phone on one side only, e-mail on both.
    current = await linked.qbo.get("Customer", str(made["Id"]))
    await linked.qbo.write(
        "Customer",
        {
            "Id": made["Id"],
            "SyncToken": current["SyncToken"],
            "sparse": True,
            "PrimaryEmailAddr": {"Address": "qbo@example.com"},
            "PrimaryPhone": {"FreeFormNumber": "09 555 0101"},
        },
        request_id="b2",
    )
    rl = await stack.released_api(linked.company, "GET", f"/contacts/{contact['id']}")
    await stack.released_api(
        linked.company,
        "PATCH",
        f"/contacts/{contact['id']}",
        json={"email": "released@example.com"},
        headers={"If-Match": f'"{rl["version"]}"'},
    )
    async with consumers(stack.settings):

        async def settled() -> bool:
            q = await linked.qbo.get("Customer", str(made["Id"]))
            r = await stack.released_api(linked.company, "GET", f"/contacts/{contact['id']}")
            q_mail = (q.get("PrimaryEmailAddr") or {}).get("Address")
            phones = r.get("phones") or [{}]
            return bool(q_mail == r.get("email") and phones[0].get("number") == "09 555 0101")

        await eventually(settled)
        await quiet(1)
    final = await stack.released_api(linked.company, "GET", f"/contacts/{contact['id']}")
    assert final["email"] == "released@example.com", "contacts: Re-Leased wins a real conflict"
    async with pool.acquire() as conn:
        conflict = await conn.fetchrow(
            "SELECT fields, winner FROM conflicts WHERE kind = 'field_conflict' "
            "AND connection_id = $1",
            linked.connection.id,
        )
    assert conflict is not None
    assert conflict["fields"]["field"] == "email"


@pytest.mark.usefixtures("engine")
async def test_master_data_flows_from_qbo_and_released_users_cannot_edit_it(
    stack: Stack, linked: Linked
) -> None:
    account = await linked.qbo.write(
        "Account",
        {"Name": unique("Rental Income"), "AccountType": "Income", "AcctNum": "4100"},
        request_id="acc1",
    )

    async def in_released() -> dict[str, Any] | None:
        page = await stack.released_api(linked.company, "GET", "/accounts?pageSize=1000")
        return next((a for a in page["items"] if a["code"] == "4100"), None)

    mirrored = await eventually(in_released)
    assert mirrored["name"] == account["Name"]
    # Someone tries to edit the account on the Re-Leased side: QBO is the only manager, and
    # Re-Leased refuses users while connected.
    code = await stack.released_refusal(
        linked.company,
        "PATCH",
        f"/accounts/{mirrored['id']}",
        json={"name": "Renamed in Re-Leased"},
    )
    assert code == "MANAGED_IN_ACCOUNTING"
    again = await in_released()
    assert again is not None
    assert again["name"] == account["Name"]
