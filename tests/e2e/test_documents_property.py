"""Property: random interleavings of allowed document edits on both sides, under duplicated,
reordered and dropped webhooks and injected 5xx/429, end with both sides agreeing field by field
and no duplicate anywhere (the reconciler heals what the dropped webhooks never said).

Edits: new and edited invoices on both sides, approvals, concurrent edits, partial payments on
both sides, credit applied on both sides (a QBO credit memo used by a payment; a Re-Leased credit
note allocated), voids on both sides, and bills with bill payments and supplier credit. Bounded
on purpose (a few short examples) so the e2e suite stays within minutes.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared.domain.connections import Connection
from shared.domain.mapping.documents import is_qbo_void
from tests.e2e.agreement import converge, faults_off, faults_on
from tests.e2e.builders import (
    TODAY,
    qbo_bank_account_id,
    qbo_customer,
    qbo_expense_account_id,
    qbo_expense_line,
    qbo_item_id,
    qbo_sales_line,
    qbo_vendor,
    rl_document_body,
    seed_links,
)
from tests.e2e.readers import settle
from tests.e2e.stack import Stack, consumers

pytestmark = pytest.mark.e2e

ACTIONS = (
    "qbo_new",
    "qbo_edit",
    "rl_new",
    "rl_edit",
    "rl_approve",
    "both_edit",
    "qbo_pay",
    "rl_pay",
    "qbo_credit",
    "rl_credit",
    "qbo_void",
    "rl_void",
    "qbo_bill",
    "qbo_bill_pay",
    "rl_bill",
    "rl_supplier_credit",
)
STEPS = st.lists(
    st.tuples(
        st.sampled_from(ACTIONS),
        st.integers(min_value=0, max_value=3),
        st.sampled_from(["10.00", "25.50", "99.99", "1234.56"]),
    ),
    min_size=3,
    max_size=10,
)


def half(value: Any) -> str:
    return str((Decimal(str(value)) / 2).quantize(Decimal("0.01")))


async def tolerant(stack: Stack, method: str, url: str, body: Any = None) -> Any:
    """A user action that may be refused (e.g. editing a PAID document): that is allowed."""
    async with stack.http.request(method, url, json=body) as response:
        return await response.json(content_type=None) if response.status < 400 else None


async def linked_released_id(pool: asyncpg.Pool, connection: Connection, qbo_id: str) -> Any:
    async with pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT released_id FROM links WHERE connection_id = $1 AND qbo_type = 'Invoice' "
            "AND qbo_id = $2",
            connection.id,
            qbo_id,
        )


class World:
    """Both sandboxes as a user sees them, plus what each step created."""

    def __init__(self, stack: Stack, realm: str, company: str, ids: dict[str, str]) -> None:
        self.stack, self.realm, self.company, self.ids = stack, realm, company, ids
        self.qbo_docs: list[str] = []
        self.rl_docs: list[str] = []
        self.qbo_bills: list[str] = []
        self.rl_bills: list[str] = []
        self.vendor = ""
        self.expense_account = ""
        self.qbo_bank = ""
        self.customer = ""
        self.item = ""
        self.bank = ""

    def qbo_ui(self, path: str) -> str:
        return f"{self.stack.qbo_base}/_sandbox/realms/{self.realm}/ui/{path}"

    def rl_user(self, path: str) -> str:
        return f"{self.stack.released_base}/_sandbox/companies/{self.company}/as-user{path}"

    async def qbo_lines(self, qbo_id: str, amount: str) -> None:
        body = {"Id": qbo_id, "Line": [qbo_sales_line(self.item, "1", amount)]}
        await tolerant(self.stack, "POST", self.qbo_ui("invoice"), body)

    async def rl_lines(self, rl_id: str, amount: str) -> None:
        lines = [{"description": "Fit-out", "unitAmount": amount, "accountId": self.ids["item"]}]
        await tolerant(self.stack, "PATCH", self.rl_user(f"/invoices/{rl_id}"), {"lines": lines})

    async def qbo_get(self, entity: str, qbo_id: str) -> dict[str, Any] | None:
        url = f"{self.stack.qbo_base}/_sandbox/realms/{self.realm}/objects/{entity}/{qbo_id}"
        found = await tolerant(self.stack, "GET", url)
        return dict(found[entity]) if found else None

    async def qbo_payment(self, pick: int, credit: str | None) -> bool:
        """Half of a QBO invoice's balance in cash; or, with ``credit``, a new credit memo of
        that much used against it (the payment's cash is what the credit does not cover)."""
        if not self.qbo_docs:
            return False
        qbo_id = self.qbo_docs[pick % len(self.qbo_docs)]
        doc = await self.qbo_get("Invoice", qbo_id)
        if not doc or Decimal(str(doc.get("Balance", 0))) <= 0:
            return False
        owed = half(doc["Balance"])
        lines = [{"Amount": owed, "LinkedTxn": [{"TxnId": qbo_id, "TxnType": "Invoice"}]}]
        cash = owed
        if credit is not None:
            used = min(Decimal(credit), Decimal(owed))
            body = {"CustomerRef": {"value": self.customer}, "TxnDate": TODAY}
            memo = await tolerant(
                self.stack,
                "POST",
                self.qbo_ui("creditmemo"),
                {**body, "Line": [qbo_sales_line(self.item, "1", str(used))]},
            )
            if not memo:
                return False
            memo_id = memo["CreditMemo"]["Id"]
            lines.append(
                {"Amount": str(used), "LinkedTxn": [{"TxnId": memo_id, "TxnType": "CreditMemo"}]}
            )
            cash = str(Decimal(owed) - used)
        payment = {
            "CustomerRef": {"value": self.customer},
            "TxnDate": TODAY,
            "TotalAmt": cash,
            "Line": lines,
        }
        return bool(await tolerant(self.stack, "POST", self.qbo_ui("payment"), payment))

    async def rl_payment(self, pick: int, credit: str | None) -> bool:
        """Half of a Re-Leased invoice's amount due in cash; or, with ``credit``, a new credit
        note of that much allocated to it."""
        if not self.rl_docs:
            return False
        rl_id = self.rl_docs[pick % len(self.rl_docs)]
        doc = await tolerant(self.stack, "GET", self.rl_user(f"/invoices/{rl_id}"))
        if not doc or doc["status"] != "APPROVED":
            return False
        owed = half(doc["amountDue"])
        if credit is None:
            body = {"documentId": rl_id, "date": TODAY, "amount": owed, "bankAccountId": self.bank}
            return bool(await tolerant(self.stack, "POST", self.rl_user("/payments"), body))
        note_body = rl_document_body(
            "INCOME_CREDIT", self.ids["customer"], self.ids["item"], "APPROVED"
        )
        note_body["lines"][0].update(
            quantity="1", unitAmount=str(min(Decimal(credit), Decimal(owed)))
        )
        note = await tolerant(self.stack, "POST", self.rl_user("/credit-notes"), note_body)
        if not note:
            return False
        allocation = {"invoiceId": rl_id, "amount": note["total"], "date": TODAY}
        path = f"/credit-notes/{note['id']}/allocations"
        return bool(await tolerant(self.stack, "POST", self.rl_user(path), allocation))

    async def step(self, action: str, pick: int, amount: str, pool: Any, conn: Any) -> None:
        done = await getattr(self, action)(pick, amount, pool, conn)
        event(f"{action}: {'done' if done else 'nothing to do'}")

    async def qbo_new(self, pick: int, amount: str, *_: Any) -> bool:
        body = {
            "CustomerRef": {"value": self.customer},
            "TxnDate": TODAY,
            "Line": [qbo_sales_line(self.item, "1", amount)],
        }
        made = await tolerant(self.stack, "POST", self.qbo_ui("invoice"), body)
        if made:
            self.qbo_docs.append(str(made.get("Invoice", made)["Id"]))
        return bool(made)

    async def rl_new(self, pick: int, amount: str, *_: Any) -> bool:
        status = ("DRAFT", "AWAITING_APPROVAL", "APPROVED")[pick % 3]
        body = rl_document_body("INCOME", self.ids["customer"], self.ids["item"], status)
        made = await tolerant(self.stack, "POST", self.rl_user("/invoices"), body)
        if made:
            self.rl_docs.append(str(made["id"]))
        return bool(made)

    async def qbo_edit(self, pick: int, amount: str, *_: Any) -> bool:
        if not self.qbo_docs:
            return False
        await self.qbo_lines(self.qbo_docs[pick % len(self.qbo_docs)], amount)
        return True

    async def rl_edit(self, pick: int, amount: str, *_: Any) -> bool:
        if not self.rl_docs:
            return False
        await self.rl_lines(self.rl_docs[pick % len(self.rl_docs)], amount)
        return True

    async def rl_approve(self, pick: int, *_: Any) -> bool:
        if not self.rl_docs:
            return False
        doc = self.rl_docs[pick % len(self.rl_docs)]
        return bool(await tolerant(self.stack, "POST", self.rl_user(f"/invoices/{doc}/approve")))

    async def both_edit(self, pick: int, amount: str, pool: Any, conn: Any) -> bool:
        if not self.qbo_docs:
            return False
        qbo_id = self.qbo_docs[pick % len(self.qbo_docs)]
        rl_id = await linked_released_id(pool, conn, qbo_id)
        await self.qbo_lines(qbo_id, amount)
        if rl_id:  # a concurrent edit: the merge decides, QBO wins a clash
            await self.rl_lines(str(rl_id), str(Decimal(amount) + 1))
        return True

    async def qbo_pay(self, pick: int, *_: Any) -> bool:
        return await self.qbo_payment(pick, None)

    async def qbo_credit(self, pick: int, amount: str, *_: Any) -> bool:
        return await self.qbo_payment(pick, amount)

    async def rl_pay(self, pick: int, *_: Any) -> bool:
        return await self.rl_payment(pick, None)

    async def rl_credit(self, pick: int, amount: str, *_: Any) -> bool:
        return await self.rl_payment(pick, amount)

    async def qbo_void(self, pick: int, *_: Any) -> bool:
        if not self.qbo_docs:
            return False
        qbo_id = self.qbo_docs[pick % len(self.qbo_docs)]
        doc = await self.qbo_get("Invoice", qbo_id)
        # Only unpaid ones: Re-Leased cannot void a document with money on it.
        if not doc or doc.get("Balance") != doc.get("TotalAmt"):
            return False
        return bool(await tolerant(self.stack, "POST", self.qbo_ui(f"invoice/{qbo_id}/void")))

    async def qbo_bill(self, pick: int, amount: str, *_: Any) -> bool:
        body = {
            "VendorRef": {"value": self.vendor},
            "TxnDate": TODAY,
            "Line": [qbo_expense_line(self.expense_account, amount)],
        }
        made = await tolerant(self.stack, "POST", self.qbo_ui("bill"), body)
        if made:
            self.qbo_bills.append(str(made["Bill"]["Id"]))
        return bool(made)

    async def qbo_bill_pay(self, pick: int, *_: Any) -> bool:
        """Half of a QBO bill's balance, by cheque."""
        if not self.qbo_bills:
            return False
        bill_id = self.qbo_bills[pick % len(self.qbo_bills)]
        bill = await self.qbo_get("Bill", bill_id)
        if not bill or Decimal(str(bill.get("Balance", 0))) <= 0:
            return False
        owed = half(bill["Balance"])
        payment = {
            "VendorRef": {"value": self.vendor},
            "TxnDate": TODAY,
            "PayType": "Check",
            "CheckPayment": {"BankAccountRef": {"value": self.qbo_bank}},
            "TotalAmt": owed,
            "Line": [{"Amount": owed, "LinkedTxn": [{"TxnId": bill_id, "TxnType": "Bill"}]}],
        }
        return bool(await tolerant(self.stack, "POST", self.qbo_ui("billpayment"), payment))

    async def rl_bill(self, pick: int, *_: Any) -> bool:
        body = rl_document_body("EXPENSE", self.ids["vendor"], self.ids["account"], "APPROVED")
        made = await tolerant(self.stack, "POST", self.rl_user("/invoices"), body)
        if made:
            self.rl_bills.append(str(made["id"]))
        return bool(made)

    async def rl_supplier_credit(self, pick: int, amount: str, *_: Any) -> bool:
        """A supplier credit note of up to half a Re-Leased bill's amount due, allocated to it."""
        if not self.rl_bills:
            return False
        bill_id = self.rl_bills[pick % len(self.rl_bills)]
        bill = await tolerant(self.stack, "GET", self.rl_user(f"/invoices/{bill_id}"))
        if not bill or bill["status"] != "APPROVED":
            return False
        body = rl_document_body(
            "EXPENSE_CREDIT", self.ids["vendor"], self.ids["account"], "APPROVED"
        )
        credit = min(Decimal(amount), Decimal(half(bill["amountDue"])))
        body["lines"][0].update(quantity="1", unitAmount=str(credit))
        note = await tolerant(self.stack, "POST", self.rl_user("/credit-notes"), body)
        if not note:
            return False
        allocation = {"invoiceId": bill_id, "amount": note["total"], "date": TODAY}
        path = f"/credit-notes/{note['id']}/allocations"
        return bool(await tolerant(self.stack, "POST", self.rl_user(path), allocation))

    async def rl_void(self, pick: int, *_: Any) -> bool:
        if not self.rl_docs:
            return False
        doc = self.rl_docs[pick % len(self.rl_docs)]
        return bool(await tolerant(self.stack, "POST", self.rl_user(f"/invoices/{doc}/void")))


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
async def test_random_edits_under_faults_converge_without_duplicates(
    stack: Stack,
    pool: asyncpg.Pool,
    broker: AbstractRobustConnection,
    steps: list[tuple[str, int, str]],
) -> None:
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    await asyncio.sleep(1.1)  # CDC works in whole seconds: seed data predates the connection
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    async with consumers(stack.settings):
        world = World(stack, realm, company, await seed_links(stack, qbo, pool, connection))
        world.customer, world.item = str((await qbo_customer(qbo))["Id"]), await qbo_item_id(qbo)
        world.vendor, world.expense_account = (
            str((await qbo_vendor(qbo))["Id"]),
            await qbo_expense_account_id(qbo),
        )
        world.qbo_bank = await qbo_bank_account_id(qbo)
        accounts = await stack.released_api(company, "GET", "/accounts?pageSize=1000")
        world.bank = next(a["id"] for a in accounts["items"] if a["type"] == "BANK")
        await faults_on(stack, realm, company)
        # An invoice and a bill on each side to start with, so that payments, credit and voids
        # have something to work on from the first random step.
        start = [("qbo_new", 0, "250.00"), ("rl_new", 2, "0"), ("qbo_bill", 0, "300.00")]
        for action, pick, amount in [*start, ("rl_bill", 0, "0"), *steps]:
            await world.step(action, pick, amount, pool, connection)
        await settle(1.0)
        await faults_off(stack, realm, company)
        await converge(stack, connection, pool, broker)
    # A document created and voided before it ever synced stays on its own side.
    qbo_invoices = [i for i in await qbo.query_all("Invoice") if not is_qbo_void(i)]
    async with pool.acquire() as conn:
        linked = await conn.fetchval(
            "SELECT count(*) FROM links WHERE connection_id = $1 AND qbo_type = 'Invoice' "
            "AND status <> 'voided'",
            connection.id,
        )
    assert linked == len(qbo_invoices), "every QBO invoice has exactly one Re-Leased twin"
