"""Metrics move with real traffic: a QBO change arrives by webhook, the engine applies it through
both APIs, and the receiver's /metrics shows the webhook, the applied event, its propagation
time, the API requests and budget waits; a change whose webhook was lost shows up as a
reconcile repair. (Everything runs in this process, so one registry holds every counter.)"""

from __future__ import annotations

import asyncio

import aiohttp
import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import EventPublisher
from shared.ingest.reconciler import Reconciler
from tests.e2e.builders import qbo_customer
from tests.e2e.conftest import Linked
from tests.e2e.stack import Stack, consumers, eventually
from tests.support.scrape import Samples, scrape, value

pytestmark = pytest.mark.e2e


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def contact_named(stack: Stack, company: str, name: str) -> bool:
    found = await stack.released_api(company, "GET", "/contacts")
    return any(c.get("name") == name for c in found.get("items", found))


async def test_counters_move_with_a_change_applied_end_to_end(stack: Stack, linked: Linked) -> None:
    base = stack.qbo_hook.removesuffix("/webhooks/qbo")
    async with aiohttp.ClientSession() as http, consumers(stack.settings):
        before = await scrape(http, base)
        customer = await qbo_customer(linked.qbo)
        await eventually(
            lambda: contact_named(stack, linked.company, customer["DisplayName"]), timeout=30
        )
        await asyncio.sleep(0.5)
        after = await scrape(http, base)
    assert moved(before, after, "sync_webhooks_total", source="qbo", status="200") >= 1
    applied = {"entity": "customer", "direction": "qbo_to_released", "outcome": "applied"}
    assert moved(before, after, "sync_events_total", **applied) >= 1
    assert moved(before, after, "sync_propagation_seconds_count", direction="qbo_to_released") >= 1
    for side in ("qbo", "released"):
        assert moved(before, after, "sync_api_budget_wait_seconds_count", side=side) >= 1
    requests = sum(
        moved(before, after, "sync_api_requests_total", side="released", status=status)
        for status in ("200", "201")
    )
    assert requests >= 1


async def test_a_lost_webhook_counts_as_a_reconcile_repair(
    stack: Stack, linked: Linked, broker: AbstractRobustConnection, pool: asyncpg.Pool
) -> None:
    await stack.call(
        "PUT",
        f"{stack.qbo_base}/_sandbox/realms/{linked.realm}/faults",
        json={"webhook_drop_rate": 1.0},
    )
    base = stack.qbo_hook.removesuffix("/webhooks/qbo")
    async with aiohttp.ClientSession() as http:
        before = await scrape(http, base)
        await qbo_customer(linked.qbo)
        publisher = await EventPublisher.open(broker)
        report = await Reconciler(pool, publisher).reconcile(
            linked.connection, linked.qbo, stack.factory.released(linked.connection)
        )
        await publisher.close()
        after = await scrape(http, base)
    assert report.total_repaired >= 1
    repairs = moved(before, after, "sync_reconcile_repairs_total", source="qbo", entity="customer")
    assert 1 <= repairs <= report.repaired["qbo_cdc"]
