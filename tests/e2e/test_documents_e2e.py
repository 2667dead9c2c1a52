"""Invoices, bills, credit notes and vendor credits end to end, one test per ownership row."""

from __future__ import annotations

import asyncio
import io
import json
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.e2e.agreement import assert_sides_agree, same_lines
from tests.e2e.builders import (
    TODAY,
    qbo_customer,
    qbo_expense_account_id,
    qbo_expense_line,
    qbo_invoice,
    qbo_item_id,
    qbo_sales_line,
    qbo_sales_tax_code_id,
    qbo_vendor,
    rl_as_user,
    rl_document_body,
    seed_links,
)
from tests.e2e.conftest import Linked
from tests.e2e.readers import (
    flags,
    link_of,
    linked_qbo_id,
    linked_released,
    outcome_rows,
    rl_doc,
    rl_docs,
    settle,
)
from tests.e2e.stack import Stack, consumers, eventually, unique

pytestmark = pytest.mark.e2e


# -- QBO -> Re-Leased ---------------------------------------------------------------------------


async def test_qbo_invoice_creates_updates_and_voids_in_released(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    async with consumers(stack.settings):
        cust = await qbo_customer(linked.qbo)
        item = await qbo_item_id(linked.qbo)
        made = await qbo_invoice(
            linked.qbo,
            cust["Id"],
            [qbo_sales_line(item, "3", "33.33", taxed=True)],
            TxnTaxDetail={"TxnTaxCodeRef": {"value": await qbo_sales_tax_code_id(linked.qbo)}},
        )
        rl_id = await linked_released(pool, "Invoice", str(made["Id"]), linked.connection)
        doc = await rl_doc(stack, linked.company, "/invoices", rl_id)
        assert doc["number"] == made["DocNumber"], "Re-Leased carries the QBO number"
        assert doc["type"] == "INCOME"
        assert doc["status"] == "APPROVED"
        same_lines(made, doc)
        assert Decimal(doc["totalTax"]) == Decimal(str(made["TxnTaxDetail"]["TotalTax"]))
        # The contact and item were linked first (dependencies before the document).
        assert await link_of(pool, "Customer", str(cust["Id"]), linked.connection) is not None
        current = await linked.qbo.get("Invoice", str(made["Id"]))
        updated = await linked.qbo.write(
            "Invoice",
            {
                "Id": made["Id"],
                "SyncToken": current["SyncToken"],
                "sparse": True,
                "Line": [qbo_sales_line(item, "2", "45.10", taxed=True)],
            },
            request_id=unique("upd"),
        )

        async def total_is(value: Decimal) -> bool:
            return (
                Decimal((await rl_doc(stack, linked.company, "/invoices", rl_id))["total"]) == value
            )

        await eventually(lambda: total_is(Decimal(str(updated["TotalAmt"]))))
        await linked.qbo.write(
            "Invoice",
            {"Id": made["Id"], "SyncToken": updated["SyncToken"]},
            request_id=unique("void"),
            operation="void",
        )

        async def voided() -> bool:
            return bool(
                (await rl_doc(stack, linked.company, "/invoices", rl_id))["status"] == "VOIDED"
            )

        await eventually(voided)
        await settle()
    writes = [w for w in await stack.released_writes(linked.company) if w["path"].endswith(rl_id)]
    assert len([w for w in writes if w["method"] == "PATCH"]) == 1, "one update, no echo loop"
    row = await link_of(pool, "Invoice", str(made["Id"]), linked.connection)
    assert row is not None
    assert row["status"] == "voided"


@pytest.mark.usefixtures("engine")
async def test_qbo_bill_delete_voids_it_in_released(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    vend = await qbo_vendor(linked.qbo)
    bill = await linked.qbo.write(
        "Bill",
        {
            "VendorRef": {"value": vend["Id"]},
            "TxnDate": TODAY,
            "Line": [qbo_expense_line(await qbo_expense_account_id(linked.qbo), "250.75")],
        },
        request_id=unique("bill"),
    )
    rl_id = await linked_released(pool, "Bill", str(bill["Id"]), linked.connection)
    doc = await rl_doc(stack, linked.company, "/invoices", rl_id)
    assert doc["type"] == "EXPENSE"
    assert doc["total"] == "250.75"
    assert doc["number"] == (await linked.qbo.get("Bill", str(bill["Id"])))["DocNumber"]
    current = await linked.qbo.get("Bill", str(bill["Id"]))
    await linked.qbo.write(
        "Bill",
        {"Id": bill["Id"], "SyncToken": current["SyncToken"]},
        request_id=unique("del"),
        operation="delete",
    )

    async def voided() -> bool:
        return bool((await rl_doc(stack, linked.company, "/invoices", rl_id))["status"] == "VOIDED")

    await eventually(voided)


@pytest.mark.usefixtures("engine")
async def test_qbo_credit_memo_ui_void_voids_the_credit_note(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    cust = await qbo_customer(linked.qbo)
    memo = await linked.qbo.write(
        "CreditMemo",
        {
            "CustomerRef": {"value": cust["Id"]},
            "TxnDate": TODAY,
            "Line": [qbo_sales_line(await qbo_item_id(linked.qbo), "1", "80.00")],
        },
        request_id=unique("cm"),
    )
    rl_id = await linked_released(pool, "CreditMemo", str(memo["Id"]), linked.connection)
    note = await rl_doc(stack, linked.company, "/credit-notes", rl_id)
    assert note["type"] == "INCOME_CREDIT"
    assert note["total"] == "80.00"
    await stack.call(
        "POST", f"{stack.qbo_base}/_sandbox/realms/{linked.realm}/ui/creditmemo/{memo['Id']}/void"
    )

    async def voided() -> bool:
        return bool(
            (await rl_doc(stack, linked.company, "/credit-notes", rl_id))["status"] == "VOIDED"
        )

    await eventually(voided)


@pytest.mark.usefixtures("engine")
async def test_qbo_vendor_credit_reaches_released(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    vend = await qbo_vendor(linked.qbo)
    made = await linked.qbo.write(
        "VendorCredit",
        {
            "VendorRef": {"value": vend["Id"]},
            "TxnDate": TODAY,
            "Line": [qbo_expense_line(await qbo_expense_account_id(linked.qbo), "19.99")],
        },
        request_id=unique("vc"),
    )
    rl_id = await linked_released(pool, "VendorCredit", str(made["Id"]), linked.connection)
    note = await rl_doc(stack, linked.company, "/credit-notes", rl_id)
    assert note["type"] == "EXPENSE_CREDIT"
    assert note["total"] == "19.99"


async def test_unsupported_qbo_content_is_a_per_record_error_with_a_remedy(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    async with consumers(stack.settings):
        cust = await qbo_customer(linked.qbo)
        item = await qbo_item_id(linked.qbo)
        discount = {
            "Amount": "5",
            "DetailType": "DiscountLineDetail",
            "DiscountLineDetail": {"PercentBased": False},
        }
        bad = await qbo_invoice(linked.qbo, cust["Id"], [qbo_sales_line(item, "1", "50"), discount])
        foreign = await qbo_invoice(
            linked.qbo, cust["Id"], [qbo_sales_line(item, "1", "7")], CurrencyRef={"value": "EUR"}
        )
        abroad = await linked.qbo.write(
            "Customer",
            {"DisplayName": unique("Euro Tenant"), "CurrencyRef": {"value": "EUR"}},
            request_id=unique("eur"),
        )
        good = await qbo_invoice(linked.qbo, cust["Id"], [qbo_sales_line(item, "1", "20")])
        await linked_released(pool, "Invoice", str(good["Id"]), linked.connection)

        async def errored(qbo_id: str) -> list[asyncpg.Record]:
            return [
                r
                for r in await outcome_rows(pool, qbo_id, linked.connection)
                if r["outcome"] == "error"
            ]

        (discount_error, *_) = await eventually(lambda: errored(str(bad["Id"])))
        (currency_error, *_) = await eventually(lambda: errored(str(foreign["Id"])))
        (contact_error, *_) = await eventually(lambda: errored(str(abroad["Id"])))
    assert "multi-currency" in contact_error["reason"]
    assert contact_error["remedy"]
    assert await link_of(pool, "Customer", str(abroad["Id"]), linked.connection) is None
    assert "discount" in discount_error["reason"]
    assert discount_error["remedy"]
    assert "currency" in currency_error["reason"]
    assert currency_error["remedy"]
    assert await link_of(pool, "Invoice", str(bad["Id"]), linked.connection) is None
    totals = {d["total"] for d in await rl_docs(stack, linked.company)}
    assert "45.00" not in totals
    assert "7.00" not in totals


async def test_not_synced_qbo_types_are_ignored_and_never_written(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    (bank,) = await linked.qbo.query_all("Account", "Name = 'Checking'")
    async with consumers(stack.settings):
        purchase = await linked.qbo.write(
            "Purchase",
            {
                "PaymentType": "Cash",
                "AccountRef": {"value": bank["Id"]},
                "TxnDate": TODAY,
                "Line": [qbo_expense_line(await qbo_expense_account_id(linked.qbo), "12")],
            },
            request_id=unique("p"),
        )
        rows = await eventually(lambda: outcome_rows(pool, str(purchase["Id"]), linked.connection))
    assert [(r["outcome"], r["reason"]) for r in rows] == [("ignored", "not_synced_type")]
    writes = [
        w
        for w in await stack.released_writes(linked.company)
        if not w["path"].endswith("/webhooks")
    ]
    assert writes == [], writes


# -- Re-Leased -> QBO ---------------------------------------------------------------------------


async def test_released_invoice_syncs_only_in_synced_statuses_and_takes_the_qbo_number(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    async with consumers(stack.settings):
        ids = await seed_links(stack, linked.qbo, pool, linked.connection)
        draft = await rl_as_user(
            stack,
            linked.company,
            "POST",
            "/invoices",
            rl_document_body("INCOME", ids["customer"], ids["item"], "DRAFT"),
        )
        await settle()
        assert await linked_qbo_id(pool, "invoice", draft["id"]) is None, "DRAFT never syncs"
        await rl_as_user(stack, linked.company, "POST", f"/invoices/{draft['id']}/submit")
        qbo_id = await eventually(lambda: linked_qbo_id(pool, "invoice", draft["id"]))
        made = await linked.qbo.get("Invoice", qbo_id)

        async def numbered() -> bool:
            doc = await rl_doc(stack, linked.company, "/invoices", draft["id"])
            return bool(doc["number"] == made["DocNumber"])

        await eventually(numbered)
        doc = await rl_doc(stack, linked.company, "/invoices", draft["id"])
        same_lines(made, doc)
        lines = [{**doc["lines"][0], "quantity": "3"}]
        await rl_as_user(
            stack, linked.company, "PATCH", f"/invoices/{draft['id']}", {"lines": lines}
        )

        async def qbo_total(value: str) -> bool:
            return Decimal(str((await linked.qbo.get("Invoice", qbo_id))["TotalAmt"])) == Decimal(
                value
            )

        await eventually(lambda: qbo_total("181.50"))
        await rl_as_user(stack, linked.company, "POST", f"/invoices/{draft['id']}/approve")
        await settle()
    invoice_writes = [
        r
        for r in (
            await stack.call(
                "GET", f"{stack.qbo_base}/_sandbox/realms/{linked.realm}/requests?entity=Invoice"
            )
        )["requests"]
        if r["write"]
    ]
    # seed invoice, the create, the update: approving changes nothing QBO holds.
    assert len(invoice_writes) == 3


@pytest.mark.usefixtures("engine")
async def test_approved_only_setting_and_sync_from_date_gate_released_documents(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    ids = await seed_links(stack, linked.qbo, pool, linked.connection)
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE connections SET settings = $2 WHERE id = $1",
            linked.connection.id,
            json.loads('{"synced_statuses": ["APPROVED"], "sync_from_date": "2026-01-01"}'),
        )
    waiting = await rl_as_user(
        stack,
        linked.company,
        "POST",
        "/invoices",
        rl_document_body("INCOME", ids["customer"], ids["item"], "AWAITING_APPROVAL"),
    )
    old = await rl_as_user(
        stack,
        linked.company,
        "POST",
        "/invoices",
        rl_document_body("INCOME", ids["customer"], ids["item"], "APPROVED", date="2025-12-31"),
    )
    await eventually(lambda: outcome_rows(pool, old["id"], linked.connection))
    await settle(1.0)
    assert await linked_qbo_id(pool, "invoice", waiting["id"]) is None
    assert await linked_qbo_id(pool, "invoice", old["id"]) is None
    reasons = [r["reason"] for r in await outcome_rows(pool, old["id"], linked.connection)]
    assert "dated before the sync-from date" in reasons
    await rl_as_user(stack, linked.company, "POST", f"/invoices/{waiting['id']}/approve")
    await eventually(lambda: linked_qbo_id(pool, "invoice", waiting["id"]))


async def test_released_back_to_draft_is_flagged_and_nothing_deleted(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    async with consumers(stack.settings):
        ids = await seed_links(stack, linked.qbo, pool, linked.connection)
        doc = await rl_as_user(
            stack,
            linked.company,
            "POST",
            "/invoices",
            rl_document_body("INCOME", ids["customer"], ids["item"], "AWAITING_APPROVAL"),
        )
        qbo_id = await eventually(lambda: linked_qbo_id(pool, "invoice", doc["id"]))
        await rl_as_user(
            stack, linked.company, "PATCH", f"/invoices/{doc['id']}", {"status": "DRAFT"}
        )

        async def flagged() -> bool:
            return await flags(pool, linked.connection, "invoice") == 1

        await eventually(flagged)
        await settle(1.0)
    assert Decimal(str((await linked.qbo.get("Invoice", qbo_id))["TotalAmt"])) == Decimal("121.00")
    assert await flags(pool, linked.connection, "invoice") == 1


@pytest.mark.usefixtures("engine")
async def test_released_void_voids_invoices_and_deletes_bills_in_qbo(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    ids = await seed_links(stack, linked.qbo, pool, linked.connection)
    inv = await rl_as_user(
        stack,
        linked.company,
        "POST",
        "/invoices",
        rl_document_body("INCOME", ids["customer"], ids["item"], "APPROVED"),
    )
    bill = await rl_as_user(
        stack,
        linked.company,
        "POST",
        "/invoices",
        rl_document_body("EXPENSE", ids["vendor"], ids["account"], "APPROVED"),
    )
    inv_qbo = await eventually(lambda: linked_qbo_id(pool, "invoice", inv["id"]))
    bill_qbo = await eventually(lambda: linked_qbo_id(pool, "bill", bill["id"]))
    assert Decimal(str((await linked.qbo.get("Bill", bill_qbo))["TotalAmt"])) == Decimal("121.00")
    await rl_as_user(stack, linked.company, "POST", f"/invoices/{inv['id']}/void")
    await rl_as_user(stack, linked.company, "POST", f"/invoices/{bill['id']}/void")

    async def both_done() -> bool:
        row = await link_of(pool, "Bill", bill_qbo, linked.connection)
        invoice = await linked.qbo.get("Invoice", inv_qbo)
        return bool(row and row["status"] == "voided" and invoice["TotalAmt"] == 0)

    await eventually(both_done)
    with pytest.raises(Exception, match="not found"):
        await linked.qbo.get("Bill", bill_qbo)


@pytest.mark.usefixtures("engine")
async def test_released_credit_notes_reach_qbo_as_credit_memos_and_vendor_credits(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    ids = await seed_links(stack, linked.qbo, pool, linked.connection)
    income = await rl_as_user(
        stack,
        linked.company,
        "POST",
        "/credit-notes",
        rl_document_body("INCOME_CREDIT", ids["customer"], ids["item"], "APPROVED"),
    )
    expense = await rl_as_user(
        stack,
        linked.company,
        "POST",
        "/credit-notes",
        rl_document_body("EXPENSE_CREDIT", ids["vendor"], ids["account"], "APPROVED"),
    )
    memo = await eventually(lambda: linked_qbo_id(pool, "credit_note", income["id"]))
    credit = await eventually(lambda: linked_qbo_id(pool, "vendor_credit", expense["id"]))
    assert Decimal(str((await linked.qbo.get("CreditMemo", memo))["TotalAmt"])) == Decimal("121.00")
    assert Decimal(str((await linked.qbo.get("VendorCredit", credit))["TotalAmt"])) == Decimal(
        "121.00"
    )


# -- both sides equal, field by field ------------------------------------------------------------


async def test_lifecycle_from_qbo_ends_with_both_sides_equal(
    stack: Stack,
    linked: Linked,
    pool: asyncpg.Pool,
    broker: Any,
) -> None:
    from shared.adapters.broker import EventPublisher
    from shared.ingest.reconciler import Reconciler

    publisher = await EventPublisher.open(broker)
    async with consumers(stack.settings):
        cust = await qbo_customer(linked.qbo)
        item = await qbo_item_id(linked.qbo)
        invoice = await qbo_invoice(linked.qbo, cust["Id"], [qbo_sales_line(item, "4", "25.00")])
        other = await qbo_invoice(linked.qbo, cust["Id"], [qbo_sales_line(item, "1", "12.00")])
        rl_id = await linked_released(pool, "Invoice", str(invoice["Id"]), linked.connection)
        (bank,) = await linked.qbo.query_all("Account", "Name = 'Checking'")
        for amount in ("40.00", "60.00"):  # partial, then the rest
            await linked.qbo.write(
                "Payment",
                {
                    "CustomerRef": {"value": cust["Id"]},
                    "TotalAmt": amount,
                    "TxnDate": TODAY,
                    "DepositToAccountRef": {"value": bank["Id"]},
                    "Line": [
                        {
                            "Amount": amount,
                            "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}],
                        }
                    ],
                },
                request_id=unique("lp"),
            )
        await linked.qbo.upload(
            {
                "AttachableRef": [{"EntityRef": {"type": "Invoice", "value": invoice["Id"]}}],
                "FileName": "lease.pdf",
                "ContentType": "application/pdf",
            },
            io.BytesIO(b"%PDF-1.4 lease"),
            file_name="lease.pdf",
            content_type="application/pdf",
            request_id=unique("lu")[:40],
        )
        other_rl = await linked_released(pool, "Invoice", str(other["Id"]), linked.connection)
        current = await linked.qbo.get("Invoice", str(other["Id"]))
        await linked.qbo.write(
            "Invoice",
            {"Id": other["Id"], "SyncToken": current["SyncToken"]},
            request_id=unique("lv"),
            operation="void",
        )

        async def done() -> bool:
            paid = (await rl_doc(stack, linked.company, "/invoices", rl_id))["status"] == "PAID"
            voided = (await rl_doc(stack, linked.company, "/invoices", other_rl))[
                "status"
            ] == "VOIDED"
            return bool(paid and voided)

        await eventually(done)
        await Reconciler(pool, publisher).reconcile(
            linked.connection, linked.qbo, stack.factory.released(linked.connection)
        )

        async def attached() -> Any:
            page = await stack.released_api(linked.company, "GET", f"/invoices/{rl_id}/attachments")
            return page["items"]

        await eventually(attached)
        await settle()
    await publisher.close()
    assert await assert_sides_agree(stack, linked.connection, pool) == 2


async def test_lifecycle_from_released_ends_with_both_sides_equal(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    async with consumers(stack.settings):
        ids = await seed_links(stack, linked.qbo, pool, linked.connection)
        doc = await rl_as_user(
            stack,
            linked.company,
            "POST",
            "/invoices",
            rl_document_body("INCOME", ids["customer"], ids["item"], "DRAFT"),
        )
        other = await rl_as_user(
            stack,
            linked.company,
            "POST",
            "/invoices",
            rl_document_body("INCOME", ids["customer"], ids["item"], "APPROVED"),
        )
        await rl_as_user(stack, linked.company, "POST", f"/invoices/{doc['id']}/approve")
        qbo_id = await eventually(lambda: linked_qbo_id(pool, "invoice", doc["id"]))
        banks = await stack.released_api(linked.company, "GET", "/accounts?pageSize=1000")
        bank = next(a for a in banks["items"] if a["type"] == "BANK")
        for amount in ("21.00", "100.00"):  # partial, then the rest
            await rl_as_user(
                stack,
                linked.company,
                "POST",
                "/payments",
                {
                    "documentId": doc["id"],
                    "date": TODAY,
                    "amount": amount,
                    "bankAccountId": bank["id"],
                },
            )
        form = aiohttp.FormData()
        form.add_field(
            "file", b"%PDF-1.4 lease", filename="lease.pdf", content_type="application/pdf"
        )
        await stack.call(
            "POST",
            f"{stack.released_base}/_sandbox/companies/{linked.company}/as-user"
            f"/invoices/{doc['id']}/attachments",
            data=form,
        )
        other_qbo = await eventually(lambda: linked_qbo_id(pool, "invoice", other["id"]))
        await rl_as_user(stack, linked.company, "POST", f"/invoices/{other['id']}/void")

        async def done() -> bool:
            paid = Decimal(str((await linked.qbo.get("Invoice", qbo_id))["Balance"])) == 0
            voided = (await linked.qbo.get("Invoice", other_qbo))["TotalAmt"] == 0
            files = await linked.qbo.query_all(
                "Attachable", f"AttachableRef.EntityRef.value = '{qbo_id}'"
            )
            return paid and voided and len(files) == 1

        await eventually(done)
        await settle()
    assert (
        await assert_sides_agree(stack, linked.connection, pool) == 4
    )  # with the seed invoice and bill


async def test_concurrent_edits_merge_field_by_field_and_qbo_wins_a_clash(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    async with consumers(stack.settings):
        cust = await qbo_customer(linked.qbo)
        item = await qbo_item_id(linked.qbo)
        made = await qbo_invoice(linked.qbo, cust["Id"], [qbo_sales_line(item, "1", "30.00")])
        rl_id = await linked_released(pool, "Invoice", str(made["Id"]), linked.connection)
        await settle(1.0)
    # Both sides edit while the engine is down: the lines clash, the due date does not.
    await stack.call(
        "POST",
        f"{stack.qbo_base}/_sandbox/realms/{linked.realm}/ui/invoice",
        json={"Id": made["Id"], "Line": [qbo_sales_line(item, "1", "50.00")]},
    )
    doc = await rl_doc(stack, linked.company, "/invoices", rl_id)
    await rl_as_user(
        stack,
        linked.company,
        "PATCH",
        f"/invoices/{rl_id}",
        {"dueDate": "2027-01-31", "lines": [{**doc["lines"][0], "unitAmount": "77.00"}]},
    )
    async with consumers(stack.settings):

        async def merged() -> bool:
            rl = await rl_doc(stack, linked.company, "/invoices", rl_id)
            current = await linked.qbo.get("Invoice", str(made["Id"]))
            return bool(
                rl["total"] == "50.00"
                and Decimal(str(current["TotalAmt"])) == Decimal("50.00")
                and current["DueDate"] == "2027-01-31"
                and rl["dueDate"] == "2027-01-31"
            )

        await eventually(merged)
        await settle()
    async with pool.acquire() as conn:
        clashes = await conn.fetch(
            "SELECT fields, winner FROM conflicts WHERE connection_id = $1 "
            "AND kind = 'field_conflict' AND entity = 'invoice'",
            linked.connection.id,
        )
    assert [
        json.loads(r["fields"])["field"] if isinstance(r["fields"], str) else r["fields"]["field"]
        for r in clashes
    ] == ["lines"]
    assert await assert_sides_agree(stack, linked.connection, pool) == 1


@pytest.mark.usefixtures("engine")
async def test_qbo_void_of_a_released_document_awaiting_approval_voids_it(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    ids = await seed_links(stack, linked.qbo, pool, linked.connection)
    doc = await rl_as_user(
        stack,
        linked.company,
        "POST",
        "/invoices",
        rl_document_body("INCOME", ids["customer"], ids["item"], "AWAITING_APPROVAL"),
    )
    qbo_id = await eventually(lambda: linked_qbo_id(pool, "invoice", doc["id"]))
    await stack.call(
        "POST", f"{stack.qbo_base}/_sandbox/realms/{linked.realm}/ui/invoice/{qbo_id}/void"
    )

    async def voided() -> bool:
        return bool(
            (await rl_doc(stack, linked.company, "/invoices", doc["id"]))["status"] == "VOIDED"
        )

    await eventually(voided)


async def test_initial_import_links_documents_of_both_sides(
    stack: Stack, pool: asyncpg.Pool, broker: Any
) -> None:
    from shared.adapters.broker import EventPublisher
    from shared.ingest.importer import InitialImport

    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    ui = f"{stack.qbo_base}/_sandbox/realms/{realm}/ui"
    made = await stack.call("POST", f"{ui}/customer", json={"DisplayName": unique("Old Tenant")})
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    item = await qbo_item_id(qbo)
    body = {"CustomerRef": {"value": made["Customer"]["Id"]}, "TxnDate": TODAY}
    before = await stack.call(
        "POST", f"{ui}/invoice", json={**body, "Line": [qbo_sales_line(item, "2", "15.00")]}
    )
    await asyncio.sleep(1.0)
    publisher = await EventPublisher.open(broker)
    async with consumers(stack.settings):
        progress = await InitialImport(pool, publisher).run(
            connection, qbo, stack.factory.released(connection)
        )
        assert progress.stages["qbo_invoice"] >= 1
        rl_id = await linked_released(pool, "Invoice", str(before["Invoice"]["Id"]), connection)
        await settle()
    await publisher.close()
    assert (await rl_doc(stack, company, "/invoices", rl_id))["total"] == "30.00"
    assert await assert_sides_agree(stack, connection, pool) == 1
