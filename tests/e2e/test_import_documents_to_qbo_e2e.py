"""Re-Leased documents and payments QBO lacks, through QBO's /batch of 30: the initial import
(a refused item alone) and a bulk replay of dead letters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import EventPublisher
from shared.adapters.clients import ClientFactory
from shared.adapters.qbo.client import QboClient
from shared.admin.store import AdminConnections
from shared.domain.connections import Connection
from shared.ingest.importer import InitialImport, released_import_event
from shared.ops import replay
from shared.ops.replay import Throttle
from shared.ops.replay_batched import BatchedReplay
from tests.e2e.agreement import assert_sides_agree
from tests.e2e.builders import (
    TODAY,
    dead_letter,
    qbo_bank_account_id,
    qbo_invoice,
    qbo_item_id,
    qbo_payment_lines,
    qbo_sales_line,
    rl_approved_document,
    rl_as_user,
    rl_document_body,
    seed_links,
)
from tests.e2e.readers import linked_qbo_id, linked_released, outcome_rows, rl_doc
from tests.e2e.stack import Stack, consumers, eventually, unique

pytestmark = pytest.mark.e2e


async def _connected(stack: Stack) -> tuple[str, str, Connection, QboClient]:
    """A fresh QBO realm and Re-Leased company, connected: (realm, company, connection, client)."""
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    connection = await stack.connect(realm, tokens, company)
    return realm, company, connection, stack.factory.qbo(connection)


async def _qbo_requests(stack: Stack, realm: str) -> list[dict[str, Any]]:
    log = await stack.call("GET", f"{stack.qbo_base}/_sandbox/realms/{realm}/requests")
    return list(log["requests"])


async def _linked_customer(stack: Stack, company: str, pool: asyncpg.Pool) -> tuple[str, str]:
    """A Re-Leased customer the engine created in QBO: (Re-Leased id, QBO id)."""
    contact = await stack.released_api(
        company, "POST", "/contacts", json={"name": unique("Refused"), "isCustomer": True}
    )
    qbo_id = await eventually(lambda: linked_qbo_id(pool, "contact", str(contact["id"])))
    return str(contact["id"]), str(qbo_id)


async def _linked_bank(
    stack: Stack, qbo: Any, pool: asyncpg.Pool, connection: Any, customer: str
) -> str:
    """QBO's bank account, linked to Re-Leased by a QBO payment the engine records (engine on).
    Returns its Re-Leased id."""
    qbo_customer = str(await linked_qbo_id(pool, "contact", customer))
    item = await qbo_item_id(qbo)
    invoice = await qbo_invoice(qbo, qbo_customer, [qbo_sales_line(item, "1", "10.00")])
    bank = await qbo_bank_account_id(qbo)
    body = {
        "CustomerRef": {"value": qbo_customer},
        "TotalAmt": "10.00",
        "TxnDate": TODAY,
        "DepositToAccountRef": {"value": bank},
        "Line": qbo_payment_lines({str(invoice["Id"]): "10.00"}),
    }
    await qbo.write("Payment", body, request_id=unique("pay"))
    return await linked_released(pool, "Account", bank, connection)


async def _deactivate(qbo: Any, customer: str) -> None:
    """Made inactive in QBO (the engine stopped, so Re-Leased does not hear of it yet): QBO then
    refuses any document naming it (610), which the mapping cannot foresee."""
    current = await qbo.get("Customer", customer)
    body = {"Id": current["Id"], "SyncToken": current["SyncToken"], "sparse": True}
    await qbo.write("Customer", {**body, "Active": False}, request_id=unique("off"))


# Re-Leased type -> our link entity, the QBO type, the Re-Leased collection.
KINDS = {
    "INCOME": ("invoice", "Invoice", "/invoices"),
    "EXPENSE": ("bill", "Bill", "/invoices"),
    "INCOME_CREDIT": ("credit_note", "CreditMemo", "/credit-notes"),
}
# Our link entity -> the word QBO's events use.
WORD = {
    "invoice": "invoice",
    "bill": "bill",
    "credit_note": "creditmemo",
    "payment": "payment",
    "bill_payment": "billpayment",
}


def _content(doc: dict[str, Any]) -> dict[str, Any]:
    """A QBO document but for what differs between any two (ids, number, times)."""
    own = {"Id", "SyncToken", "DocNumber", "MetaData", "TxnDate", "DueDate", "domain", "sparse"}
    return {k: v for k, v in doc.items() if k not in own}


async def test_import_creates_released_documents_in_qbo_in_batches_of_30(
    stack: Stack, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    realm, company, connection, qbo = await _connected(stack)
    async with consumers(stack.settings):
        ids = await seed_links(stack, qbo, pool, connection)
        refusing, refusing_qbo = await _linked_customer(stack, company, pool)
        bank = await _linked_bank(stack, qbo, pool, connection, ids["customer"])
        await asyncio.sleep(1)
    # Made by Re-Leased's users while the engine is stopped: only the import can take them.
    invoices = [await rl_approved_document(stack, company, ids, "INCOME") for _ in range(33)]
    # A bill's line as QBO keeps it (an amount, no quantity), so a later change of the QBO bill
    # (the bill payment below) reads back as the same lines.
    bill = rl_document_body("EXPENSE", ids["vendor"], ids["account"], "APPROVED")
    bill["lines"][0].update(quantity="1", unitAmount="121.00")
    bills = [await rl_as_user(stack, company, "POST", "/invoices", bill) for _ in range(2)]
    note = await rl_approved_document(stack, company, ids, "INCOME_CREDIT")
    bad = await rl_as_user(
        stack,
        company,
        "POST",
        "/invoices",
        rl_document_body("INCOME", refusing, ids["item"], "APPROVED"),
    )
    # Paid in part in Re-Leased: three invoices and a bill.
    paid = [*invoices[:3], bills[0]]
    for doc in paid:
        body = {"documentId": doc["id"], "date": TODAY, "amount": "21.00", "bankAccountId": bank}
        await rl_as_user(stack, company, "POST", "/payments", body)
    await _deactivate(qbo, refusing_qbo)
    ours = [*invoices, *bills, note]
    before = len(await _qbo_requests(stack, realm))
    publisher = await EventPublisher.open(broker)
    try:
        progress = await InitialImport(pool, publisher).run(
            connection, qbo, stack.factory.released(connection)
        )
        made = (await _qbo_requests(stack, realm))[before:]
        batches = [r for r in made if r["path"].endswith("/batch") and r["method"] == "POST"]
        documents = [r for r in batches if str(r["request_id"]).startswith("imd-")]
        # 34 invoices (30 + 4, the bad one among them), 2 bills, 1 credit memo; the rest of the
        # batches are the company's own contacts QBO lacked.
        assert len(documents) == 4, [r["request_id"] for r in batches]
        assert not [r for r in made if r["write"] and r["entity"] in ("Invoice", "Bill")]
        assert progress.batched["released_invoice"] == len(invoices) + len(bills)
        assert progress.batched["released_creditnote"] == 1
        assert progress.stages["released_invoice"] == 1, "the refused one goes to the engine"
        payments = [r for r in batches if str(r["request_id"]).startswith("imq-")]
        assert len(payments) == 2, "one batch of Payments, one of BillPayments"
        assert progress.batched["released_payment"] == len(paid)
        assert progress.stages["released_payment"] == 0
        assert not [r for r in made if r["write"] and r["entity"] in ("Payment", "BillPayment")]
        writes_after_import = await stack.qbo_writes(realm)
        async with consumers(stack.settings):
            for _ in range(100):
                state = await AdminConnections(pool).import_state(connection.id)
                if state["progress"]["stage"] == "done":
                    break
                await asyncio.sleep(0.3)
            await asyncio.sleep(3)  # the creates' notifications: echoes of what is linked
    finally:
        await publisher.close()
    # Nothing more was written to QBO for ours: no second document, no update of one.
    assert await stack.qbo_writes(realm) - writes_after_import <= 1, "only the bad one, refused"
    qbo_ids = []
    for doc in ours:
        entity, qbo_type, path = KINDS[doc["type"]]
        qbo_id = await linked_qbo_id(pool, entity, str(doc["id"]))
        assert qbo_id is not None
        qbo_ids.append(qbo_id)
        made_doc = await qbo.get(qbo_type, qbo_id)
        if qbo_type != "Bill":
            # QBO numbered it, and the number went back to Re-Leased, as the engine does.
            now = await rl_doc(stack, company, path, str(doc["id"]))
            assert now["number"] == made_doc["DocNumber"]
        if doc in paid:
            assert Decimal(str(made_doc["Balance"])) == Decimal("100.00"), "paid, in QBO too"
    async with pool.acquire() as conn:
        # What the import created in QBO from Re-Leased records, as QBO's events name it.
        made_here = {
            (WORD[r["entity"]], r["record_id"])
            for r in await conn.fetch(
                "SELECT entity, record_id FROM created_twins WHERE connection_id = $1 "
                "AND side = 'qbo' AND entity = ANY($2::text[])",
                connection.id,
                list(WORD),
            )
        }
        outcomes = await conn.fetch(
            "SELECT outcome, entity, source_id, reason FROM sync_outcomes "
            "WHERE connection_id = $1 AND direction = 'qbo_to_released'",
            connection.id,
        )
    assert len(made_here) == len(ours) + len(paid)
    mine = [r for r in outcomes if (r["entity"], r["source_id"]) in made_here]
    assert {(r["entity"], r["source_id"]) for r in mine} == made_here, "QBO announced each"
    assert {r["outcome"] for r in mine} == {"echo"}, [dict(r) for r in mine]
    # The same document made by the engine alone (live, one request) is the same QBO document.
    async with consumers(stack.settings):
        live = await rl_approved_document(stack, company, ids, "INCOME")
        live_id = await eventually(lambda: linked_qbo_id(pool, "invoice", str(live["id"])))
    assert _content(await qbo.get("Invoice", str(live_id))) == _content(
        await qbo.get("Invoice", qbo_ids[len(invoices) - 1])  # one not paid
    )
    rows = await outcome_rows(pool, str(bad["id"]), connection)
    assert rows, "the refused one was left to the engine"
    assert rows[-1]["outcome"] == "error", "the refused one: a per-record outcome"
    assert rows[-1]["reason"]
    assert "inactive in QuickBooks" in rows[-1]["remedy"], "the refused one: what to do about it"
    # The refused document voided before it ever synced: it has no QBO twin to agree with.
    await rl_as_user(stack, company, "POST", f"/invoices/{bad['id']}/void")
    assert await assert_sides_agree(stack, connection, pool) >= len(ours)


async def test_a_bulk_replay_creates_dead_lettered_released_invoices_in_qbo_batches(
    stack: Stack, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    realm, company, connection, qbo = await _connected(stack)
    async with consumers(stack.settings):
        ids = await seed_links(stack, qbo, pool, connection)
    now = datetime.now(UTC)
    letters: list[int] = []
    docs = [await rl_approved_document(stack, company, ids, "INCOME") for _ in range(32)]
    for doc in docs:
        event = released_import_event(company, "invoice", doc, now)
        letters.append(await dead_letter(pool, event, "sync.released_to_qbo"))
    before = len(await _qbo_requests(stack, realm))
    bulk = ClientFactory(stack.settings, pool, stack.http, bulk=True)
    publisher = await EventPublisher.open(broker)
    try:
        report = await replay.replay_many(
            pool, publisher, letters, Throttle(6000), batched=BatchedReplay(pool, bulk)
        )
    finally:
        await publisher.close()
    assert set(report.replayed) == set(letters)
    assert set(report.replayed.values()) == {replay.BATCHED}, "none needed an event"
    made = (await _qbo_requests(stack, realm))[before:]
    batches = [r for r in made if str(r["request_id"]).startswith("imd-")]
    assert len(batches) == 2, "32 invoices: 30 + 2"
    assert not [r for r in made if r["write"] and r["entity"] == "Invoice"]
    for doc in docs:
        qbo_id = await linked_qbo_id(pool, "invoice", str(doc["id"]))
        assert qbo_id is not None
        now_doc = await rl_doc(stack, company, "/invoices", str(doc["id"]))
        assert now_doc["number"] == (await qbo.get("Invoice", qbo_id))["DocNumber"]


async def test_a_fresh_import_links_aligned_accounts_first_and_batches_the_bills(
    stack: Stack, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    """Nothing synced before the import: the bills' expense account is only aligned (same code
    on both sides), their supplier only in Re-Leased. The import links the one and creates the
    other, then the bills go in one QBO batch."""
    realm, company, connection, qbo = await _connected(stack)
    expense = {"Name": unique("Repairs"), "AccountType": "Expense", "AcctNum": "400"}
    await qbo.write("Account", expense, request_id=unique("acct"))
    accounts = await stack.released_api(company, "GET", "/accounts?pageSize=1000")
    repairs = next(a for a in accounts["items"] if a["code"] == "400")
    supplier = await stack.released_api(
        company, "POST", "/contacts", json={"name": unique("Plumber"), "isSupplier": True}
    )
    bill = rl_document_body("EXPENSE", supplier["id"], repairs["id"], "APPROVED")
    bill["lines"][0].update(quantity="1", unitAmount="121.00")
    bills = [await rl_as_user(stack, company, "POST", "/invoices", bill) for _ in range(3)]
    before = len(await _qbo_requests(stack, realm))
    publisher = await EventPublisher.open(broker)
    try:
        progress = await InitialImport(pool, publisher).run(
            connection, qbo, stack.factory.released(connection)
        )
    finally:
        await publisher.close()
    made = (await _qbo_requests(stack, realm))[before:]
    assert len([r for r in made if str(r["request_id"]).startswith("imd-")]) == 1
    assert progress.batched["released_invoice"] == len(bills)
    for doc in bills:
        assert await linked_qbo_id(pool, "bill", str(doc["id"])) is not None
