"""Create, update, delete and void, with QBO's rules (SyncToken, 6240, name lists, voids).

Pure in-memory logic over one realm; every successful write calls ``notify`` with a Change,
which the webhook dispatcher filters by Intuit's table of notified operations
(https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import Decimal

from sandboxes.qbo import compute, errors
from sandboxes.qbo.changes import Change, Notify
from sandboxes.qbo.clock import utcnow
from sandboxes.qbo.entities import ENTITIES, EntitySpec, Kind, VoidForm
from sandboxes.qbo.refs import (
    check_links,
    check_refs,
    check_shapes,
    fill_defaults,
    name_of,
)
from sandboxes.qbo.store import Obj, Realm, stamp

_READ_ONLY = ("Id", "SyncToken", "MetaData", "domain", "Balance", "RemainingCredit", "_updated")
_COMPUTED_TOTAL = ("Invoice", "Bill", "CreditMemo", "VendorCredit", "SalesReceipt", "Purchase")


@dataclass
class Company:
    realm: Realm
    notify: Notify

    def emit(self, entity: str, obj_id: str, operation: str, deleted_id: str | None = None) -> None:
        when = utcnow()
        self.notify(Change(self.realm.realm_id, entity, obj_id, operation, when, deleted_id))


def spec_of(entity: str) -> EntitySpec:
    return ENTITIES[entity]


def _writable(body: Obj, entity: str) -> Obj:
    clean = {k: v for k, v in body.items() if k not in _READ_ONLY and k != "sparse"}
    if entity in _COMPUTED_TOTAL:
        clean.pop("TotalAmt", None)
    return clean


def save(company: Company, entity: str, body: Obj) -> Obj:
    spec = spec_of(entity)
    check_shapes(body)
    if spec.kind is Kind.READ_ONLY:
        raise errors.unsupported(f"Create/Update of {entity}")
    if body.get("Id") not in (None, ""):
        if spec.kind is Kind.CREATE_ONLY:
            raise errors.unsupported(f"Update of {entity}")
        return _update(company, spec, body)
    return _create(company, spec, body)


def _create(company: Company, spec: EntitySpec, body: Obj) -> Obj:
    realm, entity = company.realm, spec.name
    obj = _writable(body, entity)
    fill_defaults(realm, entity, obj)
    _validate(realm, spec, obj, None)
    obj["Id"] = realm.next_id()
    obj["SyncToken"] = "0"
    obj["domain"] = "QBO"
    obj["sparse"] = False
    compute.derive(realm, entity, obj)
    stamp(obj)
    realm.put(entity, obj)
    _after_write(company, entity, None, obj)
    company.emit(entity, obj["Id"], "Create")
    return obj


def _current(realm: Realm, entity: str, body: Obj) -> Obj:
    obj_id = str(body.get("Id", ""))
    existing = realm.get(entity, obj_id)
    if existing is None:
        raise errors.not_found(entity, obj_id)
    token = body.get("SyncToken")
    if token is None:
        raise errors.required("SyncToken")
    if str(token) != existing["SyncToken"]:
        raise errors.stale(entity)
    return existing


def _update(company: Company, spec: EntitySpec, body: Obj) -> Obj:
    realm, entity = company.realm, spec.name
    existing = _current(realm, entity, body)
    changes = _writable(body, entity)
    if body.get("sparse") is True:
        obj = copy.deepcopy(existing)
        obj.update(changes)
    else:
        # A full update sets every omitted writable field to null, as QBO does.
        obj = changes
    # Read-only fields survive any update; the balances are recomputed below where derived.
    for key in ("Id", "MetaData", "domain", "_updated", "Balance", "CurrentBalance"):
        if key in existing:
            obj[key] = copy.deepcopy(existing[key])
    fill_defaults(realm, entity, obj)
    _validate(realm, spec, obj, existing)
    obj["SyncToken"] = str(int(existing["SyncToken"]) + 1)
    obj["sparse"] = False
    compute.derive(realm, entity, obj)
    stamp(obj)
    realm.put(entity, obj)
    _after_write(company, entity, existing, obj)
    deactivated = spec.kind is Kind.NAME_LIST and existing.get("Active") and not obj["Active"]
    # Intuit calls inactivation the "delete" of a name-list record (https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks).
    company.emit(entity, obj["Id"], "Delete" if deactivated else "Update")
    return obj


def _validate(realm: Realm, spec: EntitySpec, obj: Obj, existing: Obj | None) -> None:
    for field in spec.required:
        if obj.get(field) in (None, "", []):
            raise errors.required(field)
    if spec.unique_name:
        _check_unique(realm, spec, obj, existing)
    check_refs(realm, obj)
    check_links(realm, spec.name, obj, existing)
    deactivating = existing is not None and existing.get("Active") and not obj.get("Active")
    if (
        deactivating
        and spec.name in ("Customer", "Vendor")
        and compute.party_balance(realm, spec.name, obj["Id"]) != 0
    ):
        raise errors.business_rule(
            "Delete List Has Balance Error: You can't make this inactive because it "
            "has an open balance."
        )


def _check_unique(realm: Realm, spec: EntitySpec, obj: Obj, existing: Obj | None) -> None:
    field = spec.unique_name or ""
    name = str(obj.get(field, "")).strip()
    if any(ch in name for ch in ":\t\n"):
        raise errors.invalid(f"{field} can not contain colon (:), tab or newline", "2010")
    holder = realm.named(spec.name, name)
    if holder is not None and holder != (spec.name, existing["Id"] if existing else None):
        raise errors.duplicate_name(name, holder[1])


def _after_write(company: Company, entity: str, before: Obj | None, after: Obj | None) -> None:
    """Recompute what a payment touches (documents, then their customer or vendor)."""
    realm = company.realm
    docs = compute.linked_documents(entity, before) | compute.linked_documents(entity, after)
    for doc_type, doc_id in sorted(docs):
        doc = realm.get(doc_type, doc_id)
        if doc is None:
            continue
        old_balance = doc.get("Balance")
        compute.refresh_balance(realm, doc_type, doc)
        if doc.get("Balance") != old_balance:
            # Applying a payment changes the invoice (Balance, LinkedTxn): a new version.
            doc["SyncToken"] = str(int(doc["SyncToken"]) + 1)
            stamp(doc)
            company.emit(doc_type, doc_id, "Update")
    _refresh_parties(realm, before, after)


def _refresh_parties(realm: Realm, *objs: Obj | None) -> None:
    for obj in objs:
        if obj is None:
            continue
        for party in ("Customer", "Vendor"):
            ref = obj.get(f"{party}Ref") or {}
            record = realm.get(party, str(ref.get("value", "")))
            if record is not None:
                record["Balance"] = compute.party_balance(realm, party, record["Id"])


def delete(company: Company, entity: str, body: Obj) -> Obj:
    spec = spec_of(entity)
    if spec.kind not in (Kind.TRANSACTION, Kind.ATTACHMENT):
        raise errors.unsupported("Delete")
    realm = company.realm
    existing = _current(realm, entity, body)
    if entity in ("Invoice", "Bill", "CreditMemo", "VendorCredit"):
        paid, _ = compute.applied_to(realm, entity, existing["Id"])
        if paid:
            raise errors.business_rule(
                "This transaction is linked to other transactions; unlink them first."
            )
    realm.remove(entity, existing["Id"], utcnow())
    realm.files.pop(existing["Id"], None)
    _after_write(company, entity, existing, None)
    if "Delete" in spec.notifies:
        company.emit(entity, existing["Id"], "Delete")
    return {"status": "Deleted", "domain": "QBO", "Id": existing["Id"]}


def void(company: Company, entity: str, body: Obj, form: VoidForm) -> Obj:
    spec = spec_of(entity)
    if form not in spec.void_forms:
        raise errors.unsupported("Void" if form is VoidForm.OPERATION_VOID else "update/void")
    return _apply_void(company, entity, _current(company.realm, entity, body))


def _apply_void(company: Company, entity: str, existing: Obj) -> Obj:
    obj = copy.deepcopy(existing)
    zero = Decimal("0")
    if entity == "BillPayment":
        obj["Line"] = []
    for line in obj.get("Line", []):
        line["Amount"] = zero
        for detail_key in ("SalesItemLineDetail", "ItemBasedExpenseLineDetail"):
            if detail_key in line and "Qty" in line[detail_key]:
                line[detail_key]["Qty"] = zero
    for key in ("TotalAmt", "Balance", "UnappliedAmt", "RemainingCredit"):
        if key in obj:
            obj[key] = zero
    if "TxnTaxDetail" in obj:
        obj["TxnTaxDetail"]["TotalTax"] = zero
    note = obj.get("PrivateNote") or ""
    obj["PrivateNote"] = f"Voided - {note}" if note else "Voided"
    obj["SyncToken"] = str(int(existing["SyncToken"]) + 1)
    stamp(obj)
    company.realm.put(entity, obj)
    _after_write(company, entity, existing, obj)
    company.emit(entity, obj["Id"], "Void")
    return obj


def ui_void(company: Company, entity: str, obj_id: str) -> Obj:
    """What a user can do in the QBO UI but not the API (e.g. void a credit memo)."""
    existing = company.realm.get(entity, obj_id)
    if existing is None:
        raise errors.not_found(entity, obj_id)
    return _apply_void(company, entity, existing)


def merge(company: Company, entity: str, from_id: str, to_id: str) -> Obj:
    """UI merge: transactions move to the survivor, the merged-away record is made inactive."""
    realm = company.realm
    source, target = realm.get(entity, from_id), realm.get(entity, to_id)
    if source is None or target is None:
        raise errors.not_found(entity, from_id if source is None else to_id)
    ref_key = f"{entity}Ref"
    for table in realm.objects.values():
        for obj in table.values():
            ref = obj.get(ref_key)
            if isinstance(ref, dict) and str(ref.get("value")) == from_id:
                ref.update({"value": to_id, "name": name_of(target)})
    source = copy.deepcopy(source)
    source["Active"] = False
    source[ENTITIES[entity].unique_name or "Name"] = f"{name_of(source)} (deleted)"
    source["SyncToken"] = str(int(source["SyncToken"]) + 1)
    stamp(source)
    realm.put(entity, source)
    target["SyncToken"] = str(int(target["SyncToken"]) + 1)
    stamp(target)
    _refresh_parties(realm, {ref_key: {"value": to_id}})
    company.emit(entity, to_id, "Merge", deleted_id=from_id)
    return target
