"""Credit used up: credit notes allocated to invoices, and credit paid back (refunds).

QBO keeps both inside its payments. A Payment (BillPayment) line that links a CreditMemo
(VendorCredit) uses that credit against the payment's other lines: an invoice (bill), or the
transaction that paid the credit back (an Expense to the customer, a Deposit from the vendor).
The payment's cash, TotalAmt, is what the other lines need beyond the credit. Re-Leased keeps the
two apart: an allocation on the credit note, or a payment on the credit note (a refund).

``split`` turns a QBO payment into what Re-Leased records: cash per document, and each piece of
credit with what it went to. Which credit went to which document is QBO's pool, not a pairing, so
the pairing is made the same way every time: credit lines in order, refunds first (they are paid
from credit by nature), then documents in line order.

Re-Leased -> QBO: an allocation becomes a Payment (BillPayment) of 0 linking the invoice (bill)
and the credit memo (vendor credit); a refund becomes the Expense (Deposit) that moved the money
plus a Payment (BillPayment) of 0 applying the credit to it. The Expense and Deposit are QBO's
record of the refund, not synced transactions: their own webhooks are ignored as not-synced types.
"""

from __future__ import annotations

from typing import Any

from shared.domain.errors import NotFound
from shared.domain.mapping.documents import is_qbo_void
from shared.domain.mapping.keys import split_key
from shared.domain.mapping.kinds import BY_RELEASED_TYPE
from shared.domain.mapping.money import money
from shared.domain.mapping.payments import (
    ALLOCATION,
    CREDIT,
    DOCUMENT,
    ENTITY,
    PARTY,
    is_refund,
    payment_from_qbo,
)
from shared.sync import documents_released, payment_refs
from shared.sync.context import Result, SyncContext

# -- QBO -> Re-Leased --------------------------------------------------------------------------


