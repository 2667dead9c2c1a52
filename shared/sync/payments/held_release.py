"""Taking back a held-credit note when the QBO payment whose unapplied cash it holds is edited
(recorded afresh), voided or deleted (see shared/sync/payments/held.py).

A note with nothing paid out of it is voided by the accounting side, its allocations removed
first. A note with refunds on it (Re-Leased payments on it: money that left the bank) cannot be
voided (Re-Leased answers 409 ``REMOVE_PAYMENTS_FIRST``) and must not lose them: it is kept,
reduced to what they paid out (then fully used), and the payment's link carries it as
``refunded:<note>``; the new version's unapplied cash is a new note. Where the new version (or
the void) stops paying refunds the last one paid, QBO's Expense (Deposit) of the refund is left
open there: flagged for a person.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shared.domain.links import Link
from shared.domain.mapping.held_credit import HELD, REFUNDED
from shared.domain.mapping.money import money
from shared.domain.mapping.payments import ALLOCATION, ENTITY
from shared.infra.logging import get_logger
from shared.sync import steps
from shared.sync.context import SyncContext
from shared.sync.payments.common import undo

log = get_logger("sync.payments")


async def release(ctx: SyncContext, token: str) -> str | None:
    """Take back a held-credit note we recorded (its payment changed or was reversed in QBO):
    its remaining allocations removed, then the note voided, both as the accounting side.

    A note with refunds on it (Re-Leased payments: money that left the bank) cannot be voided
    and must not lose them: it is kept with just what they used, and its token returned
    (``refunded:<note>``) for the payment's link to carry; what the payment still holds is a
    new note. Returns None when the note is voided."""
    note_id = token.removeprefix(HELD)
    await ctx.lock("released", "creditnote", note_id)
    note = await ctx.released.get(f"/credit-notes/{note_id}")
    if note.get("status") == "VOIDED":
        return None
    for allocation in note.get("allocations") or []:
        if not allocation.get("isDeleted"):
            await undo(ctx, f"{ALLOCATION}{note_id}/{allocation['id']}")
    note = await ctx.released.get(f"/credit-notes/{note_id}")
    refunded = Decimal(str(note.get("amountPaid") or "0"))
    if refunded > 0:
        await _keep_refunded(ctx, note, refunded)
        return f"{REFUNDED}{note_id}"
    await ctx.released.accounting(
        "POST",
        f"/credit-notes/{note_id}/void",
        idempotency_key=ctx.request_id(f"rl-void-held-{note_id}"),
        if_match=note.get("version"),
    )
    return None


async def _keep_refunded(ctx: SyncContext, note: dict[str, Any], refunded: Decimal) -> None:
    """The note reduced to the refunds paid from it (then fully used, PAID); the rest of the
    cash it held is the new version's to hold."""
    note_id, amount = str(note["id"]), money(refunded)
    if Decimal(str(note.get("total") or "0")) != refunded:
        (line,) = note.get("lines") or [{}]
        kept = {"description": line.get("description"), "quantity": "1", "unitAmount": amount}
        await ctx.released.accounting(
            "PATCH",
            f"/credit-notes/{note_id}",
            {"lines": [kept]},
            idempotency_key=ctx.request_id(f"rl-keep-refunded-{note_id}-{amount}"),
            if_match=note.get("version"),
        )
    log.info(
        "held_refund_kept",
        connection_id=str(ctx.connection.id),
        entity_id=ctx.event.entity_id,
        direction="qbo_to_released",
        released_id=note_id,
        amount=amount,
    )


async def refunded(ctx: SyncContext, tokens: list[str]) -> Decimal:
    """What the refunds on the kept notes (``refunded:<note>``) paid out."""
    out = Decimal(0)
    for token in tokens:
        note = await ctx.released.get(f"/credit-notes/{token.removeprefix(REFUNDED)}")
        out += Decimal(str(note.get("amountPaid") or "0"))
    return out


async def flag_unpaid_refunds(
    ctx: SyncContext, qbo_type: str, link: Link, kept: list[str], fields: dict[str, Any] | None
) -> None:
    """Refunds kept in Re-Leased that the payment paid from its cash in QBO and its new version
    (or its void) no longer pays: both sides hold the same credit, but QBO's Expense (Deposit)
    of the refund is left open. A person decides what it should be. (A refund QBO has not got
    yet is not that: it reaches QBO on its own event.)"""
    if not kept:
        return
    out = await refunded(ctx, kept)
    paid_before = _refunds_paid(link.snapshot)
    paid = _refunds_paid(fields)
    unpaid = min(out, paid_before) - paid
    if unpaid <= 0:
        return
    detail = (
        f"Re-Leased keeps {money(out)} refunded from this payment's held credit; QBO "
        f"{qbo_type} {link.qbo_id} no longer pays {money(unpaid)} of it: that much of the "
        f"refund's {'Expense' if qbo_type == 'Payment' else 'Deposit'} is open in QBO; apply it "
        "to a payment there, or void it in QBO if the money did not leave"
    )
    seen = {"refunded_in_released": money(out), "unpaid_in_qbo": money(unpaid)}
    await steps.flag(ctx, ENTITY[qbo_type], link.id, seen, None, detail)


def _refunds_paid(fields: dict[str, Any] | None) -> Decimal:
    refunds = ((fields or {}).get("refunds") or {}).values()
    return sum((Decimal(str(v)) for v in refunds), Decimal(0))
