"""Races between the two sides that only faults expose: a Re-Leased edit made before Re-Leased
heard of a QBO payment, and a Re-Leased document whose link to QBO was lost with a rolled-back
transaction. Each test sets the race up deterministically (webhooks of one side held back)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from shared.adapters.qbo.client import QboClient
from shared.domain.connections import Connection
from shared.domain.errors import StaleVersion, TransientError
from shared.sync.documents import common as document_common
from shared.sync.documents import to_released
from shared.sync.payments import common as payments_common
from tests.e2e.agreement import assert_sides_agree, converge, faults_off
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
    rl_approved_document,
    rl_as_user,
    rl_document_body,
    seed_links,
)
from tests.e2e.conftest import Linked
from tests.e2e.readers import linked_qbo_id, linked_released, rl_doc, rl_payments, settle
from tests.e2e.stack import Stack, consumers, eventually, unique

pytestmark = pytest.mark.e2e


async def qbo_hooks(stack: Stack, realm: str, drop_rate: float) -> None:
    url = f"{stack.qbo_base}/_sandbox/realms/{realm}/faults"
    await stack.call("PUT", url, json={"webhook_drop_rate": drop_rate})


async def released_hooks(stack: Stack, company: str, drop_rate: float) -> None:
    url = f"{stack.released_base}/_sandbox/companies/{company}/faults"
    await stack.call("PUT", url, json={"deliveries": {"dropRate": drop_rate}})


async def pay_half(qbo: QboClient, cust: str, invoice: str) -> None:
    await qbo.write(
        "Payment",
        {
            "CustomerRef": {"value": cust},
            "TotalAmt": "125.00",
            "TxnDate": TODAY,
            "DepositToAccountRef": {"value": await qbo_bank_account_id(qbo)},
            "Line": qbo_payment_lines({invoice: "125.00"}),
        },
        request_id=unique("pay"),
    )


async def edit_total(stack: Stack, company: str, rl_id: str, amount: str) -> None:
    current = await rl_doc(stack, company, "/invoices", rl_id)
    line = {"description": "Fit-out", "unitAmount": amount}
    line["accountId"] = current["lines"][0]["accountId"]
    await rl_as_user(stack, company, "PATCH", f"/invoices/{rl_id}", {"lines": [line]})


async def open_conflicts(pool: asyncpg.Pool, connection: Connection) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT kind, winner, detail FROM conflicts WHERE connection_id = $1 "
            "AND entity = 'invoice' ORDER BY id",
            connection.id,
        )
    return [dict(r) for r in rows]


async def unannounced_invoice(
    stack: Stack, realm: str, connection: Connection, pool: asyncpg.Pool
) -> tuple[dict[str, str], str, dict[str, Any]]:
    """A QBO invoice of 80.00 whose notification is lost (QBO's own event would link it the
    usual way), on a customer Re-Leased knows. Returns the seeded Re-Leased ids, the customer's
    Re-Leased id and the invoice; QBO's webhooks stay off."""
    qbo = stack.factory.qbo(connection)
    ids = await seed_links(stack, qbo, pool, connection)
    cust = await qbo_customer(qbo)
    contact = await linked_released(pool, "Customer", str(cust["Id"]), connection)
    await qbo_hooks(stack, realm, 1.0)
    made = await qbo_invoice(
        qbo, cust["Id"], [qbo_sales_line(await qbo_item_id(qbo), "1", "80.00")]
    )
    return ids, contact, made


@pytest.mark.parametrize("first", ["released_edit", "qbo_payment"])
async def test_released_edit_below_money_qbo_applied_is_reverted_and_the_payment_lands(
    stack: Stack,
    linked: Linked,
    pool: asyncpg.Pool,
    broker: Any,
    first: str,
) -> None:
    """QBO takes 125.00 on a 250.00 invoice; before Re-Leased hears of it, someone there cuts
    the invoice to 11.00. QBO cannot take that edit (it has 125.00 applied): QBO's version goes
    back over it in Re-Leased, a person is told, and the payment is recorded. Whichever event
    the engine sees first (``first``) the end is the same."""
    async with consumers(stack.settings):
        cust = await qbo_customer(linked.qbo)
        invoice = await qbo_invoice(
            linked.qbo, cust["Id"], [qbo_sales_line(await qbo_item_id(linked.qbo), "1", "250")]
        )
        rl_id = await linked_released(pool, "Invoice", str(invoice["Id"]), linked.connection)
        await settle(1.0)
        if first == "released_edit":
            # The payment's notification is lost; the edit's goes through and meets QBO first.
            await qbo_hooks(stack, linked.realm, 1.0)
            await pay_half(linked.qbo, cust["Id"], str(invoice["Id"]))
            await edit_total(stack, linked.company, rl_id, "11.00")
        else:
            # The edit's notification is lost; the payment's arrives and meets the edit.
            await released_hooks(stack, linked.company, 1.0)
            await edit_total(stack, linked.company, rl_id, "11.00")
            await pay_half(linked.qbo, cust["Id"], str(invoice["Id"]))
        await settle(3.0)
        await faults_off(stack, linked.realm, linked.company)
        await converge(stack, linked.connection, pool, broker)
    rl = await rl_doc(stack, linked.company, "/invoices", rl_id)
    assert (rl["total"], rl["amountDue"]) == ("250.00", "125.00")
    assert [p["amount"] for p in await rl_payments(stack, linked.company, rl_id)] == ["125.00"]
    current = await linked.qbo.get("Invoice", str(invoice["Id"]))
    assert Decimal(str(current["TotalAmt"])) == Decimal("250"), "QBO kept its total"
    (flag,) = await open_conflicts(pool, linked.connection)
    assert flag["winner"] == "qbo"
    assert "below the 125" in flag["detail"]
    async with pool.acquire() as conn:
        dead = await conn.fetchval(
            "SELECT count(*) FROM dead_letters WHERE connection_id = $1", linked.connection.id
        )
    assert dead == 0, "nothing left for a person to replay"


