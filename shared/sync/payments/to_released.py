"""QBO payments and bill payments to Re-Leased.

A new payment is recorded as one Re-Leased payment per document it pays (QBO allocates one payment
across documents; Re-Leased pays one document at a time), and the credit it uses as allocations
and refunds on the Re-Leased credit notes. A changed amount or allocation reverses the old
Re-Leased records (accounting side) and records the new ones; a void or delete reverses them.

Link rows: one per QBO payment (``Payment``/``BillPayment``; ``released_id`` lists what it became
in Re-Leased: payment ids and ``allocation:<note>/<id>`` tokens), plus one per piece recorded
(``PaymentLine``/``BillPaymentLine``, keyed by payment, version and document) so anything we wrote
in Re-Leased is recognised when its event comes back.
"""

from __future__ import annotations

from typing import Any

from shared.domain.canonical import canonical_hash
from shared.domain.errors import NotFound
from shared.domain.links import Link
from shared.domain.mapping.documents import is_qbo_void
from shared.domain.mapping.held_credit import HELD, REFUNDED
from shared.domain.mapping.keys import split_key
from shared.domain.mapping.payments import (
    ALLOCATION,
    ENTITY,
    QBO_TYPE,
    is_refund,
    payment_from_qbo,
    unapplied_cash,
)
from shared.domain.ownership import Op
from shared.sync import steps
from shared.sync.context import Result, SyncContext
from shared.sync.payments import held, held_release
from shared.sync.payments.common import (
    post_money,
    released_bank,
    released_document,
    save_part,
    save_payment_link,
    undo,
)

_KEPT = "refunds of held credit kept, on their note reduced to what they used"


def _bank_ref(qbo_type: str, record: dict[str, Any]) -> str | None:
    ref = (
        record.get("DepositToAccountRef")
        if qbo_type == "Payment"
        else (record.get("CheckPayment") or {}).get("BankAccountRef")
    )
    value = (ref or {}).get("value")
    return f"Account:{value}" if value else None


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
            await save_payment_link(ctx, qbo_type, record, made_from, None, fields)
            return Result("echo", "made by us from Re-Leased; link restored", made_from)
    if is_qbo_void(record):
        return await _reverse_all(ctx, qbo_type, link, Op.VOID)
    if link is not None and link.qbo_version == str(record.get("SyncToken")):
        return Result("echo", "Re-Leased already has this version", link.released_id)
    fields = payment_from_qbo(qbo_type, record)
    if link is not None and link.snapshot_hash == canonical_hash(fields):
        await save_payment_link(ctx, qbo_type, record, link.released_id or "", None, fields)
        return Result("echo", "no synced field changed", link.released_id)
    decision = ctx.policy.decide(ENTITY[qbo_type], Op.UPSERT, "qbo")
    stop = await steps.not_applied(ctx, ENTITY[qbo_type], decision, link.id if link else None)
    if stop is not None:
        return stop
    return await _apply(ctx, qbo_type, record, fields, link)


async def _apply(
    ctx: SyncContext,
    qbo_type: str,
    record: dict[str, Any],
    fields: dict[str, Any],
    link: Link | None,
) -> Result:
    """Record a new payment, or its new version: cash QBO moved out of what it held unapplied
    allocates the held credit; any other change reverses the old records and records anew."""
    kept: list[str] = []
    if link is not None:
        moved = await held.apply_moves(ctx, qbo_type, record, fields, link)
        if moved is not None:
            return moved
        # Re-Leased payments cannot be edited: the old ones go, the new allocation is recorded.
        kept = await _reverse(ctx, link)
        await held_release.flag_unpaid_refunds(ctx, qbo_type, link, kept, fields)
    recorded = await _record_all(ctx, qbo_type, record, fields)
    await save_payment_link(ctx, qbo_type, record, ",".join([*kept, *recorded]), None, fields)
    result = _outcome(qbo_type, record, fields, recorded, "re-recorded" if link else "recorded")
    if kept:  # written even when the new version records nothing
        reason = f"{result.reason}; {_KEPT}"
        return Result("applied", reason, ",".join([*kept, *recorded]))
    return result


def _outcome(
    qbo_type: str, record: dict[str, Any], fields: dict[str, Any], recorded: list[str], reason: str
) -> Result:
    """What the payment became; cash applied to no document is held as credit in Re-Leased."""
    reason = f"{reason} as {len(recorded)} Re-Leased record(s)"
    unapplied = unapplied_cash(fields)
    if unapplied > 0:
        reason = f"{reason}; {unapplied} unapplied held as credit"
    if not recorded:
        return Result("ignored", f"QBO {qbo_type} {record['Id']} applies nothing")
    return Result("applied", reason, ",".join(recorded))


async def _record_all(
    ctx: SyncContext, qbo_type: str, record: dict[str, Any], fields: dict[str, Any]
) -> list[str]:
    """Credit used first (allocations, refunds), then the cash on each document."""
    recorded = [await record_credit(ctx, qbo_type, record, u) for u in fields["credits"]]
    if fields["allocations"]:
        bank = await released_bank(ctx, _bank_ref(qbo_type, record))
        for doc_key, amount in fields["allocations"].items():
            recorded.append(await _record(ctx, qbo_type, record, fields, doc_key, amount, bank))
    unapplied = unapplied_cash(fields)
    if unapplied > 0:
        recorded.append(await held.hold(ctx, qbo_type, record, fields, unapplied))
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
        "documentId": await released_document(ctx, doc_key),
        "date": fields["date"],
        "amount": amount,
        "bankAccountId": bank,
        "reference": f"QBO {qbo_type} {record['Id']}",
    }
    return await post_released_payment(ctx, qbo_type, record, doc_key, body)


