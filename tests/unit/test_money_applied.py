"""What QBO has applied to a document, and whether an edit would go below it; Re-Leased's
refusal codes carried on the error."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from shared.adapters.qbo.client import classify as classify_qbo
from shared.adapters.released.client import classify
from shared.domain.errors import NotFound, PermanentError, Refused
from shared.domain.mapping.documents import applied_in_qbo, below_applied, document_total

CENTS = st.integers(min_value=0, max_value=10_000_000).map(lambda c: Decimal(c) / 100)


def fields(*amounts: str, tax: str = "0.00") -> dict[str, object]:
    return {"lines": [{"amount": a} for a in amounts], "total_tax": tax}


def test_total_is_lines_plus_tax() -> None:
    assert document_total(fields("100.00", "20.50", tax="9.64")) == Decimal("130.14")
    assert document_total({"lines": [{"amount": "5"}]}) == Decimal("5"), "bills carry no tax"


def test_applied_is_total_less_what_is_open() -> None:
    assert applied_in_qbo({"TotalAmt": 250, "Balance": 125}) == Decimal("125")
    assert applied_in_qbo({"TotalAmt": 40, "RemainingCredit": 10}) == Decimal("30")
    assert applied_in_qbo({"TotalAmt": 40}) == Decimal("0"), "no balance said: nothing applied"


@given(total=CENTS, paid=CENTS, new=CENTS)
def test_an_edit_is_below_exactly_when_its_total_is_less_than_what_was_applied(
    total: Decimal, paid: Decimal, new: Decimal
) -> None:
    paid = min(paid, total)
    record = {"TotalAmt": str(total), "Balance": str(total - paid)}
    assert below_applied(record, fields(str(new))) == (new < paid)


def test_released_refusals_carry_their_codes() -> None:
    body = {
        "type": "ValidationException",
        "message": "the amount exceeds the amount due",
        "elements": [{"validationErrors": [{"code": "OVERPAYMENT"}]}],
    }
    error = classify(400, body, None)
    assert isinstance(error, Refused)
    assert isinstance(error, PermanentError), "still dead-lettered when nothing handles it"
    assert error.codes == ("OVERPAYMENT",)
    assert "OVERPAYMENT" in str(error)
    assert error.remedy is not None, "a person is told what to do"
    assert "QuickBooks" in error.remedy


def test_a_qbo_refusal_tells_a_person_what_to_do() -> None:
    body = {"Fault": {"Error": [{"code": "6000", "Message": "A business validation error"}]}}
    error = classify_qbo(400, body, None)
    assert isinstance(error, PermanentError)
    assert "6000" in str(error)
    assert error.remedy is not None
    assert "Re-Leased" in error.remedy


def test_a_qbo_object_not_found_on_a_write_tells_a_person_what_to_do() -> None:
    # 610: the body names a customer, vendor, item or account QBO holds inactive or deleted.
    body = {"Fault": {"Error": [{"code": "610", "Message": "Object Not Found"}]}}
    error = classify_qbo(400, body, None)
    assert isinstance(error, NotFound)
    assert error.remedy is not None
    assert "inactive in QuickBooks" in error.remedy
