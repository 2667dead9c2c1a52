"""Money not against a document, end to end through both sandboxes, both ways.

QBO -> Re-Leased: a payment's unapplied cash becomes a prepayment/overpayment credit note on the
contact; a Re-Leased user allocating it adds the document to the QBO payment; QBO applying the
rest allocates the note (not a second payment). Re-Leased -> QBO: a held note the company had
before it connected becomes a QBO payment with that much unapplied, on the same customer.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import EventPublisher
from shared.domain.events import ChangeEvent
from shared.ingest.importer import InitialImport
from tests.e2e.agreement import assert_sides_agree
from tests.e2e.builders import (
    TODAY,
    qbo_bank_account_id,
    qbo_customer,
    qbo_invoice,
    qbo_item_id,
    qbo_payment_lines,
    qbo_sales_line,
    qbo_vendor,
    rl_as_user,
)
from tests.e2e.conftest import Linked
from tests.e2e.readers import (
    flags,
    linked_qbo_id,
    linked_released,
    outcome_rows,
    qbo_writes,
    rl_doc,
    rl_docs,
    rl_payments,
    settle,
)
from tests.e2e.stack import Stack, consumers, eventually, unique

pytestmark = pytest.mark.e2e


async def held_notes(stack: Stack, company: str) -> list[dict[str, Any]]:
    notes = await rl_docs(stack, company, "/credit-notes")
    return [n for n in notes if n.get("kind") in ("PREPAYMENT", "OVERPAYMENT")]


async def test_qbo_unapplied_cash_is_held_as_credit_and_allocations_flow_both_ways(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    qbo = linked.qbo
    async with consumers(stack.settings):
        cust = await qbo_customer(qbo)
        item = await qbo_item_id(qbo)
        first = await qbo_invoice(qbo, cust["Id"], [qbo_sales_line(item, "1", "100.00")])
        second = await qbo_invoice(qbo, cust["Id"], [qbo_sales_line(item, "1", "50.00")])
        rl_second = await linked_released(pool, "Invoice", str(second["Id"]), linked.connection)
        payment = await qbo.write(
            "Payment",
            {
                "CustomerRef": {"value": cust["Id"]},
                "TotalAmt": "130.00",
                "TxnDate": TODAY,
                "DepositToAccountRef": {"value": await qbo_bank_account_id(qbo)},
                "Line": qbo_payment_lines({first["Id"]: "100.00"}),
            },
            request_id=unique("pay"),
        )
        (note,) = await eventually(lambda: held_notes(stack, linked.company))
        assert (note["kind"], note["remainingCredit"], note["totalTax"]) == (
            "OVERPAYMENT",
            "30.00",
            "0.00",
        )
        # A Re-Leased user uses 20.00 of the credit on the second invoice: QBO applies it.
        body = {"invoiceId": rl_second, "amount": "20.00", "date": TODAY}
        await rl_as_user(
            stack, linked.company, "POST", f"/credit-notes/{note['id']}/allocations", body
        )

        async def qbo_balance() -> Decimal:
            return Decimal(str((await qbo.get("Invoice", str(second["Id"])))["Balance"]))

        await eventually(lambda: _is(qbo_balance, Decimal("30.00")))
        # QBO applies the 10.00 still unapplied: the held note is allocated, nothing paid twice.
        current = await qbo.get("Payment", str(payment["Id"]))
        assert Decimal(str(current["UnappliedAmt"])) == Decimal("10.00")
        await qbo.write(
            "Payment",
            {
                "Id": payment["Id"],
                "SyncToken": current["SyncToken"],
                "sparse": True,
                "Line": qbo_payment_lines({first["Id"]: "100.00", second["Id"]: "30.00"}),
            },
            request_id=unique("pay2"),
        )

        async def rl_due() -> str:
            return str((await rl_doc(stack, linked.company, "/invoices", rl_second))["amountDue"])

        await eventually(lambda: _is(rl_due, "20.00"))
        await settle()
        assert await flags(pool, linked.connection, "payment") == 0
    (note,) = await held_notes(stack, linked.company)
    assert (note["remainingCredit"], note["status"]) == ("0.00", "PAID")
    live = [a for a in note["allocations"] if not a.get("isDeleted")]
    assert sorted(a["amount"] for a in live) == ["10.00", "20.00"]
    assert await qbo_balance() == Decimal("20.00")
    assert await assert_sides_agree(stack, linked.connection, pool) == 2


async def _is(read: Any, wanted: Any) -> bool:
    return bool(await read() == wanted)


async def test_a_held_note_from_before_the_connection_is_qbo_unapplied_cash(
    stack: Stack, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    name = unique("Prepaid Tenant")
    contact = await stack.released_api(
        company, "POST", "/contacts", json={"name": name, "isCustomer": True}
    )
    note_body = {
        "type": "INCOME_CREDIT",
        "kind": "PREPAYMENT",
        "contactId": contact["id"],
        "date": TODAY,
        "status": "APPROVED",
        "lineAmountType": "NO_TAX",
        "lines": [{"description": "Rent in advance", "unitAmount": "80.00"}],
    }
    note = await stack.released_api(company, "POST", "/credit-notes", json=note_body)
    await asyncio.sleep(1.0)
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    publisher = await EventPublisher.open(broker)
    try:
        async with consumers(stack.settings):
            await InitialImport(pool, publisher).run(
                connection, qbo, stack.factory.released(connection)
            )
            part = await eventually(lambda: linked_qbo_id(pool, "payment", note["id"]))
            made = str(part).split(":")[0]  # the note's link row: "<payment>:<version>:held"
            payment = await qbo.get("Payment", made)
            assert (Decimal(str(payment["TotalAmt"])), Decimal(str(payment["UnappliedAmt"]))) == (
                Decimal("80.00"),
                Decimal("80.00"),
            )
            (customer,) = await qbo.query_all("Customer", f"DisplayName = '{name}'")
            assert payment["CustomerRef"]["value"] == customer["Id"]
            assert not await qbo.query_all("CreditMemo"), "credit on the customer, no memo"
            await settle()
    finally:
        await publisher.close()
    again = await qbo.get("Payment", made)
    assert again["SyncToken"] == payment["SyncToken"], "its echo changed nothing"


async def test_a_released_refund_of_held_credit_is_paid_from_the_qbo_payment_once(
    stack: Stack, linked: Linked, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    """A Re-Leased user refunds part of a customer's prepayment: QBO gets the Expense, and the
    payment holding the prepayment pays it (its unapplied cash falls by the refund). Its echoes
    are echoes, and a replay of the refund's event writes nothing more."""
    qbo = linked.qbo
    publisher = await EventPublisher.open(broker)
    try:
        async with consumers(stack.settings):
            cust = await qbo_customer(qbo)
            payment = await qbo.write(
                "Payment",
                {
                    "CustomerRef": {"value": cust["Id"]},
                    "TotalAmt": "60.00",
                    "TxnDate": TODAY,
                    "DepositToAccountRef": {"value": await qbo_bank_account_id(qbo)},
                    "Line": [],
                },
                request_id=unique("prepay"),
            )
            (note,) = await eventually(lambda: held_notes(stack, linked.company))
            banks = await stack.released_api(linked.company, "GET", "/accounts?pageSize=1000")
            bank = next(a for a in banks["items"] if a["type"] == "BANK")
            body = {
                "documentType": "CREDIT_NOTE",
                "documentId": note["id"],
                "date": TODAY,
                "amount": "25.00",
                "bankAccountId": bank["id"],
            }
            refund = await rl_as_user(stack, linked.company, "POST", "/payments", body)

            async def unapplied() -> Decimal:
                return Decimal(str((await qbo.get("Payment", str(payment["Id"])))["UnappliedAmt"]))

            await eventually(lambda: _is(unapplied, Decimal("35.00")))
            await settle()
            writes = await _refund_writes(stack, linked.realm)
            before = len(await outcome_rows(pool, str(refund["id"]), linked.connection))
            await publisher.publish(_replay(linked, str(refund["id"])))
            await eventually(lambda: _more_outcomes(pool, linked, str(refund["id"]), before))
            await settle()
            assert await _refund_writes(stack, linked.realm) == writes == (1, 2)
    finally:
        await publisher.close()
    (expense,) = await qbo.query_all("Purchase")
    assert (expense["EntityRef"]["value"], Decimal(str(expense["TotalAmt"]))) == (
        cust["Id"],
        Decimal("25.00"),
    )
    current = await qbo.get("Payment", str(payment["Id"]))
    assert Decimal(str(current["TotalAmt"])) == Decimal("60.00")
    assert {"TxnId": expense["Id"], "TxnType": "Expense"} in [
        t for line in current["Line"] for t in line["LinkedTxn"]
    ]
    assert await unapplied() == Decimal("35.00")
    # Our writes' notifications: the payment's update and the refund's own events are echoes.
    payment_outcomes = [
        r["outcome"] for r in await outcome_rows(pool, str(payment["Id"]), linked.connection)
    ]
    assert payment_outcomes[-1] == "echo", payment_outcomes
    refund_outcomes = [
        r["outcome"] for r in await outcome_rows(pool, str(refund["id"]), linked.connection)
    ]
    assert refund_outcomes[0] == "applied", refund_outcomes
    assert set(refund_outcomes[1:]) == {"echo"}, refund_outcomes
    assert (await rl_doc(stack, linked.company, "/credit-notes", note["id"]))[
        "remainingCredit"
    ] == ("35.00")
    assert await flags(pool, linked.connection, "payment") == 0


