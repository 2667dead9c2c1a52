"""Invoices and credit notes: derived totals and the status state machine."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sandboxes.released.errors import conflict, invalid, not_found
from sandboxes.released.lines import money, recompute_lines, stored_lines
from sandboxes.released.schemas import DocumentIn, DocumentPatch
from sandboxes.released.store import CompanyState, Record, Store, new_id

LOCKED = ("PAID", "VOIDED")
# PAID is never requested: it is derived when amountDue reaches zero.
TRANSITIONS: dict[str, frozenset[str]] = {
    "DRAFT": frozenset({"AWAITING_APPROVAL", "APPROVED"}),
    "AWAITING_APPROVAL": frozenset({"APPROVED", "DRAFT"}),
    "APPROVED": frozenset({"VOIDED"}),
    "PAID": frozenset(),
    "VOIDED": frozenset(),
}
_NULLABLE = frozenset({"reference", "related_property_id", "related_tenancy_id", "due_date"})
_EVENT_FOR_TARGET = {
    "AWAITING_APPROVAL": "submitted",
    "APPROVED": "approved",
    "DRAFT": "reset_to_draft",
    "VOIDED": "voided",
}


@dataclass(frozen=True)
class DocKind:
    label: str
    path: str
    event_prefix: str
    number_prefix: str

    def records(self, state: CompanyState) -> dict[str, Record]:
        return state.invoices if self.path == "invoices" else state.credit_notes


INVOICE = DocKind("invoice", "invoices", "invoice", "RL-")
CREDIT_NOTE = DocKind("credit note", "credit-notes", "creditnote", "CN-")


def get_document(state: CompanyState, kind: DocKind, doc_id: str) -> Record:
    doc = kind.records(state).get(doc_id)
    if doc is None:
        raise not_found(kind.label, doc_id)
    return doc


def create_document(store: Store, state: CompanyState, kind: DocKind, body: DocumentIn) -> Record:
    doc: Record = {
        "id": new_id(),
        "type": getattr(body, "type", None),
        "numberSource": "RELEASED",
        "status": "DRAFT",
        "amountPaid": "0.00",
        "amountCredited": "0.00",
        "hasAttachments": False,
        "voidedAt": None,
        "reference": None,
        "relatedPropertyId": None,
        "relatedTenancyId": None,
        "dueDate": None,
        "currency": "NZD",
    }
    if kind is CREDIT_NOTE:
        doc["allocations"] = []
        doc["kind"] = getattr(body, "kind", "STANDARD")
    _apply_fields(state, doc, body, body.model_fields_set | {"contact_id", "date", "lines"})
    doc["lineAmountType"] = body.line_amount_type
    if not doc.get("number"):
        doc["number"] = f"{kind.number_prefix}{len(kind.records(state)) + 1:06d}"
    recompute_lines(state, doc, body.lines)
    if body.status != "DRAFT":
        _check_transition(state, doc, body.status)
        doc["status"] = body.status
    store.stamp_new(doc)
    kind.records(state)[doc["id"]] = doc
    store.emit(state, f"{kind.event_prefix}.created", doc, f"{kind.path}/{doc['id']}", _data(doc))
    derive_paid_status(store, state, kind, doc)
    return doc


def patch_document(
    store: Store, state: CompanyState, kind: DocKind, doc: Record, body: DocumentPatch
) -> Record:
    if doc["status"] in LOCKED:
        raise conflict("DOCUMENT_NOT_EDITABLE", f"a {doc['status']} {kind.label} cannot be edited")
    fields = body.model_fields_set - {"status"}
    if fields:
        _apply_fields(state, doc, body, fields)
        if "lines" in fields or "line_amount_type" in fields:
            lines = body.lines if body.lines is not None else stored_lines(doc)
            recompute_lines(state, doc, lines)
        store.touch(doc)
        store.emit(state, f"{kind.event_prefix}.updated", doc, f"{kind.path}/{doc['id']}")
        # A total brought down to the money already applied leaves nothing due: PAID.
        derive_paid_status(store, state, kind, doc)
    if body.status is not None and body.status != doc["status"]:
        transition(store, state, kind, doc, body.status)
    return doc


def transition(store: Store, state: CompanyState, kind: DocKind, doc: Record, target: str) -> None:
    """Move ``doc`` to ``target`` if the state machine allows it; same state is a no-op."""
    if target == doc["status"]:
        return
    _check_transition(state, doc, target)
    doc["status"] = target
    if target == "VOIDED":
        doc["voidedAt"] = store.now()
    store.touch(doc)
    name = f"{kind.event_prefix}.{_EVENT_FOR_TARGET[target]}"
    store.emit(state, name, doc, f"{kind.path}/{doc['id']}", _data(doc))
    derive_paid_status(store, state, kind, doc)


def _check_transition(state: CompanyState, doc: Record, target: str) -> None:
    ident = str(doc["id"])
    if target == "VOIDED" and _has_money_applied(state, doc):
        raise conflict("REMOVE_PAYMENTS_FIRST", "remove payments and allocations first", ident)
    if doc["status"] in LOCKED:
        raise conflict("DOCUMENT_NOT_EDITABLE", f"a {doc['status']} document cannot change", ident)
    if target not in TRANSITIONS[doc["status"]]:
        message = f"{doc['status']} cannot become {target}"
        raise conflict("INVALID_STATUS_TRANSITION", message, ident)
    if target == "APPROVED":
        _check_approvable(state, doc)


def _check_approvable(state: CompanyState, doc: Record) -> None:
    contact = state.contacts.get(doc["contactId"])
    if contact is not None and contact["status"] == "ARCHIVED":
        raise invalid("CONTACT_ARCHIVED", "the contact is archived", doc["contactId"])
    # Master data may have been archived in accounting since the draft was written.
    for line in doc["lines"]:
        account = state.accounts.get(line.get("accountId") or "")
        if account is not None and account["status"] == "ARCHIVED":
            raise invalid("ACCOUNT_ARCHIVED", "a line uses an archived account", account["id"])
        rate = state.tax_rates.get(line.get("taxRateId") or "")
        if rate is not None and rate["status"] == "ARCHIVED":
            raise invalid("TAX_RATE_ARCHIVED", "a line uses an archived tax rate", rate["id"])


def _has_money_applied(state: CompanyState, doc: Record) -> bool:
    if any(
        p["documentId"] == doc["id"] and p["status"] == "ACTIVE" for p in state.payments.values()
    ):
        return True
    return Decimal(doc["amountCredited"]) > 0


def derive_paid_status(store: Store, state: CompanyState, kind: DocKind, doc: Record) -> None:
    """Recompute money applied; APPROVED <-> PAID follows amountDue."""
    paid = sum(
        (
            Decimal(p["amount"])
            for p in state.payments.values()
            if p["documentId"] == doc["id"] and p["status"] == "ACTIVE"
        ),
        Decimal(0),
    )
    credited = _credited(state, doc)
    due = Decimal(doc["total"]) - paid - credited
    doc["amountPaid"], doc["amountCredited"], doc["amountDue"] = map(money, (paid, credited, due))
    if kind is CREDIT_NOTE:
        doc["remainingCredit"] = doc["amountDue"]
    path = f"{kind.path}/{doc['id']}"
    if doc["status"] == "APPROVED" and due == 0:
        doc["status"] = "PAID"
        store.touch(doc)
        store.emit(state, f"{kind.event_prefix}.paid", doc, path, _data(doc))
    elif doc["status"] == "PAID" and due > 0:
        doc["status"] = "APPROVED"
        store.touch(doc)
        store.emit(state, f"{kind.event_prefix}.updated", doc, path, _data(doc))


def _credited(state: CompanyState, doc: Record) -> Decimal:
    if "allocations" in doc:
        allocations = [a for a in doc["allocations"] if not a.get("isDeleted")]
    else:
        allocations = [
            a
            for note in state.credit_notes.values()
            if note["status"] != "VOIDED"
            for a in note["allocations"]
            if a["invoiceId"] == doc["id"] and not a.get("isDeleted")
        ]
    return sum((Decimal(a["amount"]) for a in allocations), Decimal(0))


def _apply_fields(state: CompanyState, doc: Record, body: DocumentPatch, fields: set[str]) -> None:
    # An explicit null clears a nullable field; on the others it means "leave as is".
    for name in ("reference", "related_property_id", "related_tenancy_id", "number", "currency"):
        value = getattr(body, name)
        if name in fields and (value is not None or name in _NULLABLE):
            doc[_camel(name)] = value
    for name in ("date", "due_date"):
        value = getattr(body, name)
        if name in fields and (value is not None or name in _NULLABLE):
            doc[_camel(name)] = value.isoformat() if value is not None else None
    if "line_amount_type" in fields and body.line_amount_type is not None:
        doc["lineAmountType"] = body.line_amount_type
    if "contact_id" in fields and body.contact_id is not None:
        if body.contact_id not in state.contacts:
            raise invalid("CONTACT_NOT_FOUND", "no such contact", body.contact_id)
        doc["contactId"] = body.contact_id
    if doc.get("relatedPropertyId") and doc["relatedPropertyId"] not in state.properties:
        raise invalid("PROPERTY_NOT_FOUND", "no such property", doc["relatedPropertyId"])
    if doc.get("relatedTenancyId") and doc["relatedTenancyId"] not in state.tenancies:
        raise invalid("TENANCY_NOT_FOUND", "no such tenancy", doc["relatedTenancyId"])


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _data(doc: Record) -> dict[str, Any]:
    return {"type": doc["type"], "status": doc["status"]}
