"""Money not (yet) against a document, both ways (see shared/domain/mapping/held_credit.py).

QBO -> Re-Leased: a payment's unapplied cash becomes a held-credit note (PREPAYMENT or
OVERPAYMENT) made by the accounting side; QBO later applying that cash to documents allocates
the note. Re-Leased -> QBO: allocating a held note adds the documents to its QBO payment; a held
note QBO does not have yet becomes a QBO payment with that much unapplied.

Taking a note back when its payment is recorded afresh: ``held_release``.

Every piece written is linked (a ``PaymentLine`` row per note and per allocation, and a
``held:<note>`` token on the payment's own link), so its echo is recognised whichever side
announces it first; creates carry content-derived idempotency keys.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shared.domain.errors import PermanentError
from shared.domain.links import Link
from shared.domain.mapping.held_credit import (
    HELD,
    PAYMENT_TYPE,
    applied_from_held,
    document_line,
    held_note,
    unapplied_payment,
)
from shared.domain.mapping.money import money
from shared.domain.mapping.payments import ALLOCATION, ENTITY, PARTY, payment_from_qbo
from shared.domain.ownership import Op
from shared.infra.logging import get_logger
from shared.sync import steps
from shared.sync.context import Result, SyncContext
from shared.sync.dependencies import released_ids, run_dependency
from shared.sync.payments.common import (
    post_money,
    qbo_bank,
    qbo_document,
    released_document,
    save_part,
    save_payment_link,
)
from shared.sync.payments.qbo_writes import create_in_qbo

log = get_logger("sync.payments")


def _tokens(link: Link) -> list[str]:
    return [t for t in (link.released_id or "").split(",") if t]


async def hold(
    ctx: SyncContext, qbo_type: str, record: dict[str, Any], fields: dict[str, Any], amount: Decimal
) -> str:
    """Hold a QBO payment's unapplied ``amount`` as credit on the Re-Leased contact; returns the
    token kept in the payment's link."""
    party = f"{PARTY[qbo_type]}:{(record.get(f'{PARTY[qbo_type]}Ref') or {}).get('value')}"
    contact = (await released_ids(ctx, [party]))[party]
    body = held_note(qbo_type, fields, contact, amount, str(record["Id"]))
    purpose = f"rl-held-{record['Id']}-{record.get('SyncToken')}"
    note = await ctx.released.accounting(
        "POST", "/credit-notes", body, idempotency_key=ctx.create_key(purpose, body)
    )
    note_id = str(note["id"])
    # Re-Leased's notification of this note waits on this lock until its link is committed.
    await ctx.lock("released", "creditnote", note_id)
    await ctx.created("released", ENTITY[qbo_type], note_id, str(record["Id"]))
    await save_part(ctx, qbo_type, record, "held", note_id, money(amount))
    log.info(
        "held_credit_recorded",
        connection_id=str(ctx.connection.id),
        entity_id=str(record["Id"]),
        direction="qbo_to_released",
        kind=body["kind"],
        amount=money(amount),
        released_id=note_id,
    )
    return f"{HELD}{note_id}"


async def apply_moves(
    ctx: SyncContext, qbo_type: str, record: dict[str, Any], fields: dict[str, Any], link: Link
) -> Result | None:
    """QBO applied cash the payment held unapplied to documents: the held note is allocated to
    them by the amounts added. None when the change is not that (it is recorded afresh)."""
    moves = applied_from_held(link.snapshot or {}, fields)
    tokens = _tokens(link)
    held = next((t for t in tokens if t.startswith(HELD)), None)
    if moves is None or held is None:
        return None
    note_id = held.removeprefix(HELD)
    await ctx.lock("released", "creditnote", note_id)
    note = await ctx.released.get(f"/credit-notes/{note_id}")
    left = Decimal(str(note.get("remainingCredit") or note.get("amountDue") or "0"))
    if note.get("status") == "VOIDED" or left < sum(Decimal(a) for a in moves.values()):
        return None
    for doc_key, amount in moves.items():
        invoice = await released_document(ctx, doc_key)
        body = {"invoiceId": invoice, "amount": amount, "date": fields["date"]}
        purpose = f"rl-held-alloc-{record['Id']}-{doc_key}-{record.get('SyncToken')}"
        path = f"/credit-notes/{note_id}/allocations"
        note = await post_money(ctx, [("invoice", invoice)], path, body, purpose)
        allocation = next(
            a
            for a in reversed(note.get("allocations") or [])
            if a.get("invoiceId") == invoice and not a.get("isDeleted")
        )
        token = f"{ALLOCATION}{note_id}/{allocation['id']}"
        await ctx.created("released", ENTITY[qbo_type], token, str(record["Id"]))
        await save_part(ctx, qbo_type, record, f"held:{doc_key}", token, amount)
        tokens.append(token)
    await save_payment_link(ctx, qbo_type, record, ",".join(tokens), None, fields)
    return Result("applied", f"held credit allocated to {len(moves)} document(s)", held)


async def from_released(ctx: SyncContext, note: dict[str, Any]) -> Result:
    """A Re-Leased held-credit note changed: ours (echo), new to QBO, or newly allocated."""
    qbo_type = PAYMENT_TYPE[str(note.get("type"))]
    entity, note_id = ENTITY[qbo_type], str(note["id"])
    await ctx.lock("released", "creditnote", note_id)
    parts = await ctx.links.by_released(ctx.connection.id, entity, note_id)
    if not parts:
        made_from = await ctx.made_by_us("released", entity, note_id)
        if made_from is not None:
            return Result("echo", f"held credit of QBO {qbo_type} {made_from}", made_from)
        return await _new_in_qbo(ctx, qbo_type, note)
    payment_id = str(parts[0].qbo_id).split(":")[0]
    if note.get("status") == "VOIDED":
        return Result("ignored", "held credit voided by the accounting side", payment_id)
    return await _allocations_to_qbo(ctx, qbo_type, note, payment_id)


