"""Tax through the engine: rates exact, and a QBO tax code combining several rates carried as one
Re-Leased rate at their sum, with the components kept on QBO's side and totals to the cent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.unit.engine.setups import linked_customer
from tests.unit.engine.world import TODAY, World


def combined_code(world: World) -> tuple[str, list[str]]:
    """New York City sales tax: state 4 %, city 4.5 %, MCTD 0.375 % (8.875 % together)."""
    rates = [
        world.qbo.seed("TaxRate", Name=name, RateValue=value)["Id"]
        for name, value in (("NY State", "4"), ("NYC", "4.5"), ("MCTD", "0.375"))
    ]
    code = world.qbo.seed(
        "TaxCode",
        Name="NYC Combined",
        SalesTaxRateList={"TaxRateDetail": [{"TaxRateRef": {"value": r}} for r in rates]},
    )
    return code["Id"], rates


def taxed_line(item: str, amount: str) -> dict[str, Any]:
    return {
        "Amount": amount,
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {
            "ItemRef": {"value": item},
            "Qty": "1",
            "UnitPrice": amount,
            "TaxCodeRef": {"value": "TAX"},
        },
    }


async def test_a_three_decimal_rate_reaches_released_exactly() -> None:
    world = World()
    rate = world.qbo.seed("TaxRate", Name="Sound Transit", RateValue="8.875")
    result = await world.from_qbo("taxrate", rate["Id"])
    assert result.outcome == "applied", result
    assert (await world.released.get(f"/tax-rates/{result.target_id}"))["rate"] == "8.875"


async def test_a_qbo_invoice_on_a_combined_code_carries_one_released_rate_at_the_sum() -> None:
    world = World()
    books = world.seed_qbo_books()
    code, _ = combined_code(world)
    customer, _ = await linked_customer(world)
    invoice = world.qbo.seed(
        "Invoice",
        CustomerRef={"value": customer},
        TxnDate=TODAY,
        Line=[taxed_line(books["item"], "100.00")],
        TxnTaxDetail={"TxnTaxCodeRef": {"value": code}, "TotalTax": "8.88"},
    )
    result = await world.from_qbo("invoice", invoice["Id"])
    assert result.outcome == "applied", result
    document = await world.released.get(f"/invoices/{result.target_id}")
    (line,) = document["lines"]
    rate = await world.released.get(f"/tax-rates/{line['taxRateId']}")
    assert (rate["name"], rate["rate"]) == ("NYC Combined", "8.875")
    assert (line["taxAmount"], document["total"]) == ("8.88", "108.88")


async def test_a_released_invoice_on_the_combined_rate_goes_to_qbo_split_by_component() -> None:
    world = World()
    books = world.seed_qbo_books()
    code, rates = combined_code(world)
    customer, contact = await linked_customer(world)
    first = world.qbo.seed(
        "Invoice",
        CustomerRef={"value": customer},
        TxnDate=TODAY,
        Line=[taxed_line(books["item"], "100.00")],
        TxnTaxDetail={"TxnTaxCodeRef": {"value": code}, "TotalTax": "8.88"},
    )
    made = await world.from_qbo("invoice", first["Id"])
    template = (await world.released.get(f"/invoices/{made.target_id}"))["lines"][0]
    line = {
        "description": "Fit-out",
        "quantity": "2",
        "unitAmount": "60.50",
        "accountId": template["accountId"],
        "taxRateId": template["taxRateId"],
        "taxAmount": "10.74",  # 121.00 at 8.875 %
    }
    doc = world.released.seed(
        "/invoices", type="INCOME", contactId=contact, date=TODAY, status="APPROVED", lines=[line]
    )
    result = await world.from_released("invoice", doc["id"])
    assert result.outcome == "applied", result
    qbo = world.qbo.objects["Invoice"][str(result.target_id)]
    detail = qbo["TxnTaxDetail"]
    assert detail["TxnTaxCodeRef"] == {"value": code}
    parts = {t["TaxLineDetail"]["TaxRateRef"]["value"]: t["Amount"] for t in detail["TaxLine"]}
    assert parts == dict(zip(rates, ["4.84", "5.45", "0.45"], strict=True))
    assert (
        sum(Decimal(p) for p in parts.values()) == Decimal(detail["TotalTax"]) == Decimal("10.74")
    )
    assert Decimal(qbo["TotalAmt"]) == Decimal("131.74")


async def test_a_component_rate_changed_in_qbo_changes_the_combined_released_rate() -> None:
    world = World()
    code, rates = combined_code(world)
    made = await world.from_qbo("taxcode", code)
    assert made.outcome == "applied", made
    for rate in rates:
        assert (await world.from_qbo("taxrate", rate)).outcome == "applied"
    world.qbo.edit("TaxRate", rates[1], RateValue="4.875")  # the city rate goes up
    assert (await world.from_qbo("taxrate", rates[1])).outcome == "applied"
    combined = await world.released.get(f"/tax-rates/{made.target_id}")
    assert combined["rate"] == "9.25"
