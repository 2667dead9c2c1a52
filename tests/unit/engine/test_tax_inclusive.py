"""Amounts that include tax, both ways, where QBO has them (outside the US: GlobalTaxCalculation
TaxInclusive): a Re-Leased INCLUSIVE invoice is a QBO TaxInclusive one with net line amounts and
the amounts as entered in TaxInclusiveAmt, totals to the cent; a QBO edit comes back inclusive.
In a US company Re-Leased amounts including tax stay a per-record error with a remedy."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.domain.errors import PermanentError
from tests.unit.engine.setups import linked_customer
from tests.unit.engine.world import TODAY, World


async def uk_invoice(world: World, country: str) -> tuple[str, str]:
    """A UK-style (or US) company with VAT 20 %, and a Re-Leased invoice including it: 120.00
    taxed (20.00 of it VAT) and 3 x 10.00 untaxed."""
    world.qbo.seed("Preferences", CurrencyPrefs={"HomeCurrency": {"value": "GBP"}})
    world.qbo.seed("CompanyInfo", Country=country)
    income = world.qbo.seed("Account", Name="Rent Income", AccountType="Income")
    item = world.qbo.seed("Item", Name="Rent", IncomeAccountRef={"value": income["Id"]})
    vat = world.qbo.seed("TaxRate", Name="VAT 20%", RateValue="20")
    world.qbo.seed(
        "TaxCode",
        Name="20.0% S",
        SalesTaxRateList={"TaxRateDetail": [{"TaxRateRef": {"value": vat["Id"]}}]},
    )
    _, contact = await linked_customer(world, "Kauri Cafe Ltd")
    account = (await world.from_qbo("item", item["Id"])).target_id
    rate = (await world.from_qbo("taxrate", vat["Id"])).target_id
    lines = [
        {
            "quantity": "1",
            "unitAmount": "120.00",
            "accountId": account,
            "taxRateId": rate,
            "taxAmount": "20.00",
        },
        {"quantity": "3", "unitAmount": "10.00", "accountId": account},
    ]
    doc = world.released.seed(
        "/invoices",
        type="INCOME",
        contactId=contact,
        date=TODAY,
        status="APPROVED",
        currency="GBP",
        lineAmountType="INCLUSIVE",
        lines=lines,
    )
    return str(doc["id"]), str(item["Id"])


async def test_an_inclusive_released_invoice_is_a_tax_inclusive_qbo_one_and_back() -> None:
    world = World()
    rl_id, _ = await uk_invoice(world, "GB")
    assert (await world.released.get(f"/invoices/{rl_id}"))["total"] == "150.00"
    result = await world.from_released("invoice", rl_id)
    assert result.outcome == "applied", result
    qbo_id = str(result.target_id)
    qbo = world.qbo.objects["Invoice"][qbo_id]
    assert qbo["GlobalTaxCalculation"] == "TaxInclusive"
    first, second = qbo["Line"]
    assert (first["Amount"], first["SalesItemLineDetail"]["TaxInclusiveAmt"]) == (
        "100.00",
        "120.00",
    )
    assert (second["Amount"], second["SalesItemLineDetail"]["Qty"]) == ("30.00", "3")
    assert qbo["TxnTaxDetail"]["TotalTax"] == "20.00"
    assert Decimal(qbo["TotalAmt"]) == Decimal("150.00")
    echo = await world.from_qbo("invoice", qbo_id)
    assert echo.outcome == "echo", echo
    # QBO doubles the taxed line (as entered, 240.00 including 40.00 VAT).
    edited = {
        **first,
        "Amount": "200.00",
        "SalesItemLineDetail": {
            **first["SalesItemLineDetail"],
            "UnitPrice": "200",
            "TaxInclusiveAmt": "240.00",
        },
    }
    tax = {**qbo["TxnTaxDetail"], "TotalTax": "40.00", "TaxLine": []}
    world.qbo.edit("Invoice", qbo_id, Line=[edited, second], TxnTaxDetail=tax)
    back = await world.from_qbo("invoice", qbo_id)
    assert back.outcome == "applied", back
    rl = await world.released.get(f"/invoices/{rl_id}")
    assert rl["lineAmountType"] == "INCLUSIVE"
    assert [(ln["unitAmount"], ln.get("taxAmount")) for ln in rl["lines"]] == [
        ("240.00", "40.00"),
        ("10.00", "0.00"),
    ]
    assert (rl["total"], rl["totalTax"]) == ("270.00", "40.00")


async def test_amounts_including_tax_stay_an_error_in_a_us_company() -> None:
    world = World()
    rl_id, _ = await uk_invoice(world, "US")
    with pytest.raises(PermanentError, match="amounts include tax") as raised:
        await world.from_released("invoice", rl_id)
    assert raised.value.remedy
