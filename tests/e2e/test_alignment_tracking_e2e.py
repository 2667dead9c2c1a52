"""Connecting a company: its property tracking meets QBO's classes.

The company's own "Property" category keeps the options QBO has a class for (linked to it, so the
class's arrival adopts the option instead of adding a twin to "QBO Classes"), loses the rest, and
a category with nothing in QBO is archived; the report says which was which.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import EventPublisher
from shared.admin.store import AdminConnections
from shared.ingest.importer import InitialImport
from tests.e2e.builders import qbo_customer, qbo_invoice, qbo_item_id, qbo_sales_line
from tests.e2e.readers import linked_released, settle
from tests.e2e.stack import Stack, consumers, eventually

pytestmark = pytest.mark.e2e


async def test_connecting_keeps_tracking_options_qbo_has_a_class_for(
    stack: Stack, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()

    async def categories() -> dict[str, dict[str, Any]]:
        page = await stack.released_api(company, "GET", "/tracking-categories?includeArchived=true")
        return {c["name"]: c for c in page["items"]}

    # Before connecting (a user may): one more property option, and a category of its own.
    (prop,) = [c for c in (await categories()).values() if c["name"] == "Property"]
    options = [*prop["options"], {"name": "9 Ghost Rd"}]
    await stack.released_api(
        company,
        "PATCH",
        f"/tracking-categories/{prop['id']}",
        json={"options": options},
        headers={"If-Match": f'"{prop["version"]}"'},
    )
    body = {"name": "Region", "options": [{"name": "North"}]}
    region = await stack.released_api(company, "POST", "/tracking-categories", json=body)
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    quay = await qbo.write("Class", {"Name": "12 Quay St"}, request_id="class-quay")
    await asyncio.sleep(1.0)
    publisher = await EventPublisher.open(broker)
    try:
        await InitialImport(pool, publisher).run(
            connection, qbo, stack.factory.released(connection)
        )
        async with consumers(stack.settings):
            await eventually(lambda: _has_category(categories, "QBO Classes"))
            # A QBO invoice on that class lands on the company's own property option.
            cust = await qbo_customer(qbo)
            line = qbo_sales_line(await qbo_item_id(qbo), "1", "25.00")
            line["SalesItemLineDetail"]["ClassRef"] = {"value": quay["Id"]}
            invoice = await qbo_invoice(qbo, cust["Id"], [line])
            rl_invoice = await linked_released(pool, "Invoice", str(invoice["Id"]), connection)
            # QBO renames the class: the company's option follows, in its own category.
            current = await qbo.get("Class", str(quay["Id"]))
            await qbo.write(
                "Class",
                {
                    "Id": quay["Id"],
                    "SyncToken": current["SyncToken"],
                    "sparse": True,
                    "Name": "12 Quay Street",
                },
                request_id="class-rename",
            )

            async def renamed() -> bool:
                names = [o["name"] for o in (await categories())["Property"]["options"]]
                return "12 Quay Street" in names

            await eventually(renamed)
            await settle()
    finally:
        await publisher.close()
    found = await categories()
    assert found["Region"]["status"] == "ARCHIVED"
    kept = found["Property"]
    assert kept["status"] == "ACTIVE"
    status = {o["name"]: o["status"] for o in kept["options"]}
    assert status == {"12 Quay Street": "ACTIVE", "9 Ghost Rd": "ARCHIVED"}
    engine_options = [o["name"] for o in found["QBO Classes"]["options"]]
    assert not {"12 Quay St", "12 Quay Street"} & set(engine_options), "adopted, not twinned"
    assert "Operations" in engine_options, "a class with no option of the company's is added"
    option = next(o for o in kept["options"] if o["name"] == "12 Quay Street")
    async with pool.acquire() as conn:
        linked = await conn.fetchval(
            "SELECT qbo_id FROM links WHERE connection_id = $1 AND entity = 'tracking_class' "
            "AND released_id = $2",
            connection.id,
            f"{kept['id']}:{option['id']}",
        )
    assert linked == str(quay["Id"])
    document = await stack.released_api(company, "GET", f"/invoices/{rl_invoice}")
    assert [ln["trackingOptionId"] for ln in document["lines"]] == [option["id"]]
    report = (await AdminConnections(pool).import_state(connection.id))["master_data_alignment"]
    assert report["counts"]["tracking_option"] == {"mapped": 1, "archived": 1}
    assert {a["released_id"] for a in report["archived"]} >= {region["id"]}


async def _has_category(read: Any, name: str) -> bool:
    return name in await read()
