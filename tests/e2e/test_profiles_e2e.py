"""A realistic US company end to end (seed profile ``us_property``): an invoice on New York City's
combined sales tax code (4 % + 4.5 % + 0.375 %) with a class on the whole document reaches
Re-Leased as one 8.875 % rate and the unit's full-path option, totals to the cent; a Re-Leased
edit goes back to QBO with the tax split over the three components; both sides agree."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from shared.adapters.qbo.tokens import QboTokens
from tests.e2e.agreement import assert_sides_agree
from tests.e2e.builders import TODAY, qbo_item_id, rl_as_user
from tests.e2e.readers import linked_released, rl_doc, settle
from tests.e2e.stack import Stack, consumers, eventually

pytestmark = pytest.mark.e2e


async def profile_realm(stack: Stack, profile: str) -> tuple[str, QboTokens]:
    made = await stack.call(
        "POST", f"{stack.qbo_base}/_sandbox/realms", json={"companyName": "P", "profile": profile}
    )
    realm = str(made["realmId"])
    body = await stack.call("POST", f"{stack.qbo_base}/_sandbox/realms/{realm}/tokens")
    return realm, QboTokens.from_response(body)


async def test_a_us_property_company_invoice_on_a_combined_code_survives_both_ways(
    stack: Stack, pool: asyncpg.Pool
) -> None:
    realm, tokens = await profile_realm(stack, "us_property")
    company = await stack.released_company()
    await asyncio.sleep(1.1)  # CDC works in whole seconds: seed data predates the connection
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    (code,) = await qbo.query_all("TaxCode", "Name = 'NYC Combined'")
    (unit,) = await qbo.query_all("Class", "FullyQualifiedName = 'Building B:Unit 1'")
    (tenant,) = await qbo.query_all("Customer", "DisplayName = 'Unit 4 fit-out'")
    line = {
        "Amount": "1234.56",
        "DetailType": "SalesItemLineDetail",
        "Description": "Rent",
        "SalesItemLineDetail": {
            "ItemRef": {"value": await qbo_item_id(qbo, "Rent")},
            "Qty": "1",
            "UnitPrice": "1234.56",
            "TaxCodeRef": {"value": "TAX"},
        },
    }
    body: dict[str, Any] = {
        "CustomerRef": {"value": tenant["Id"]},
        "TxnDate": TODAY,
        "Line": [line],
        "ClassRef": {"value": unit["Id"]},
        "TxnTaxDetail": {"TxnTaxCodeRef": {"value": code["Id"]}},
    }
    async with consumers(stack.settings):
        invoice = await qbo.write("Invoice", body, request_id="profile-inv-1")
        rl_id = await linked_released(pool, "Invoice", str(invoice["Id"]), connection)
        rl = await rl_doc(stack, company, "/invoices", rl_id)
        (rl_line,) = rl["lines"]
        rate = await stack.released_api(company, "GET", f"/tax-rates/{rl_line['taxRateId']}")
        assert (rate["name"], rate["rate"]) == ("NYC Combined", "8.875")
        # QBO taxes per component: 49.38 + 55.56 + 4.63 = 109.57 on 1234.56.
        assert Decimal(rl["totalTax"]) == Decimal(str(invoice["TxnTaxDetail"]["TotalTax"]))
        assert Decimal(rl["total"]) == Decimal(str(invoice["TotalAmt"]))
        categories = await stack.released_api(company, "GET", "/tracking-categories")
        options = {o["id"]: o["name"] for c in categories["items"] for o in c["options"]}
        assert options[rl_line["trackingOptionId"]] == "Building B:Unit 1"
        edited = {k: rl_line[k] for k in ("description", "accountId", "taxRateId")}
        edited.update(
            quantity="2", unitAmount="1000.00", trackingOptionId=rl_line["trackingOptionId"]
        )
        await rl_as_user(stack, company, "PATCH", f"/invoices/{rl_id}", {"lines": [edited]})

        async def in_qbo() -> Any:
            current = await qbo.get("Invoice", str(invoice["Id"]))
            return current if Decimal(str(current["TotalAmt"])) > 2000 else None

        current = await eventually(in_qbo)
        await settle(2.0)
    rl = await rl_doc(stack, company, "/invoices", rl_id)
    detail = current["TxnTaxDetail"]
    assert len(detail["TaxLine"]) == 3
    assert sum(Decimal(str(t["Amount"])) for t in detail["TaxLine"]) == Decimal(rl["totalTax"])
    assert Decimal(str(current["TotalAmt"])) == Decimal(rl["total"])
    (qbo_line,) = [ln for ln in current["Line"] if ln.get("DetailType") == "SalesItemLineDetail"]
    assert qbo_line["SalesItemLineDetail"]["ClassRef"]["value"] == unit["Id"]
    assert await assert_sides_agree(stack, connection, pool) == 1


async def test_a_uk_company_invoice_including_vat_survives_both_ways(
    stack: Stack, pool: asyncpg.Pool
) -> None:
    """Seed profile ``uk``: amounts including VAT (QBO GlobalTaxCalculation TaxInclusive) reach
    Re-Leased as an INCLUSIVE invoice, and a Re-Leased edit goes back net of tax with the amount
    as entered in TaxInclusiveAmt; totals to the cent, both sides agree."""
    realm, tokens = await profile_realm(stack, "uk")
    company = await stack.released_company()
    await asyncio.sleep(1.1)
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    (code,) = await qbo.query_all("TaxCode", "Name = '20.0% S'")
    (tenant,) = await qbo.query_all("Customer", "DisplayName = 'Kauri Cafe Ltd'")
    line = {
        "Amount": "100.00",
        "DetailType": "SalesItemLineDetail",
        "Description": "Rent",
        "SalesItemLineDetail": {
            "ItemRef": {"value": await qbo_item_id(qbo, "Rent")},
            "Qty": "1",
            "UnitPrice": "100.00",
            "TaxInclusiveAmt": "120.00",
            "TaxCodeRef": {"value": "TAX"},
        },
    }
    body: dict[str, Any] = {
        "CustomerRef": {"value": tenant["Id"]},
        "TxnDate": TODAY,
        "Line": [line],
        "GlobalTaxCalculation": "TaxInclusive",
        "TxnTaxDetail": {"TxnTaxCodeRef": {"value": code["Id"]}},
    }
    async with consumers(stack.settings):
        invoice = await qbo.write("Invoice", body, request_id="profile-uk-1")
        assert Decimal(str(invoice["TotalAmt"])) == Decimal("120.00")
        rl_id = await linked_released(pool, "Invoice", str(invoice["Id"]), connection)
        rl = await rl_doc(stack, company, "/invoices", rl_id)
        assert (rl["lineAmountType"], rl["total"], rl["totalTax"]) == (
            "INCLUSIVE",
            "120.00",
            "20.00",
        )
        assert rl["currency"] == "GBP"
        (rl_line,) = rl["lines"]
        edited = {k: rl_line[k] for k in ("description", "accountId", "taxRateId", "quantity")}
        edited["unitAmount"] = "240.00"
        await rl_as_user(stack, company, "PATCH", f"/invoices/{rl_id}", {"lines": [edited]})

        async def in_qbo() -> Any:
            current = await qbo.get("Invoice", str(invoice["Id"]))
            return current if Decimal(str(current["TotalAmt"])) == Decimal("240.00") else None

        current = await eventually(in_qbo)
        await settle(2.0)
    (qbo_line,) = [ln for ln in current["Line"] if ln.get("DetailType") == "SalesItemLineDetail"]
    assert Decimal(str(qbo_line["Amount"])) == Decimal("200.00")
    assert Decimal(str(qbo_line["SalesItemLineDetail"]["TaxInclusiveAmt"])) == Decimal("240.00")
    assert Decimal(str(current["TxnTaxDetail"]["TotalTax"])) == Decimal("40.00")
    assert await assert_sides_agree(stack, connection, pool) == 1
