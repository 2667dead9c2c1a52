"""Master data (QBO -> Re-Leased only): accounts and sales/purchase items, tax rates, classes."""

from __future__ import annotations

from typing import Any

from shared.domain.mapping.tax import QboTaxCode, rate_text

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


def tax_rate_from_qbo(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": str(record.get("Name", "")),
        "rate": rate_text(record.get("RateValue", 0)),
        "active": bool(record.get("Active", True)),
    }


def tax_code_from_qbo(record: dict[str, Any], code: QboTaxCode) -> dict[str, Any]:
    """A QBO tax code combining several rates, as the one Re-Leased tax rate at their sum."""
    return {
        "name": str(record.get("Name", "")),
        "rate": code.rate,
        "active": bool(record.get("Active", True)),
    }


def tax_rate_from_released(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": str(record.get("name", "")),
        "rate": rate_text(record.get("rate", 0)),
        "active": record.get("status", "ACTIVE") != "ARCHIVED",
    }


def tax_rate_to_released(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": fields["name"],
        "rate": fields["rate"],
        "status": "ACTIVE" if fields["active"] else "ARCHIVED",
    }


def tracking_from_qbo(record: dict[str, Any]) -> dict[str, Any]:
    """A QBO class as a tracking option named by its full path ("Building A:Unit 1"): two
    sub-classes with the same short name under different parents stay two options."""
    name = str(record.get("FullyQualifiedName") or record.get("Name", ""))
    return {"name": name, "active": bool(record.get("Active", True))}


def tracking_from_released(option: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": str(option.get("name", "")),
        "active": option.get("status", "ACTIVE") != "ARCHIVED",
    }