async def record_credit(
    ctx: SyncContext, qbo_type: str, record: dict[str, Any], used: list[str]
) -> str:
    """Record one piece of credit in Re-Leased; returns the token kept in the payment's link
    (a payment id for a refund, ``allocation:<note>/<allocation>`` for an allocation)."""
    credit_key, target_key, amount = used
    note_id = await payment_refs.released_document(ctx, credit_key)
    version = str(record.get("SyncToken"))
    if is_refund(qbo_type, target_key):
        return await _record_refund(ctx, qbo_type, record, note_id, target_key, amount)
    invoice_id = await payment_refs.released_document(ctx, target_key)
    # Re-Leased announces the allocation on the credit note; its handler waits here until the
    # allocation's link is committed, so it never mistakes ours for a new one.
    await ctx.lock("released", "creditnote", note_id)
    note = await payment_refs.post_money(
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
    await _save_part(ctx, qbo_type, record, f"{credit_key}:{target_key}", token, amount)
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
    bank = await payment_refs.released_bank(
        ctx, f"Account:{account['value']}" if account.get("value") else None
    )
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
    made = await payment_refs.post_money(
        ctx, [(category, str(body["documentId"]))], "/payments", body, f"rl-pay-{part}-{version}"
    )
    # Re-Leased's notification of this payment waits on this lock until the link is committed.
    await ctx.lock("released", "payment", str(made["id"]))
    await ctx.created("released", ENTITY[qbo_type], str(made["id"]), str(record["Id"]))
    await _save_part(ctx, qbo_type, record, part, str(made["id"]), str(body["amount"]))
    return str(made["id"])


async def _save_part(
    ctx: SyncContext, qbo_type: str, record: dict[str, Any], part: str, token: str, amount: str
) -> None:
    """A link row per piece written, so its Re-Leased event is recognised as ours."""
    version = str(record.get("SyncToken"))
    await ctx.links.save(
        ctx.connection.id,
        ENTITY[qbo_type],
        f"{qbo_type}Line",
        qbo=(f"{record['Id']}:{version}:{part}", version),
        released=(token, None),
        snapshot={"part": part, "amount": amount},
    )


async def undo(ctx: SyncContext, token: str) -> None:
    """Take back one allocation we recorded (the accounting side unapplying the credit)."""
    note_id, _, allocation_id = token.removeprefix(ALLOCATION).partition("/")
    await ctx.lock("released", "creditnote", note_id)
    await ctx.released.accounting("DELETE", f"/credit-notes/{note_id}/allocations/{allocation_id}")


# -- Re-Leased -> QBO --------------------------------------------------------------------------


async def credit_note_from_released(ctx: SyncContext) -> Result:
    """A Re-Leased credit note changed: the document itself, then any allocation QBO lacks
    (read once: the document's own handling does not change its allocations)."""
    try:
        note = await ctx.released.get(f"/credit-notes/{ctx.event.entity_id}")
    except NotFound:
        return Result("ignored", "gone from Re-Leased")
    result = await documents_released.apply_released(ctx, note)
    if result.outcome not in ("applied", "echo"):
        return result
    made = await allocations_to_qbo(ctx, note)
    if not made:
        return result
    return Result(
        "applied", f"{result.reason}; {made} allocation(s) recorded in QBO", result.target_id
    )


async def allocations_to_qbo(ctx: SyncContext, note: dict[str, Any]) -> int:
    """Record in QBO every allocation of ``note`` that QBO does not have yet; returns how many."""
    kind = BY_RELEASED_TYPE[str(note.get("type"))]
    note_links = await ctx.links.by_released(ctx.connection.id, kind.entity, str(note["id"]))
    if not note_links or note_links[0].status == "voided":
        return 0
    qbo_type = "Payment" if kind.sales else "BillPayment"
    made = 0
    for allocation in note.get("allocations") or []:
        token = f"{ALLOCATION}{note['id']}/{allocation['id']}"
        if allocation.get("isDeleted") or await _known(ctx, ENTITY[qbo_type], token):
            continue
        entity = "invoice" if kind.sales else "bill"
        document = await payment_refs.qbo_document(
            ctx, entity, "invoice", str(allocation["invoiceId"])
        )
        amount = money(allocation["amount"])
        lines = [
            _linked(amount, str(document.qbo_id), DOCUMENT[qbo_type]),
            _linked(amount, str(note_links[0].qbo_id), CREDIT[qbo_type]),
        ]
        body = await _zero_payment(ctx, qbo_type, note_links[0].snapshot, allocation, lines)
        await create_in_qbo(ctx, qbo_type, body, token, None, f"qbo-alloc-{allocation['id']}")
        made += 1
    return made


async def _known(ctx: SyncContext, entity: str, token: str) -> bool:
    """Linked already, or recorded by us from QBO (its link then comes with the QBO payment's
    retry: sending it back would pay twice)."""
    if await ctx.links.by_released(ctx.connection.id, entity, token):
        return True
    return await ctx.made_by_us("released", entity, token) is not None


async def refund_to_qbo(ctx: SyncContext, payment: dict[str, Any]) -> str:
    """A Re-Leased payment on a credit note (a refund of credit) recorded in QBO: the money out
    (Expense to the customer) or in (Deposit from the vendor), and the credit applied to it."""
    note = await ctx.released.get(f"/credit-notes/{payment['documentId']}")
    kind = BY_RELEASED_TYPE[str(note.get("type"))]
    note_link = await payment_refs.qbo_document(ctx, kind.entity, "creditnote", str(note["id"]))
    qbo_type = "Payment" if kind.sales else "BillPayment"
    party = split_key(str((note_link.snapshot or {}).get("contact")))[1]
    bank = await payment_refs.qbo_bank(ctx, str(payment.get("bankAccountId") or ""))
    amount = money(payment["amount"])
    if kind.sales:
        receivable = await payment_refs.qbo_account_of_type(ctx, "Accounts Receivable")
        refund = await ctx.qbo.write(
            "Purchase",
            {
                "PaymentType": "Cash",
                "AccountRef": {"value": bank},
                "EntityRef": {"value": party, "type": "Customer"},
                "TxnDate": payment.get("date"),
                "Line": [_account_line(amount, receivable)],
            },
            request_id=ctx.create_key("qbo-refund", [amount, bank]),
        )
        refund_line = _linked(amount, str(refund["Id"]), "Expense")
    else:
        payable = await payment_refs.qbo_account_of_type(ctx, "Accounts Payable")
        refund = await ctx.qbo.write(
            "Deposit",
            {
                "DepositToAccountRef": {"value": bank},
                "TxnDate": payment.get("date"),
                "Line": [_deposit_line(amount, payable, party)],
            },
            request_id=ctx.create_key("qbo-refund", [amount, bank]),
        )
        refund_line = _linked(amount, str(refund["Id"]), "Deposit")
    lines = [refund_line, _linked(amount, str(note_link.qbo_id), CREDIT[qbo_type])]
    body = await _zero_payment(ctx, qbo_type, note_link.snapshot, payment, lines)
    return await create_in_qbo(
        ctx, qbo_type, body, str(payment["id"]), str(payment.get("version")), "qbo-payment"
    )


def _linked(amount: str, txn_id: str, txn_type: str) -> dict[str, Any]:
    return {"Amount": amount, "LinkedTxn": [{"TxnId": txn_id, "TxnType": txn_type}]}


def _account_line(amount: str, account: str) -> dict[str, Any]:
    detail = {"AccountRef": {"value": account}}
    return {
        "Amount": amount,
        "DetailType": "AccountBasedExpenseLineDetail",
        "AccountBasedExpenseLineDetail": detail,
    }


def _deposit_line(amount: str, account: str, vendor: str) -> dict[str, Any]:
    detail = {"AccountRef": {"value": account}, "Entity": {"value": vendor, "type": "Vendor"}}
    return {"Amount": amount, "DetailType": "DepositLineDetail", "DepositLineDetail": detail}


async def _zero_payment(
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
        bank = await payment_refs.qbo_account_of_type(ctx, "Bank")
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


async def save_payment_link(
    ctx: SyncContext,
    qbo_type: str,
    record: dict[str, Any],
    released_id: str,
    released_version: str | None,
    fields: dict[str, Any],
) -> None:
    """The link of a whole QBO payment (``released_id``: what it is in Re-Leased)."""
    await ctx.links.save(
        ctx.connection.id,
        ENTITY[qbo_type],
        qbo_type,
        qbo=(str(record["Id"]), str(record.get("SyncToken"))),
        released=(released_id, released_version),
        snapshot=fields,
    )
