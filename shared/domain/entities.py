"""Which QBO and Re-Leased record types the product cares about, and how they are observed."""

from __future__ import annotations

# QBO types that map to a canonical entity (see ``shared.domain.ownership``).
QBO_SYNCED_TYPES: tuple[str, ...] = (
    "Customer",
    "Vendor",
    "Account",
    "Class",
    "Item",
    "Invoice",
    "Bill",
    "CreditMemo",
    "VendorCredit",
    "Payment",
    "BillPayment",
)
# Webhooks never announce these, and CDC does not cover the tax ones: they are polled.
QBO_POLLED_TYPES: tuple[str, ...] = ("TaxCode", "TaxRate", "Attachable")
# Spend/receive money and the rest: seen, logged, never synced.
QBO_IGNORED_TYPES: tuple[str, ...] = (
    "Purchase",
    "Deposit",
    "SalesReceipt",
    "RefundReceipt",
    "Transfer",
    "JournalEntry",
)
# CDC answers at most this many objects; reaching it means the window must be paged.
CDC_MAX_OBJECTS = 1000
CDC_MAX_DAYS = 30
