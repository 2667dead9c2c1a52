"""Both sandboxes at their platforms' real limits, the product on its real budgets.

QBO 500 requests a minute and 10 at once per realm, Re-Leased 60 a minute and 5 at once per
company; the product's budgets are its defaults. Under them: an initial import runs while live
edits arrive on both sides, and the live edits land while the import is still being applied (its
bulk lane never holds them up); nothing we send is refused with a 429; and a burst of 429s from
Re-Leased delays a change without losing it.

The test reads Re-Leased through the control API's ``as-user`` routes, which count against no
limit: its own polling must not spend the company's 60 a minute.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import EventPublisher
from shared.admin.store import AdminConnections
from shared.ingest.importer import InitialImport
from tests.e2e.stack import Stack, consumers, eventually, running_stack, unique

# Real limits are slow on purpose: the import alone needs a few Re-Leased minutes' budget.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


@pytest.fixture
async def real_stack(
    database_url: str, amqp_url: str, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> AsyncIterator[Stack]:
    async with running_stack(database_url, amqp_url, pool, real_limits=True) as running:
        yield running


async def rl_read(stack: Stack, company: str, path: str) -> Any:
    """Re-Leased as its own UI reads it: no limit spent."""
    return await stack.call(
        "GET", f"{stack.released_base}/_sandbox/companies/{company}/as-user{path}"
    )


async def rl_write(stack: Stack, company: str, method: str, path: str, body: Any) -> Any:
    return await stack.call(
        method, f"{stack.released_base}/_sandbox/companies/{company}/as-user{path}", json=body
    )


async def rl_named(stack: Stack, company: str, name: str) -> list[dict[str, Any]]:
    page = await rl_read(stack, company, "/contacts?pageSize=1000")
    return [c for c in page["items"] if c["name"] == name]


async def refused_with_429(stack: Stack, company: str) -> list[dict[str, Any]]:
    log = await stack.call("GET", f"{stack.released_base}/_sandbox/companies/{company}/requests")
    return [r for r in log["items"] if r["status"] == 429]


async def test_live_edits_land_while_an_import_runs_at_real_limits(
    real_stack: Stack, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    stack = real_stack
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    tag = unique("Real")
    for n in range(8):
        await rl_write(
            stack, company, "POST", "/contacts", {"name": f"{tag} Own {n}", "isCustomer": True}
        )
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    for n in range(20):
        await qbo.write("Customer", {"DisplayName": f"{tag} Tenant {n}"}, request_id=f"rt-{n}")
    publisher = await EventPublisher.open(broker)
    try:
        async with consumers(stack.settings):
            # The import as the reconciler runs it: queued in the bulk lane, applied at the pace
            # of Re-Leased's 60 a minute.
            importer = InitialImport(pool, publisher)
            await importer.run(connection, qbo, stack.factory.released(connection))
            live_qbo, live_rl = f"{tag} Live QBO", f"{tag} Live RL"
            await qbo.write("Customer", {"DisplayName": live_qbo}, request_id="live-q")
            await rl_write(
                stack, company, "POST", "/contacts", {"name": live_rl, "isCustomer": True}
            )

            async def both_live_edits_landed() -> bool:
                in_rl = await rl_named(stack, company, live_qbo)
                in_qbo = await qbo.query_all("Customer", f"DisplayName = '{live_rl}'")
                return bool(in_rl and in_qbo)

            await eventually(both_live_edits_landed, timeout=60)
            progress = (await AdminConnections(pool).import_state(connection.id))["progress"]
            assert progress["stage"] == "applying", "the live edits did not wait for the import"
            assert progress["done"] < progress["total"]

            async def import_done() -> bool:
                now = await AdminConnections(pool).import_state(connection.id)
                return bool(now["progress"]["stage"] == "done")

            await eventually(import_done, timeout=240, interval=2)
    finally:
        await publisher.close()
    assert await refused_with_429(stack, company) == [], "the budget kept us under 60 a minute"
    everyone = [f"{tag} Tenant {n}" for n in range(20)] + [f"{tag} Own {n}" for n in range(8)]
    for name in everyone:
        assert len(await rl_named(stack, company, name)) == 1, name
    customers = [c["DisplayName"] for c in await qbo.query_all("Customer")]
    for name in everyone:
        assert customers.count(name) == 1, name


async def test_a_burst_of_429s_delays_a_change_without_losing_it(real_stack: Stack) -> None:
    stack = real_stack
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    faults = f"{stack.released_base}/_sandbox/companies/{company}/faults"
    name = unique("Through 429s")
    log = f"{stack.released_base}/_sandbox/companies/{company}/requests"
    before = (await stack.call("GET", log))["total"]
    async with consumers(stack.settings):
        await stack.call("PUT", faults, json={"rateLimitRate": 1.0})
        await qbo.write("Customer", {"DisplayName": name}, request_id="burst-1")

        async def refused_a_few() -> bool:
            # Every call is refused while the switch is on (reads too, which the log of writes
            # does not list): count them all.
            return bool((await stack.call("GET", log))["total"] - before >= 3)

        await eventually(refused_a_few, timeout=30)
        await stack.call("PUT", faults, json={"rateLimitRate": 0.0})
        await eventually(lambda: rl_named(stack, company, name), timeout=90, interval=1)
    (contact,) = await rl_named(stack, company, name)
    assert contact["isCustomer"] is True
    async with stack.pool.acquire() as conn:
        dead = await conn.fetchval(
            "SELECT count(*) FROM dead_letters WHERE connection_id = $1", connection.id
        )
    assert dead == 0, "retried, not dead-lettered"
