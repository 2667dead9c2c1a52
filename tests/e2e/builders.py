"""Builders for the end-to-end tests: master data, lines and documents made in QBO through our
client, documents made in Re-Leased as one of its users would, and the links a Re-Leased
document needs before the engine can take it to QBO.

Names say which side a thing is made on: ``qbo_*`` through the QBO API, ``rl_*`` in Re-Leased.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg

from shared.adapters.postgres.dead_letters import DeadLetter, DeadLetterRepository
from shared.adapters.qbo.client import QboClient
from shared.domain.connections import Connection
from shared.domain.events import ChangeEvent
from tests.e2e.readers import linked_released
from tests.e2e.stack import Stack, unique

TODAY = "2026-11-20"


# -- QBO master data: new contacts, and the ids of the sandbox's seed data ---------------------


async def qbo_customer(qbo: QboClient, name: str | None = None) -> dict[str, Any]:
    """A new QBO customer (a unique "Tenant …" name unless ``name`` is given)."""
    return await qbo.write(
        "Customer", {"DisplayName": name or unique("Tenant")}, request_id=unique("c")
    )


async def qbo_vendor(qbo: QboClient, name: str | None = None) -> dict[str, Any]:
    """A new QBO vendor (a unique "Supplier …" name unless ``name`` is given)."""
    return await qbo.write(
        "Vendor", {"DisplayName": name or unique("Supplier")}, request_id=unique("v")
    )


async def qbo_item_id(qbo: QboClient, name: str = "Services") -> str:
    """The id of the seeded QBO item called ``name``."""
    (item,) = await qbo.query_all("Item", f"Name = '{name}'")
    return str(item["Id"])


async def qbo_sales_tax_code_id(qbo: QboClient) -> str:
    """The id of the seeded QBO tax code "State Sales Tax"."""
    (code,) = await qbo.query_all("TaxCode", "Name = 'State Sales Tax'")
    return str(code["Id"])


async def qbo_expense_account_id(qbo: QboClient) -> str:
    """The id of the first seeded QBO expense account."""
    rows = await qbo.query_all("Account", "AccountType = 'Expense'")
    return str(rows[0]["Id"])


async def qbo_bank_account_id(qbo: QboClient) -> str:
    """The id of the seeded QBO bank account "Checking"."""
    (bank,) = await qbo.query_all("Account", "Name = 'Checking'")
    return str(bank["Id"])


# -- QBO lines and documents --------------------------------------------------------------------


def qbo_sales_line(item: str, qty: str, price: str, taxed: bool = False) -> dict[str, Any]:
    """An invoice or credit memo line: ``qty`` of ``item`` at ``price``, "Rent"."""
    amount = Decimal(qty) * Decimal(price)
    return {
        "Amount": str(amount),
        "DetailType": "SalesItemLineDetail",
        "Description": "Rent",
        "SalesItemLineDetail": {
            "ItemRef": {"value": item},
            "Qty": qty,
            "UnitPrice": price,
            "TaxCodeRef": {"value": "TAX" if taxed else "NON"},
        },
    }


def qbo_expense_line(account: str, amount: str) -> dict[str, Any]:
    """A bill, vendor credit or purchase line: ``amount`` on expense ``account``, "Repairs"."""
    return {
        "Amount": amount,
        "DetailType": "AccountBasedExpenseLineDetail",
        "Description": "Repairs",
        "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account}},
    }


def qbo_payment_lines(
    allocations: dict[str, str], txn_type: str = "Invoice"
) -> list[dict[str, Any]]:
    """Payment (or bill payment) lines: each document id of ``allocations`` paid its amount."""
    return [
        {"Amount": amount, "LinkedTxn": [{"TxnId": doc, "TxnType": txn_type}]}
        for doc, amount in allocations.items()
    ]


async def qbo_invoice(
    qbo: QboClient, customer_id: str, lines: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """A new QBO invoice dated ``TODAY`` with ``lines`` (and any other fields in ``extra``)."""
    body = {"CustomerRef": {"value": customer_id}, "TxnDate": TODAY, "Line": lines, **extra}
    return await qbo.write("Invoice", body, request_id=unique("inv"))


# -- Re-Leased, as one of its users -------------------------------------------------------------


async def rl_as_user(stack: Stack, company: str, method: str, path: str, body: Any = None) -> Any:
    """Call the Re-Leased sandbox's API as a user of ``company`` would (its web app)."""
    url = f"{stack.released_base}/_sandbox/companies/{company}/as-user{path}"
    return (
        await stack.call(method, url, json=body)
        if body is not None
        else await stack.call(method, url)
    )


