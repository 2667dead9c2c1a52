"""The mapping of money not against a document: a QBO payment's unapplied cash <-> a Re-Leased
prepayment/overpayment credit note."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shared.domain.mapping.held_credit import (
    applied_from_held,
    held_kind,
    held_note,
    is_held,
    unapplied_payment,
)


def fields(
    total: str, allocations: dict[str, str], credits: list[list[str]] | None = None
) -> dict[str, Any]:
    return {
        "date": "2026-11-20",
        "total": total,
        "allocations": allocations,
        "credits": credits or [],
    }


def test_nothing_applied_is_a_prepayment_and_part_applied_an_overpayment() -> None:
    assert held_kind(fields("45.00", {})) == "PREPAYMENT"
    assert held_kind(fields("130.00", {"Invoice:1": "100.00"})) == "OVERPAYMENT"
    assert held_kind(fields("0.00", {}, [["CreditMemo:4", "Invoice:1", "5.00"]])) == "OVERPAYMENT"


def test_held_note_is_one_line_without_tax_of_the_unapplied_amount() -> None:
    note = held_note("BillPayment", fields("30.00", {}), "rl-c", Decimal("30"), "77")
    assert (note["type"], note["kind"], note["lineAmountType"]) == (
        "EXPENSE_CREDIT",
        "PREPAYMENT",
        "NO_TAX",
    )
    (line,) = note["lines"]
    assert (line["unitAmount"], "taxRateId" in line) == ("30.00", False)
    assert note["contactId"] == "rl-c"
    assert "77" in note["reference"]


def test_cash_moved_out_of_unapplied_is_what_each_document_gained() -> None:
    old = fields("130.00", {"Invoice:1": "100.00"})
    new = fields("130.00", {"Invoice:1": "100.00", "Invoice:2": "20.00"})
    assert applied_from_held(old, new) == {"Invoice:2": "20.00"}
    more = fields("130.00", {"Invoice:1": "110.00"})
    assert applied_from_held(old, more) == {"Invoice:1": "10.00"}


def test_any_other_change_is_not_a_move_of_held_cash() -> None:
    old = fields("130.00", {"Invoice:1": "100.00"})
    assert applied_from_held(old, fields("150.00", {"Invoice:1": "120.00"})) is None  # total
    assert applied_from_held(old, fields("130.00", {"Invoice:1": "90.00"})) is None  # less
    assert applied_from_held(old, fields("130.00", {"Invoice:2": "100.00"})) is None  # moved
    assert applied_from_held(old, old) is None  # nothing moved
    credit = fields("130.00", {"Invoice:1": "110.00"}, [["CreditMemo:3", "Invoice:1", "5.00"]])
    assert applied_from_held(old, credit) is None


def test_a_released_held_note_is_a_payment_with_the_rest_unapplied() -> None:
    note = {"total": "80.00", "date": "2026-11-20", "kind": "PREPAYMENT", "number": "CN-1"}
    body = unapplied_payment("Payment", note, "12", "35", {"130": "30.00"})
    assert (body["TotalAmt"], body["CustomerRef"], body["DepositToAccountRef"]) == (
        "80.00",
        {"value": "12"},
        {"value": "35"},
    )
    assert body["Line"] == [
        {"Amount": "30.00", "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]}
    ]
    bill = unapplied_payment("BillPayment", note, "9", "35", {})
    assert (bill["PayType"], bill["Line"]) == ("Check", [])
    assert [is_held({"kind": "OVERPAYMENT"}), is_held({"kind": "STANDARD"}), is_held({})] == [
        True,
        False,
        False,
    ]
