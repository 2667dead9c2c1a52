"""Companies that look like real ones, in memory: the engine's fakes seeded as a US property
manager (sales tax codes combining state, city and transit rates to 3 decimals, a class per unit
under each building with repeated unit names, a tenant with a job under it, Undeposited Funds and
two bank accounts) or as a UK one (pounds, other currencies on, 20 % VAT, amounts including VAT
allowed, flat classes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from tests.unit.engine.world import World


@dataclass
class Books:
    """What a profile seeded: ids in the fake QBO, and the tax codes with their rates."""

    home: str
    foreign: list[str]
    items: list[str]
    classes: list[str]
    customers: list[str]
    codes: dict[str, list[Decimal]] = field(default_factory=dict)  # code id -> component rates
    tax_inclusive: bool = False  # amounts including tax exist (QBO outside the US)


def us_company(world: World) -> Books:
    world.qbo.seed("Preferences", CurrencyPrefs={"HomeCurrency": {"value": "USD"}})
    books = Books("USD", [], [], [], [])
    _common(world, books)
    rates = [
        (world.qbo.seed("TaxRate", Name=name, RateValue=value)["Id"], Decimal(value))
        for name, value in (("NY State", "4"), ("NYC", "4.5"), ("MCTD", "0.375"))
    ]
    combined = world.qbo.seed(
        "TaxCode",
        Name="NYC Combined",
        SalesTaxRateList={"TaxRateDetail": [{"TaxRateRef": {"value": r}} for r, _ in rates]},
    )
    books.codes[combined["Id"]] = [r for _, r in rates]
    single = world.qbo.seed("TaxRate", Name="Texas", RateValue="6.25")
    code = world.qbo.seed(
        "TaxCode",
        Name="Texas Sales Tax",
        SalesTaxRateList={"TaxRateDetail": [{"TaxRateRef": {"value": single["Id"]}}]},
    )
    books.codes[code["Id"]] = [Decimal("6.25")]
    for building in ("Building A", "Building B"):
        parent = world.qbo.seed("Class", Name=building, FullyQualifiedName=building)
        books.classes.append(parent["Id"])
        for unit in ("Unit 1", "Unit 2"):
            books.classes.append(
                world.qbo.seed(
                    "Class",
                    Name=unit,
                    FullyQualifiedName=f"{building}:{unit}",
                    SubClass=True,
                    ParentRef={"value": parent["Id"]},
                )["Id"]
            )
    tenant = world.qbo.seed("Customer", DisplayName="Harbour Holdings")
    job = world.qbo.seed(
        "Customer",
        DisplayName="Unit 4 fit-out",
        Job=True,
        ParentRef={"value": tenant["Id"]},
    )
    books.customers += [tenant["Id"], job["Id"]]
    return books


def uk_company(world: World) -> Books:
    world.qbo.seed(
        "Preferences",
        CurrencyPrefs={"HomeCurrency": {"value": "GBP"}, "MultiCurrencyEnabled": True},
    )
    world.qbo.seed("CompanyInfo", Country="GB")
    books = Books("GBP", ["EUR"], [], [], [], tax_inclusive=True)
    _common(world, books, currency="GBP")
    vat = world.qbo.seed("TaxRate", Name="VAT 20%", RateValue="20")
    code = world.qbo.seed(
        "TaxCode",
        Name="20.0% S",
        SalesTaxRateList={"TaxRateDetail": [{"TaxRateRef": {"value": vat["Id"]}}]},
    )
    books.codes[code["Id"]] = [Decimal("20")]
    for name in ("Quay St", "Wharf Rd"):
        books.classes.append(world.qbo.seed("Class", Name=name, FullyQualifiedName=name)["Id"])
    books.customers.append(world.qbo.seed("Customer", DisplayName="Kauri Cafe Ltd")["Id"])
    return books


def _common(world: World, books: Books, currency: str = "USD") -> None:
    income = world.qbo.seed("Account", Name="Rent Income", AccountType="Income")
    for name in ("Rent", "Service charge", "Parking"):
        books.items.append(
            world.qbo.seed("Item", Name=name, IncomeAccountRef={"value": income["Id"]})["Id"]
        )
    for name in ("Operating Account", "Trust Account"):
        world.qbo.seed("Account", Name=name, AccountType="Bank")
    world.qbo.seed("Account", Name="Undeposited Funds", AccountType="Other Current Asset")
    world.qbo.seed("Account", Name="Receivable", AccountType="Accounts Receivable")


PROFILES = {"us": us_company, "uk": uk_company}
