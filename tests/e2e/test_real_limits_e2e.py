"""Both sandboxes at their platforms' real limits, the product on its real budgets.

QBO 500 requests a minute and 10 at once per realm, Re-Leased 60 a minute and 5 at once per
company; the product's budgets are its defaults. Under them: an initial import runs while live
edits arrive on both sides, and the live edits land while the import is still being applied (its
bulk lane never holds them up); nothing we send is refused with a 429; and a burst of 429s from
Re-Leased delays a change without losing it. And every row of the ownership table
(../shared/docs/ownership.md) has its happy path here, one test a row, each on a connection of its
own made through the real flow (about two minutes in all, most of it Re-Leased's budget).

The test reads Re-Leased through the control API's ``as-user`` routes, which count against no
limit: its own polling must not spend the company's 60 a minute.
"""

from __future__ import annotations

import functools
import io
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import EventPublisher
from shared.adapters.qbo.client import QboClient
from shared.admin.connect import ConnectFlow, ConnectRefused
from shared.admin.store import AdminConnections
from shared.ingest.importer import InitialImport
from shared.ingest.reconciler import Reconciler, ReconcileReport
from tests.e2e.builders import (
    TODAY,
    qbo_bank_account_id,
    qbo_expense_account_id,
    qbo_expense_line,
    qbo_invoice,
    qbo_item_id,
    qbo_payment_lines,
    qbo_sales_line,
    rl_approved_document,
    rl_document_body,
    seed_links,
)
from tests.e2e.conftest import Linked
from tests.e2e.readers import flags, link_of, linked_qbo_id, linked_released, outcome_rows
from tests.e2e.stack import Stack, consumers, eventually, running_stack, unique

# Real limits are slow on purpose: the import alone needs a few Re-Leased minutes' budget.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


