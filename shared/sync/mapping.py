"""Mapping between each side's records and the canonical field sets (contacts, master data).

Pure functions. QBO side: Customer/Vendor, Account/Item, TaxRate, Class. Re-Leased side: contact,
account, taxRate, tracking option. Anything a side cannot represent raises ``PermanentError`` with
a remedy, so the record gets a clear per-record error instead of a half-written copy.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from shared.infra.errors import PermanentError
from shared.sync.mapping_documents import check_currency

# QBO AccountType -> the Re-Leased account type word we write.
_ACCOUNT_TYPES = {
    "Bank": "BANK",
    "Accounts Receivable": "CURRENT",
    "Other Current Asset": "CURRENT",
    "Fixed Asset": "FIXED",
    "Other Asset": "NONCURRENT",
    "Accounts Payable": "CURRLIAB",
    "Credit Card": "CURRLIAB",
    "Other Current Liability": "CURRLIAB",
    "Long Term Liability": "TERMLIAB",
    "Equity": "EQUITY",
    "Income": "REVENUE",
    "Other Income": "OTHERINCOME",
    "Cost of Goods Sold": "DIRECTCOSTS",
    "Expense": "EXPENSE",
    "Other Expense": "EXPENSE",
}


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value not in (None, "") else None


# -- contacts ----------------------------------------------------------------------------------


def contact_from_qbo(record: dict[str, Any], clash_suffix: str = "") -> dict[str, Any]:
    # A contact in a foreign currency (QBO multi-currency) cannot be synced: per-record error.
    check_currency(record)
    name = str(record.get("DisplayName") or "").strip()
    if clash_suffix and name.endswith(clash_suffix):
        name = name[: -len(clash_suffix)].rstrip()
    return {
        "name": name,
        "first_name": _text(record.get("GivenName")),
        "last_name": _text(record.get("FamilyName")),
        "email": _text((record.get("PrimaryEmailAddr") or {}).get("Address")),
        "phone": _text((record.get("PrimaryPhone") or {}).get("FreeFormNumber")),
        "active": bool(record.get("Active", True)),
    }


def contact_from_released(record: dict[str, Any]) -> dict[str, Any]:
    phones = record.get("phones") or []
    email = record.get("email")
    if isinstance(email, list):
        raise PermanentError(
            "the contact has several e-mail addresses; QBO takes one",
            remedy="keep one e-mail address on the contact",
        )
    return {
        "name": str(record.get("name") or "").strip(),
        "first_name": _text(record.get("firstName")),
        "last_name": _text(record.get("lastName")),
        "email": _text(email),
        "phone": _text(phones[0].get("number")) if phones and isinstance(phones[0], dict) else None,
        "active": record.get("status", "ACTIVE") != "ARCHIVED",
    }


def contact_to_qbo(fields: dict[str, Any], display_name: str) -> dict[str, Any]:
    body: dict[str, Any] = {"DisplayName": display_name}
    if "first_name" in fields:
        body["GivenName"] = fields["first_name"] or ""
    if "last_name" in fields:
        body["FamilyName"] = fields["last_name"] or ""
    if fields.get("email"):
        body["PrimaryEmailAddr"] = {"Address": fields["email"]}
    if fields.get("phone"):
        body["PrimaryPhone"] = {"FreeFormNumber": fields["phone"]}
    if "active" in fields:
        body["Active"] = bool(fields["active"])
    return body


def contact_to_released(fields: dict[str, Any]) -> dict[str, Any]:
    """A create/patch body; status is never written through the API (QBO owns archiving)."""
    body: dict[str, Any] = {}
    if "name" in fields:
        body["name"] = fields["name"]
    if "first_name" in fields:
        body["firstName"] = fields["first_name"]
    if "last_name" in fields:
        body["lastName"] = fields["last_name"]
    if "email" in fields:
        body["email"] = fields["email"]
    if "phone" in fields:
        body["phones"] = [{"type": "DEFAULT", "number": fields["phone"]}] if fields["phone"] else []
    return body


# -- master data (QBO -> Re-Leased only) -------------------------------------------------------


def account_from_qbo(qbo_type: str, record: dict[str, Any]) -> dict[str, Any]:
    active = bool(record.get("Active", True))
    if qbo_type == "Item":
        kind = "SALES_ITEM" if record.get("IncomeAccountRef") else "PURCHASE_ITEM"
        return {
            "code": f"ITEM-{record['Id']}",
            "name": str(record.get("Name", "")),
            "kind": kind,
            "type": "REVENUE" if kind == "SALES_ITEM" else "EXPENSE",
            "active": active,
        }
    return {
        "code": str(record.get("AcctNum") or f"QBO-{record['Id']}"),
        "name": str(record.get("Name", "")),
        "kind": "ACCOUNT",
        "type": _ACCOUNT_TYPES.get(str(record.get("AccountType", "")), "EXPENSE"),
        "active": active,
    }


def account_from_released(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": str(record.get("code", "")),
        "name": str(record.get("name", "")),
        "kind": str(record.get("kind", "ACCOUNT")),
        "type": str(record.get("type", "")),
        "active": record.get("status", "ACTIVE") != "ARCHIVED",
    }


def account_to_released(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": fields["code"][:32],
        "name": fields["name"],
        "kind": fields["kind"],
        "type": fields["type"],
        "status": "ACTIVE" if fields["active"] else "ARCHIVED",
    }


def _rate(value: Any) -> str:
    try:
        return f"{Decimal(str(value)):.2f}"
    except (InvalidOperation, ValueError):
        raise PermanentError(f"tax rate value {value!r} is not a number") from None


def tax_rate_from_qbo(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": str(record.get("Name", "")),
        "rate": _rate(record.get("RateValue", 0)),
        "active": bool(record.get("Active", True)),
    }


def tax_rate_from_released(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": str(record.get("name", "")),
        "rate": _rate(record.get("rate", 0)),
        "active": record.get("status", "ACTIVE") != "ARCHIVED",
    }


def tax_rate_to_released(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": fields["name"],
        "rate": fields["rate"],
        "status": "ACTIVE" if fields["active"] else "ARCHIVED",
    }


def tracking_from_qbo(record: dict[str, Any]) -> dict[str, Any]:
    return {"name": str(record.get("Name", "")), "active": bool(record.get("Active", True))}


def tracking_from_released(option: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": str(option.get("name", "")),
        "active": option.get("status", "ACTIVE") != "ARCHIVED",
    }
