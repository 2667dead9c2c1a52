"""What the sandbox knows about each QBO entity: kind, rules for delete and void, webhooks.

Facts from Intuit's pages: which operations notify
(https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks) and the delete and void rules
of each entity's API reference (e.g.
https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    NAME_LIST = "name_list"  # never deleted: Active=false instead
    TRANSACTION = "transaction"  # hard-deleted
    READ_ONLY = "read_only"  # read and query only through the API (TaxCode, TaxRate)
    CREATE_ONLY = "create_only"  # create, read, query (TaxAgency)
    ATTACHMENT = "attachment"


class VoidForm(Enum):
    OPERATION_VOID = "operation=void"
    UPDATE_INCLUDE_VOID = "operation=update&include=void"


@dataclass(frozen=True)
class EntitySpec:
    name: str
    kind: Kind
    notifies: frozenset[str]  # legacy operation words: Create, Update, Delete, Merge, Void
    void_forms: frozenset[VoidForm] = frozenset()
    unique_name: str | None = None  # field that must be unique (6240)
    required: tuple[str, ...] = ()
    cdc: bool = True


_NAME_OPS = frozenset({"Create", "Update", "Delete", "Merge"})
_TXN_OPS = frozenset({"Create", "Update", "Delete"})
_VOIDABLE_OPS = frozenset({"Create", "Update", "Delete", "Void"})
_EMAILED_OPS = frozenset({"Create", "Update", "Delete", "Void", "Emailed"})
_BOTH_VOIDS = frozenset({VoidForm.OPERATION_VOID, VoidForm.UPDATE_INCLUDE_VOID})

_SPECS = (
    EntitySpec("Customer", Kind.NAME_LIST, _NAME_OPS, unique_name="DisplayName"),
    EntitySpec("Vendor", Kind.NAME_LIST, _NAME_OPS, unique_name="DisplayName"),
    EntitySpec("Employee", Kind.NAME_LIST, _NAME_OPS, unique_name="DisplayName"),
    EntitySpec(
        "Account", Kind.NAME_LIST, _NAME_OPS, unique_name="Name", required=("Name", "AccountType")
    ),
    EntitySpec("Class", Kind.NAME_LIST, _NAME_OPS, unique_name="Name", required=("Name",)),
    EntitySpec("Item", Kind.NAME_LIST, _NAME_OPS, unique_name="Name", required=("Name",)),
    EntitySpec("TaxAgency", Kind.CREATE_ONLY, frozenset({"Create", "Update"}), cdc=False),
    EntitySpec("TaxCode", Kind.READ_ONLY, frozenset(), cdc=False),
    EntitySpec("TaxRate", Kind.READ_ONLY, frozenset(), cdc=False),
    EntitySpec("CompanyInfo", Kind.READ_ONLY, frozenset(), cdc=False),
    EntitySpec("Preferences", Kind.READ_ONLY, frozenset(), cdc=False),
    EntitySpec(
        "Invoice",
        Kind.TRANSACTION,
        _EMAILED_OPS,
        frozenset({VoidForm.OPERATION_VOID}),
        required=("CustomerRef", "Line"),
    ),
    EntitySpec("Bill", Kind.TRANSACTION, _TXN_OPS, required=("VendorRef", "Line")),
    EntitySpec("CreditMemo", Kind.TRANSACTION, _EMAILED_OPS, required=("CustomerRef", "Line")),
    EntitySpec("VendorCredit", Kind.TRANSACTION, _TXN_OPS, required=("VendorRef", "Line")),
    EntitySpec(
        "Payment", Kind.TRANSACTION, _EMAILED_OPS, _BOTH_VOIDS, required=("CustomerRef", "TotalAmt")
    ),
    EntitySpec(
        "BillPayment",
        Kind.TRANSACTION,
        _VOIDABLE_OPS,
        frozenset({VoidForm.UPDATE_INCLUDE_VOID}),
        required=("VendorRef", "PayType", "TotalAmt"),
    ),
    EntitySpec("Attachable", Kind.ATTACHMENT, frozenset()),
    EntitySpec("Purchase", Kind.TRANSACTION, _VOIDABLE_OPS, required=("PaymentType", "Line")),
    EntitySpec("Deposit", Kind.TRANSACTION, _TXN_OPS, required=("DepositToAccountRef", "Line")),
    EntitySpec("SalesReceipt", Kind.TRANSACTION, _EMAILED_OPS, _BOTH_VOIDS, required=("Line",)),
    EntitySpec("RefundReceipt", Kind.TRANSACTION, _EMAILED_OPS, required=("Line",)),
    EntitySpec(
        "Transfer",
        Kind.TRANSACTION,
        _VOIDABLE_OPS,
        required=("FromAccountRef", "ToAccountRef", "Amount"),
    ),
    EntitySpec("JournalEntry", Kind.TRANSACTION, _TXN_OPS, required=("Line",)),
)

ENTITIES: dict[str, EntitySpec] = {spec.name: spec for spec in _SPECS}
_BY_LOWER = {name.lower(): name for name in ENTITIES}

# Display names share one namespace across these three (error 6240).
PEOPLE = ("Customer", "Vendor", "Employee")
SALES = frozenset({"Invoice", "CreditMemo", "SalesReceipt", "RefundReceipt"})
EXPENSES = frozenset({"Bill", "VendorCredit", "Purchase"})


def canonical(name: str) -> str | None:
    """The entity's QBO spelling for any casing a client puts in a path or query."""
    return _BY_LOWER.get(name.lower())


# CloudEvents operation words (https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks/data-objects);
# Intuit does not spell out the void word, we send "voided".
CE_OPERATION = {
    "Create": "created",
    "Update": "updated",
    "Delete": "deleted",
    "Merge": "merged",
    "Void": "voided",
    "Emailed": "emailed",
}