@pytest.mark.usefixtures("engine")
async def test_a_released_document_with_a_qbo_number_but_other_content_is_not_matched(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    """Only a twin is matched: a Re-Leased invoice that happens to carry a QBO invoice's number
    but another total is a document of its own, created in QBO."""
    ids, contact, made = await unannounced_invoice(stack, linked.realm, linked.connection, pool)
    body = rl_document_body("INCOME", contact, ids["item"], "APPROVED", number=made["DocNumber"])
    other = await rl_as_user(stack, linked.company, "POST", "/invoices", body)  # 121.00, not 80.00

    async def created_in_qbo() -> Any:
        async with pool.acquire() as conn:
            return await conn.fetchval(
                "SELECT qbo_id FROM links WHERE connection_id = $1 AND released_id = $2",
                linked.connection.id,
                other["id"],
            )

    qbo_id = await eventually(created_in_qbo)
    assert qbo_id != str(made["Id"])


def fail_first(calls: int, target: Any, error: Exception | None = None) -> Any:
    """``target`` that fails its first ``calls`` calls the way a lost transaction does (a
    deadlock, a refused follow-up write): after the write to the other side, before the link."""
    seen = {"n": 0}
    failure = error or TransientError("injected: the transaction fails after the write")

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        seen["n"] += 1
        if seen["n"] <= calls:
            raise failure
        return await target(*args, **kwargs)

    return flaky


async def test_qbo_twin_of_a_released_invoice_whose_link_was_lost_is_not_synced_back(
    stack: Stack,
    linked: Linked,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine creates a Re-Leased invoice in QBO; the handler's transaction then fails
    before QBO's number reaches Re-Leased and before the link commits, twice. QBO's notification
    of its new invoice arrives meanwhile: the ledger of created twins says it is ours, so it is
    linked (and its number written back), not copied into Re-Leased as a second invoice."""
    flaky = fail_first(2, document_common.patch_released)
    monkeypatch.setattr("shared.sync.documents.to_qbo.patch_released", flaky)
    async with consumers(stack.settings):
        ids = await seed_links(stack, linked.qbo, pool, linked.connection)
        made = await rl_approved_document(stack, linked.company, ids, "INCOME")
        qbo_id = await eventually(lambda: linked_qbo_id(pool, "invoice", made["id"]))
        await settle(3.0)
        await assert_sides_agree(stack, linked.connection, pool)
    twin = await linked.qbo.get("Invoice", str(qbo_id))
    assert (await rl_doc(stack, linked.company, "/invoices", made["id"]))["number"] == twin[
        "DocNumber"
    ]
    async with pool.acquire() as conn:
        matched = await conn.fetchval(
            "SELECT count(*) FROM sync_outcomes WHERE connection_id = $1 AND direction = "
            "'qbo_to_released' AND reason LIKE 'matched existing document%'",
            linked.connection.id,
        )
    assert matched == 1, "QBO's notification found the twin through the ledger"


async def test_qbo_payment_made_from_released_whose_link_was_lost_is_not_paid_twice(
    stack: Stack,
    linked: Linked,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Re-Leased payment becomes a QBO payment; the handler's transaction then fails twice
    before the link commits. QBO's notification of the payment is recognised as ours (the
    ledger), so Re-Leased is not paid a second time."""
    monkeypatch.setattr(
        "shared.sync.payments.qbo_writes.save_payment_link",
        fail_first(2, payments_common.save_payment_link),
    )
    async with consumers(stack.settings):
        ids = await seed_links(stack, linked.qbo, pool, linked.connection)
        doc = await rl_approved_document(stack, linked.company, ids, "INCOME")
        qbo_id = await eventually(lambda: linked_qbo_id(pool, "invoice", doc["id"]))
        accounts = await stack.released_api(linked.company, "GET", "/accounts?pageSize=1000")
        bank = next(a["id"] for a in accounts["items"] if a["type"] == "BANK")
        body = {"documentId": doc["id"], "date": TODAY, "amount": "21.00", "bankAccountId": bank}
        await rl_as_user(stack, linked.company, "POST", "/payments", body)

        async def qbo_balance_is(value: str) -> bool:
            current = await linked.qbo.get("Invoice", str(qbo_id))
            return Decimal(str(current["Balance"])) == Decimal(value)

        await eventually(lambda: qbo_balance_is("100.00"))
        await settle(4.0)
        await assert_sides_agree(stack, linked.connection, pool)
    assert [p["amount"] for p in await rl_payments(stack, linked.company, doc["id"])] == ["21.00"]
    payments = await linked.qbo.query_all("Payment")
    assert len(payments) == 1, "one QBO payment"


async def test_released_twin_of_a_qbo_invoice_whose_link_was_lost_is_not_synced_back(
    stack: Stack,
    linked: Linked,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine makes a Re-Leased invoice from a QBO one; the handler's transaction then fails
    before the link commits, twice. Re-Leased's notification of the new invoice arrives
    meanwhile: the ledger of created twins says it is ours, so it is linked to the QBO invoice
    it was made from, not created in QBO a second time."""
    async with consumers(stack.settings):
        await seed_links(stack, linked.qbo, pool, linked.connection)
        before = len(await linked.qbo.query_all("Invoice"))
        monkeypatch.setattr(
            "shared.sync.documents.to_released.save_link", fail_first(2, document_common.save_link)
        )
        cust = await qbo_customer(linked.qbo)
        made = await qbo_invoice(
            linked.qbo, cust["Id"], [qbo_sales_line(await qbo_item_id(linked.qbo), "1", "80.00")]
        )
        await linked_released(pool, "Invoice", str(made["Id"]), linked.connection)
        await settle(3.0)
        await assert_sides_agree(stack, linked.connection, pool)
    assert len(await linked.qbo.query_all("Invoice")) == before + 1, "no second QBO invoice"
    async with pool.acquire() as conn:
        # Held back while the ledger says ours and no link exists yet (shared/sync/echoes.py),
        # then an echo of the link; or, when it runs after the link, matched through the ledger.
        ours = await conn.fetchval(
            "SELECT count(*) FROM sync_outcomes WHERE connection_id = $1 AND direction = "
            "'released_to_qbo' AND (reason LIKE 'matched existing document%' OR reason IN "
            "('created by us', 'this version is synced already'))",
            linked.connection.id,
        )
    assert ours >= 1, "Re-Leased's notification was known as ours, not created in QBO again"


async def test_a_create_redone_after_a_lost_version_race_makes_one_qbo_document(
    stack: Stack,
    linked: Linked,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Creating a Re-Leased invoice in QBO writes QBO's number back at the version read; a
    change in Re-Leased in between loses that race (412) and the handler is redone. The redo
    finds the QBO invoice the first round made (the ledger) and links it: one QBO invoice."""
    async with consumers(stack.settings):
        ids = await seed_links(stack, linked.qbo, pool, linked.connection)
        before = len(await linked.qbo.query_all("Invoice"))
        stale = fail_first(1, document_common.patch_released, StaleVersion("injected 412"))
        monkeypatch.setattr("shared.sync.documents.to_qbo.patch_released", stale)
        made = await rl_approved_document(stack, linked.company, ids, "INCOME")
        qbo_id = await eventually(lambda: linked_qbo_id(pool, "invoice", made["id"]))
        await settle(2.0)
        await assert_sides_agree(stack, linked.connection, pool)
    assert len(await linked.qbo.query_all("Invoice")) == before + 1, "no second QBO invoice"
    twin = await linked.qbo.get("Invoice", str(qbo_id))
    assert (await rl_doc(stack, linked.company, "/invoices", made["id"]))["number"] == twin[
        "DocNumber"
    ]


@pytest.mark.usefixtures("engine")
async def test_a_qbo_bill_whose_number_write_failed_gets_the_number_on_the_retry(
    stack: Stack,
    linked: Linked,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """QBO bills have no number: the Re-Leased one is written back to QBO after the Re-Leased
    bill is made. When that write fails (and the transaction with it), the retry links the bill
    the first attempt made (the ledger) and still writes the number to QBO."""
    await seed_links(stack, linked.qbo, pool, linked.connection)
    flaky = fail_first(1, to_released._number_to_qbo)
    monkeypatch.setattr("shared.sync.documents.to_released._number_to_qbo", flaky)
    # Re-Leased's notifications held back: only the QBO bill's own retries may heal it.
    await released_hooks(stack, linked.company, 1.0)
    body = {
        "VendorRef": {"value": str((await qbo_vendor(linked.qbo))["Id"])},
        "TxnDate": TODAY,
        "Line": [qbo_expense_line(await qbo_expense_account_id(linked.qbo), "42.00")],
    }
    bill = await linked.qbo.write("Bill", body, request_id=unique("bill"))
    rl_id = await linked_released(pool, "Bill", str(bill["Id"]), linked.connection)
    await settle(2.0)
    await assert_sides_agree(stack, linked.connection, pool)
    number = (await rl_doc(stack, linked.company, "/invoices", rl_id))["number"]
    assert (await linked.qbo.get("Bill", str(bill["Id"])))["DocNumber"] == number
