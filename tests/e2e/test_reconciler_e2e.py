"""Dropped webhooks on both sides: the reconciler brings the queues to the full set of changes."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import QBO_TO_RELEASED, RELEASED_TO_QBO, EventPublisher
from shared.ingest.reconciler import Reconciler
from tests.e2e.conftest import Linked
from tests.e2e.stack import Stack, unique

pytestmark = pytest.mark.e2e

CHANGES = 12


async def drain(broker: AbstractRobustConnection, queue_name: str) -> list[dict[str, object]]:
    channel = await broker.channel()
    queue = await channel.get_queue(queue_name)
    found = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        found.append(json.loads(message.body))
    await channel.close()
    return found


async def settle(stack: Stack, realm: str, company: str) -> tuple[int, int]:
    """Wait until both delivery logs stop growing; return how many deliveries were dropped."""
    last: tuple[int, int] | None = None
    for _ in range(100):
        qbo = await stack.call("GET", f"{stack.qbo_base}/_sandbox/deliveries?realmId={realm}")
        rl = await stack.call(
            "GET", f"{stack.released_base}/_sandbox/deliveries?companyId={company}"
        )
        sizes = (len(qbo["deliveries"]), len(rl["items"]))
        if sizes == last:
            dropped_qbo = sum(1 for d in qbo["deliveries"] if d.get("status") == "dropped")
            dropped_rl = sum(1 for d in rl["items"] if d.get("kind") == "DROPPED")
            return dropped_qbo, dropped_rl
        last = sizes
        await asyncio.sleep(0.6)
    raise AssertionError("deliveries did not settle")


async def test_reconciler_repairs_what_webhooks_dropped(
    stack: Stack, broker: AbstractRobustConnection, pool: asyncpg.Pool
) -> None:
    realm, tokens = await stack.qbo_realm(drop_rate=0.3)
    company = await stack.released_company(drop_rate=0.3)
    await asyncio.sleep(1.1)  # the companies' seed data predates the connection (CDC: seconds)
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    await asyncio.sleep(0.5)
    await drain(broker, QBO_TO_RELEASED)
    await drain(broker, RELEASED_TO_QBO)

    customers, contacts = set(), set()
    for i in range(CHANGES):
        made = await qbo.write("Customer", {"DisplayName": unique("Tenant")}, request_id=f"c{i}")
        customers.add(str(made["Id"]))
        body = {"name": unique("Supplier"), "isSupplier": True}
        created = await stack.released_api(company, "POST", "/contacts", json=body)
        contacts.add(str(created["id"]))
        await asyncio.sleep(0.3)  # one webhook batch per change, so drops hit single changes

    dropped_qbo, dropped_rl = await settle(stack, realm, company)
    await asyncio.sleep(0.5)
    seen_qbo = {str(m["entity_id"]) for m in await drain(broker, QBO_TO_RELEASED)}
    seen_rl = {str(m["entity_id"]) for m in await drain(broker, RELEASED_TO_QBO)}
    assert dropped_qbo > 0, "the fault switch dropped some QBO deliveries"
    assert dropped_rl > 0, "the fault switch dropped some Re-Leased deliveries"
    assert not customers <= seen_qbo or not contacts <= seen_rl

    publisher = await EventPublisher.open(broker)
    reconciler = Reconciler(pool, publisher)
    report = await reconciler.reconcile(connection, qbo, stack.factory.released(connection))
    repaired_qbo = {str(m["entity_id"]) for m in await drain(broker, QBO_TO_RELEASED)}
    repaired_rl = {str(m["entity_id"]) for m in await drain(broker, RELEASED_TO_QBO)}

    assert customers <= seen_qbo | repaired_qbo
    assert contacts <= seen_rl | repaired_rl
    # Only what was missing is published again: nothing a webhook already delivered.
    assert not (repaired_qbo & seen_qbo & customers)
    assert report.total_repaired == len(repaired_qbo & customers) + len(repaired_rl - seen_rl)

    again = await reconciler.reconcile(connection, qbo, stack.factory.released(connection))
    assert again.total_repaired == 0
    assert await drain(broker, QBO_TO_RELEASED) == []
    await publisher.close()


async def test_cdc_cap_is_paged_through_queries(
    stack: Stack, broker: AbstractRobustConnection, pool: asyncpg.Pool, linked: Linked
) -> None:
    """More than CDC's 1,000 objects changed: every one is still examined (and none lost)."""
    await stack.call(
        "PUT",
        f"{stack.qbo_base}/_sandbox/realms/{linked.realm}/faults",
        json={"webhook_drop_rate": 1.0},
    )
    sem = asyncio.Semaphore(8)

    async def make(i: int) -> None:
        async with sem:
            await linked.qbo.write(
                "Customer", {"DisplayName": f"Bulk {i:04d}"}, request_id=f"bulk{i}"
            )

    await asyncio.gather(*(make(i) for i in range(1005)))
    publisher = await EventPublisher.open(broker)
    report = await Reconciler(pool, publisher).reconcile(
        linked.connection, linked.qbo, stack.factory.released(linked.connection)
    )
    await publisher.close()
    assert report.examined["qbo_cdc"] >= 1005
    assert report.repaired["qbo_cdc"] >= 1005, "every dropped change was published"
    ids = {str(m["entity_id"]) for m in await drain(broker, QBO_TO_RELEASED)}
    assert len(ids) >= 1005
