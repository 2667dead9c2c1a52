"""Re-Leased payments to QBO: a new payment on an invoice or bill, an allocation of a credit note,
a refund of credit. A reversal made in Re-Leased is flagged and never propagated (reversing is
QBO's)."""

from __future__ import annotations

import re
from typing import Any

from shared.domain.errors import NotFound
from shared.domain.links import Link
from shared.domain.mapping.held_credit import is_held
from shared.domain.mapping.keys import split_key
from shared.domain.mapping.kinds import BY_RELEASED_TYPE
from shared.domain.mapping.money import money
from shared.domain.mapping.payments import ALLOCATION, CREDIT, DOCUMENT, ENTITY, PARTY
from shared.domain.ownership import Op, Outcome
from shared.sync import steps
from shared.sync.context import Result, SyncContext
from shared.sync.payments.common import qbo_bank, qbo_document
from shared.sync.payments.held_refund import refund_held
from shared.sync.payments.qbo_writes import create_in_qbo, linked, refund_body, zero_payment

# The reference we give the Re-Leased payments we record (see _record and credits).
_OURS = re.compile(r"^QBO (?P<type>Payment|BillPayment) (?P<id>\w+)\b")


async def _links(ctx: SyncContext, payment_id: str) -> list[Link]:
    found: list[Link] = []
    for entity in ("payment", "bill_payment"):
        found += await ctx.links.by_released(ctx.connection.id, entity, payment_id)
    return found


async def from_released(ctx: SyncContext) -> Result:
    try:
        record = await ctx.released.get(f"/payments/{ctx.event.entity_id}")
    except NotFound:
        return Result("ignored", "gone from Re-Leased")
    links = await _links(ctx, ctx.event.entity_id) or await _ours_in_flight(ctx, record)
    if record.get("status") == "REVERSED":
        if record.get("reversalSource") == "ACCOUNTING":
            return Result("echo", "reversed by the accounting side (our reversal)")
        return await _flag_reversal(ctx, record, links)
    if links:
        return Result("echo", "payment already in QBO", links[0].qbo_id)
    for entity in ("payment", "bill_payment"):
        made_from = await ctx.made_by_us("released", entity, ctx.event.entity_id)
        if made_from is not None:
            # Recorded by us from that QBO payment, whose transaction then failed: its retry
            # links it. Sending it to QBO would pay twice.
            return Result("echo", f"recorded by us from QBO payment {made_from}", made_from)
    if record.get("documentType") == "CREDIT_NOTE":
        return await refund_to_qbo(ctx, record)
    document = await ctx.released.get(f"/invoices/{record['documentId']}")
    kind = BY_RELEASED_TYPE[str(document.get("type"))]
    qbo_type = "Payment" if kind.qbo_type == "Invoice" else "BillPayment"
    stop = await _not_applied(ctx, qbo_type)
    if stop is not None:
        return stop
    doc_link = await qbo_document(ctx, kind.entity, "invoice", str(document["id"]))
    body = await qbo_payment_body(ctx, qbo_type, record, doc_link)
    made = await create_in_qbo(
        ctx, qbo_type, body, str(record["id"]), str(record.get("version")), "qbo-payment"
    )
    return Result("applied", "recorded in QBO", made)


async def _not_applied(ctx: SyncContext, qbo_type: str) -> Result | None:
    """The ownership table's answer for a new payment from Re-Leased (None: apply it)."""
    entity = ENTITY[qbo_type]
    return await steps.not_applied(ctx, entity, ctx.policy.decide(entity, Op.UPSERT, "released"))


async def _ours_in_flight(ctx: SyncContext, record: dict[str, Any]) -> list[Link]:
    """A payment we recorded from QBO moments ago, whose link is not committed yet: its
    reference names the QBO payment, whose handler holds that payment's lock until then. Not
    waiting for it (that handler waits for this payment's lock: a deadlock), but trying: if it
    is held, this event comes back later, when the link is there."""
    match = _OURS.match(str(record.get("reference") or ""))
    if match is None:
        return []
    busy = f"QBO {match['type']} {match['id']} is being recorded; retry"
    await ctx.lock_or_retry(busy, "qbo", match["type"].lower(), match["id"])
    return await _links(ctx, str(record["id"]))


async def qbo_payment_body(
    ctx: SyncContext, qbo_type: str, record: dict[str, Any], doc_link: Link
) -> dict[str, Any]:
    """The QBO payment (bill payment) recording a Re-Leased payment of one linked document (the
    initial import's batches write the same body)."""
    snapshot = doc_link.snapshot or {}
    party = split_key(str(snapshot.get("contact")))[1]
    bank = await qbo_bank(ctx, str(record.get("bankAccountId") or ""))
    line = {
        "Amount": money(record["amount"]),
        "LinkedTxn": [{"TxnId": doc_link.qbo_id, "TxnType": DOCUMENT[qbo_type]}],
    }
    body: dict[str, Any] = {
        f"{PARTY[qbo_type]}Ref": {"value": party},
        "TotalAmt": money(record["amount"]),
        "TxnDate": record.get("date"),
        "Line": [line],
    }
    if qbo_type == "Payment":
        body["DepositToAccountRef"] = {"value": bank}
    else:
        body.update(PayType="Check", CheckPayment={"BankAccountRef": {"value": bank}})
    return body


