"""A refund of held credit, Re-Leased -> QBO: a Re-Leased payment on a PREPAYMENT or OVERPAYMENT
note (cash paid back out of what a QBO payment holds unapplied).

QBO records it the way it records any refund of credit (``to_qbo.refund_to_qbo``): the money out
as an Expense to the customer (a ``Purchase``), or in as a Deposit from the vendor, which the
payment then pays. Here the payment is the note's own QBO payment, updated with one more line
linking that Expense (Deposit): its ``TotalAmt`` stays, the cash it holds unapplied falls by the
refund. The Re-Leased payment is linked (a part row on the QBO payment), so its own events are
echoes, and so is QBO's notification of the update (the payment's link is at that version).

A retry after a failed transaction does not pay twice: the Expense's create carries a
content-derived request id (QBO answers a repeat with the first one), and the payment is not
updated again when a line already links that Expense.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shared.domain.errors import PermanentError
from shared.domain.mapping.documents import is_qbo_void
from shared.domain.mapping.held_credit import HELD, PAYMENT_TYPE
from shared.domain.mapping.money import money
from shared.domain.mapping.payments import ENTITY, PARTY, payment_from_qbo, unapplied_cash
from shared.domain.ownership import Op
from shared.infra.logging import get_logger
from shared.sync import steps
from shared.sync.context import Result, SyncContext
from shared.sync.dependencies import run_dependency
from shared.sync.payments.common import qbo_bank, save_part, save_payment_link
from shared.sync.payments.qbo_writes import linked, refund_body

log = get_logger("sync.payments")
REFUND_TXN = {"Payment": "Expense", "BillPayment": "Deposit"}
# Twin-ledger entity of the Expense (Deposit) made for a Re-Leased refund of held credit.
REFUND_ENTITY = "held_refund"
_REMEDY = "record the refund in QBO by hand, then reverse it in Re-Leased"


async def refund_held(ctx: SyncContext, payment: dict[str, Any], note: dict[str, Any]) -> Result:
    """Carry a Re-Leased refund of held credit to the note's QBO payment."""
    qbo_type = PAYMENT_TYPE[str(note.get("type"))]
    entity = ENTITY[qbo_type]
    stop = await steps.not_applied(ctx, entity, ctx.policy.decide(entity, Op.UPSERT, "released"))
    if stop is not None:
        return stop
    payment_id = await _held_payment(ctx, qbo_type, str(note["id"]))
    await ctx.lock("qbo", qbo_type.lower(), payment_id)
    current = await ctx.qbo.get(qbo_type, payment_id)
    link = await ctx.links.by_qbo(ctx.connection.id, qbo_type, payment_id)
    if is_qbo_void(current) or link is None:
        raise PermanentError(
            f"QBO {qbo_type} {payment_id} holding this credit is voided or not linked",
            remedy=_REMEDY,
        )
    amount = money(payment["amount"])
    refund_type, refund_id = await _money_out(ctx, qbo_type, payment, current, amount)
    if not _links_to(current, refund_id):
        _check_fits(qbo_type, current, amount, payment_id)
        current = await _add_line(ctx, qbo_type, current, amount, refund_id)
    await save_part(ctx, qbo_type, current, f"refund:{payment['id']}", str(payment["id"]), amount)
    fields = payment_from_qbo(qbo_type, current)
    if f"{HELD}{note['id']}" in (link.released_id or "").split(","):
        await save_payment_link(ctx, qbo_type, current, link.released_id or "", None, fields)
    # Otherwise QBO changed the payment before this refund reached it: the note was kept for
    # the refund and a new one holds the rest, which still counts this cash. The link stays at
    # the version it records, so QBO's notification of this update records the payment afresh
    # and the new note holds what is left after the refund.
    log.info(
        "held_credit_refunded",
        connection_id=str(ctx.connection.id),
        entity_id=str(payment["id"]),
        direction="released_to_qbo",
        amount=amount,
        qbo_payment=payment_id,
        refund=f"{refund_type}:{refund_id}",
        unapplied_left=money(unapplied_cash(fields)),
    )
    return Result("applied", f"refund of held credit recorded in QBO {qbo_type}", payment_id)


async def _held_payment(ctx: SyncContext, qbo_type: str, note_id: str) -> str:
    """The QBO payment whose unapplied cash the note holds (the note carried first if QBO has
    not got it yet)."""
    for attempt in range(2):
        parts = await ctx.links.by_released(ctx.connection.id, ENTITY[qbo_type], note_id)
        held = [p for p in parts if str(p.qbo_id).endswith(":held")]
        if held:
            return str(held[0].qbo_id).split(":")[0]
        if attempt == 0:
            await run_dependency(ctx, "released", "creditnote", note_id)
    raise PermanentError(
        f"held credit note {note_id} has no QBO {qbo_type}",
        remedy="fix the note's sync error (see its record), then replay this payment",
    )


def _links_to(payment: dict[str, Any], txn_id: str) -> bool:
    return any(
        str(linked_txn.get("TxnId")) == txn_id
        for line in payment.get("Line") or []
        for linked_txn in line.get("LinkedTxn") or []
    )


def _check_fits(qbo_type: str, current: dict[str, Any], amount: str, payment_id: str) -> None:
    unapplied = unapplied_cash(payment_from_qbo(qbo_type, current))
    if Decimal(amount) > unapplied:
        raise PermanentError(
            f"refund of {amount} is more than the {money(unapplied)} QBO {qbo_type} {payment_id} "
            "holds unapplied",
            remedy="reverse the refund in Re-Leased and record one within the credit left, or "
            + _REMEDY,
        )


async def _money_out(
    ctx: SyncContext, qbo_type: str, payment: dict[str, Any], current: dict[str, Any], amount: str
) -> tuple[str, str]:
    """The Expense (Deposit) that moved the refund's money, created once per refund: entered in
    the twin ledger, so a redo (a lost race on the payment's SyncToken, a failed transaction)
    pays the one already made."""
    refund_type = "Purchase" if qbo_type == "Payment" else "Deposit"
    made = await ctx.twin_made_from("qbo", REFUND_ENTITY, str(payment["id"]))
    if made is not None:
        return refund_type, made
    party = str((current.get(f"{PARTY[qbo_type]}Ref") or {}).get("value"))
    bank = await qbo_bank(ctx, str(payment.get("bankAccountId") or ""))
    refund_type, body = await refund_body(ctx, qbo_type == "Payment", payment, amount, bank, party)
    request_id = ctx.create_key("qbo-held-refund", [amount, bank, party])
    refund = await ctx.qbo.write(refund_type, body, request_id=request_id)
    await ctx.created("qbo", REFUND_ENTITY, str(refund["Id"]), str(payment["id"]))
    return refund_type, str(refund["Id"])


async def _add_line(
    ctx: SyncContext, qbo_type: str, current: dict[str, Any], amount: str, refund_id: str
) -> dict[str, Any]:
    """The payment, updated (sparse, at the version read) to pay the refund from its cash."""
    lines = [line for line in current.get("Line") or [] if line.get("LinkedTxn")]
    lines.append(linked(amount, refund_id, REFUND_TXN[qbo_type]))
    body = {
        "Id": current["Id"],
        "SyncToken": current.get("SyncToken"),
        "sparse": True,
        f"{PARTY[qbo_type]}Ref": current.get(f"{PARTY[qbo_type]}Ref"),
        "TotalAmt": current.get("TotalAmt"),
        "Line": lines,
    }
    purpose = f"qbo-held-refund-line-{refund_id}"
    return await ctx.qbo.write(qbo_type, body, request_id=ctx.request_id(purpose))
