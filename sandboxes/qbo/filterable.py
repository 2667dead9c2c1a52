"""Which properties QBO lets a query filter on, per entity (Intuit's API reference marks them
"filterable": https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/customer
and the sibling pages). A condition on any other property, or on one the entity does not have,
is refused with 4001 as QBO does; entities not listed here accept any property."""

from __future__ import annotations

from sandboxes.qbo import errors

_META = frozenset({"Id", "MetaData.CreateTime", "MetaData.LastUpdatedTime"})
_PARTY = frozenset(
    {
        "DisplayName",
        "GivenName",
        "MiddleName",
        "FamilyName",
        "CompanyName",
        "PrimaryEmailAddr",
        "PrimaryEmailAddr.Address",
        "Balance",
        "Active",
        "FullyQualifiedName",
    }
)
_TXN = frozenset({"DocNumber", "TxnDate", "TotalAmt", "Balance", "DueDate"})
_FILTERABLE: dict[str, frozenset[str]] = {
    "Customer": _META | _PARTY | {"Job", "ParentRef"},
    "Vendor": _META | _PARTY,
    "Account": _META
    | {
        "Name",
        "SubAccount",
        "ParentRef",
        "AccountType",
        "AccountSubType",
        "Classification",
        "Active",
        "CurrentBalance",
        "FullyQualifiedName",
        "AcctNum",
    },
    "Item": _META | {"Name", "Active", "Type", "Sku", "FullyQualifiedName"},
    "Class": _META | {"Name", "Active", "FullyQualifiedName"},
    "TaxCode": _META | {"Name", "Active", "Taxable"},
    "TaxRate": _META | {"Name", "Active"},
    "Invoice": _META | _TXN | {"CustomerRef"},
    "CreditMemo": _META | _TXN | {"CustomerRef"},
    "Bill": _META | _TXN | {"VendorRef"},
    "VendorCredit": _META | _TXN | {"VendorRef"},
    "Payment": _META | {"TxnDate", "TotalAmt", "CustomerRef"},
    "BillPayment": _META | {"DocNumber", "TxnDate", "TotalAmt", "VendorRef"},
    "Attachable": _META
    | {"AttachableRef.EntityRef.Type", "AttachableRef.EntityRef.value", "FileName"},
}
_LOWER = {e: {p.lower(): p for p in props} for e, props in _FILTERABLE.items()}


def check(entity: str, path: str) -> None:
    """Refuse a condition on ``path`` QBO would not take for ``entity`` (case-insensitive)."""
    allowed = _LOWER.get(entity)
    if allowed is None or path.lower() in allowed:
        return
    raise errors.QboFault(
        400,
        "4001",
        "Invalid query",
        f"QueryValidationError: property '{path}' is not queryable",
    )
