"""Payments and bill payments end to end, one test per ownership row."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import asyncpg
import pytest

from tests.e2e.builders import (
    TODAY,
    qbo_bank_account_id,
    qbo_customer,
    qbo_expense_account_id,
    qbo_expense_line,
    qbo_invoice,
    qbo_item_id,
    qbo_payment_lines,
    qbo_sales_line,
    qbo_vendor,
    rl_as_user,
    rl_document_body,
    seed_links,
)
from tests.e2e.conftest import Linked
from tests.e2e.readers import (
    flags,
    linked_qbo_id,
    linked_released,
    qbo_writes,
    rl_doc,
    rl_payments,
    settle,
)
from tests.e2e.stack import Stack, consumers, eventually, unique

pytestmark = pytest.mark.e2e


async def test_qbo_payment_allocations_change_and_void_mirror_as_reversals(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    async with consumers(stack.settings):
        cust = await qbo_customer(linked.qbo)
        item = await qbo_item_id(linked.qbo)
        first = await qbo_invoice(linked.qbo, cust["Id"], [qbo_sales_line(item, "1", "100.00")])
        second = await qbo_invoice(linked.qbo, cust["Id"], [qbo_sales_line(item, "1", "40.00")])
        payment = await linked.qbo.write(
            "Payment",
            {
                "CustomerRef": {"value": cust["Id"]},
                "TotalAmt": "70.00",
                "TxnDate": TODAY,
                "DepositToAccountRef": {"value": await qbo_bank_account_id(linked.qbo)},
                "Line": qbo_payment_lines({first["Id"]: "30.00", second["Id"]: "40.00"}),
            },
            request_id=unique("pay"),
        )
        rl_first = await linked_released(pool, "Invoice", str(first["Id"]), linked.connection)
        rl_second = await linked_released(pool, "Invoice", str(second["Id"]), linked.connection)

        async def state(doc: str, path: str = "/invoices") -> tuple[str, str]:
            found = await rl_doc(stack, linked.company, path, doc)
            return found["status"], found["amountDue"]

        async def reached(doc: str, wanted: tuple[str, str]) -> bool:
            return await state(doc) == wanted

        await eventually(lambda: reached(rl_first, ("APPROVED", "70.00")))
        await eventually(lambda: reached(rl_second, ("PAID", "0.00")))
        current = await linked.qbo.get("Payment", str(payment["Id"]))
        changed = await linked.qbo.write(
            "Payment",
            {
                "Id": payment["Id"],
                "SyncToken": current["SyncToken"],
                "sparse": True,
                "TotalAmt": "100.00",
                "Line": qbo_payment_lines({first["Id"]: "100.00"}),
            },
            request_id=unique("pay2"),
        )
        await eventually(lambda: reached(rl_first, ("PAID", "0.00")))
        await eventually(lambda: reached(rl_second, ("APPROVED", "40.00")))
        await linked.qbo.write(
            "Payment",
            {"Id": payment["Id"], "SyncToken": changed["SyncToken"]},
            request_id=unique("pay3"),
            operation="void",
        )
        await eventually(lambda: reached(rl_first, ("APPROVED", "100.00")))
        await settle()
    statuses = [p["status"] for p in await rl_payments(stack, linked.company, rl_first)]
    assert sorted(statuses) == ["REVERSED", "REVERSED"], "old reversed, new reversed by the void"
    assert [p["reversalSource"] for p in await rl_payments(stack, linked.company, rl_second)] == [
        "ACCOUNTING"
    ]
    payment_writes = (
        await stack.call(
            "GET", f"{stack.qbo_base}/_sandbox/realms/{linked.realm}/requests?entity=Payment"
        )
    )["requests"]
    assert len([r for r in payment_writes if r["write"]]) == 3, "nothing bounced back to QBO"


async def test_qbo_bill_payment_is_recorded_and_its_delete_reverses(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    async with consumers(stack.settings):
        vend = await qbo_vendor(linked.qbo)
        bill = await linked.qbo.write(
            "Bill",
            {
                "VendorRef": {"value": vend["Id"]},
                "TxnDate": TODAY,
                "Line": [qbo_expense_line(await qbo_expense_account_id(linked.qbo), "300.00")],
            },
            request_id=unique("bill"),
        )
        paid = await linked.qbo.write(
            "BillPayment",
            {
                "VendorRef": {"value": vend["Id"]},
                "PayType": "Check",
                "CheckPayment": {
                    "BankAccountRef": {"value": await qbo_bank_account_id(linked.qbo)}
                },
                "TotalAmt": "120.50",
                "TxnDate": TODAY,
                "Line": qbo_payment_lines({bill["Id"]: "120.50"}, "Bill"),
            },
            request_id=unique("bp"),
        )
        rl_bill = await linked_released(pool, "Bill", str(bill["Id"]), linked.connection)

        async def due(value: str) -> bool:
            return bool(
                (await rl_doc(stack, linked.company, "/invoices", rl_bill))["amountDue"] == value
            )

        await eventually(lambda: due("179.50"))
        current = await linked.qbo.get("BillPayment", str(paid["Id"]))
        await linked.qbo.write(
            "BillPayment",
            {"Id": paid["Id"], "SyncToken": current["SyncToken"]},
            request_id=unique("bpdel"),
            operation="delete",
        )
        await eventually(lambda: due("300.00"))
    (payment,) = await rl_payments(stack, linked.company, rl_bill)
    assert payment["status"] == "REVERSED"


async def test_released_payment_reaches_qbo_and_a_released_reversal_is_refused(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    async with consumers(stack.settings):
        ids = await seed_links(stack, linked.qbo, pool, linked.connection)
        doc = await rl_as_user(
            stack,
            linked.company,
            "POST",
            "/invoices",
            rl_document_body("INCOME", ids["customer"], ids["item"], "APPROVED"),
        )
        qbo_invoice_id = await eventually(lambda: linked_qbo_id(pool, "invoice", doc["id"]))
        banks = await stack.released_api(linked.company, "GET", "/accounts?pageSize=1000")
        bank = next(a for a in banks["items"] if a["type"] == "BANK")
        payment = await rl_as_user(
            stack,
            linked.company,
            "POST",
            "/payments",
            {
                "documentId": doc["id"],
                "date": TODAY,
                "amount": "21.00",
                "bankAccountId": bank["id"],
            },
        )
        qbo_payment = await eventually(lambda: linked_qbo_id(pool, "payment", payment["id"]))

        async def balance() -> Decimal:
            return Decimal(str((await linked.qbo.get("Invoice", qbo_invoice_id))["Balance"]))

        assert await balance() == Decimal("100.00")
        # Connected to QBO, Re-Leased refuses a user's reversal: payments are QBO's to reverse
        # (the engine's flag for one that slips through is covered by its unit tests).
        code = await stack.released_refusal(
            linked.company, "POST", f"/payments/{payment['id']}/reverse"
        )
        assert code == "REVERSE_IN_ACCOUNTING"
        await settle()
        assert await flags(pool, linked.connection, "payment") == 0
    assert await balance() == Decimal("100.00"), "the reversal never reached QBO"
    made = await linked.qbo.get("Payment", qbo_payment)
    assert Decimal(str(made["TotalAmt"])) == Decimal("21.00")
    payment_writes = (
        await stack.call(
            "GET", f"{stack.qbo_base}/_sandbox/realms/{linked.realm}/requests?entity=Payment"
        )
    )["requests"]
    assert len([r for r in payment_writes if r["write"]]) == 1


async def test_our_released_payment_seen_before_its_link_commits_is_not_sent_back(
    stack: Stack,
    linked: Linked,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Re-Leased's notification of a payment we just recorded overtakes our commit: it must be
    recognised as ours (retried until the link is there), never recorded in QBO again."""
    from shared.sync.context import SyncContext

    original = SyncContext.lock

    async def late_lock(self: SyncContext, *parts: str) -> None:
        if parts[:2] == ("released", "payment") and self.event.source == "qbo":
            await asyncio.sleep(2.5)  # Re-Leased's webhook for the new payment gets in first
        await original(self, *parts)

    async with consumers(stack.settings):
        cust = await qbo_customer(linked.qbo)
        invoice = await qbo_invoice(
            linked.qbo, cust["Id"], [qbo_sales_line(await qbo_item_id(linked.qbo), "1", "80.00")]
        )
        rl_invoice = await linked_released(pool, "Invoice", str(invoice["Id"]), linked.connection)
        monkeypatch.setattr(SyncContext, "lock", late_lock)
        await linked.qbo.write(
            "Payment",
            {
                "CustomerRef": {"value": cust["Id"]},
                "TotalAmt": "30.00",
                "TxnDate": TODAY,
                "DepositToAccountRef": {"value": await qbo_bank_account_id(linked.qbo)},
                "Line": qbo_payment_lines({invoice["Id"]: "30.00"}),
            },
            request_id=unique("pay"),
        )

        async def recorded() -> bool:
            return len(await rl_payments(stack, linked.company, rl_invoice)) == 1

        await eventually(recorded)
        await settle(6.0)
    assert await qbo_writes(stack, linked.realm, "Payment") == 1, "never sent back to QBO"
    assert Decimal(
        str((await linked.qbo.get("Invoice", str(invoice["Id"])))["Balance"])
    ) == Decimal("50.00")
