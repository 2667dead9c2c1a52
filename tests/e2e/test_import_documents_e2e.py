"""Initial import of QBO documents: batches of 50 from one listing, a refused item on its own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import EventPublisher
from shared.adapters.clients import ClientFactory
from shared.admin.store import AdminConnections
from shared.ingest.importer import InitialImport
from shared.ingest.reconciler import qbo_change
from shared.ops import replay
from shared.ops.replay import Throttle
from shared.ops.replay_batched import BatchedReplay
from tests.e2e.builders import (
    TODAY,
    dead_letter,
    qbo_bank_account_id,
    qbo_customer,
    qbo_item_id,
    qbo_payment_lines,
    qbo_sales_line,
)
from tests.e2e.stack import Stack, consumers, unique

pytestmark = pytest.mark.e2e


async def _requests(
    stack: Stack, company: str, method: str, path: str, *, under: bool = False
) -> int:
    """Requests to ``path`` (or, ``under``, to any path below it) in the sandbox's log."""
    query = f"method={method}&includeReads=true"
    url = f"{stack.released_base}/_sandbox/companies/{company}/requests?{query}"
    log = await stack.call("GET", url)
    full = f"/api/v1{path}"
    return len(
        [r for r in log["items"] if (r["path"].startswith(full) if under else r["path"] == full)]
    )


