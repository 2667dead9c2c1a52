"""Properties of the sandbox's money rules, checked on the pure write layer (no HTTP)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from sandboxes.qbo import writes
from sandboxes.qbo.changes import Change
from sandboxes.qbo.errors import QboFault
from sandboxes.qbo.seed import seed_company
from sandboxes.qbo.store import Store

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)


def company() -> tuple[writes.Company, list[Change]]:
    changes: list[Change] = []
    realm = Store().new_realm("Prop Co")
    seed_company(realm)
    return writes.Company(realm, changes.append), changes


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(amounts, min_size=1, max_size=8), paid=st.lists(amounts, max_size=4))
def test_invoice_total_and_balance_are_exact(lines: list[Decimal], paid: list[Decimal]) -> None:
    co, _ = company()
    customer = writes.save(co, "Customer", {"DisplayName": "Prop"})
    ref = {"value": customer["Id"]}
    body = {
        "CustomerRef": ref,
        "Line": [
            {"DetailType": "SalesItemLineDetail", "Amount": a, "SalesItemLineDetail": {}}
            for a in lines
        ],
    }
    invoice = writes.save(co, "Invoice", body)
    assert invoice["TotalAmt"] == sum(lines, Decimal(0))
    applied = Decimal(0)
    for amount in paid:
        if applied + amount > invoice["TotalAmt"]:
            continue  # QBO refuses overpayment (tested over HTTP elsewhere)
        link = {"TxnId": invoice["Id"], "TxnType": "Invoice"}
        payment = {
            "CustomerRef": ref,
            "TotalAmt": amount,
            "Line": [{"Amount": amount, "LinkedTxn": [link]}],
        }
        writes.save(co, "Payment", payment)
        applied += amount
    current = co.realm.get("Invoice", invoice["Id"])
    assert current is not None
    assert current["Balance"] == invoice["TotalAmt"] - applied
    assert co.realm.get("Customer", customer["Id"])["Balance"] == current["Balance"]  # type: ignore[index]


@settings(max_examples=40, deadline=None)
@given(names=st.lists(st.text("abcAB ", min_size=1, max_size=4), min_size=1, max_size=6))
def test_display_names_are_unique_ignoring_case(names: list[str]) -> None:
    co, _ = company()
    kept: set[str] = set()
    for index, name in enumerate(names):
        entity = ("Customer", "Vendor", "Employee")[index % 3]
        key = name.strip().lower()
        expected = "2020" if not key else "6240" if key in kept else None
        code = None
        try:
            writes.save(co, entity, {"DisplayName": name})
        except QboFault as fault:
            code = fault.code
        assert code == expected
        kept.add(key)
