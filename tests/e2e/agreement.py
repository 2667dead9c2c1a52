"""Both sides agree: every linked document checked field by field, and converging on that after
faults (the fault switches off, the reconciler run until the check passes)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg

from shared.adapters.broker import EventPublisher
from shared.domain.connections import Connection
from shared.domain.mapping.documents import is_qbo_void
from shared.domain.mapping.held_credit import is_held
from shared.ingest.reconciler import Reconciler
from tests.e2e.readers import rl_doc, rl_docs, settle
from tests.e2e.stack import Stack

# -- the check ----------------------------------------------------------------------------------


def same_lines(qbo_doc: dict[str, Any], rl: dict[str, Any]) -> None:
    """A QBO document and its Re-Leased twin have the same line amounts and the same total."""
    qbo_lines = [ln for ln in qbo_doc["Line"] if ln.get("DetailType") != "SubTotalLineDetail"]
    if qbo_doc.get("GlobalTaxCalculation") == "TaxInclusive":
        # Amounts including tax: QBO's Amount is net, the line as entered is TaxInclusiveAmt.
        qbo_lines = [
            {"Amount": (ln.get("SalesItemLineDetail") or {}).get("TaxInclusiveAmt", ln["Amount"])}
            for ln in qbo_lines
        ]
    assert [Decimal(str(ln["Amount"])) for ln in qbo_lines] == [
        Decimal(ln["lineAmount"]) for ln in rl["lines"]
    ]
    assert Decimal(str(qbo_doc["TotalAmt"])) == Decimal(rl["total"])


async def assert_sides_agree(stack: Stack, connection: Connection, pool: asyncpg.Pool) -> int:
    """Every linked document: same number, date, party, lines, total, amount due, status; and
    exact counts both ways: one Re-Leased document per QBO document and one QBO document per
    Re-Leased document (a duplicate on either side fails). Returns documents checked."""
    qbo = stack.factory.qbo(connection)
    company = connection.released_company_id
    async with pool.acquire() as conn:
        links = await conn.fetch(
            "SELECT * FROM links WHERE connection_id = $1 AND entity = ANY($2::text[])",
            connection.id,
            ["invoice", "bill", "credit_note", "vendor_credit"],
        )
        contacts = {
            (r["qbo_type"], r["qbo_id"]): r["released_id"]
            for r in await conn.fetch(
                "SELECT qbo_type, qbo_id, released_id FROM links WHERE connection_id = $1 "
                "AND entity = 'contact'",
                connection.id,
            )
        }
    for link in links:
        path = "/invoices" if link["entity"] in ("invoice", "bill") else "/credit-notes"
        rl = await rl_doc(stack, company, path, link["released_id"])
        if link["status"] == "voided":
            assert rl["status"] == "VOIDED", link["released_id"]
            continue
        doc = await qbo.get(link["qbo_type"], link["qbo_id"])
        party = "CustomerRef" if "CustomerRef" in doc else "VendorRef"
        assert rl["number"] == doc["DocNumber"]
        assert rl["date"] == doc["TxnDate"]
        assert rl["contactId"] == contacts[(party[:-3], doc[party]["value"])]
        same_lines(doc, rl)
        assert Decimal(rl["amountDue"]) == Decimal(str(doc.get("Balance", doc["TotalAmt"])))
        paid = Decimal(rl["amountDue"]) == 0 and Decimal(rl["total"]) > 0
        assert (rl["status"] == "PAID") == paid, (rl["status"], rl["amountDue"])
    documents = (
        ("/invoices", ("Invoice", "Bill")),
        ("/credit-notes", ("CreditMemo", "VendorCredit")),
    )
    ever_linked = {lk["released_id"] for lk in links}
    for path, types in documents:
        # DRAFT never syncs, so it has no link to compare; nor has a document voided before
        # it ever synced.
        found = await rl_docs(stack, company, path)
        released = [
            d
            for d in found
            if d["status"] != "DRAFT"
            and (d["status"] != "VOIDED" or d["id"] in ever_linked)
            and not is_held(d)  # money, not a document: checked against its payment below
        ]
        await _held_credit_agrees(stack, connection, pool, [d for d in found if is_held(d)])
        linked_here = [lk for lk in links if lk["released_id"] in {d["id"] for d in released}]
        assert len(released) == len(linked_here), f"unlinked or duplicate {path}"
        assert len({lk["qbo_id"] + lk["qbo_type"] for lk in linked_here}) == len(released)
        for qbo_type in types:
            await _qbo_side_exact(stack, connection, qbo_type, links)
    return len(links)


async def _held_credit_agrees(
    stack: Stack, connection: Connection, pool: asyncpg.Pool, notes: list[dict[str, Any]]
) -> None:
    """Each live prepayment/overpayment note has exactly the credit left that its QBO payment
    holds unapplied."""
    qbo = stack.factory.qbo(connection)
    for note in notes:
        if note["status"] == "VOIDED":
            continue
        async with pool.acquire() as conn:
            part = await conn.fetchval(
                "SELECT qbo_id FROM links WHERE connection_id = $1 AND released_id = $2 "
                "AND entity IN ('payment', 'bill_payment')",
                connection.id,
                note["id"],
            )
        assert part is not None, f"held credit {note['id']} has no QBO payment"
        qbo_type = "Payment" if note["type"] == "INCOME_CREDIT" else "BillPayment"
        payment = await qbo.get(qbo_type, str(part).split(":")[0])
        unapplied = Decimal(str(payment.get("UnappliedAmt", 0)))
        assert Decimal(note["remainingCredit"]) == unapplied, (note["id"], unapplied)


async def _qbo_side_exact(
    stack: Stack, connection: Connection, qbo_type: str, links: list[Any]
) -> None:
    """Exact counts on QBO's side: every QBO document that is not a void is the twin of exactly
    one live link (a second QBO bill made for one Re-Leased bill is an unlinked QBO document),
    and a QBO void is either linked as voided or never synced (voided before it was seen)."""
    qbo = stack.factory.qbo(connection)
    rows = await qbo.query_all(qbo_type)
    live = sorted(str(r["Id"]) for r in rows if not is_qbo_void(r))
    voids = {str(r["Id"]) for r in rows if is_qbo_void(r)}
    mine = [lk for lk in links if lk["qbo_type"] == qbo_type]
    expected = sorted(str(lk["qbo_id"]) for lk in mine if lk["status"] != "voided")
    assert live == expected, f"QBO {qbo_type}: {live} in QBO, {expected} linked (duplicates?)"
    assert not voids & set(expected), f"QBO {qbo_type}: a void is still linked as live"


# -- faults and convergence ---------------------------------------------------------------------


async def faults_on(stack: Stack, realm: str, company: str) -> None:
    """Both sandboxes fail some requests and drop, duplicate and reorder webhooks."""
    await stack.call(
        "PUT",
        f"{stack.qbo_base}/_sandbox/realms/{realm}/faults",
        json={
            "error_503_rate": 0.1,
            "webhook_drop_rate": 0.3,
            "webhook_duplicate_rate": 0.3,
            "webhook_reorder": True,
        },
    )
    await stack.call(
        "PUT",
        f"{stack.released_base}/_sandbox/companies/{company}/faults",
        json={
            "errorRate": 0.1,
            "errorStatus": 503,
            "rateLimitRate": 0.1,
            "deliveries": {"duplicateRate": 0.3, "dropRate": 0.3, "reorder": True},
        },
    )


async def faults_off(stack: Stack, realm: str, company: str) -> None:
    """The checks read both sandboxes themselves: no injected failures for them."""
    await stack.call(
        "PUT",
        f"{stack.qbo_base}/_sandbox/realms/{realm}/faults",
        json={"error_503_rate": 0.0, "webhook_drop_rate": 0.0, "webhook_duplicate_rate": 0.0},
    )
    await stack.call(
        "PUT",
        f"{stack.released_base}/_sandbox/companies/{company}/faults",
        json={"errorRate": 0.0, "rateLimitRate": 0.0, "deliveries": {"dropRate": 0.0}},
    )


async def converge(stack: Stack, connection: Connection, pool: asyncpg.Pool, broker: Any) -> None:
    """Reconcile until both sides agree (dropped webhooks are only healed this way)."""
    publisher = await EventPublisher.open(broker)
    reconciler = Reconciler(pool, publisher)
    qbo, released = stack.factory.qbo(connection), stack.factory.released(connection)
    try:
        for attempt in range(8):
            await reconciler.reconcile(connection, qbo, released)
            await settle(2.0)
            try:
                await assert_sides_agree(stack, connection, pool)
                return
            except AssertionError as exc:
                if attempt == 7:
                    raise AssertionError(f"{exc}\n{await trail(pool, connection)}") from exc
    finally:
        await publisher.close()


async def trail(pool: asyncpg.Pool, connection: Connection) -> str:
    """What the engine did that was not a plain apply: dead letters and every outcome other
    than applied/echo, so a failure in CI says why without a rerun."""
    async with pool.acquire() as conn:
        dead = await conn.fetch(
            "SELECT routing_key, event->>'entity_id' AS id, error, attempts FROM dead_letters "
            "WHERE connection_id = $1 ORDER BY id",
            connection.id,
        )
        odd = await conn.fetch(
            "SELECT direction, entity, source_id, target_id, outcome, reason FROM sync_outcomes "
            "WHERE connection_id = $1 AND outcome NOT IN ('applied', 'echo') ORDER BY id",
            connection.id,
        )
        payments = await conn.fetch(
            "SELECT qbo_type, qbo_id, released_id, status FROM links WHERE connection_id = $1 "
            "AND entity IN ('payment', 'bill_payment') ORDER BY id",
            connection.id,
        )
    lines = [f"dead: {dict(r)}" for r in dead] + [f"outcome: {dict(r)}" for r in odd]
    return "\n".join(lines + [f"payment link: {dict(r)}" for r in payments])
