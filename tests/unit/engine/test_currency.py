"""Currency through the engine: the home currency is read from QBO's Preferences, never assumed;
a foreign-currency document is carried where QBO keeps several currencies, and is otherwise a
per-record error naming its currency."""

from __future__ import annotations

import pytest

from shared.domain.errors import PermanentError
from tests.unit.engine.setups import linked_customer
from tests.unit.engine.world import TODAY, World


def company(world: World, home: str, multi: bool = False) -> None:
    world.qbo.seed(
        "Preferences",
        CurrencyPrefs={"HomeCurrency": {"value": home}, "MultiCurrencyEnabled": multi},
    )


async def test_a_pound_company_syncs_its_invoices_in_pounds() -> None:
    world = World()
    company(world, "GBP")
    books = world.seed_qbo_books()
    customer, _ = await linked_customer(world)
    invoice = world.qbo_invoice(customer, books["item"], "95.00", CurrencyRef={"value": "GBP"})
    result = await world.from_qbo("invoice", invoice["Id"])
    assert result.outcome == "applied", result
    document = await world.released.get(f"/invoices/{result.target_id}")
    assert (document["currency"], document["total"]) == ("GBP", "95.00")


async def test_a_foreign_invoice_is_carried_both_ways_where_qbo_keeps_currencies() -> None:
    world = World()
    company(world, "USD", multi=True)
    books = world.seed_qbo_books()
    customer, contact = await linked_customer(world)
    invoice = world.qbo_invoice(customer, books["item"], "50.00", CurrencyRef={"value": "EUR"})
    result = await world.from_qbo("invoice", invoice["Id"])
    assert result.outcome == "applied", result
    made = await world.released.get(f"/invoices/{result.target_id}")
    assert made["currency"] == "EUR"
    line = {"quantity": "1", "unitAmount": "70.00", "accountId": made["lines"][0]["accountId"]}
    doc = world.released.seed(
        "/invoices",
        type="INCOME",
        contactId=contact,
        date=TODAY,
        status="APPROVED",
        currency="CAD",
        lines=[line],
    )
    back = await world.from_released("invoice", doc["id"])
    assert back.outcome == "applied", back
    assert world.qbo.objects["Invoice"][str(back.target_id)]["CurrencyRef"] == {"value": "CAD"}


async def test_a_foreign_invoice_in_a_single_currency_company_names_the_currency() -> None:
    world = World()
    company(world, "USD", multi=False)
    books = world.seed_qbo_books()
    customer, _ = await linked_customer(world)
    invoice = world.qbo_invoice(customer, books["item"], "50.00", CurrencyRef={"value": "EUR"})
    with pytest.raises(PermanentError, match="EUR") as raised:
        await world.from_qbo("invoice", invoice["Id"])
    assert raised.value.remedy
    (row,) = world.errors.rows
    assert "EUR" in str(row.reason)
