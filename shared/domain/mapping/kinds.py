"""The four document kinds and how each is named on both sides."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DocKind:
    entity: str  # canonical
    qbo_type: str
    released_path: str  # collection on the Re-Leased API
    released_category: str  # Re-Leased event category, lower-cased
    released_type: str
    party: str  # QBO contact type
    sales: bool  # QBO sales lines (SalesItemLineDetail) vs expense lines
    api_void: bool  # QBO can void it through the API; otherwise a Re-Leased void deletes

    @property
    def qbo_word(self) -> str:
        return self.qbo_type.lower()


INVOICE = DocKind("invoice", "Invoice", "/invoices", "invoice", "INCOME", "Customer", True, True)
BILL = DocKind("bill", "Bill", "/invoices", "invoice", "EXPENSE", "Vendor", False, False)
CREDIT_NOTE = DocKind(
    "credit_note",
    "CreditMemo",
    "/credit-notes",
    "creditnote",
    "INCOME_CREDIT",
    "Customer",
    True,
    False,
)
VENDOR_CREDIT = DocKind(
    "vendor_credit",
    "VendorCredit",
    "/credit-notes",
    "creditnote",
    "EXPENSE_CREDIT",
    "Vendor",
    False,
    False,
)
KINDS = (INVOICE, BILL, CREDIT_NOTE, VENDOR_CREDIT)
BY_QBO_WORD = {k.qbo_word: k for k in KINDS}
BY_RELEASED_TYPE = {k.released_type: k for k in KINDS}
