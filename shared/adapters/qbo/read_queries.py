"""Which QBO gets can be answered together, and the query that reads them in one request."""

from __future__ import annotations

import re

# Types whose query answers are the same objects a GET returns. Attachable (a GET adds the
# temporary download link) and CompanyInfo (read by realm id) always take the plain GET.
TRANSACTIONS = frozenset(
    {
        "Bill",
        "BillPayment",
        "CreditMemo",
        "Deposit",
        "Estimate",
        "Invoice",
        "JournalEntry",
        "Payment",
        "Purchase",
        "RefundReceipt",
        "SalesReceipt",
        "VendorCredit",
    }
)
# Name lists: never deleted, made inactive; a query without a condition on Active skips those.
NAME_LISTS = frozenset(
    {"Account", "Class", "Customer", "Employee", "Item", "TaxCode", "TaxRate", "Vendor"}
)
# Intuit's pages give 10, 30 or 50 payloads per batch (e.g.
# https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/batch);
# 10 is safe everywhere.
MAX_BATCH_ITEMS = 10
# Longer statements go in a POST body rather than the query string.
MAX_GET_QUERY_CHARS = 1500
_PLAIN_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


def coalescible(entity: str, entity_id: str) -> bool:
    return (entity in TRANSACTIONS or entity in NAME_LISTS) and bool(_PLAIN_ID.match(entity_id))


def statement_for(entity: str, ids: list[str]) -> str:
    quoted = ", ".join(f"'{i}'" for i in ids)
    active = " and Active in (true, false)" if entity in NAME_LISTS else ""
    return f"select * from {entity} where Id in ({quoted}){active} maxresults {len(ids)}"  # noqa: S608 - ids match _PLAIN_ID
