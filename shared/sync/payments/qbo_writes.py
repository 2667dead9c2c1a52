"""Payments written to QBO for what Re-Leased recorded, and the pieces their bodies are made of.

An allocation of credit becomes a Payment (BillPayment) of 0 linking the invoice (bill) and the
credit memo (vendor credit); a refund becomes the Expense (Deposit) that moved the money plus a
Payment (BillPayment) of 0 applying the credit to it. The Expense and Deposit are QBO's record of
the refund, not synced transactions: their own webhooks are ignored as not-synced types.
"""

from __future__ import annotations

from typing import Any

from shared.domain.errors import NotFound
from shared.domain.mapping.documents import is_qbo_void
from shared.domain.mapping.keys import split_key
from shared.domain.mapping.payments import ENTITY, PARTY, payment_from_qbo
from shared.sync.context import SyncContext
from shared.sync.payments.common import qbo_account_of_type, save_payment_link


def linked(amount: str, txn_id: str, txn_type: str) -> dict[str, Any]:
    return {"Amount": amount, "LinkedTxn": [{"TxnId": txn_id, "TxnType": txn_type}]}


def account_line(amount: str, account: str) -> dict[str, Any]:
    detail = {"AccountRef": {"value": account}}
    return {
        "Amount": amount,
        "DetailType": "AccountBasedExpenseLineDetail",
        "AccountBasedExpenseLineDetail": detail,
    }


def deposit_line(amount: str, account: str, vendor: str) -> dict[str, Any]:
    detail = {"AccountRef": {"value": account}, "Entity": {"value": vendor, "type": "Vendor"}}
    return {"Amount": amount, "DetailType": "DepositLineDetail", "DepositLineDetail": detail}


async def refund_body(
    ctx: SyncContext, sales: bool, payment: dict[str, Any], amount: str, bank: str, party: str
) -> tuple[str, dict[str, Any]]:
    """The QBO transaction that moves a refund's money: an Expense (a ``Purchase``) paying the
    customer out of the bank, or a Deposit of the vendor's money into it."""
    if sales:
        receivable = await qbo_account_of_type(ctx, "Accounts Receivable")
        return "Purchase", {
            "PaymentType": "Cash",
            "AccountRef": {"value": bank},
            "EntityRef": {"value": party, "type": "Customer"},
            "TxnDate": payment.get("date"),
            "Line": [account_line(amount, receivable)],
        }
    payable = await qbo_account_of_type(ctx, "Accounts Payable")
    return "Deposit", {
        "DepositToAccountRef": {"value": bank},
        "TxnDate": payment.get("date"),
        "Line": [deposit_line(amount, payable, party)],
    }


async def zero_payment(
    ctx: SyncContext,
    qbo_type: str,
    snapshot: dict[str, Any] | None,
    source: dict[str, Any],
    lines: list[dict[str, Any]],
) -> dict[str, Any]:
    """A payment of no cash: it only applies credit."""
    party = split_key(str((snapshot or {}).get("contact")))[1]
    body: dict[str, Any] = {
        f"{PARTY[qbo_type]}Ref": {"value": party},
        "TotalAmt": "0.00",
        "TxnDate": source.get("date"),
        "Line": lines,
    }
    if qbo_type == "BillPayment":
        bank = await qbo_account_of_type(ctx, "Bank")
        body.update(PayType="Check", CheckPayment={"BankAccountRef": {"value": bank}})
    return body


async def create_in_qbo(
    ctx: SyncContext,
    qbo_type: str,
    body: dict[str, Any],
    released_id: str,
    released_version: str | None,
    purpose: str,
) -> str:
    """Create a QBO payment for something of Re-Leased's and link the two (or link the one an
    earlier attempt made, when its transaction failed after the write)."""
    created = await _made_before(ctx, qbo_type, released_id)
    if created is None:
        created = await ctx.qbo.write(qbo_type, body, request_id=ctx.create_key(purpose, body))
        # QBO's notification of this payment waits on this lock until the link is committed.
        await ctx.lock("qbo", qbo_type.lower(), str(created["Id"]))
        await ctx.created("qbo", ENTITY[qbo_type], str(created["Id"]), released_id)
    else:
        await ctx.lock("qbo", qbo_type.lower(), str(created["Id"]))
    fields = payment_from_qbo(qbo_type, created)
    await save_payment_link(ctx, qbo_type, created, released_id, released_version, fields)
    return str(created["Id"])


async def _made_before(ctx: SyncContext, qbo_type: str, released_id: str) -> dict[str, Any] | None:
    made = await ctx.twin_made_from("qbo", ENTITY[qbo_type], released_id)
    if made is None:
        return None
    try:
        found = await ctx.qbo.get(qbo_type, made)
    except NotFound:
        return None
    link = await ctx.links.by_qbo(ctx.connection.id, qbo_type, made)
    if is_qbo_void(found) or (link is not None and link.released_id != released_id):
        return None
    return found
