"""Credit used up, end to end: credit memos and vendor credits applied to documents (Re-Leased
allocations) and paid back (refunds: Re-Leased payments on credit notes), both directions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from shared.adapters.qbo.client import QboClient
from tests.e2e.builders import (
    TODAY,
    qbo_bank_account_id,
    qbo_customer,
    qbo_expense_account_id,
    qbo_expense_line,
    qbo_invoice,
    qbo_item_id,
    qbo_sales_line,
    qbo_vendor,
    rl_approved_document,
    rl_as_user,
    seed_links,
)
from tests.e2e.conftest import Linked
from tests.e2e.readers import (
    linked_qbo_id,
    linked_released,
    qbo_writes,
    rl_doc,
    rl_payments,
    settle,
)
from tests.e2e.stack import Stack, consumers, eventually, unique

pytestmark = pytest.mark.e2e


def applied(amount: str, txn_type: str, txn_id: str) -> dict[str, Any]:
    return {"Amount": amount, "LinkedTxn": [{"TxnId": str(txn_id), "TxnType": txn_type}]}


async def money_of(stack: Stack, company: str, path: str, doc_id: str) -> tuple[str, ...]:
    doc = await rl_doc(stack, company, path, doc_id)
    return doc["status"], doc["amountPaid"], doc["amountCredited"], doc["amountDue"]


def live(note: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["invoiceId"], a["amount"]) for a in note["allocations"] if not a["isDeleted"]]


async def test_qbo_payment_using_a_credit_memo_becomes_an_allocation_and_follows_changes(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    async with consumers(stack.settings):
        cust = await qbo_customer(linked.qbo)
        item = await qbo_item_id(linked.qbo)
        invoice = await qbo_invoice(linked.qbo, cust["Id"], [qbo_sales_line(item, "1", "100.00")])
        memo = await linked.qbo.write(
            "CreditMemo",
            {"CustomerRef": {"value": cust["Id"]}, "Line": [qbo_sales_line(item, "1", "30.00")]},
            request_id=unique("cm"),
        )
        rl_invoice = await linked_released(pool, "Invoice", str(invoice["Id"]), linked.connection)
        rl_note = await linked_released(pool, "CreditMemo", str(memo["Id"]), linked.connection)
        payment = await linked.qbo.write(
            "Payment",
            {
                "CustomerRef": {"value": cust["Id"]},
                "TotalAmt": "70.00",
                "TxnDate": TODAY,
                "DepositToAccountRef": {"value": await qbo_bank_account_id(linked.qbo)},
                "Line": [
                    applied("100.00", "Invoice", invoice["Id"]),
                    applied("30.00", "CreditMemo", memo["Id"]),
                ],
            },
            request_id=unique("pay"),
        )

        async def invoice_is(*wanted: str) -> bool:
            return await money_of(stack, linked.company, "/invoices", rl_invoice) == wanted

        await eventually(lambda: invoice_is("PAID", "70.00", "30.00", "0.00"))
        note = await rl_doc(stack, linked.company, "/credit-notes", rl_note)
        assert (note["status"], note["remainingCredit"]) == ("PAID", "0.00")
        assert live(note) == [(rl_invoice, "30.00")]

        # Less credit and less cash: the old allocation and payment go, the new ones come.
        current = await linked.qbo.get("Payment", str(payment["Id"]))
        changed = await linked.qbo.write(
            "Payment",
            {
                "Id": payment["Id"],
                "SyncToken": current["SyncToken"],
                "sparse": True,
                "TotalAmt": "20.00",
                "Line": [
                    applied("30.00", "Invoice", invoice["Id"]),
                    applied("10.00", "CreditMemo", memo["Id"]),
                ],
            },
            request_id=unique("pay2"),
        )
        await eventually(lambda: invoice_is("APPROVED", "20.00", "10.00", "70.00"))
        note = await rl_doc(stack, linked.company, "/credit-notes", rl_note)
        assert (note["status"], note["remainingCredit"]) == ("APPROVED", "20.00")
        assert live(note) == [(rl_invoice, "10.00")]

        # A void takes back the credit as well as the cash.
        await linked.qbo.write(
            "Payment",
            {"Id": payment["Id"], "SyncToken": changed["SyncToken"]},
            request_id=unique("pay3"),
            operation="void",
        )
        await eventually(lambda: invoice_is("APPROVED", "0.00", "0.00", "100.00"))
        await settle()
    note = await rl_doc(stack, linked.company, "/credit-notes", rl_note)
    assert (note["remainingCredit"], live(note)) == ("30.00", [])
    assert len(note["allocations"]) == 2, "undone allocations stay listed, marked deleted"
    statuses = sorted(p["status"] for p in await rl_payments(stack, linked.company, rl_invoice))
    assert statuses == ["REVERSED", "REVERSED"]
    assert await qbo_writes(stack, linked.realm, "Payment") == 3, "nothing bounced back to QBO"


async def test_qbo_bill_payment_using_a_vendor_credit_becomes_an_allocation(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    async with consumers(stack.settings):
        vend = await qbo_vendor(linked.qbo)
        account = await qbo_expense_account_id(linked.qbo)
        party = {"VendorRef": {"value": vend["Id"]}, "TxnDate": TODAY}
        bill = await linked.qbo.write(
            "Bill", {**party, "Line": [qbo_expense_line(account, "80.00")]}, request_id=unique("b")
        )
        credit = await linked.qbo.write(
            "VendorCredit",
            {**party, "Line": [qbo_expense_line(account, "80.00")]},
            request_id=unique("vc"),
        )
        rl_bill = await linked_released(pool, "Bill", str(bill["Id"]), linked.connection)
        rl_note = await linked_released(pool, "VendorCredit", str(credit["Id"]), linked.connection)
        await linked.qbo.write(
            "BillPayment",
            {
                **party,
                "PayType": "Check",
                "CheckPayment": {
                    "BankAccountRef": {"value": await qbo_bank_account_id(linked.qbo)}
                },
                "TotalAmt": "0.00",
                "Line": [
                    applied("80.00", "Bill", bill["Id"]),
                    applied("80.00", "VendorCredit", credit["Id"]),
                ],
            },
            request_id=unique("bp"),
        )

        async def bill_is(*wanted: str) -> bool:
            return await money_of(stack, linked.company, "/invoices", rl_bill) == wanted

        await eventually(lambda: bill_is("PAID", "0.00", "80.00", "0.00"))
        await settle()
    note = await rl_doc(stack, linked.company, "/credit-notes", rl_note)
    assert live(note) == [(rl_bill, "80.00")]
    assert await rl_payments(stack, linked.company, rl_bill) == [], "no cash was paid"
    assert await qbo_writes(stack, linked.realm, "BillPayment") == 1


async def test_qbo_refund_of_a_credit_memo_becomes_a_payment_on_the_credit_note(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    async with consumers(stack.settings):
        cust = await qbo_customer(linked.qbo)
        memo = await linked.qbo.write(
            "CreditMemo",
            {
                "CustomerRef": {"value": cust["Id"]},
                "Line": [qbo_sales_line(await qbo_item_id(linked.qbo), "1", "45.00")],
            },
            request_id=unique("cm"),
        )
        rl_note = await linked_released(pool, "CreditMemo", str(memo["Id"]), linked.connection)
        (receivable,) = await linked.qbo.query_all("Account", "AccountType = 'Accounts Receivable'")
        refund = await linked.qbo.write(
            "Purchase",
            {
                "PaymentType": "Cash",
                "AccountRef": {"value": await qbo_bank_account_id(linked.qbo)},
                "EntityRef": {"value": cust["Id"], "type": "Customer"},
                "TxnDate": TODAY,
                "Line": [
                    {
                        "Amount": "45.00",
                        "DetailType": "AccountBasedExpenseLineDetail",
                        "AccountBasedExpenseLineDetail": {
                            "AccountRef": {"value": receivable["Id"]}
                        },
                    }
                ],
            },
            request_id=unique("refund"),
        )
        await linked.qbo.write(
            "Payment",
            {
                "CustomerRef": {"value": cust["Id"]},
                "TotalAmt": "0.00",
                "TxnDate": TODAY,
                "Line": [
                    applied("45.00", "Expense", refund["Id"]),
                    applied("45.00", "CreditMemo", memo["Id"]),
                ],
            },
            request_id=unique("pay"),
        )

        async def note_is(*wanted: str) -> bool:
            return await money_of(stack, linked.company, "/credit-notes", rl_note) == wanted

        await eventually(lambda: note_is("PAID", "45.00", "0.00", "0.00"))
        await settle()
    (paid,) = await rl_payments(stack, linked.company, rl_note)
    assert (paid["documentType"], paid["amount"], paid["status"]) == (
        "CREDIT_NOTE",
        "45.00",
        "ACTIVE",
    )
    assert await qbo_writes(stack, linked.realm, "Payment") == 1
    assert (
        await qbo_writes(stack, linked.realm, "Purchase") == 1
    ), "the refund itself is never mirrored"


async def rl_allocate(
    stack: Stack, company: str, note: str, invoice: str, amount: str
) -> dict[str, Any]:
    body = {"invoiceId": invoice, "amount": amount, "date": TODAY}
    return dict(await rl_as_user(stack, company, "POST", f"/credit-notes/{note}/allocations", body))


async def balance(qbo: QboClient, entity: str, qbo_id: str) -> Decimal:
    return Decimal(str((await qbo.get(entity, qbo_id))["Balance"]))


@pytest.mark.parametrize(
    ("kind", "entities", "qbo_types", "amount", "left"),
    [
        # A customer credit partly used: a Payment of 0 linking Invoice and CreditMemo.
        (
            "INCOME",
            ("invoice", "credit_note"),
            ("Invoice", "CreditMemo", "Payment"),
            "40.00",
            "81.00",
        ),
        # A supplier credit wholly used: a BillPayment of 0 linking Bill and VendorCredit.
        (
            "EXPENSE",
            ("bill", "vendor_credit"),
            ("Bill", "VendorCredit", "BillPayment"),
            "121.00",
            "0.00",
        ),
    ],
)
async def test_released_allocation_reaches_qbo_as_a_payment_of_credit(
    stack: Stack,
    linked: Linked,
    pool: asyncpg.Pool,
    kind: str,
    entities: tuple[str, str],
    qbo_types: tuple[str, str, str],
    amount: str,
    left: str,
) -> None:
    doc_type, credit_type, payment_type = qbo_types
    async with consumers(stack.settings):
        ids = await seed_links(stack, linked.qbo, pool, linked.connection)
        doc = await rl_approved_document(stack, linked.company, ids, kind)
        note = await rl_approved_document(stack, linked.company, ids, f"{kind}_CREDIT")
        doc_id = await eventually(lambda: linked_qbo_id(pool, entities[0], doc["id"]))
        credit_id = await eventually(lambda: linked_qbo_id(pool, entities[1], note["id"]))
        await rl_allocate(stack, linked.company, note["id"], doc["id"], amount)

        async def used() -> bool:
            return await balance(linked.qbo, doc_type, doc_id) == Decimal(left)

        await eventually(used)
        await settle()
    assert await balance(linked.qbo, credit_type, credit_id) == Decimal(left)
    (payment,) = [
        p
        for p in await linked.qbo.query_all(payment_type)
        if any(ln["LinkedTxn"][0]["TxnId"] == credit_id for ln in p["Line"])
    ]
    assert Decimal(str(payment["TotalAmt"])) == Decimal("0")
    assert await qbo_writes(stack, linked.realm, payment_type) == 1
    current = await rl_doc(stack, linked.company, "/credit-notes", note["id"])
    assert live(current) == [(doc["id"], amount)], "nothing bounced back to Re-Leased"
    status = "PAID" if Decimal(left) == 0 else "APPROVED"
    for path, made in (("/invoices", doc), ("/credit-notes", note)):
        assert (await rl_doc(stack, linked.company, path, made["id"]))["status"] == status


async def test_released_refunds_of_credit_reach_qbo(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    async with consumers(stack.settings):
        ids = await seed_links(stack, linked.qbo, pool, linked.connection)
        income = await rl_approved_document(stack, linked.company, ids, "INCOME_CREDIT")
        expense = await rl_approved_document(stack, linked.company, ids, "EXPENSE_CREDIT")
        memo = await eventually(lambda: linked_qbo_id(pool, "credit_note", income["id"]))
        credit = await eventually(lambda: linked_qbo_id(pool, "vendor_credit", expense["id"]))
        banks = await stack.released_api(linked.company, "GET", "/accounts?pageSize=1000")
        bank = next(a for a in banks["items"] if a["type"] == "BANK")
        for note, amount in ((income, "21.00"), (expense, "121.00")):
            body = {
                "documentType": "CREDIT_NOTE",
                "documentId": note["id"],
                "date": TODAY,
                "amount": amount,
                "bankAccountId": bank["id"],
            }
            await rl_as_user(stack, linked.company, "POST", "/payments", body)

        async def refunded() -> bool:
            return (
                await balance(linked.qbo, "CreditMemo", memo),
                await balance(linked.qbo, "VendorCredit", credit),
            ) == (Decimal("100.00"), Decimal("0.00"))

        await eventually(refunded)
        await settle()
    assert await qbo_writes(stack, linked.realm, "Purchase") == 1
    assert await qbo_writes(stack, linked.realm, "Deposit") == 1
    assert await qbo_writes(stack, linked.realm, "Payment") == 1
    assert await qbo_writes(stack, linked.realm, "BillPayment") == 1
    for note in (income, expense):
        (paid,) = await rl_payments(stack, linked.company, note["id"])
        assert paid["status"] == "ACTIVE", "nothing bounced back to Re-Leased"


@pytest.mark.usefixtures("engine")
async def test_initial_import_brings_released_payments_allocations_and_refunds(
    stack: Stack, linked: Linked, pool: asyncpg.Pool, broker: Any
) -> None:
    from shared.adapters.broker import EventPublisher
    from shared.ingest.importer import InitialImport

    ids = await seed_links(stack, linked.qbo, pool, linked.connection)
    invoice = await rl_approved_document(stack, linked.company, ids, "INCOME")
    note = await rl_approved_document(stack, linked.company, ids, "INCOME_CREDIT")
    invoice_id = await eventually(lambda: linked_qbo_id(pool, "invoice", invoice["id"]))
    memo_id = await eventually(lambda: linked_qbo_id(pool, "credit_note", note["id"]))
    await settle()
    # Webhooks lost: only the import can bring what follows.
    await stack.call(
        "PUT",
        f"{stack.released_base}/_sandbox/companies/{linked.company}/faults",
        json={"deliveries": {"dropRate": 1.0}},
    )
    banks = await stack.released_api(linked.company, "GET", "/accounts?pageSize=1000")
    bank = next(a for a in banks["items"] if a["type"] == "BANK")["id"]
    for document_type, document, amount in (
        ("INVOICE", invoice["id"], "20.00"),
        ("CREDIT_NOTE", note["id"], "50.00"),
    ):
        body = {
            "documentType": document_type,
            "documentId": document,
            "date": TODAY,
            "amount": amount,
            "bankAccountId": bank,
        }
        await rl_as_user(stack, linked.company, "POST", "/payments", body)
    await rl_allocate(stack, linked.company, note["id"], invoice["id"], "30.00")
    await settle()
    assert await balance(linked.qbo, "Invoice", invoice_id) == Decimal("121.00")
    publisher = await EventPublisher.open(broker)
    try:
        progress = await InitialImport(pool, publisher).run(
            linked.connection, linked.qbo, stack.factory.released(linked.connection)
        )
    finally:
        await publisher.close()
    assert progress.stages["released_payment"] >= 2

    async def imported() -> bool:
        return (
            await balance(linked.qbo, "Invoice", invoice_id),
            await balance(linked.qbo, "CreditMemo", memo_id),
        ) == (Decimal("71.00"), Decimal("41.00"))

    await eventually(imported)


async def test_a_credit_note_used_up_before_it_first_syncs_reaches_qbo_once(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    """Re-Leased no longer lets anyone edit a PAID credit note, so nothing QBO filled in can be
    written back: QBO takes the Re-Leased number, and the create is not repeated."""
    async with consumers(stack.settings):
        ids = await seed_links(stack, linked.qbo, pool, linked.connection)
        invoice = await rl_approved_document(stack, linked.company, ids, "INCOME")
        invoice_id = await eventually(lambda: linked_qbo_id(pool, "invoice", invoice["id"]))
        await settle()
    # Nobody consuming: the credit note is created and used up before any sync sees it.
    note = await rl_approved_document(stack, linked.company, ids, "INCOME_CREDIT")
    await rl_allocate(stack, linked.company, note["id"], invoice["id"], "121.00")
    assert (await rl_doc(stack, linked.company, "/credit-notes", note["id"]))["status"] == "PAID"
    async with consumers(stack.settings):
        memo_id = await eventually(lambda: linked_qbo_id(pool, "credit_note", note["id"]))

        async def used() -> bool:
            return await balance(linked.qbo, "Invoice", invoice_id) == Decimal("0.00")

        await eventually(used)
        await settle()
    memo = await linked.qbo.get("CreditMemo", memo_id)
    assert memo["DocNumber"] == note["number"], "QBO took the Re-Leased number"
    assert await qbo_writes(stack, linked.realm, "CreditMemo") == 1
    notes = await stack.released_api(linked.company, "GET", "/credit-notes?pageSize=1000")
    assert len(notes["items"]) == 1, "nothing came back as a second credit note"