@pytest.fixture
async def real_stack(
    database_url: str, amqp_url: str, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> AsyncIterator[Stack]:
    async with running_stack(database_url, amqp_url, pool, real_limits=True) as running:
        yield running


async def rl_read(stack: Stack, company: str, path: str) -> Any:
    """Re-Leased as its own UI reads it: no limit spent."""
    return await stack.call(
        "GET", f"{stack.released_base}/_sandbox/companies/{company}/as-user{path}"
    )


async def rl_write(stack: Stack, company: str, method: str, path: str, body: Any) -> Any:
    return await stack.call(
        method, f"{stack.released_base}/_sandbox/companies/{company}/as-user{path}", json=body
    )


async def rl_named(stack: Stack, company: str, name: str) -> list[dict[str, Any]]:
    page = await rl_read(stack, company, "/contacts?pageSize=1000")
    return [c for c in page["items"] if c["name"] == name]


async def refused_with_429(stack: Stack, company: str) -> list[dict[str, Any]]:
    log = await stack.call("GET", f"{stack.released_base}/_sandbox/companies/{company}/requests")
    return [r for r in log["items"] if r["status"] == 429]


async def test_live_edits_land_while_an_import_runs_at_real_limits(
    real_stack: Stack, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    stack = real_stack
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company(user_subscribes=False)
    tag = unique("Real")
    for n in range(8):
        await rl_write(
            stack, company, "POST", "/contacts", {"name": f"{tag} Own {n}", "isCustomer": True}
        )
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    for n in range(20):
        await qbo.write("Customer", {"DisplayName": f"{tag} Tenant {n}"}, request_id=f"rt-{n}")
    publisher = await EventPublisher.open(broker)
    try:
        async with consumers(stack.settings):
            # The import as the reconciler runs it: queued in the bulk lane, applied at the pace
            # of Re-Leased's 60 a minute.
            importer = InitialImport(pool, publisher)
            await importer.run(connection, qbo, stack.factory.released(connection))
            live_qbo, live_rl = f"{tag} Live QBO", f"{tag} Live RL"
            await qbo.write("Customer", {"DisplayName": live_qbo}, request_id="live-q")
            await rl_write(
                stack, company, "POST", "/contacts", {"name": live_rl, "isCustomer": True}
            )

            async def both_live_edits_landed() -> bool:
                in_rl = await rl_named(stack, company, live_qbo)
                in_qbo = await qbo.query_all("Customer", f"DisplayName = '{live_rl}'")
                return bool(in_rl and in_qbo)

            await eventually(both_live_edits_landed, timeout=60)
            progress = (await AdminConnections(pool).import_state(connection.id))["progress"]
            assert progress["stage"] == "applying", "the live edits did not wait for the import"
            assert progress["done"] < progress["total"]

            async def import_done() -> bool:
                now = await AdminConnections(pool).import_state(connection.id)
                return bool(now["progress"]["stage"] == "done")

            await eventually(import_done, timeout=240, interval=2)
    finally:
        await publisher.close()
    assert await refused_with_429(stack, company) == [], "the budget kept us under 60 a minute"
    everyone = [f"{tag} Tenant {n}" for n in range(20)] + [f"{tag} Own {n}" for n in range(8)]
    for name in everyone:
        assert len(await rl_named(stack, company, name)) == 1, name
    customers = [c["DisplayName"] for c in await qbo.query_all("Customer")]
    for name in everyone:
        assert customers.count(name) == 1, name


async def test_a_burst_of_429s_delays_a_change_without_losing_it(real_stack: Stack) -> None:
    stack = real_stack
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company(user_subscribes=False)
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    faults = f"{stack.released_base}/_sandbox/companies/{company}/faults"
    name = unique("Through 429s")
    log = f"{stack.released_base}/_sandbox/companies/{company}/requests"
    before = (await stack.call("GET", log))["total"]
    async with consumers(stack.settings):
        await stack.call("PUT", faults, json={"rateLimitRate": 1.0})
        await qbo.write("Customer", {"DisplayName": name}, request_id="burst-1")

        async def refused_a_few() -> bool:
            # Every call is refused while the switch is on (reads too, which the log of writes
            # does not list): count them all.
            return bool((await stack.call("GET", log))["total"] - before >= 3)

        await eventually(refused_a_few, timeout=30)
        await stack.call("PUT", faults, json={"rateLimitRate": 0.0})
        await eventually(lambda: rl_named(stack, company, name), timeout=90, interval=1)
    (contact,) = await rl_named(stack, company, name)
    assert contact["isCustomer"] is True
    async with stack.pool.acquire() as conn:
        dead = await conn.fetchval(
            "SELECT count(*) FROM dead_letters WHERE connection_id = $1", connection.id
        )
    assert dead == 0, "retried, not dead-lettered"


# -- Every ownership row's happy path at real limits (docs: ownership.md, one test a row) --------
# Each runs on a company and realm of its own, connected through the real flow, so each starts
# with its own budgets. Re-Leased is read through ``as-user`` (no limit spent); writes a user makes
# go through ``as-user`` too, like the Re-Leased web app.


@pytest.fixture
async def real_linked(real_stack: Stack) -> Linked:
    realm, tokens = await real_stack.qbo_realm()
    company = await real_stack.released_company(user_subscribes=False)
    connection = await real_stack.connect(realm, tokens, company)
    return Linked(realm, company, connection, real_stack.factory.qbo(connection))


async def rl_items(stack: Stack, company: str, path: str) -> list[dict[str, Any]]:
    sep = "&" if "?" in path else "?"
    return list((await rl_read(stack, company, f"{path}{sep}pageSize=1000"))["items"])


async def rl_refusal(stack: Stack, company: str, method: str, path: str, body: Any = None) -> str:
    """A Re-Leased user's write that is refused: its business code."""
    url = f"{stack.released_base}/_sandbox/companies/{company}/as-user{path}"
    async with stack.http.request(method, url, json=body) as response:
        answer = await response.json(content_type=None)
        assert 400 <= response.status < 500, f"{method} {path}: {response.status} {answer}"
    return str(answer["elements"][0]["validationErrors"][0]["code"])


async def rl_document(stack: Stack, company: str, path: str, doc_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await rl_read(stack, company, f"{path}/{doc_id}")
    return found


async def qbo_invoice_in_released(
    qbo: QboClient, pool: asyncpg.Pool, linked: Linked, customer: str, amount: str
) -> tuple[dict[str, Any], str]:
    """A one-line QBO invoice for ``customer`` and, once it has reached Re-Leased, its id there."""
    invoice = await qbo_invoice(
        qbo, customer, [qbo_sales_line(await qbo_item_id(qbo), "1", amount)]
    )
    return invoice, await linked_released(pool, "Invoice", str(invoice["Id"]), linked.connection)


async def qbo_payment(
    qbo: QboClient, customer: str, total: str, applied: dict[str, str]
) -> dict[str, Any]:
    """A customer's payment of ``total`` into the bank, ``applied`` to invoices by id."""
    body = {
        "CustomerRef": {"value": customer},
        "TotalAmt": total,
        "TxnDate": TODAY,
        "DepositToAccountRef": {"value": await qbo_bank_account_id(qbo)},
        "Line": qbo_payment_lines(applied),
    }
    made: dict[str, Any] = await qbo.write("Payment", body, request_id=unique("pay"))
    return made


async def qbo_operation(qbo: QboClient, entity: str, record_id: str, operation: str) -> None:
    """A void or delete made in QBO, at the record's current SyncToken."""
    current = await qbo.get(entity, record_id)
    await qbo.write(
        entity,
        {"Id": record_id, "SyncToken": current["SyncToken"]},
        request_id=unique(operation),
        operation=operation,
    )


async def amount_due_is(stack: Stack, company: str, rl_invoice: str, wanted: str) -> None:
    """Wait until the Re-Leased invoice's amount due is ``wanted``."""

    async def due() -> bool:
        found = await rl_document(stack, company, "/invoices", rl_invoice)
        return bool(found["amountDue"] == wanted)

    await eventually(due, timeout=60, interval=1)


async def poll_unannounced(
    pool: asyncpg.Pool, broker: AbstractRobustConnection, linked: Linked
) -> None:
    """The reconciler's poll of what QBO never announces (tax codes and rates, attachables), on
    its own: its CDC and change-feed passes would spend the budget on repairs no row is about."""
    publisher = await EventPublisher.open(broker)
    try:
        report = ReconcileReport(linked.connection.id)
        await Reconciler(pool, publisher)._qbo_polled(linked.connection, linked.qbo, report)
    finally:
        await publisher.close()


async def no_429s(stack: Stack, linked: Linked) -> None:
    assert await refused_with_429(stack, linked.company) == [], "inside Re-Leased's 60 a minute"
    url = f"{stack.qbo_base}/_sandbox/realms/{linked.realm}/requests"
    throttled = [r for r in (await stack.call("GET", url))["requests"] if r.get("status") == 429]
    assert throttled == [], "inside QBO's 500 a minute"


async def test_row_master_data_flows_from_qbo_only(
    real_stack: Stack, real_linked: Linked, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    stack, linked = real_stack, real_linked
    class_name, code = unique("Building"), "6150"
    async with consumers(stack.settings):
        await linked.qbo.write("Class", {"Name": class_name}, request_id=unique("cls"))
        await linked.qbo.write(
            "Account",
            {"Name": unique("Upkeep"), "AccountType": "Expense", "AcctNum": code},
            request_id=unique("acc"),
        )
        await poll_unannounced(pool, broker, linked)  # tax rates: QBO announces none
        rates = {r["Name"] for r in await linked.qbo.query_all("TaxRate")}

        async def arrived() -> bool:
            accounts = await rl_items(stack, linked.company, "/accounts")
            options = [
                o["name"]
                for c in await rl_items(stack, linked.company, "/tracking-categories")
                for o in c.get("options", [])
            ]
            taxes = {t["name"] for t in await rl_items(stack, linked.company, "/tax-rates")}
            return (
                any(a["code"] == code for a in accounts)
                and class_name in options
                and (rates <= taxes)
            )

        await eventually(arrived, timeout=90, interval=1)
    (account,) = [
        a for a in await rl_items(stack, linked.company, "/accounts") if a["code"] == code
    ]
    refused = await rl_refusal(
        stack, linked.company, "PATCH", f"/accounts/{account['id']}", {"name": "Mine"}
    )
    assert refused == "MANAGED_IN_ACCOUNTING", "QBO is the only manager"
    await no_429s(stack, linked)


async def test_row_contacts_both_ways(real_stack: Stack, real_linked: Linked) -> None:
    stack, linked = real_stack, real_linked
    from_qbo, from_rl = unique("QBO Tenant"), unique("RL Tenant")
    async with consumers(stack.settings):
        await linked.qbo.write("Customer", {"DisplayName": from_qbo}, request_id=unique("c"))
        await rl_write(
            stack, linked.company, "POST", "/contacts", {"name": from_rl, "isCustomer": True}
        )

        async def both() -> bool:
            in_rl = await rl_named(stack, linked.company, from_qbo)
            in_qbo = await linked.qbo.query_all("Customer", f"DisplayName = '{from_rl}'")
            return bool(in_rl and in_qbo)

        await eventually(both, timeout=60, interval=1)
    assert len(await rl_named(stack, linked.company, from_qbo)) == 1
    await no_429s(stack, linked)


async def test_row_archive_only_in_qbo(real_stack: Stack, real_linked: Linked) -> None:
    stack, linked = real_stack, real_linked
    name = unique("Leaving Tenant")
    async with consumers(stack.settings):
        made = await linked.qbo.write("Customer", {"DisplayName": name}, request_id=unique("c"))
        (contact,) = await eventually(lambda: rl_named(stack, linked.company, name), timeout=60)
        refused = await rl_refusal(
            stack, linked.company, "POST", f"/contacts/{contact['id']}/archive"
        )
        assert refused == "ARCHIVE_IN_ACCOUNTING"
        await linked.qbo.write(
            "Customer",
            {"Id": made["Id"], "SyncToken": made["SyncToken"], "sparse": True, "Active": False},
            request_id=unique("c-off"),
        )

        async def archived() -> bool:
            found = await rl_read(stack, linked.company, f"/contacts/{contact['id']}")
            return bool(found["status"] == "ARCHIVED")

        await eventually(archived, timeout=60, interval=1)
    await no_429s(stack, linked)


async def test_row_documents_both_ways(
    real_stack: Stack, real_linked: Linked, pool: asyncpg.Pool
) -> None:
    stack, linked = real_stack, real_linked
    qbo = linked.qbo
    async with consumers(stack.settings):
        # QBO -> Re-Leased: an invoice and a bill (seed_links), and a credit memo.
        ids = await seed_links(stack, qbo, pool, linked.connection)
        customer = (await qbo.query_all("Customer"))[-1]
        memo = await qbo.write(
            "CreditMemo",
            {
                "CustomerRef": {"value": customer["Id"]},
                "TxnDate": TODAY,
                "Line": [qbo_sales_line(await qbo_item_id(qbo), "1", "15.00")],
            },
            request_id=unique("cm"),
        )
        # Re-Leased -> QBO: an approved invoice and a vendor credit made by a user.
        invoice = await rl_approved_document(stack, linked.company, ids, "INCOME")
        credit = await rl_approved_document(stack, linked.company, ids, "EXPENSE_CREDIT")
        await linked_released(pool, "CreditMemo", str(memo["Id"]), linked.connection)
        qbo_invoice_id = await eventually(
            lambda: linked_qbo_id(pool, "invoice", invoice["id"]), timeout=60
        )
        qbo_credit_id = await eventually(
            lambda: linked_qbo_id(pool, "vendor_credit", credit["id"]), timeout=60
        )
    made = await qbo.get("Invoice", str(qbo_invoice_id))
    assert Decimal(str(made["TotalAmt"])) == Decimal(invoice["total"])
    vendor_credit = await qbo.get("VendorCredit", str(qbo_credit_id))
    assert Decimal(str(vendor_credit["TotalAmt"])) == Decimal(credit["total"])
    await no_429s(stack, linked)


async def test_row_voids_are_mirrored(
    real_stack: Stack, real_linked: Linked, pool: asyncpg.Pool
) -> None:
    stack, linked = real_stack, real_linked
    qbo = linked.qbo
    async with consumers(stack.settings):
        ids = await seed_links(stack, qbo, pool, linked.connection)
        customer = (await qbo.query_all("Customer"))[-1]
        invoice, rl_invoice = await qbo_invoice_in_released(
            qbo, pool, linked, customer["Id"], "30.00"
        )
        bill = await rl_approved_document(stack, linked.company, ids, "EXPENSE")
        qbo_bill = await eventually(lambda: linked_qbo_id(pool, "bill", bill["id"]), timeout=60)
        await qbo_operation(qbo, "Invoice", str(invoice["Id"]), "void")
        await rl_write(stack, linked.company, "POST", f"/invoices/{bill['id']}/void", {})

        async def both_voided() -> bool:
            rl = await rl_document(stack, linked.company, "/invoices", rl_invoice)
            link = await link_of(pool, "Bill", str(qbo_bill), linked.connection)
            return rl["status"] == "VOIDED" and link is not None and link["status"] == "voided"

        await eventually(both_voided, timeout=60, interval=1)
    assert not await qbo.query_all("Bill", f"Id = '{qbo_bill}'"), "QBO has no bill void: deleted"
    await no_429s(stack, linked)


async def test_row_attachments_both_ways(
    real_stack: Stack, real_linked: Linked, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    stack, linked = real_stack, real_linked
    qbo = linked.qbo
    pdf = b"%PDF-1.4 lease " + unique("x").encode()
    async with consumers(stack.settings):
        ids = await seed_links(stack, qbo, pool, linked.connection)
        customer = (await qbo.query_all("Customer"))[-1]
        invoice, rl_invoice = await qbo_invoice_in_released(
            qbo, pool, linked, customer["Id"], "9.00"
        )
        ref = {"AttachableRef": [{"EntityRef": {"type": "Invoice", "value": invoice["Id"]}}]}
        await qbo.upload(
            {**ref, "FileName": "lease.pdf", "ContentType": "application/pdf"},
            io.BytesIO(pdf),
            file_name="lease.pdf",
            content_type="application/pdf",
            request_id=unique("up"),
        )
        await poll_unannounced(pool, broker, linked)  # QBO announces no attachables
        doc = await rl_approved_document(stack, linked.company, ids, "INCOME")
        qbo_doc = await eventually(lambda: linked_qbo_id(pool, "invoice", doc["id"]), timeout=60)
        form = aiohttp.FormData()
        form.add_field("file", pdf, filename="rent.pdf", content_type="application/pdf")
        await stack.call(
            "POST",
            f"{stack.released_base}/_sandbox/companies/{linked.company}/as-user"
            f"/invoices/{doc['id']}/attachments",
            data=form,
        )

        async def both() -> bool:
            in_rl = await rl_read(stack, linked.company, f"/invoices/{rl_invoice}/attachments")
            in_qbo = await qbo.query_all(
                "Attachable", f"AttachableRef.EntityRef.value = '{qbo_doc}'"
            )
            return bool(in_rl["items"] and in_qbo)

        await eventually(both, timeout=60, interval=1)
    await no_429s(stack, linked)


async def test_row_payments_both_ways(
    real_stack: Stack, real_linked: Linked, pool: asyncpg.Pool
) -> None:
    stack, linked = real_stack, real_linked
    qbo = linked.qbo
    async with consumers(stack.settings):
        ids = await seed_links(stack, qbo, pool, linked.connection)
        customer = (await qbo.query_all("Customer"))[-1]
        invoice, rl_invoice = await qbo_invoice_in_released(
            qbo, pool, linked, customer["Id"], "100.00"
        )
        # 5.00 of it applied to nothing: held as credit.
        await qbo_payment(qbo, customer["Id"], "45.00", {invoice["Id"]: "40.00"})
        doc = await rl_approved_document(stack, linked.company, ids, "INCOME")
        qbo_doc = await eventually(lambda: linked_qbo_id(pool, "invoice", doc["id"]), timeout=60)
        bank = next(
            a for a in await rl_items(stack, linked.company, "/accounts") if a["type"] == "BANK"
        )
        body = {
            "documentId": doc["id"],
            "date": TODAY,
            "amount": "21.00",
            "bankAccountId": bank["id"],
        }
        paid = await rl_write(stack, linked.company, "POST", "/payments", body)

        async def both() -> bool:
            rl = await rl_document(stack, linked.company, "/invoices", rl_invoice)
            in_qbo = await linked_qbo_id(pool, "payment", paid["id"])
            notes = await rl_items(stack, linked.company, "/credit-notes")
            held = [(n["kind"], n["remainingCredit"]) for n in notes if n["kind"] != "STANDARD"]
            return (
                rl["amountDue"] == "60.00"
                and in_qbo is not None
                and held == [("OVERPAYMENT", "5.00")]
            )

        await eventually(both, timeout=60, interval=1)
    balance = (await qbo.get("Invoice", str(qbo_doc)))["Balance"]
    assert Decimal(str(balance)) == Decimal(doc["total"]) - Decimal("21.00")
    await no_429s(stack, linked)


async def test_row_payment_reversal_only_in_qbo(
    real_stack: Stack, real_linked: Linked, pool: asyncpg.Pool
) -> None:
    stack, linked = real_stack, real_linked
    qbo = linked.qbo
    async with consumers(stack.settings):
        customer = await qbo.write("Customer", {"DisplayName": unique("Payer")}, request_id="py")
        invoice, rl_invoice = await qbo_invoice_in_released(
            qbo, pool, linked, customer["Id"], "50.00"
        )
        payment = await qbo_payment(qbo, customer["Id"], "50.00", {invoice["Id"]: "50.00"})
        await amount_due_is(stack, linked.company, rl_invoice, "0.00")
        page = await rl_items(stack, linked.company, "/payments")
        (rl_payment,) = [p for p in page if p["documentId"] == rl_invoice]
        refused = await rl_refusal(
            stack, linked.company, "POST", f"/payments/{rl_payment['id']}/reverse"
        )
        assert refused == "REVERSE_IN_ACCOUNTING"
        await qbo_operation(qbo, "Payment", str(payment["Id"]), "void")
        await amount_due_is(stack, linked.company, rl_invoice, "50.00")
    after = await rl_read(stack, linked.company, f"/payments/{rl_payment['id']}")
    assert (after["status"], after["reversalSource"]) == ("REVERSED", "ACCOUNTING")
    await no_429s(stack, linked)


async def test_row_spend_and_receive_money_never_sync(
    real_stack: Stack, real_linked: Linked, pool: asyncpg.Pool
) -> None:
    stack, linked = real_stack, real_linked
    qbo = linked.qbo
    bank = await qbo_bank_account_id(qbo)
    async with consumers(stack.settings):
        spent = await qbo.write(
            "Purchase",
            {
                "PaymentType": "Cash",
                "AccountRef": {"value": bank},
                "TxnDate": TODAY,
                "Line": [qbo_expense_line(await qbo_expense_account_id(qbo), "12")],
            },
            request_id=unique("spend"),
        )
        customer = await qbo.write("Customer", {"DisplayName": unique("Walk-in")}, request_id="wi")
        received = await qbo.write(
            "SalesReceipt",
            {
                "CustomerRef": {"value": customer["Id"]},
                "TxnDate": TODAY,
                "DepositToAccountRef": {"value": bank},
                "Line": [qbo_sales_line(await qbo_item_id(qbo), "1", "8.00")],
            },
            request_id=unique("receive"),
        )
        for made in (spent, received):
            found = functools.partial(outcome_rows, pool, str(made["Id"]), linked.connection)
            rows = await eventually(found, timeout=60)
            assert [(r["outcome"], r["reason"]) for r in rows] == [("ignored", "not_synced_type")]
    documents = await rl_items(stack, linked.company, "/invoices")
    assert documents == [], "spend and receive money never reach Re-Leased"
    await no_429s(stack, linked)


async def test_row_one_company_is_bound_to_one_realm(
    real_stack: Stack, real_linked: Linked, pool: asyncpg.Pool
) -> None:
    stack, linked = real_stack, real_linked
    other, _ = await stack.qbo_realm()
    flow = ConnectFlow(stack.admin_settings(), pool, stack.factory, stack.http)
    url = f"{flow.authorize_url(linked.connection.id)}&{urlencode({'sandbox_realm_id': other})}"
    async with stack.http.get(url, allow_redirects=False) as response:
        query = parse_qs(urlsplit(response.headers["Location"]).query)
    with pytest.raises(ConnectRefused) as refused:
        await flow.complete(query["code"][0], query["state"][0], query["realmId"][0])
    assert refused.value.reason == "realm_mismatch"
    company = await rl_read(stack, linked.company, "/company")
    assert company["accountingConnection"]["externalOrgId"] == linked.realm
    row = await AdminConnections(pool).get(linked.connection.id)
    assert row is not None
    assert row.qbo_realm_id == linked.realm


async def test_row_contact_merge_in_qbo(real_stack: Stack, real_linked: Linked) -> None:
    stack, linked = real_stack, real_linked
    keep, drop = unique("Keep Ltd"), unique("Drop Ltd")
    async with consumers(stack.settings):
        ids = {}
        for name in (keep, drop):
            made = await linked.qbo.write("Customer", {"DisplayName": name}, request_id=unique("m"))
            ids[name] = made["Id"]
        for name in (keep, drop):
            await eventually(functools.partial(rl_named, stack, linked.company, name), timeout=60)
        await stack.call(
            "POST",
            f"{stack.qbo_base}/_sandbox/realms/{linked.realm}/ui/customer/merge",
            json={"fromId": ids[drop], "toId": ids[keep]},
        )
        (merged,) = await rl_named(stack, linked.company, drop)

        async def archived() -> dict[str, Any] | None:
            found = await rl_read(stack, linked.company, f"/contacts/{merged['id']}")
            return found if found["status"] == "ARCHIVED" else None

        gone = await eventually(archived, timeout=60, interval=1)
    (survivor,) = await rl_named(stack, linked.company, keep)
    assert gone["mergedToContactId"] == survivor["id"]
    await no_429s(stack, linked)


async def test_row_qbo_hard_delete_voids_in_released(
    real_stack: Stack, real_linked: Linked, pool: asyncpg.Pool
) -> None:
    stack, linked = real_stack, real_linked
    qbo = linked.qbo
    async with consumers(stack.settings):
        vendor = await qbo.write("Vendor", {"DisplayName": unique("Fixit")}, request_id="v")
        bill = await qbo.write(
            "Bill",
            {
                "VendorRef": {"value": vendor["Id"]},
                "TxnDate": TODAY,
                "Line": [qbo_expense_line(await qbo_expense_account_id(qbo), "75.00")],
            },
            request_id=unique("bill"),
        )
        rl_bill = await linked_released(pool, "Bill", str(bill["Id"]), linked.connection)
        await qbo_operation(qbo, "Bill", str(bill["Id"]), "delete")

        async def voided() -> bool:
            found = await rl_document(stack, linked.company, "/invoices", rl_bill)
            return bool(found["status"] == "VOIDED")

        await eventually(voided, timeout=60, interval=1)
    await no_429s(stack, linked)


async def test_row_back_to_draft_after_sync_is_flagged(
    real_stack: Stack, real_linked: Linked, pool: asyncpg.Pool
) -> None:
    stack, linked = real_stack, real_linked
    async with consumers(stack.settings):
        ids = await seed_links(stack, linked.qbo, pool, linked.connection)
        body = rl_document_body("INCOME", ids["customer"], ids["item"], "AWAITING_APPROVAL")
        doc = await rl_write(stack, linked.company, "POST", "/invoices", body)
        qbo_id = await eventually(lambda: linked_qbo_id(pool, "invoice", doc["id"]), timeout=60)
        patch = {"status": "DRAFT"}
        await rl_write(stack, linked.company, "PATCH", f"/invoices/{doc['id']}", patch)

        async def flagged() -> bool:
            return await flags(pool, linked.connection, "invoice") == 1

        await eventually(flagged, timeout=60, interval=1)
    kept = await linked.qbo.get("Invoice", str(qbo_id))
    assert Decimal(str(kept["TotalAmt"])) == Decimal(doc["total"]), "nothing deleted in QBO"
    await no_429s(stack, linked)


async def test_row_payment_update_in_qbo_re_records_it(
    real_stack: Stack, real_linked: Linked, pool: asyncpg.Pool
) -> None:
    stack, linked = real_stack, real_linked
    qbo = linked.qbo
    async with consumers(stack.settings):
        customer = await qbo.write("Customer", {"DisplayName": unique("Payer")}, request_id="pu")
        invoice, rl_invoice = await qbo_invoice_in_released(
            qbo, pool, linked, customer["Id"], "80.00"
        )
        payment = await qbo_payment(qbo, customer["Id"], "30.00", {invoice["Id"]: "30.00"})
        await amount_due_is(stack, linked.company, rl_invoice, "50.00")
        current = await qbo.get("Payment", str(payment["Id"]))
        changed = {
            "Id": payment["Id"],
            "SyncToken": current["SyncToken"],
            "sparse": True,
            "TotalAmt": "55.00",
            "Line": qbo_payment_lines({invoice["Id"]: "55.00"}),
        }
        await qbo.write("Payment", changed, request_id=unique("pay2"))
        await amount_due_is(stack, linked.company, rl_invoice, "25.00")
    recorded = await rl_items(stack, linked.company, "/payments")
    mine = sorted((p["amount"], p["status"]) for p in recorded if p["documentId"] == rl_invoice)
    assert mine == [("30.00", "REVERSED"), ("55.00", "ACTIVE")], "old reversed, new recorded"
    await no_429s(stack, linked)