async def _flag_reversal(ctx: SyncContext, record: dict[str, Any], links: list[Link]) -> Result:
    link = links[0] if links else None
    if link is not None and link.released_version == str(record.get("version")):
        return Result("echo", "reversal already flagged", link.qbo_id)
    entity = link.entity if link else "payment"
    decision = ctx.policy.decide(entity, Op.VOID, "released")
    if decision.outcome is not Outcome.FLAG:
        return await steps.not_carried_out(ctx, entity, decision, link.id if link else None)
    await steps.flag(
        ctx,
        entity,
        link.id if link else None,
        {"released_id": record["id"], "amount": record.get("amount")},
        "qbo",
        f"payment reversed in Re-Leased, not propagated: {decision.why}",
    )
    if link is not None:
        await ctx.links.save(
            ctx.connection.id,
            link.entity,
            link.qbo_type,
            qbo=(str(link.qbo_id), link.qbo_version),
            released=(str(link.released_id), str(record.get("version"))),
            snapshot=link.snapshot or {},
        )
    return Result(
        "flagged", "reversal only in QBO; a person decides", link.qbo_id if link else None
    )


async def allocations_to_qbo(ctx: SyncContext, note: dict[str, Any]) -> int:
    """Record in QBO every allocation of ``note`` that QBO does not have yet; returns how many."""
    kind = BY_RELEASED_TYPE[str(note.get("type"))]
    note_links = await ctx.links.by_released(ctx.connection.id, kind.entity, str(note["id"]))
    if not note_links or note_links[0].status == "voided":
        return 0
    qbo_type = "Payment" if kind.sales else "BillPayment"
    if await _not_applied(ctx, qbo_type) is not None:
        return 0
    made = 0
    for allocation in note.get("allocations") or []:
        token = f"{ALLOCATION}{note['id']}/{allocation['id']}"
        if allocation.get("isDeleted") or await _known(ctx, ENTITY[qbo_type], token):
            continue
        entity = "invoice" if kind.sales else "bill"
        document = await qbo_document(ctx, entity, "invoice", str(allocation["invoiceId"]))
        amount = money(allocation["amount"])
        lines = [
            linked(amount, str(document.qbo_id), DOCUMENT[qbo_type]),
            linked(amount, str(note_links[0].qbo_id), CREDIT[qbo_type]),
        ]
        body = await zero_payment(ctx, qbo_type, note_links[0].snapshot, allocation, lines)
        await create_in_qbo(ctx, qbo_type, body, token, None, f"qbo-alloc-{allocation['id']}")
        made += 1
    return made


async def _known(ctx: SyncContext, entity: str, token: str) -> bool:
    """Linked already, or recorded by us from QBO (its link then comes with the QBO payment's
    retry: sending it back would pay twice)."""
    if await ctx.links.by_released(ctx.connection.id, entity, token):
        return True
    return await ctx.made_by_us("released", entity, token) is not None


async def refund_to_qbo(ctx: SyncContext, payment: dict[str, Any]) -> Result:
    """A Re-Leased payment on a credit note (a refund of credit) recorded in QBO: the money out
    (Expense to the customer) or in (Deposit from the vendor), and the credit applied to it.
    On a held-credit note, the note's QBO payment pays it instead (``held_refund``)."""
    note = await ctx.released.get(f"/credit-notes/{payment['documentId']}")
    if is_held(note):
        return await refund_held(ctx, payment, note)
    kind = BY_RELEASED_TYPE[str(note.get("type"))]
    qbo_type = "Payment" if kind.sales else "BillPayment"
    stop = await _not_applied(ctx, qbo_type)
    if stop is not None:
        return stop
    note_link = await qbo_document(ctx, kind.entity, "creditnote", str(note["id"]))
    party = split_key(str((note_link.snapshot or {}).get("contact")))[1]
    bank = await qbo_bank(ctx, str(payment.get("bankAccountId") or ""))
    amount = money(payment["amount"])
    refund_type, body = await refund_body(ctx, kind.sales, payment, amount, bank, party)
    refund = await ctx.qbo.write(
        refund_type, body, request_id=ctx.create_key("qbo-refund", [amount, bank])
    )
    refund_line = linked(amount, str(refund["Id"]), "Expense" if kind.sales else "Deposit")
    lines = [refund_line, linked(amount, str(note_link.qbo_id), CREDIT[qbo_type])]
    body = await zero_payment(ctx, qbo_type, note_link.snapshot, payment, lines)
    made = await create_in_qbo(
        ctx, qbo_type, body, str(payment["id"]), str(payment.get("version")), "qbo-payment"
    )
    return Result("applied", "refund of credit recorded in QBO", made)
