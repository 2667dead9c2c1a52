"""Round trip on realistic companies (property, Hypothesis): a QBO invoice with any mix of items,
quantities, tax codes (one rate, or state + city + transit combined), line and header classes
and currencies reaches Re-Leased field by field under the canonical mapping (docs/mapping.md),
money and tax to the cent; then a Re-Leased edit comes back to QBO the same way. On the fakes, so
hundreds of documents run in seconds; each seed profile is its own test."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.mapping.money import money, quantity
from shared.domain.mapping.tax import rate_text
from tests.unit.engine.profiles import PROFILES, Books
from tests.unit.engine.world import TODAY, World

CENT = Decimal("0.01")
LINE = st.tuples(
    st.integers(0, 2),  # item
    st.integers(1, 5),  # quantity
    st.integers(1, 500_000),  # unit price in cents
    st.booleans(),  # taxed (when the document has a tax code)
    st.integers(-1, 5),  # class (-1: none)
)
DOCUMENT = st.fixed_dictionaries(
    {
        "customer": st.integers(0, 1),
        "foreign": st.booleans(),
        "code": st.integers(-1, 1),  # -1: no tax code
        "header_class": st.integers(-1, 5),
        "lines": st.lists(LINE, min_size=1, max_size=4),
    }
)


def pick(items: list[str], index: int) -> str | None:
    return items[index % len(items)] if index >= 0 and items else None


def qbo_invoice(world: World, books: Books, doc: dict[str, Any]) -> dict[str, Any]:
    codes = list(books.codes)
    code = pick(codes, doc["code"])
    lines, taxable = [], Decimal(0)
    for item, qty, cents, taxed, class_index in doc["lines"]:
        price = Decimal(cents) * CENT
        amount = price * qty
        taxed = taxed and code is not None
        taxable += amount if taxed else 0
        detail: dict[str, Any] = {
            "ItemRef": {"value": books.items[item]},
            "Qty": str(qty),
            "UnitPrice": str(price),
            "TaxCodeRef": {"value": "TAX" if taxed else "NON"},
        }
        class_id = pick(books.classes, class_index)
        if class_id:
            detail["ClassRef"] = {"value": class_id}
        lines.append(
            {
                "Amount": str(amount),
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": detail,
            }
        )
    body: dict[str, Any] = {
        "CustomerRef": {"value": books.customers[doc["customer"] % len(books.customers)]},
        "TxnDate": TODAY,
        "Line": lines,
    }
    if code is not None:
        # QBO taxes the taxable total once per component rate, each rounded to the cent.
        tax = sum(
            ((taxable * r / 100).quantize(CENT, rounding=ROUND_HALF_UP) for r in books.codes[code]),
            Decimal(0),
        )
        body["TxnTaxDetail"] = {"TxnTaxCodeRef": {"value": code}, "TotalTax": str(tax)}
    header = pick(books.classes, doc["header_class"])
    if header:
        body["ClassRef"] = {"value": header}
    currency = books.foreign[0] if doc["foreign"] and books.foreign else books.home
    body["CurrencyRef"] = {"value": currency}
    return world.qbo.seed("Invoice", **body)


async def released_id(world: World, qbo_type: str, qbo_id: str) -> str:
    link = await world.store.links.by_qbo(world.connection_id, qbo_type, qbo_id)
    assert link is not None, f"{qbo_type} {qbo_id} is linked"
    assert link.released_id
    return link.released_id.rsplit(":", 1)[-1]


async def check_released(
    world: World, books: Books, qbo: dict[str, Any], rl: dict[str, Any]
) -> None:
    """Field by field: the Re-Leased document is the QBO one under the canonical mapping."""
    assert rl["currency"] == qbo["CurrencyRef"]["value"]
    assert rl["contactId"] == await released_id(world, "Customer", qbo["CustomerRef"]["value"])
    code = ((qbo.get("TxnTaxDetail") or {}).get("TxnTaxCodeRef") or {}).get("value")
    header = (qbo.get("ClassRef") or {}).get("value")
    taxed_total = Decimal(0)
    assert len(rl["lines"]) == len(qbo["Line"])
    for mine, theirs in zip(rl["lines"], qbo["Line"], strict=True):
        detail = theirs["SalesItemLineDetail"]
        assert (mine["quantity"], mine["unitAmount"], mine["lineAmount"]) == (
            quantity(detail["Qty"]),
            money(detail["UnitPrice"]),
            money(theirs["Amount"]),
        )
        assert mine["accountId"] == await released_id(world, "Item", detail["ItemRef"]["value"])
        wanted_class = (detail.get("ClassRef") or {}).get("value") or header
        option = await released_id(world, "Class", wanted_class) if wanted_class else None
        assert mine["trackingOptionId"] == option
        if detail["TaxCodeRef"]["value"] == "TAX" and code:
            rate = await world.released.get(f"/tax-rates/{mine['taxRateId']}")
            assert rate["rate"] == rate_text(sum(books.codes[code], Decimal(0)))
            taxed_total += Decimal(mine["taxAmount"])
        else:
            assert mine["taxRateId"] is None
    assert money(taxed_total) == money((qbo.get("TxnTaxDetail") or {}).get("TotalTax") or 0)
    assert Decimal(rl["total"]) == Decimal(qbo["TotalAmt"])


async def edit_in_released(
    world: World, rl_id: str, books: Books, code: str | None
) -> dict[str, Any]:
    """Someone raises the first line by 1.00 in Re-Leased (its tax recomputed as Re-Leased does)."""
    document = await world.released.get(f"/invoices/{rl_id}")
    lines = [dict(line) for line in document["lines"]]
    first = lines[0]
    first["unitAmount"] = money(Decimal(first["unitAmount"]) + 1)
    if first.get("taxRateId") and code:
        amount = Decimal(first["unitAmount"]) * Decimal(first["quantity"])
        rate = sum(books.codes[code], Decimal(0))
        first["taxAmount"] = money((amount * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP))
    return world.released.edit("/invoices", rl_id, lines=lines)


def check_qbo(
    qbo: dict[str, Any], rl: dict[str, Any], classes: list[str | None], home: str
) -> None:
    """Field by field: the edit is in QBO; classes, currency and tax components kept."""
    inclusive = qbo.get("GlobalTaxCalculation") == "TaxInclusive"
    taxed = any(ln.get("taxRateId") for ln in rl["lines"])
    assert inclusive == (rl.get("lineAmountType") == "INCLUSIVE" and taxed)
    entered = [
        line["SalesItemLineDetail"]["TaxInclusiveAmt"] if inclusive else line["Amount"]
        for line in qbo["Line"]
    ]
    assert [money(v) for v in entered] == [ln["lineAmount"] for ln in rl["lines"]]
    assert [
        (line["SalesItemLineDetail"].get("ClassRef") or {}).get("value") for line in qbo["Line"]
    ] == classes
    assert (qbo.get("CurrencyRef") or {}).get("value", home) == rl.get("currency", home)
    detail = qbo.get("TxnTaxDetail") or {}
    assert money(detail.get("TotalTax") or 0) == rl["totalTax"]
    if detail.get("TaxLine"):
        assert sum(Decimal(t["Amount"]) for t in detail["TaxLine"]) == Decimal(rl["totalTax"])
    assert Decimal(qbo["TotalAmt"]) == Decimal(rl["total"])


@pytest.mark.parametrize("profile", sorted(PROFILES))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=DOCUMENT)
async def test_an_invoice_survives_the_trip_both_ways(profile: str, doc: dict[str, Any]) -> None:
    world = World()
    books = PROFILES[profile](world)
    made = qbo_invoice(world, books, doc)
    result = await world.from_qbo("invoice", made["Id"])
    assert result.outcome == "applied", result
    rl_id = str(result.target_id)
    qbo = world.qbo.objects["Invoice"][made["Id"]]
    await check_released(world, books, qbo, await world.released.get(f"/invoices/{rl_id}"))
    header = (qbo.get("ClassRef") or {}).get("value")
    classes = [
        (line["SalesItemLineDetail"].get("ClassRef") or {}).get("value") or header
        for line in qbo["Line"]
    ]
    code = ((qbo.get("TxnTaxDetail") or {}).get("TxnTaxCodeRef") or {}).get("value")
    edited = await edit_in_released(world, rl_id, books, code)
    back = await world.from_released("invoice", rl_id)
    assert back.outcome == "applied", back
    check_qbo(world.qbo.objects["Invoice"][made["Id"]], edited, classes, books.home)
    again = await world.from_qbo("invoice", made["Id"])
    assert again.outcome == "echo", again


RL_LINE = st.tuples(
    st.integers(0, 2),  # item
    st.integers(1, 5),  # quantity
    st.integers(1, 500_000),  # unit amount in cents
    st.booleans(),  # taxed (when the document has a rate)
    st.integers(-2, 5),  # tracking: -2 the property's option, -1 none, else a class
)
RL_DOCUMENT = st.fixed_dictionaries(
    {
        "code": st.integers(-1, 1),
        "inclusive": st.booleans(),  # amounts include tax (carried where QBO has it: uk)
        "lines": st.lists(RL_LINE, min_size=1, max_size=4),
    }
)


async def released_books(world: World, books: Books) -> dict[str, Any]:
    """Master data synced from QBO (as any connected company has it) and a property option."""
    ids: dict[str, Any] = {"items": [], "classes": [], "codes": {}}
    for item in books.items:
        ids["items"].append(await released_id_after(world, "item", "Item", item))
    for class_id in books.classes:
        ids["classes"].append(await released_id_after(world, "class", "Class", class_id))
    for code, rates in books.codes.items():
        details = world.qbo.objects["TaxCode"][code]["SalesTaxRateList"]["TaxRateDetail"]
        if len(rates) > 1:
            rl_rate = await released_id_after(world, "taxcode", "TaxCode", code)
        else:
            rate_id = details[0]["TaxRateRef"]["value"]
            rl_rate = await released_id_after(world, "taxrate", "TaxRate", rate_id)
        ids["codes"][code] = rl_rate
    result = await world.from_qbo("customer", books.customers[0])
    ids["contact"] = str(result.target_id)
    category = world.released.seed(
        "/tracking-categories", name="Property", options=[{"name": "12 Quay St"}]
    )
    ids["property"] = category["options"][0]["id"]
    return ids


async def released_id_after(world: World, word: str, qbo_type: str, qbo_id: str) -> str:
    result = await world.from_qbo(word, qbo_id)
    assert result.outcome == "applied", result
    return await released_id(world, qbo_type, qbo_id)


@pytest.mark.parametrize("profile", sorted(PROFILES))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=RL_DOCUMENT)
async def test_a_released_invoice_survives_the_trip_both_ways(
    profile: str, doc: dict[str, Any]
) -> None:
    world = World()
    books = PROFILES[profile](world)
    ids = await released_books(world, books)
    code = pick(list(books.codes), doc["code"])
    rate = sum(books.codes[code], Decimal(0)) if code else Decimal(0)
    inclusive = doc["inclusive"] and books.tax_inclusive
    lines = []
    for item, qty, cents, taxed, tracking in doc["lines"]:
        unit = Decimal(cents) * CENT
        line: dict[str, Any] = {
            "description": "Rent",
            "quantity": str(qty),
            "unitAmount": money(unit),
            "accountId": ids["items"][item],
            "taxRateId": ids["codes"][code] if taxed and code else None,
            "trackingOptionId": ids["property"]
            if tracking == -2
            else pick(ids["classes"], tracking),
        }
        if line["taxRateId"]:
            share = rate / (100 + rate) if inclusive else rate / 100
            line["taxAmount"] = money((unit * qty * share).quantize(CENT, ROUND_HALF_UP))
        lines.append(line)
    rl = world.released.seed(
        "/invoices",
        type="INCOME",
        contactId=ids["contact"],
        date=TODAY,
        status="APPROVED",
        currency=books.home,
        lineAmountType="INCLUSIVE" if inclusive else "EXCLUSIVE",
        lines=lines,
    )
    result = await world.from_released("invoice", rl["id"])
    assert result.outcome == "applied", result
    qbo_id = str(result.target_id)
    qbo = world.qbo.objects["Invoice"][qbo_id]
    rl = await world.released.get(f"/invoices/{rl['id']}")
    classes = [
        None
        if ln["trackingOptionId"] in (None, ids["property"])
        else books.classes[ids["classes"].index(ln["trackingOptionId"])]
        for ln in rl["lines"]
    ]
    check_qbo(qbo, rl, classes, books.home)
    taxed = [ln for ln in qbo["Line"] if ln["SalesItemLineDetail"]["TaxCodeRef"]["value"] == "TAX"]
    if taxed:
        assert qbo["TxnTaxDetail"]["TxnTaxCodeRef"] == {"value": code}
        assert len(qbo["TxnTaxDetail"]["TaxLine"]) == len(books.codes[str(code)])
    if qbo.get("GlobalTaxCalculation") == "TaxInclusive":
        # Amounts including tax: QBO moves the due date; the lines stay as entered.
        world.qbo.edit("Invoice", qbo_id, DueDate="2027-01-31")
        assert (await world.from_qbo("invoice", qbo_id)).outcome == "applied"
        after = await world.released.get(f"/invoices/{rl['id']}")
        assert (after["dueDate"], after["lineAmountType"]) == ("2027-01-31", "INCLUSIVE")
        assert [ln["lineAmount"] for ln in after["lines"]] == [
            ln["lineAmount"] for ln in rl["lines"]
        ]
        assert (after["total"], after["totalTax"]) == (rl["total"], rl["totalTax"])
        return
    # QBO raises the first line by 2.00 and recomputes its tax per component.
    first = qbo["Line"][0]
    amount = Decimal(first["Amount"]) + 2
    new_line = {
        **first,
        "Amount": str(amount),
        "SalesItemLineDetail": {
            **first["SalesItemLineDetail"],
            "Qty": "1",
            "UnitPrice": str(amount),
        },
    }
    new_lines = [new_line, *qbo["Line"][1:]]
    edit: dict[str, Any] = {"Line": new_lines}
    if taxed:
        base = sum(
            (
                Decimal(ln["Amount"])
                for ln in new_lines
                if ln["SalesItemLineDetail"]["TaxCodeRef"]["value"] == "TAX"
            ),
            Decimal(0),
        )
        tax = sum(
            ((base * r / 100).quantize(CENT, ROUND_HALF_UP) for r in books.codes[str(code)]),
            Decimal(0),
        )
        edit["TxnTaxDetail"] = {**qbo["TxnTaxDetail"], "TotalTax": str(tax), "TaxLine": []}
    world.qbo.edit("Invoice", qbo_id, **edit)
    back = await world.from_qbo("invoice", qbo_id)
    assert back.outcome == "applied", back
    after = await world.released.get(f"/invoices/{rl['id']}")
    qbo = world.qbo.objects["Invoice"][qbo_id]
    assert [ln["lineAmount"] for ln in after["lines"]] == [
        money(ln["Amount"]) for ln in qbo["Line"]
    ]
    assert [ln["trackingOptionId"] for ln in after["lines"]] == [
        ln["trackingOptionId"] for ln in rl["lines"]
    ], "every option kept: classes from QBO, the property's untouched"
    assert Decimal(after["total"]) == Decimal(qbo["TotalAmt"])
    assert money(after["totalTax"]) == money((qbo.get("TxnTaxDetail") or {}).get("TotalTax") or 0)


@pytest.mark.parametrize("profile", sorted(PROFILES))
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    doc=DOCUMENT,
    part=st.integers(1, 100),  # percent of the total paid
    extra=st.sampled_from(["0.00", "0.00", "12.34"]),  # cash applied to nothing
)
async def test_a_payment_survives_the_trip(
    profile: str, doc: dict[str, Any], part: int, extra: str
) -> None:
    """A QBO payment of part of an invoice (and perhaps cash applied to nothing) leaves the
    Re-Leased invoice owing exactly QBO's balance; unapplied cash is held as the contact's credit
    to the cent, never dropped."""
    world = World()
    books = PROFILES[profile](world)
    made = qbo_invoice(world, books, doc)
    assert (await world.from_qbo("invoice", made["Id"])).outcome == "applied"
    total = Decimal(world.qbo.objects["Invoice"][made["Id"]]["TotalAmt"])
    paid = max(CENT, (total * part / 100).quantize(CENT, ROUND_HALF_UP))
    bank = next(
        a["Id"] for a in world.qbo.objects["Account"].values() if a["AccountType"] == "Bank"
    )
    payment = world.qbo.seed(
        "Payment",
        CustomerRef=made["CustomerRef"],
        TotalAmt=str(paid + Decimal(extra)),
        TxnDate=TODAY,
        DepositToAccountRef={"value": bank},
        Line=[{"Amount": str(paid), "LinkedTxn": [{"TxnId": made["Id"], "TxnType": "Invoice"}]}],
    )
    result = await world.from_qbo("payment", payment["Id"])
    assert result.outcome == "applied", result
    rl = await world.released.get(f"/invoices/{await released_id(world, 'Invoice', made['Id'])}")
    assert Decimal(rl["amountDue"]) == Decimal(world.qbo.objects["Invoice"][made["Id"]]["Balance"])
    assert rl["status"] == ("PAID" if paid == total else "APPROVED")
    held = [
        (n["kind"], n["amountDue"], n["contactId"])
        for n in await world.released.list_all("/credit-notes")
        if n.get("kind") in ("PREPAYMENT", "OVERPAYMENT")
    ]
    assert held == ([("OVERPAYMENT", extra, rl["contactId"])] if extra != "0.00" else [])