async def test_import_batches_invoices_then_payments_and_a_refused_one_fails_alone(
    stack: Stack, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    tag = unique("D").replace(" ", "")
    customer = await qbo_customer(qbo)
    item = await qbo_item_id(qbo)
    ref = {"value": customer["Id"]}
    numbers = [f"{tag}-{n:02d}" for n in range(54)]
    invoices = []
    for n, number in enumerate(numbers):
        line = qbo_sales_line(item, "1", f"{100 + n}.00")
        body: dict[str, Any] = {"CustomerRef": ref, "DocNumber": number, "TxnDate": TODAY}
        invoices.append(
            await qbo.write("Invoice", {**body, "Line": [line]}, request_id=f"{tag}-{n}")
        )
    # Payments: 3 of one invoice each (batched), 1 over two invoices (left to the engine).
    bank = {"value": await qbo_bank_account_id(qbo)}
    paid = [{str(invoices[n]["Id"]): "10.00"} for n in range(3)]
    paid.append({str(invoices[3]["Id"]): "5.00", str(invoices[4]["Id"]): "6.00"})
    for n, allocations in enumerate(paid):
        total = str(sum(float(a) for a in allocations.values()))
        body = {
            "CustomerRef": ref,
            "TotalAmt": total,
            "TxnDate": TODAY,
            "DepositToAccountRef": bank,
        }
        body["Line"] = qbo_payment_lines(allocations)
        await qbo.write("Payment", body, request_id=f"{tag}-pay-{n}")
    # Re-Leased takes at most 100 lines on a document: this one's item is refused in its batch.
    bad = await qbo.write(
        "Invoice",
        {
            "CustomerRef": ref,
            "DocNumber": f"{tag}-bad",
            "TxnDate": TODAY,
            "Line": [qbo_sales_line(item, "1", "1.00") for _ in range(101)],
        },
        request_id=f"{tag}-bad",
    )
    publisher = await EventPublisher.open(broker)
    try:
        progress = await InitialImport(pool, publisher).run(
            connection, qbo, stack.factory.released(connection)
        )
        assert progress.batched["Invoice"] == len(numbers), "all but the refused one"
        assert progress.stages["qbo_invoice"] == 1, "the refused one goes to the engine"
        assert await _requests(stack, company, "POST", "/invoices/batch") == 2, "55: 50 + 5"
        assert await _requests(stack, company, "POST", "/invoices") == 0
        assert progress.batched["Payment"] == 3, "one document each"
        assert progress.stages["qbo_payment"] == 1, "over two documents: the engine's"
        assert await _requests(stack, company, "POST", "/payments/batch") == 1
        # The lookup before create: one listing for the whole import, not one per invoice; and
        # one read-back of the documents the payment batch settled.
        assert await _requests(stack, company, "GET", "/invoices") == 2
        async with consumers(stack.settings):
            for _ in range(100):
                state = await AdminConnections(pool).import_state(connection.id)
                if state["progress"]["stage"] == "done":
                    break
                await asyncio.sleep(0.3)
            await asyncio.sleep(2)  # the batches' webhooks: echoes of what is linked
    finally:
        await publisher.close()
    listed = await stack.released_api(company, "GET", "/invoices?pageSize=1000")
    ours = sorted(d["number"] for d in listed["items"] if str(d.get("number", "")).startswith(tag))
    assert ours == numbers, "each once: no twin, the refused one not written"
    async with pool.acquire() as conn:
        linked = await conn.fetchval(
            "SELECT count(*) FROM links WHERE connection_id = $1 AND qbo_type = 'Invoice'",
            connection.id,
        )
        outcome = await conn.fetchrow(
            "SELECT outcome, reason, remedy FROM sync_outcomes "
            "WHERE connection_id = $1 AND entity = 'invoice' AND source_id = $2 "
            "ORDER BY id DESC LIMIT 1",
            connection.id,
            str(bad["Id"]),
        )
    assert linked == len(numbers)
    # The creates' own notifications were known for ours without reading each record back.
    assert await _requests(stack, company, "GET", "/invoices/", under=True) < 5
    assert await _requests(stack, company, "GET", "/payments/", under=True) < 3
    payments = await stack.released_api(company, "GET", "/payments?pageSize=1000")
    amounts = sorted(p["amount"] for p in payments["items"] if p["status"] == "ACTIVE")
    assert amounts == ["10.00", "10.00", "10.00", "5.00", "6.00"], "each recorded once"
    assert outcome is not None
    assert outcome["outcome"] == "error", "a per-record outcome"
    assert outcome["reason"]
    assert outcome["remedy"], "the record's error tells a person what to do"


async def test_a_bulk_replay_writes_dead_lettered_invoices_in_batches(
    stack: Stack, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    tag = unique("R").replace(" ", "")
    customer = await qbo_customer(qbo)
    item = await qbo_item_id(qbo)
    ids: list[int] = []
    now = datetime.now(UTC)
    for n in range(52):
        body = {"CustomerRef": {"value": customer["Id"]}, "DocNumber": f"{tag}-{n:02d}"}
        body["TxnDate"] = TODAY
        made = await qbo.write(
            "Invoice",
            {**body, "Line": [qbo_sales_line(item, "1", "9.00")]},
            request_id=f"{tag}-{n}",
        )
        # As if each had failed for good (a wrong tax rate, since fixed): a dead letter.
        event = qbo_change(realm, "Invoice", made, now)
        ids.append(await dead_letter(pool, event, "sync.qbo_to_released"))
    bulk = ClientFactory(stack.settings, pool, stack.http, bulk=True)
    publisher = await EventPublisher.open(broker)
    try:
        report = await replay.replay_many(
            pool, publisher, ids, Throttle(6000), batched=BatchedReplay(pool, bulk)
        )
    finally:
        await publisher.close()
    assert set(report.replayed) == set(ids)
    assert set(report.replayed.values()) == {replay.BATCHED}, "none needed an event"
    assert await _requests(stack, company, "POST", "/invoices/batch") == 2, "52: 50 + 2"
    assert await _requests(stack, company, "POST", "/invoices") == 0
    listed = await stack.released_api(company, "GET", "/invoices?pageSize=1000")
    ours = [d for d in listed["items"] if str(d.get("number", "")).startswith(tag)]
    assert len(ours) == 52
    async with pool.acquire() as conn:
        statuses = await conn.fetch(
            "SELECT DISTINCT status FROM dead_letters WHERE id = ANY($1::bigint[])", ids
        )
    assert [r["status"] for r in statuses] == ["replayed"]
