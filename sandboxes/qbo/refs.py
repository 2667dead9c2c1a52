"""Defaults QBO fills in on create, and the reference checks it makes before saving."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sandboxes.qbo import compute, errors
from sandboxes.qbo.clock import COMPANY_TZ, utcnow
from sandboxes.qbo.entities import EXPENSES, PEOPLE, SALES
from sandboxes.qbo.money import money
from sandboxes.qbo.store import Obj, Realm

USD = {"value": "USD", "name": "United States Dollar"}
_NAME_LISTS = ("Account", "Class", "Item", "Customer", "Vendor", "Employee")
# Top-level references and the entity each must point at.
_TOP_REFS = {
    "CustomerRef": "Customer",
    "VendorRef": "Vendor",
    "APAccountRef": "Account",
    "ARAccountRef": "Account",
    "DepositToAccountRef": "Account",
    "FromAccountRef": "Account",
    "ToAccountRef": "Account",
    "AccountRef": "Account",
    "ClassRef": "Class",
}
_LINE_REFS = {"ItemRef": "Item", "AccountRef": "Account", "ClassRef": "Class"}


def name_of(obj: Obj) -> str:
    return str(obj.get("DisplayName") or obj.get("Name") or obj.get("FullyQualifiedName") or "")


def today() -> str:
    return utcnow().astimezone(COMPANY_TZ).date().isoformat()


def check_shapes(obj: Obj) -> None:
    """Reject malformed bodies the way QBO's deserialiser does (400), before any rule runs."""
    lines = obj.get("Line")
    if lines is not None and (
        not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines)
    ):
        raise errors.invalid("Line must be an array of objects")
    for line in lines or []:
        links = line.get("LinkedTxn")
        if links is not None and (
            not isinstance(links, list) or not all(isinstance(link, dict) for link in links)
        ):
            raise errors.invalid("LinkedTxn must be an array of objects")
    for field in ("TxnDate", "DueDate"):
        value = obj.get(field)
        if value in (None, ""):
            continue
        try:
            date.fromisoformat(str(value))
        except ValueError:
            raise errors.invalid(f"{field} is not a valid date: {value!r}", "2010") from None
    for field in ("TxnTaxDetail", "MetaData"):
        if obj.get(field) is not None and not isinstance(obj[field], dict):
            raise errors.invalid(f"{field} must be an object")


def home_currency(realm: Realm) -> dict[str, str]:
    """The realm's home currency as a CurrencyRef (Preferences; USD for a company without)."""
    prefs = realm.get("Preferences", "1") or {}
    value = ((prefs.get("CurrencyPrefs") or {}).get("HomeCurrency") or {}).get("value")
    return {"value": str(value)} if value and value != "USD" else dict(USD)


def fill_defaults(realm: Realm, entity: str, obj: Obj) -> None:
    if entity in _NAME_LISTS:
        obj.setdefault("Active", True)
        if obj["Active"] is None:
            obj["Active"] = True
    if entity in PEOPLE:
        _people_defaults(obj)
        obj.setdefault("Balance", Decimal("0"))
    elif entity in ("Account", "Class", "Item") and obj.get("Name"):
        obj["Name"] = str(obj["Name"]).strip()
        # QBO names a sub-record by its path: "Building A:Unit 1".
        parent_id = (obj.get("ParentRef") or {}).get("value")
        parent = realm.get(entity, str(parent_id)) if parent_id else None
        prefix = f"{parent.get('FullyQualifiedName') or parent.get('Name')}:" if parent else ""
        obj["FullyQualifiedName"] = prefix + obj["Name"]
    if entity == "Account":
        obj.setdefault("CurrentBalance", Decimal("0"))
    if entity in SALES or entity in EXPENSES or entity in ("Payment", "BillPayment", "Deposit"):
        obj.setdefault("CurrencyRef", home_currency(realm))
        obj["TxnDate"] = obj.get("TxnDate") or today()
    if entity in ("Invoice", "Bill"):
        days = 30 if entity == "Invoice" else 0
        obj["DueDate"] = (
            obj.get("DueDate")
            or (date.fromisoformat(obj["TxnDate"]) + timedelta(days=days)).isoformat()
        )
    if entity in ("Invoice", "CreditMemo", "SalesReceipt") and not obj.get("DocNumber"):
        obj["DocNumber"] = str(1000 + len(realm.table(entity)) + 1)


