"""Payments (QBO Payment <-> payment on an income document) and bill payments (BillPayment <->
payment on an expense document), per ownership.md.

QBO -> Re-Leased: a new payment is recorded, one Re-Leased payment per document it pays (QBO
allocates one payment across documents; Re-Leased pays one document at a time). A changed amount or
allocation reverses the old Re-Leased payments (accounting side) and records the new ones; a void or
delete reverses them. Re-Leased -> QBO: a new payment is created; a reversal made in Re-Leased is
flagged and never propagated (reversing is QBO's).

Credit a QBO payment uses (credit memos, vendor credits) becomes allocations and refunds on the
Re-Leased credit note; see ``credits``.

Link rows: one per QBO payment (``Payment``/``BillPayment``; ``released_id`` lists what it became
in Re-Leased: payment ids and ``allocation:<note>/<id>`` tokens), plus one per piece recorded
(``PaymentLine``/``BillPaymentLine``, keyed by payment, version and document) so anything we wrote
in Re-Leased is recognised when its event comes back.
"""

from __future__ import annotations

import re
from typing import Any

from shared.domain.canonical import canonical_hash
from shared.domain.errors import NotFound, TransientError
from shared.domain.links import Link
from shared.domain.mapping.documents import is_qbo_void
from shared.domain.mapping.keys import split_key
from shared.domain.mapping.kinds import BY_RELEASED_TYPE
from shared.domain.mapping.money import money
from shared.domain.mapping.payments import (
    ALLOCATION,
    DOCUMENT,
    ENTITY,
    PARTY,
    QBO_TYPE,
    payment_from_qbo,
)
from shared.domain.ownership import Op, Outcome
from shared.sync import credits, payment_refs
from shared.sync.context import Result, SyncContext

# The reference we give the Re-Leased payments we record (see _record and credits).
_OURS = re.compile(r"^QBO (?P<type>Payment|BillPayment) (?P<id>\w+)\b")


def _bank_ref(qbo_type: str, record: dict[str, Any]) -> str | None:
    ref = (
        record.get("DepositToAccountRef")
        if qbo_type == "Payment"
        else (record.get("CheckPayment") or {}).get("BankAccountRef")
    )
    value = (ref or {}).get("value")
    return f"Account:{value}" if value else None


# -- QBO -> Re-Leased --------------------------------------------------------------------------


async def from_qbo(ctx: SyncContext) -> Result:
    qbo_type = QBO_TYPE[ctx.event.entity]
    link = await ctx.links.by_qbo(ctx.connection.id, qbo_type, ctx.event.entity_id)
    try:
        record = await ctx.qbo.get(qbo_type, ctx.event.entity_id)
    except NotFound:
        return await _reverse_all(ctx, qbo_type, link, Op.DELETE)
    if link is not None and link.status == "voided":
        return Result("ignored", "payment already reversed", link.released_id)
    if link is None:
        made_from = await ctx.made_by_us("qbo", ENTITY[qbo_type], ctx.event.entity_id)
        if made_from is not None:  # ours, from Re-Leased; the transaction that made it failed
            fields = payment_from_qbo(qbo_type, record)
            await credits.save_payment_link(ctx, qbo_type, record, made_from, None, fields)
            return Result("echo", "made by us from Re-Leased; link restored", made_from)
    if is_qbo_void(record):
        return await _reverse_all(ctx, qbo_type, link, Op.VOID)
    if link is not None and link.qbo_version == str(record.get("SyncToken")):
        return Result("echo", "Re-Leased already has this version", link.released_id)
    fields = payment_from_qbo(qbo_type, record)
    if link is not None and link.snapshot_hash == canonical_hash(fields):
        await credits.save_payment_link(ctx, qbo_type, record, link.released_id or "", None, fields)
        return Result("echo", "no synced field changed", link.released_id)
    decision = ctx.policy.decide(ENTITY[qbo_type], Op.UPSERT, "qbo")
    if decision.outcome is not Outcome.APPLY:
        return Result("ignored", decision.why)
    if link is not None:
        # Re-Leased payments cannot be edited: the old ones go, the new allocation is recorded.
        await _reverse(ctx, link)
    recorded = await _record_all(ctx, qbo_type, record, fields)
    await credits.save_payment_link(ctx, qbo_type, record, ",".join(recorded), None, fields)
    reason = "re-recorded" if link is not None else "recorded"
    return Result("applied", f"{reason} as {len(recorded)} Re-Leased record(s)", ",".join(recorded))


