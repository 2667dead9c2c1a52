"""Payments and credit-note allocations: the money applied to documents."""

from __future__ import annotations

from decimal import Decimal

from sandboxes.released.documents import (
    CREDIT_NOTE,
    INVOICE,
    DocKind,
    derive_paid_status,
    get_document,
)
from sandboxes.released.errors import ApiError, conflict, invalid, not_found
from sandboxes.released.lines import money
from sandboxes.released.schemas import AllocationIn, PaymentIn
from sandboxes.released.store import CompanyState, Record, Store, new_id


def get_payment(state: CompanyState, payment_id: str) -> Record:
    payment = state.payments.get(payment_id)
    if payment is None:
        raise not_found("payment", payment_id)
    return payment


def create_payment(
    store: Store, state: CompanyState, body: PaymentIn, source: str = "RELEASED"
) -> Record:
    kind = INVOICE if body.document_type == "INVOICE" else CREDIT_NOTE
    try:
        doc = get_document(state, kind, body.document_id)
    except ApiError:
        raise invalid("DOCUMENT_NOT_FOUND", "no such document", body.document_id) from None
    if doc["status"] != "APPROVED":
        raise conflict(
            "DOCUMENT_NOT_PAYABLE", f"a {doc['status']} document cannot be paid", doc["id"]
        )
    if body.amount > Decimal(doc["amountDue"]):
        raise invalid("OVERPAYMENT", "the amount exceeds the amount due", doc["id"])
    bank = state.accounts.get(body.bank_account_id)
    if bank is None or bank["type"] != "BANK" or bank["status"] != "ACTIVE":
        raise invalid("BANK_ACCOUNT_INVALID", "not an active bank account", body.bank_account_id)
    payment: Record = {
        "documentType": body.document_type,
        "documentId": doc["id"],
        "date": body.date.isoformat(),
        "amount": money(body.amount),
        "bankAccountId": body.bank_account_id,
        "reference": body.reference,
        "status": "ACTIVE",
        "reversedAt": None,
        "reversalSource": None,
        "source": source,
    }
    store.stamp_new(payment)
    state.payments[payment["id"]] = payment
    store.emit(state, "payment.created", payment, f"payments/{payment['id']}")
    derive_paid_status(store, state, kind, doc)
    return payment


def reverse_payment(store: Store, state: CompanyState, payment: Record, source: str) -> Record:
    """Reverse ``payment``. Re-Leased refuses while QBO owns payments; the accounting side may."""
    if source == "RELEASED" and state.connected:
        raise conflict(
            "REVERSE_IN_ACCOUNTING", "reverse the payment in the accounting system", payment["id"]
        )
    if payment["status"] == "REVERSED":
        return payment
    payment["status"] = "REVERSED"
    payment["reversedAt"] = store.now()
    payment["reversalSource"] = source
    store.touch(payment)
    store.emit(state, "payment.reversed", payment, f"payments/{payment['id']}")
    kind: DocKind = INVOICE if payment["documentType"] == "INVOICE" else CREDIT_NOTE
    derive_paid_status(store, state, kind, get_document(state, kind, payment["documentId"]))
    return payment


def allocate_credit(store: Store, state: CompanyState, note: Record, body: AllocationIn) -> Record:
    invoice = state.invoices.get(body.invoice_id)
    if invoice is None:
        raise invalid("ALLOCATION_TARGET_NOT_FOUND", "no such invoice", body.invoice_id)
    if note["status"] != "APPROVED" or invoice["status"] != "APPROVED":
        raise conflict("ALLOCATION_NOT_ALLOWED", "both documents must be APPROVED", note["id"])
    if invoice["contactId"] != note["contactId"] or note["type"] != f"{invoice['type']}_CREDIT":
        raise invalid("ALLOCATION_MISMATCH", "contact or type differ", body.invoice_id)
    if body.amount > Decimal(note["remainingCredit"]) or body.amount > Decimal(
        invoice["amountDue"]
    ):
        raise invalid("OVER_ALLOCATION", "the amount exceeds what is left", note["id"])
    allocation = {
        "id": new_id(),
        "invoiceId": invoice["id"],
        "amount": money(body.amount),
        "date": body.date.isoformat(),
        "isDeleted": False,
    }
    note["allocations"].append(allocation)
    store.touch(note)
    store.emit(state, "creditnote.allocated", note, f"credit-notes/{note['id']}")
    derive_paid_status(store, state, CREDIT_NOTE, note)
    store.touch(invoice)
    store.emit(state, "invoice.updated", invoice, f"invoices/{invoice['id']}")
    derive_paid_status(store, state, INVOICE, invoice)
    return note


def remove_allocation(
    store: Store, state: CompanyState, note: Record, allocation_id: str
) -> Record:
    """Undo one allocation (the accounting side unapplying a credit): kept, marked deleted."""
    for allocation in note["allocations"]:
        if allocation["id"] == allocation_id:
            break
    else:
        raise not_found("allocation", allocation_id)
    if allocation.get("isDeleted"):
        return note
    allocation["isDeleted"] = True
    store.touch(note)
    store.emit(state, "creditnote.allocated", note, f"credit-notes/{note['id']}")
    derive_paid_status(store, state, CREDIT_NOTE, note)
    invoice = state.invoices.get(allocation["invoiceId"])
    if invoice is not None:
        store.touch(invoice)
        store.emit(state, "invoice.updated", invoice, f"invoices/{invoice['id']}")
        derive_paid_status(store, state, INVOICE, invoice)
    return note