def rl_document_body(
    kind: str, contact: str, account: str, status: str, **extra: Any
) -> dict[str, Any]:
    """A Re-Leased invoice or credit note of ``kind`` (INCOME, EXPENSE, INCOME_CREDIT,
    EXPENSE_CREDIT) in ``status``, dated ``TODAY``: one line of 2 x 60.50 on ``account``."""
    return {
        "type": kind,
        "contactId": contact,
        "date": TODAY,
        "status": status,
        "lines": [
            {"description": "Fit-out", "quantity": "2", "unitAmount": "60.50", "accountId": account}
        ],
        **extra,
    }


_ROLE = {"INCOME": ("customer", "item"), "EXPENSE": ("vendor", "account")}


async def rl_approved_document(stack: Stack, company: str, ids: dict[str, str], kind: str) -> Any:
    """An APPROVED Re-Leased document of ``kind`` (INCOME, EXPENSE, INCOME_CREDIT,
    EXPENSE_CREDIT) on the contact and account ``seed_links`` linked."""
    contact, account = _ROLE[kind.removesuffix("_CREDIT")]
    path = "/credit-notes" if kind.endswith("_CREDIT") else "/invoices"
    body = rl_document_body(kind, ids[contact], ids[account], "APPROVED")
    return await rl_as_user(stack, company, "POST", path, body)


# -- both sides ---------------------------------------------------------------------------------


async def seed_links(
    stack: Stack, qbo: QboClient, pool: asyncpg.Pool, connection: Connection
) -> dict[str, str]:
    """Make QBO's master data known to Re-Leased by syncing one invoice and one bill.

    Returns the Re-Leased ids of the Services item, an expense account and the two contacts.
    """
    cust, vend = await qbo_customer(qbo), await qbo_vendor(qbo)
    item, account = await qbo_item_id(qbo), await qbo_expense_account_id(qbo)
    invoice = await qbo_invoice(qbo, cust["Id"], [qbo_sales_line(item, "1", "10.00")])
    bill = await qbo.write(
        "Bill",
        {
            "VendorRef": {"value": vend["Id"]},
            "TxnDate": TODAY,
            "Line": [qbo_expense_line(account, "5")],
        },
        request_id=unique("bill"),
    )
    await linked_released(pool, "Invoice", str(invoice["Id"]), connection)
    await linked_released(pool, "Bill", str(bill["Id"]), connection)
    return {
        "item": await linked_released(pool, "Item", item, connection),
        "account": await linked_released(pool, "Account", account, connection),
        "customer": await linked_released(pool, "Customer", str(cust["Id"]), connection),
        "vendor": await linked_released(pool, "Vendor", str(vend["Id"]), connection),
    }


# -- our tables ---------------------------------------------------------------------------------


async def dead_letter(pool: asyncpg.Pool, event: ChangeEvent, queue: str) -> int:
    """``event`` recorded as a dead letter of ``queue``, as if it had failed for good (a tax
    rate since fixed); returns the letter's id."""
    letter = DeadLetter(
        event_id=event.event_id,
        routing_key=f"{event.source}.{event.entity}",
        queue=queue,
        event=event.model_dump(mode="json"),
        error_class="PermanentError",
        error="tax rate not linked",
        remedy=None,
        attempts=1,
    )
    async with pool.acquire() as conn:
        letter_id: int = await DeadLetterRepository(conn).record(letter)
        return letter_id