async def _stop(ctx: SyncContext, qbo_type: str) -> Result | None:
    decision = ctx.policy.decide(ENTITY[qbo_type], Op.UPSERT, "released")
    return await steps.not_applied(ctx, ENTITY[qbo_type], decision)


async def _new_allocations(ctx: SyncContext, entity: str, note: dict[str, Any]) -> list[Any]:
    new = []
    for allocation in note.get("allocations") or []:
        token = f"{ALLOCATION}{note['id']}/{allocation['id']}"
        if allocation.get("isDeleted") or await ctx.links.by_released(
            ctx.connection.id, entity, token
        ):
            continue
        if await ctx.made_by_us("released", entity, token) is None:
            new.append((token, allocation))
    return new


async def _qbo_lines(ctx: SyncContext, qbo_type: str, new: list[Any]) -> dict[str, str]:
    entity = "invoice" if qbo_type == "Payment" else "bill"
    lines: dict[str, str] = {}
    for _, allocation in new:
        doc = await qbo_document(ctx, entity, "invoice", str(allocation["invoiceId"]))
        amount = Decimal(lines.get(str(doc.qbo_id), "0")) + Decimal(str(allocation["amount"]))
        lines[str(doc.qbo_id)] = money(amount)
    return lines


async def _qbo_party(ctx: SyncContext, qbo_type: str, contact: str) -> str:
    """The QBO customer (vendor) of a Re-Leased contact, syncing the contact first if needed."""
    for attempt in range(2):
        for link in await ctx.links.by_released(ctx.connection.id, "contact", contact):
            if link.qbo_type == PARTY[qbo_type] and link.qbo_id:
                return str(link.qbo_id)
        if attempt == 0:
            await run_dependency(ctx, "released", "contact", contact)
    raise PermanentError(
        f"contact {contact} has no QBO {PARTY[qbo_type]}",
        remedy="mark the contact as customer (supplier) in Re-Leased, then replay this event",
    )


async def _new_in_qbo(ctx: SyncContext, qbo_type: str, note: dict[str, Any]) -> Result:
    """A held note QBO has not got: a QBO payment of its total, applied where it is allocated."""
    if note.get("status") not in ("APPROVED", "PAID"):
        return Result("ignored", f"held credit is {note.get('status')}")
    stop = await _stop(ctx, qbo_type)
    if stop is not None:
        return stop
    party = await _qbo_party(ctx, qbo_type, str(note.get("contactId")))
    new = await _new_allocations(ctx, ENTITY[qbo_type], note)
    bank = await qbo_bank(ctx, "")
    lines = await _qbo_lines(ctx, qbo_type, new)
    body = unapplied_payment(qbo_type, note, party, bank, lines)
    note_id = str(note["id"])
    made = await create_in_qbo(ctx, qbo_type, body, note_id, None, "qbo-held")
    created = await ctx.qbo.get(qbo_type, made)
    await _link_pieces(ctx, qbo_type, created, [f"{HELD}{note_id}"], new, note_id)
    return Result("applied", f"held credit recorded in QBO as {qbo_type} {made}", made)


async def _allocations_to_qbo(
    ctx: SyncContext, qbo_type: str, note: dict[str, Any], payment_id: str
) -> Result:
    new = await _new_allocations(ctx, ENTITY[qbo_type], note)
    if not new:
        return Result("echo", "QBO already has this held credit", payment_id)
    stop = await _stop(ctx, qbo_type)
    if stop is not None:
        return stop
    await ctx.lock("qbo", qbo_type.lower(), payment_id)
    link = await ctx.links.by_qbo(ctx.connection.id, qbo_type, payment_id)
    current = await ctx.qbo.get(qbo_type, payment_id)
    lines = [line for line in current.get("Line") or [] if line.get("LinkedTxn")]
    added = await _qbo_lines(ctx, qbo_type, new)
    lines += [document_line(qbo_type, doc, amount) for doc, amount in added.items()]
    body = {
        "Id": payment_id,
        "SyncToken": current.get("SyncToken"),
        "sparse": True,
        f"{PARTY[qbo_type]}Ref": current.get(f"{PARTY[qbo_type]}Ref"),
        "TotalAmt": current.get("TotalAmt"),
        "Line": lines,
    }
    purpose = "qbo-held-alloc-" + "-".join(token for token, _ in new)
    updated = await ctx.qbo.write(qbo_type, body, request_id=ctx.request_id(purpose))
    tokens = _tokens(link) if link is not None else [f"{HELD}{note['id']}"]
    await _link_pieces(ctx, qbo_type, updated, tokens, new, None)
    return Result("applied", f"{len(new)} allocation(s) of held credit applied in QBO", payment_id)


async def _link_pieces(
    ctx: SyncContext,
    qbo_type: str,
    payment: dict[str, Any],
    tokens: list[str],
    new: list[Any],
    note_id: str | None,
) -> None:
    """The payment's link (its tokens, this version), a part row for the note when it is new,
    and one per allocation now carried in QBO."""
    for token, allocation in new:
        await ctx.created("released", ENTITY[qbo_type], token, str(payment["Id"]))
        await save_part(ctx, qbo_type, payment, token, token, money(allocation["amount"]))
        tokens.append(token)
    if note_id is not None:
        await save_part(ctx, qbo_type, payment, "held", note_id, money(payment["TotalAmt"]))
    fields = payment_from_qbo(qbo_type, payment)
    await save_payment_link(ctx, qbo_type, payment, ",".join(tokens), None, fields)
