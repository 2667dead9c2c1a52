"""Money not (yet) against a document, both ways.

QBO keeps cash a payment took beyond what its lines apply as the payment's ``UnappliedAmt``
(a Payment or BillPayment with fewer, or no, linked documents than its ``TotalAmt`` covers).
Re-Leased keeps it as credit on the contact: a credit note of ``kind`` PREPAYMENT (the payment
applied nothing) or OVERPAYMENT (it applied part), one line, no tax, whose remaining credit is
allocated to invoices later. So one QBO payment's unapplied cash is one held-credit note, and:
- QBO applying more of the payment to documents (same total, same credit used, no document's
  cash reduced) is the held note allocated to those documents, by the amounts added;
- a Re-Leased allocation of a held note is a line added to the QBO payment for that document;
- a held note Re-Leased has with no QBO payment yet is a QBO payment with no document lines
  (all of it unapplied) plus a line per allocation it already has.
Anything else the payment changes is recorded afresh, as for every payment change.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shared.domain.mapping.money import money
from shared.domain.mapping.payments import DOCUMENT, PARTY

HELD_KINDS = frozenset({"PREPAYMENT", "OVERPAYMENT"})
HELD = "held:"  # a payment link's token for the held-credit note its unapplied cash became
# A held note an earlier version of the payment made, kept (reduced) for the refunds paid from it.
REFUNDED = "refunded:"
NOTE_TYPE = {"Payment": "INCOME_CREDIT", "BillPayment": "EXPENSE_CREDIT"}
PAYMENT_TYPE = {note: qbo for qbo, note in NOTE_TYPE.items()}


def is_held(note: dict[str, Any]) -> bool:
    return str(note.get("kind") or "STANDARD") in HELD_KINDS


def held_kind(fields: dict[str, Any]) -> str:
    """PREPAYMENT when the payment applied nothing at all, OVERPAYMENT when it applied part."""
    return "OVERPAYMENT" if fields["allocations"] or fields["credits"] else "PREPAYMENT"


def held_note(
    qbo_type: str, fields: dict[str, Any], contact: str, amount: Decimal, payment_id: str
) -> dict[str, Any]:
    """The Re-Leased credit note holding ``amount`` of QBO payment ``payment_id``."""
    kind = held_kind(fields)
    return {
        "type": NOTE_TYPE[qbo_type],
        "kind": kind,
        "contactId": contact,
        "date": fields["date"],
        "reference": f"QBO {qbo_type} {payment_id} unapplied",
        "status": "APPROVED",
        "lineAmountType": "NO_TAX",
        "lines": [
            {
                "description": f"{kind.title()} (QBO {qbo_type} {payment_id})",
                "quantity": "1",
                "unitAmount": money(amount),
            }
        ],
    }


def applied_from_held(old: dict[str, Any], new: dict[str, Any]) -> dict[str, str] | None:
    """The cash per document that moved out of the payment's unapplied amount between two
    canonical versions of it, or None when the change is anything else (a person's edit of the
    total, the credit used, or cash taken off a document is recorded afresh)."""
    if old.get("total") != new["total"] or old.get("credits") != new["credits"]:
        return None
    if old.get("refunds") != new.get("refunds"):
        return None
    before: dict[str, str] = old.get("allocations") or {}
    moved: dict[str, str] = {}
    for key, amount in new["allocations"].items():
        delta = Decimal(amount) - Decimal(before.get(key, "0"))
        if delta < 0:
            return None
        if delta > 0:
            moved[key] = money(delta)
    if set(before) - set(new["allocations"]) or not moved:
        return None
    return moved


def unapplied_payment(
    qbo_type: str, note: dict[str, Any], party: str, bank: str, lines: dict[str, str]
) -> dict[str, Any]:
    """The QBO payment for a Re-Leased held-credit note: its whole total, applied to the QBO
    documents in ``lines`` (QBO id -> amount), the rest unapplied."""
    body: dict[str, Any] = {
        f"{PARTY[qbo_type]}Ref": {"value": party},
        "TotalAmt": money(Decimal(str(note["total"]))),
        "TxnDate": note.get("date"),
        "PrivateNote": f"Re-Leased {str(note.get('kind')).lower()} {note.get('number')}",
        "Line": [document_line(qbo_type, doc, amount) for doc, amount in lines.items()],
    }
    if qbo_type == "Payment":
        body["DepositToAccountRef"] = {"value": bank}
    else:
        body.update(PayType="Check", CheckPayment={"BankAccountRef": {"value": bank}})
    return body


def document_line(qbo_type: str, document: str, amount: str) -> dict[str, Any]:
    return {"Amount": amount, "LinkedTxn": [{"TxnId": document, "TxnType": DOCUMENT[qbo_type]}]}