async def _record_all(
    ctx: SyncContext, qbo_type: str, record: dict[str, Any], fields: dict[str, Any]
) -> list[str]:
    """Credit used first (allocations, refunds), then the cash on each document."""
    recorded = [await credits.record_credit(ctx, qbo_type, record, u) for u in fields["credits"]]
    if fields["allocations"]:
        bank = await payment_refs.released_bank(ctx, _bank_ref(qbo_type, record))
        for doc_key, amount in fields["allocations"].items():
            recorded.append(await _record(ctx, qbo_type, record, fields, doc_key, amount, bank))
    return recorded


async def _record(
    ctx: SyncContext,
    qbo_type: str,
    record: dict[str, Any],
    fields: dict[str, Any],
    doc_key: str,
    amount: str,
    bank: str,
) -> str:
    body = {
        "documentType": "INVOICE",
        "documentId": await payment_refs.released_document(ctx, doc_key),
        "date": fields["date"],
        "amount": amount,
        "bankAccountId": bank,
        "reference": f"QBO {qbo_type} {record['Id']}",
    }
    return await credits.post_released_payment(ctx, qbo_type, record, doc_key, body)


async def _reverse(ctx: SyncContext, link: Link) -> None:
    for token in filter(None, (link.released_id or "").split(",")):
        if token.startswith(ALLOCATION):
            await credits.undo(ctx, token)
            continue
        current = await ctx.released.get(f"/payments/{token}")
        if current.get("status") != "REVERSED":
            await ctx.released.accounting("POST", f"/payments/{token}/reverse")


async def _reverse_all(ctx: SyncContext, qbo_type: str, link: Link | None, op: Op) -> Result:
    if link is None:
        return Result("ignored", f"{op.value} of a payment that never synced")
    if link.status == "voided":
        return Result("echo", "already reversed", link.released_id)
    decision = ctx.policy.decide(ENTITY[qbo_type], op, "qbo")
    if decision.outcome is not Outcome.APPLY:
        return Result("ignored", decision.why)
    await _reverse(ctx, link)
    await ctx.links.set_status(link.id, "voided")
    return Result("applied", f"{op.value} in QBO reversed in Re-Leased", link.released_id)


# -- Re-Leased -> QBO --------------------------------------------------------------------------


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
        made = await credits.refund_to_qbo(ctx, record)
        return Result("applied", "refund of credit recorded in QBO", made)
    document = await ctx.released.get(f"/invoices/{record['documentId']}")
    kind = BY_RELEASED_TYPE[str(document.get("type"))]
    doc_link = await payment_refs.qbo_document(ctx, kind.entity, "invoice", str(document["id"]))
    qbo_type = "Payment" if kind.qbo_type == "Invoice" else "BillPayment"
    body = await _qbo_payment(ctx, qbo_type, record, doc_link)
    made = await credits.create_in_qbo(
        ctx, qbo_type, body, str(record["id"]), str(record.get("version")), "qbo-payment"
    )
    return Result("applied", "recorded in QBO", made)


async def _ours_in_flight(ctx: SyncContext, record: dict[str, Any]) -> list[Link]:
    """A payment we recorded from QBO moments ago, whose link is not committed yet: its
    reference names the QBO payment, whose handler holds that payment's lock until then. Not
    waiting for it (that handler waits for this payment's lock: a deadlock), but trying: if it
    is held, this event comes back later, when the link is there."""
    match = _OURS.match(str(record.get("reference") or ""))
    if match is None:
        return []
    if not await ctx.try_lock("qbo", match["type"].lower(), match["id"]):
        raise TransientError(f"QBO {match['type']} {match['id']} is being recorded; retry")
    return await _links(ctx, str(record["id"]))


async def _qbo_payment(
    ctx: SyncContext, qbo_type: str, record: dict[str, Any], doc_link: Link
) -> dict[str, Any]:
    snapshot = doc_link.snapshot or {}
    party = split_key(str(snapshot.get("contact")))[1]
    bank = await payment_refs.qbo_bank(ctx, str(record.get("bankAccountId") or ""))
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
    decision = ctx.policy.decide(link.entity if link else "payment", Op.VOID, "released")
    await ctx.conflicts.record(
        ctx.connection.id,
        link.entity if link else "payment",
        "policy_flag",
        link_id=link.id if link else None,
        event_id=ctx.event.event_id,
        fields={"released_id": record["id"], "amount": record.get("amount")},
        winner="qbo",
        detail=f"payment reversed in Re-Leased, not propagated: {decision.why}",
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
