"""Payments and bill payments: QBO's one payment across documents, as Re-Leased records it.

QBO keeps credit used inside its payments: a Payment (BillPayment) line that links a CreditMemo
(VendorCredit) uses that credit against the payment's other lines, an invoice (bill) or the
transaction that paid the credit back (an Expense to the customer, a Deposit from the vendor). The
payment's cash, TotalAmt, is what the other lines need beyond the credit. Re-Leased keeps the two
apart: an allocation on the credit note, or a payment on the credit note (a refund).

``split`` turns a QBO payment into what Re-Leased records: cash per document, and each piece of
credit with what it went to. Which credit went to which document is QBO's pool, not a pairing, so
the pairing is made the same way every time: credit lines in order, refunds first (they are paid
from credit by nature), then documents in line order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from shared.domain.mapping.keys import split_key
from shared.domain.mapping.money import money

QBO_TYPE = {"payment": "Payment", "billpayment": "BillPayment"}
ENTITY = {"Payment": "payment", "BillPayment": "bill_payment"}
DOCUMENT = {"Payment": "Invoice", "BillPayment": "Bill"}
CREDIT = {"Payment": "CreditMemo", "BillPayment": "VendorCredit"}
REFUND = {"Payment": ("Expense", "Check"), "BillPayment": ("Deposit",)}
PARTY = {"Payment": "Customer", "BillPayment": "Vendor"}
ALLOCATION = "allocation:"


@dataclass
class Split:
    cash: dict[str, str] = field(default_factory=dict)  # document key -> cash applied
    credits: list[list[str]] = field(default_factory=list)  # [credit key, used on key, amount]
    refunds: dict[str, str] = field(default_factory=dict)  # refund key -> cash paid to it


def split(qbo_type: str, record: dict[str, Any]) -> Split:
    refunds: dict[str, Decimal] = {}
    documents: dict[str, Decimal] = {}
    credits: list[tuple[str, Decimal]] = []
    for line in record.get("Line") or []:
        amount = Decimal(money(line.get("Amount", 0)))
        for linked in line.get("LinkedTxn") or []:
            key = f"{linked.get('TxnType')}:{linked.get('TxnId')}"
            if linked.get("TxnType") == CREDIT[qbo_type]:
                credits.append((key, amount))
            elif linked.get("TxnType") in REFUND[qbo_type]:
                refunds[key] = refunds.get(key, Decimal(0)) + amount
            elif linked.get("TxnType") == DOCUMENT[qbo_type]:
                documents[key] = documents.get(key, Decimal(0)) + amount
    left = {**refunds, **documents}  # what each still needs after the credit used so far
    out = Split()
    for credit_key, credit in credits:
        for charge_key in left:
            used = min(credit, left[charge_key])
            if used > 0:
                out.credits.append([credit_key, charge_key, money(used)])
                left[charge_key] -= used
                credit -= used
    out.cash = {key: money(left[key]) for key in documents if left[key] > 0}
    out.refunds = {key: money(left[key]) for key in refunds if left[key] > 0}
    return out


def is_refund(qbo_type: str, key: str) -> bool:
    return split_key(key)[0] in REFUND[qbo_type]


def payment_from_qbo(qbo_type: str, record: dict[str, Any]) -> dict[str, Any]:
    """Canonical payment: date, cash total, cash per document and credit used (QBO keys), and
    cash paid back out through a refund (held credit refunded), only when there is some."""
    parts = split(qbo_type, record)
    fields: dict[str, Any] = {
        "date": record.get("TxnDate"),
        "total": money(record.get("TotalAmt", 0)),
        "allocations": parts.cash,
        "credits": parts.credits,
    }
    if parts.refunds:
        fields["refunds"] = parts.refunds
    return fields


def unapplied_cash(fields: dict[str, Any]) -> Decimal:
    """Cash a canonical payment took that no document received (an overpayment, a prepayment):
    its total less the cash applied per document and the cash refunded from it."""
    paid = [*fields["allocations"].values(), *(fields.get("refunds") or {}).values()]
    applied = sum((Decimal(v) for v in paid), Decimal(0))
    return Decimal(fields["total"]) - applied