async def _reverse(ctx: SyncContext, link: Link) -> list[str]:
    """Take back what the payment's last version recorded; returns the tokens of held notes
    kept for the refunds paid from them (the refunds stay: that money left the bank)."""
    tokens = [t for t in (link.released_id or "").split(",") if t]
    kept: list[str] = []
    # Held credit last: its own allocations we recorded are taken back by their tokens first.
    for token in sorted(tokens, key=lambda t: t.startswith(HELD)):
        if token.startswith(REFUNDED):
            kept.append(token)
            continue
        if token.startswith(HELD):
            refunded = await held_release.release(ctx, token)
            kept += [refunded] if refunded is not None else []
            continue
        if token.startswith(ALLOCATION):
            await undo(ctx, token)
            continue
        current = await ctx.released.get(f"/payments/{token}")
        if current.get("status") != "REVERSED":
            await ctx.released.accounting(
                "POST",
                f"/payments/{token}/reverse",
                idempotency_key=ctx.request_id(f"rl-reverse-{token}"),
                if_match=current.get("version"),
            )
    return kept


async def _reverse_all(ctx: SyncContext, qbo_type: str, link: Link | None, op: Op) -> Result:
    if link is None:
        return Result("ignored", f"{op.value} of a payment that never synced")
    if link.status == "voided":
        return Result("echo", "already reversed", link.released_id)
    decision = ctx.policy.decide(ENTITY[qbo_type], op, "qbo")
    stop = await steps.not_applied(ctx, ENTITY[qbo_type], decision, link.id)
    if stop is not None:
        return stop
    kept = await _reverse(ctx, link)
    await held_release.flag_unpaid_refunds(ctx, qbo_type, link, kept, None)
    await ctx.links.set_status(link.id, "voided")
    reason = f"{op.value} in QBO reversed in Re-Leased"
    return Result("applied", f"{reason}; {_KEPT}" if kept else reason, link.released_id)


async def record_credit(
    ctx: SyncContext, qbo_type: str, record: dict[str, Any], used: list[str]
) -> str:
    """Record one piece of credit in Re-Leased; returns the token kept in the payment's link
    (a payment id for a refund, ``allocation:<note>/<allocation>`` for an allocation)."""
    credit_key, target_key, amount = used
    note_id = await released_document(ctx, credit_key)
    version = str(record.get("SyncToken"))
    if is_refund(qbo_type, target_key):
        return await _record_refund(ctx, qbo_type, record, note_id, target_key, amount)
    invoice_id = await released_document(ctx, target_key)
    # Re-Leased announces the allocation on the credit note; its handler waits here until the
    # allocation's link is committed, so it never mistakes ours for a new one.
    await ctx.lock("released", "creditnote", note_id)
    note = await post_money(
        ctx,
        [("invoice", invoice_id), ("creditnote", note_id)],
        f"/credit-notes/{note_id}/allocations",
        {"invoiceId": invoice_id, "amount": amount, "date": record.get("TxnDate")},
        f"rl-alloc-{credit_key}-{target_key}-{version}",
    )
    allocation = next(
        a
        for a in reversed(note.get("allocations") or [])
        if a.get("invoiceId") == invoice_id and not a.get("isDeleted")
    )
    token = f"{ALLOCATION}{note_id}/{allocation['id']}"
    await ctx.created("released", ENTITY[qbo_type], token, str(record["Id"]))
    await save_part(ctx, qbo_type, record, f"{credit_key}:{target_key}", token, amount)
    return token


async def _record_refund(
    ctx: SyncContext,
    qbo_type: str,
    record: dict[str, Any],
    note_id: str,
    refund_key: str,
    amount: str,
) -> str:
    refund_type, refund_id = split_key(refund_key)
    refund = await ctx.qbo.get("Deposit" if refund_type == "Deposit" else "Purchase", refund_id)
    account = refund.get("DepositToAccountRef") or refund.get("AccountRef") or {}
    bank = await released_bank(ctx, f"Account:{account['value']}" if account.get("value") else None)
    body = {
        "documentType": "CREDIT_NOTE",
        "documentId": note_id,
        "date": refund.get("TxnDate") or record.get("TxnDate"),
        "amount": amount,
        "bankAccountId": bank,
        "reference": f"QBO {qbo_type} {record['Id']} refund",
    }
    return await post_released_payment(ctx, qbo_type, record, refund_key, body)


async def post_released_payment(
    ctx: SyncContext, qbo_type: str, record: dict[str, Any], part: str, body: dict[str, Any]
) -> str:
    """Record one Re-Leased payment for a piece (``part``) of a QBO payment."""
    version = str(record.get("SyncToken"))
    category = "creditnote" if body.get("documentType") == "CREDIT_NOTE" else "invoice"
    made = await post_money(
        ctx, [(category, str(body["documentId"]))], "/payments", body, f"rl-pay-{part}-{version}"
    )
    # Re-Leased's notification of this payment waits on this lock until the link is committed.
    await ctx.lock("released", "payment", str(made["id"]))
    await ctx.created("released", ENTITY[qbo_type], str(made["id"]), str(record["Id"]))
    await save_part(ctx, qbo_type, record, part, str(made["id"]), str(body["amount"]))
    return str(made["id"])
