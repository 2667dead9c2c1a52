"""Initial import of Re-Leased documents QBO lacks: QBO's /batch of 30, a refused item alone."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import EventPublisher
from shared.admin.store import AdminConnections
from shared.ingest.importer import InitialImport
from tests.e2e.agreement import assert_sides_agree
from tests.e2e.builders import rl_approved_document, rl_as_user, rl_document_body, seed_links
from tests.e2e.readers import linked_qbo_id, outcome_rows, rl_doc
from tests.e2e.stack import Stack, consumers, eventually, unique

pytestmark = pytest.mark.e2e


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


async def _deactivate(qbo: Any, customer: str) -> None:
    """Made inactive in QBO (the engine stopped, so Re-Leased does not hear of it yet): QBO then
    refuses any document naming it (610), which the mapping cannot foresee."""
    current = await qbo.get("Customer", customer)
    body = {"Id": current["Id"], "SyncToken": current["SyncToken"], "sparse": True}
    await qbo.write("Customer", {**body, "Active": False}, request_id=unique("off"))


def _content(doc: dict[str, Any]) -> dict[str, Any]:
    """A QBO document but for what differs between any two (ids, number, times)."""
    own = {"Id", "SyncToken", "DocNumber", "MetaData", "TxnDate", "DueDate", "domain", "sparse"}
    return {k: v for k, v in doc.items() if k not in own}


async def test_import_creates_released_documents_in_qbo_in_batches_of_30(
    stack: Stack, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    async with consumers(stack.settings):
        ids = await seed_links(stack, qbo, pool, connection)
        refusing, refusing_qbo = await _linked_customer(stack, company, pool)
        await asyncio.sleep(1)
    # Made by Re-Leased's users while the engine is stopped: only the import can take them.
    invoices = [await rl_approved_document(stack, company, ids, "INCOME") for _ in range(33)]
    bills = [await rl_approved_document(stack, company, ids, "EXPENSE") for _ in range(2)]
    note = await rl_approved_document(stack, company, ids, "INCOME_CREDIT")
    bad = await rl_as_user(
        stack,
        company,
        "POST",
        "/invoices",
        rl_document_body("INCOME", refusing, ids["item"], "APPROVED"),
    )
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
        entity = {"INCOME": "invoice", "EXPENSE": "bill", "INCOME_CREDIT": "credit_note"}
        qbo_id = await linked_qbo_id(pool, entity[doc["type"]], str(doc["id"]))
        assert qbo_id is not None
        qbo_ids.append(qbo_id)
        if doc["type"] == "INCOME":
            # QBO numbered it, and the number went back to Re-Leased, as the engine does.
            path = "/credit-notes" if doc["type"].endswith("CREDIT") else "/invoices"
            now = await rl_doc(stack, company, path, str(doc["id"]))
            assert now["number"] == (await qbo.get("Invoice", qbo_id))["DocNumber"]
    async with pool.acquire() as conn:
        outcomes = await conn.fetch(
            "SELECT outcome FROM sync_outcomes WHERE connection_id = $1 "
            "AND direction = 'qbo_to_released' AND source_id = ANY($2::text[])",
            connection.id,
            qbo_ids,
        )
    assert outcomes, "QBO announced the creates"
    assert {r["outcome"] for r in outcomes} == {"echo"}, "each create's notification an echo"
    # The same document made by the engine alone (live, one request) is the same QBO document.
    async with consumers(stack.settings):
        live = await rl_approved_document(stack, company, ids, "INCOME")
        live_id = await eventually(lambda: linked_qbo_id(pool, "invoice", str(live["id"])))
    assert _content(await qbo.get("Invoice", str(live_id))) == _content(
        await qbo.get("Invoice", qbo_ids[0])
    )
    rows = await outcome_rows(pool, str(bad["id"]), connection)
    assert rows, "the refused one was left to the engine"
    assert rows[-1]["outcome"] == "error", "the refused one: a per-record outcome"
    assert rows[-1]["reason"]
    # The refused document voided before it ever synced: it has no QBO twin to agree with.
    await rl_as_user(stack, company, "POST", f"/invoices/{bad['id']}/void")
    assert await assert_sides_agree(stack, connection, pool) >= len(ours)