async def _refund_writes(stack: Stack, realm: str) -> tuple[int, int]:
    """QBO writes of Purchase and Payment (the test's own payment is one)."""
    return (await qbo_writes(stack, realm, "Purchase"), await qbo_writes(stack, realm, "Payment"))


def _replay(linked: Linked, payment_id: str) -> ChangeEvent:
    now = datetime.now(UTC)
    return ChangeEvent(
        event_id=unique("replay"),
        source="released",
        connection_id=linked.connection.id,
        account_id=linked.company,
        entity="payment",
        entity_id=payment_id,
        operation="update",
        occurred_at=now,
        origin="replay",
        replay_of=unique("original"),
    )


async def _more_outcomes(pool: asyncpg.Pool, linked: Linked, source_id: str, than: int) -> bool:
    return len(await outcome_rows(pool, source_id, linked.connection)) > than


async def test_a_released_refund_of_supplier_held_credit_is_a_deposit_the_bill_payment_pays(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    """The vendor side through the QBO sandbox: a BillPayment line linking a Deposit."""
    qbo = linked.qbo
    async with consumers(stack.settings):
        vendor = await qbo_vendor(qbo)
        bank = await qbo_bank_account_id(qbo)
        paid = await qbo.write(
            "BillPayment",
            {
                "VendorRef": {"value": vendor["Id"]},
                "TotalAmt": "40.00",
                "TxnDate": TODAY,
                "PayType": "Check",
                "CheckPayment": {"BankAccountRef": {"value": bank}},
                "Line": [],
            },
            request_id=unique("billpay"),
        )
        (note,) = await eventually(lambda: held_notes(stack, linked.company))
        banks = await stack.released_api(linked.company, "GET", "/accounts?pageSize=1000")
        rl_bank = next(a for a in banks["items"] if a["type"] == "BANK")
        body = {
            "documentType": "CREDIT_NOTE",
            "documentId": note["id"],
            "date": TODAY,
            "amount": "15.00",
            "bankAccountId": rl_bank["id"],
        }
        await rl_as_user(stack, linked.company, "POST", "/payments", body)

        async def unapplied() -> Decimal:
            return Decimal(str((await qbo.get("BillPayment", str(paid["Id"])))["UnappliedAmt"]))

        await eventually(lambda: _is(unapplied, Decimal("25.00")))
        await settle()
    (deposit,) = await qbo.query_all("Deposit")
    assert Decimal(str(deposit["TotalAmt"])) == Decimal("15.00")
    assert await qbo_writes(stack, linked.realm, "Deposit") == 1
    assert await flags(pool, linked.connection, "bill_payment") == 0


async def test_a_refunded_prepayment_edited_then_voided_in_qbo_keeps_the_refund_once(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    """60.00 held, 25.00 of it refunded in Re-Leased and paid from the QBO payment; then the
    payment is raised to 80.00 in QBO, then voided. Re-Leased cannot void a note with a refund on
    it: the refund stays, recorded once, and the credit Re-Leased still holds follows QBO's
    UnappliedAmt each time, with no refusal dead-lettered. The void leaves the refund's Expense
    unpaid in QBO: flagged for a person."""
    qbo = linked.qbo
    async with consumers(stack.settings):
        cust = await qbo_customer(qbo)
        payment = await qbo.write(
            "Payment",
            {
                "CustomerRef": {"value": cust["Id"]},
                "TotalAmt": "60.00",
                "TxnDate": TODAY,
                "DepositToAccountRef": {"value": await qbo_bank_account_id(qbo)},
                "Line": [],
            },
            request_id=unique("prepay"),
        )
        (note,) = await eventually(lambda: held_notes(stack, linked.company))
        banks = await stack.released_api(linked.company, "GET", "/accounts?pageSize=1000")
        bank = next(a for a in banks["items"] if a["type"] == "BANK")
        body = {
            "documentType": "CREDIT_NOTE",
            "documentId": note["id"],
            "date": TODAY,
            "amount": "25.00",
            "bankAccountId": bank["id"],
        }
        refund = await rl_as_user(stack, linked.company, "POST", "/payments", body)

        async def unapplied() -> Decimal:
            return Decimal(str((await qbo.get("Payment", str(payment["Id"])))["UnappliedAmt"]))

        async def held_left() -> Decimal:
            notes = await held_notes(stack, linked.company)
            live = [n for n in notes if n["status"] != "VOIDED"]
            return sum((Decimal(n["remainingCredit"]) for n in live), Decimal(0))

        await eventually(lambda: _is(unapplied, Decimal("35.00")))
        await settle()
        current = await qbo.get("Payment", str(payment["Id"]))
        edited = await qbo.write(
            "Payment",
            {
                "Id": payment["Id"],
                "SyncToken": current["SyncToken"],
                "sparse": True,
                "TotalAmt": "80.00",
                "Line": current["Line"],
            },
            request_id=unique("raise"),
        )
        assert await unapplied() == Decimal("55.00")
        await eventually(lambda: _is(held_left, Decimal("55.00")))
        await settle()
        await _refund_kept_once(stack, linked, str(refund["id"]), note["id"])
        assert await flags(pool, linked.connection, "payment") == 0, "QBO still pays the refund"
        await qbo.write(
            "Payment",
            {"Id": payment["Id"], "SyncToken": edited["SyncToken"]},
            request_id=unique("void"),
            operation="void",
        )
        assert await unapplied() == Decimal("0")
        await eventually(lambda: _is(held_left, Decimal("0")))
        await settle()
    await _refund_kept_once(stack, linked, str(refund["id"]), note["id"])
    outcomes = await outcome_rows(pool, str(payment["Id"]), linked.connection)
    assert "error" not in [r["outcome"] for r in outcomes], [tuple(r) for r in outcomes]
    assert [r["outcome"] for r in outcomes if r["reason"].startswith("void")] == ["applied"]
    assert await qbo_writes(stack, linked.realm, "Purchase") == 1, "one Expense, never redone"
    # The void leaves the refund's Expense open in QBO: a person is told, once.
    assert await flags(pool, linked.connection, "payment") == 1


async def _refund_kept_once(stack: Stack, linked: Linked, refund: str, note_id: str) -> None:
    """The refund still active, the only payment on a held note, on the note it was made on,
    which now holds just the refund."""
    notes = await held_notes(stack, linked.company)
    on_notes = [p for n in notes for p in await rl_payments(stack, linked.company, n["id"])]
    assert [(p["id"], p["status"]) for p in on_notes] == [(refund, "ACTIVE")]
    kept = await rl_doc(stack, linked.company, "/credit-notes", note_id)
    assert (kept["total"], kept["remainingCredit"], kept["status"]) == ("25.00", "0.00", "PAID")