def _people_defaults(obj: Obj) -> None:
    # QBO trims names; a blank one is a missing one.
    obj["DisplayName"] = str(obj.get("DisplayName") or "").strip()
    if not obj["DisplayName"]:
        parts = [obj.get(k) for k in ("Title", "GivenName", "MiddleName", "FamilyName")]
        derived = " ".join(str(p) for p in parts if p) or obj.get("CompanyName")
        if not derived:
            raise errors.required("DisplayName")
        obj["DisplayName"] = derived
    obj["FullyQualifiedName"] = obj["DisplayName"]
    obj.setdefault("PrintOnCheckName", obj["DisplayName"])


def _resolve(realm: Realm, ref: object, target: str, field: str) -> None:
    if not isinstance(ref, dict) or ref.get("value") in (None, ""):
        raise errors.invalid(f"Invalid Reference Id : {field} must have a value", "2500")
    record = realm.get(target, str(ref["value"]))
    if record is None or record.get("Active") is False:
        raise errors.not_found(target, str(ref["value"]))
    ref["name"] = name_of(record)


def check_refs(realm: Realm, obj: Obj) -> None:
    """References must point at existing, active records (else QBO answers 610)."""
    for field, target in _TOP_REFS.items():
        if obj.get(field) is not None:
            _resolve(realm, obj[field], target, field)
    for line in obj.get("Line") or []:
        if not isinstance(line, dict):
            continue
        for key, detail in line.items():
            if not key.endswith("Detail") or not isinstance(detail, dict):
                continue
            for field, target in _LINE_REFS.items():
                if detail.get(field) is not None:
                    _resolve(realm, detail[field], target, f"Line.{key}.{field}")


def check_links(realm: Realm, entity: str, obj: Obj, existing: Obj | None) -> None:
    """A payment may only apply to existing documents of the same party, up to their balance."""
    if entity not in ("Payment", "BillPayment"):
        return
    party = "CustomerRef" if entity == "Payment" else "VendorRef"
    previous = _applied_by(entity, existing)
    for line in obj.get("Line") or []:
        for link in line.get("LinkedTxn") or []:
            doc_type, doc_id = compute.entity_of(str(link.get("TxnType"))), str(link.get("TxnId"))
            doc = realm.get(doc_type, doc_id)
            if doc is None:
                raise errors.not_found(doc_type, doc_id)
            if _party_of(doc_type, doc) != str((obj.get(party) or {}).get("value")):
                raise errors.business_rule(f"{doc_type} {doc_id} belongs to someone else.")
            amount = money(line.get("Amount", 0))
            if doc_type in compute.REFUNDS:
                # A refund (money paid to a customer, or received from a vendor) takes credit up
                # to its amount, less what other payments already applied to it.
                balance = (
                    doc.get("TotalAmt", Decimal("0"))
                    - compute.applied_to(realm, doc_type, doc_id)[0]
                )
            else:
                balance = doc.get("Balance", Decimal("0"))
            open_balance = balance + previous.get((doc_type, doc_id), 0)
            if amount > open_balance:
                raise errors.business_rule(
                    f"The payment amount {amount} exceeds the open balance {open_balance} "
                    f"of {doc_type} {doc_id}."
                )


def _party_of(doc_type: str, doc: Obj) -> str:
    """The customer or vendor a linked transaction belongs to."""
    if doc_type == "Purchase":
        return str((doc.get("EntityRef") or {}).get("value"))
    if doc_type == "Deposit":
        for line in doc.get("Line") or []:
            entity = (line.get("DepositLineDetail") or {}).get("Entity") or {}
            if entity.get("value") is not None:
                return str(entity["value"])
        return ""
    ref = doc.get("CustomerRef") or doc.get("VendorRef") or {}
    return str(ref.get("value"))


def _applied_by(entity: str, payment: Obj | None) -> dict[tuple[str, str], Decimal]:
    applied: dict[tuple[str, str], Decimal] = {}
    for line in (payment or {}).get("Line") or []:
        for link in line.get("LinkedTxn") or []:
            key = (compute.entity_of(str(link.get("TxnType"))), str(link.get("TxnId")))
            applied[key] = applied.get(key, Decimal("0")) + line["Amount"]
    return applied
