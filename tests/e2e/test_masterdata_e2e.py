"""Master data from QBO: accounts (deactivation), classes, tax rates (polled, never announced)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import EventPublisher
from shared.ingest.reconciler import Reconciler
from tests.e2e.conftest import Linked
from tests.e2e.stack import Stack, eventually, unique

pytestmark = pytest.mark.e2e


async def items(stack: Stack, company: str, path: str) -> list[dict[str, Any]]:
    page = await stack.released_api(company, "GET", f"{path}?pageSize=1000&includeArchived=true")
    return list(page["items"])


@pytest.mark.usefixtures("engine")
async def test_class_becomes_a_tracking_option_and_deactivation_archives_accounts(
    stack: Stack, linked: Linked
) -> None:
    class_name = unique("Building")
    await linked.qbo.write("Class", {"Name": class_name}, request_id="cls1")

    async def option() -> dict[str, Any] | None:
        for category in await items(stack, linked.company, "/tracking-categories"):
            for opt in category.get("options", []):
                if opt["name"] == class_name:
                    return dict(opt)
        return None

    assert (await eventually(option))["status"] == "ACTIVE"
    account = await linked.qbo.write(
        "Account",
        {"Name": unique("Repairs"), "AccountType": "Expense", "AcctNum": "6100"},
        request_id="acc-d1",
    )

    async def mirrored(status: str) -> bool:
        found = [a for a in await items(stack, linked.company, "/accounts") if a["code"] == "6100"]
        return bool(found) and found[0]["status"] == status

    await eventually(lambda: mirrored("ACTIVE"))
    await linked.qbo.write(
        "Account",
        {
            "Id": account["Id"],
            "SyncToken": account["SyncToken"],
            "sparse": True,
            "Active": False,
        },
        request_id="acc-d2",
    )
    await eventually(lambda: mirrored("ARCHIVED"))


@pytest.mark.usefixtures("engine")
async def test_tax_rates_are_polled_by_the_reconciler(
    stack: Stack,
    linked: Linked,
    pool: asyncpg.Pool,
    broker: AbstractRobustConnection,
) -> None:
    rates = await linked.qbo.query_all("TaxRate")
    publisher = await EventPublisher.open(broker)
    await Reconciler(pool, publisher).reconcile(
        linked.connection, linked.qbo, stack.factory.released(linked.connection)
    )

    async def in_released() -> bool:
        names = {t["name"] for t in await items(stack, linked.company, "/tax-rates")}
        return all(r["Name"] in names for r in rates)

    await eventually(in_released)
    await publisher.close()
    mirrored = {t["name"]: t["rate"] for t in await items(stack, linked.company, "/tax-rates")}
    for rate in rates:
        assert float(mirrored[rate["Name"]]) == float(rate["RateValue"])


@pytest.mark.usefixtures("engine")
async def test_contact_unarchive_in_qbo_restores_it_in_released(
    stack: Stack, linked: Linked
) -> None:
    name = unique("Comes Back")
    made = await linked.qbo.write("Customer", {"DisplayName": name}, request_id="u1")

    async def status(wanted: str) -> bool:
        found = [c for c in await items(stack, linked.company, "/contacts") if c["name"] == name]
        return bool(found) and found[0]["status"] == wanted

    await eventually(lambda: status("ACTIVE"))
    current = await linked.qbo.get("Customer", str(made["Id"]))
    inactive = await linked.qbo.write(
        "Customer",
        {"Id": made["Id"], "SyncToken": current["SyncToken"], "sparse": True, "Active": False},
        request_id="u2",
    )
    await eventually(lambda: status("ARCHIVED"))
    await linked.qbo.write(
        "Customer",
        {"Id": made["Id"], "SyncToken": inactive["SyncToken"], "sparse": True, "Active": True},
        request_id="u3",
    )
    await eventually(lambda: status("ACTIVE"))
