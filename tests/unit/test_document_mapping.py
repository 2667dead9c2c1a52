"""Document mapping: canonical fields from both sides, exact money, unsupported QBO content."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared.domain.canonical import canonical_hash
from shared.domain.errors import PermanentError
from shared.domain.mapping.contacts import contact_from_qbo
from shared.domain.mapping.document_writes import document_to_qbo, document_to_released
from shared.domain.mapping.documents import (
    document_from_qbo,
    document_from_released,
    is_qbo_void,
    references,
)
from shared.domain.mapping.kinds import BILL, INVOICE
from shared.domain.mapping.payments import payment_from_qbo
from shared.domain.mapping.tax import QboTaxCode, qbo_tax_detail, spread


def qbo_invoice(lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "Id": "7",
        "DocNumber": "1007",
        "TxnDate": "2026-11-20",
        "DueDate": "2026-12-20",
        "CustomerRef": {"value": "3"},
        "Line": [*lines, {"Amount": 1, "DetailType": "SubTotalLineDetail"}],
        "TotalAmt": 100,
        **extra,
    }


def item_line(qty: str, price: str, amount: str, taxed: bool = False) -> dict[str, Any]:
    return {
        "Amount": amount,
        "DetailType": "SalesItemLineDetail",
        "Description": "Rent",
        "SalesItemLineDetail": {
            "ItemRef": {"value": "5"},
            "Qty": qty,
            "UnitPrice": price,
            "TaxCodeRef": {"value": "TAX" if taxed else "NON"},
            "ClassRef": {"value": "9"},
        },
    }


def test_qbo_invoice_maps_to_canonical_with_qbo_keys() -> None:
    record = qbo_invoice(
        [item_line("3", "33.33", "99.99", taxed=True)], TxnTaxDetail={"TotalTax": 8.0}
    )
    fields = document_from_qbo(INVOICE, record, "TaxRate:2")
    assert fields == {
        "number": "1007",
        "contact": "Customer:3",
        "date": "2026-11-20",
        "due_date": "2026-12-20",
        "lines": [
            {
                "description": "Rent",
                "quantity": "3",
                "unit_amount": "33.33",
                "amount": "99.99",
                "account": "Item:5",
                "tax_rate": "TaxRate:2",
                "class": "Class:9",
            }
        ],
        "total_tax": "8.00",
    }
    assert references(fields) == ["Customer:3", "Item:5", "TaxRate:2", "Class:9"]


def test_unit_price_beyond_cents_becomes_one_unit_so_the_total_stays_exact() -> None:
    # 3 x 3.333 = 9.999 -> QBO rounds the line to 10.00; Re-Leased keeps cents on unit amounts.
    (line,) = document_from_qbo(INVOICE, qbo_invoice([item_line("3", "3.333", "10.00")]), None)[
        "lines"
    ]
    assert (line["quantity"], line["unit_amount"], line["amount"]) == ("1", "10.00", "10.00")


@pytest.mark.parametrize(
    ("line", "word"),
    [
        ({"Amount": 5, "DetailType": "DiscountLineDetail", "DiscountLineDetail": {}}, "discount"),
        ({"Amount": 5, "DetailType": "GroupLineDetail", "GroupLineDetail": {}}, "bundle"),
        ({"Amount": 0, "DetailType": "DescriptionOnly", "Description": "x"}, "description-only"),
        (
            {
                "Amount": 5,
                "DetailType": "ItemBasedExpenseLineDetail",
                "ItemBasedExpenseLineDetail": {"ItemRef": {"value": "1"}, "MarkupInfo": {}},
            },
            "mark-up",
        ),
    ],
)
def test_unsupported_lines_raise_with_a_remedy(line: dict[str, Any], word: str) -> None:
    with pytest.raises(PermanentError, match=word) as caught:
        document_from_qbo(INVOICE, qbo_invoice([line]), None)
    assert caught.value.remedy


def test_foreign_currency_is_refused_with_a_remedy() -> None:
    record = qbo_invoice([item_line("1", "5", "5")], CurrencyRef={"value": "EUR"})
    with pytest.raises(PermanentError, match="EUR") as caught:
        document_from_qbo(INVOICE, record, None)
    assert caught.value.remedy


def test_bill_lines_use_accounts_and_carry_no_tax() -> None:
    bill = {
        "DocNumber": "B-1",
        "TxnDate": "2026-11-20",
        "DueDate": "2026-11-20",
        "VendorRef": {"value": "4"},
        "Line": [
            {
                "Amount": "250.75",
                "DetailType": "AccountBasedExpenseLineDetail",
                "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "60"}},
            }
        ],
    }
    fields = document_from_qbo(BILL, bill, None)
    assert fields["contact"] == "Vendor:4"
    assert fields["lines"][0]["account"] == "Account:60"
    body = document_to_qbo(BILL, fields, None)
    assert body["Line"][0]["DetailType"] == "AccountBasedExpenseLineDetail"
    with pytest.raises(PermanentError, match="no sales tax"):
        document_to_qbo(
            BILL, {**fields, "lines": [{**fields["lines"][0], "tax_rate": "T:1"}]}, None
        )


def test_released_and_qbo_views_of_one_document_hash_the_same() -> None:
    qbo_fields = document_from_qbo(INVOICE, qbo_invoice([item_line("2", "60.50", "121.00")]), None)
    released = {
        "number": "1007",
        "contactId": "c1",
        "date": "2026-11-20",
        "dueDate": "2026-12-20",
        "lines": [
            {
                "description": "Rent",
                "quantity": "2",
                "unitAmount": "60.50",
                "lineAmount": "121.00",
                "accountId": "a1",
                "trackingOptionId": "o1",
            }
        ],
    }
    refs = {"c1": "Customer:3", "a1": "Item:5", "o1": "Class:9"}
    assert canonical_hash(document_from_released(INVOICE, released, refs)) == canonical_hash(
        qbo_fields
    )
    body = document_to_released(
        INVOICE, qbo_fields, {"Customer:3": "c1", "Item:5": "a1", "Class:9": "o1"}
    )
    assert body["lines"][0]["unitAmount"] == "60.50"
    assert body["contactId"] == "c1"


def test_void_is_recognised_by_note_and_zero_total() -> None:
    assert is_qbo_void({"PrivateNote": "Voided", "TotalAmt": 0})
    assert not is_qbo_void({"PrivateNote": "Voided rent", "TotalAmt": 10})


def test_payment_allocations_sum_per_document_exactly() -> None:
    payment = {
        "TxnDate": "2026-11-20",
        "TotalAmt": "0.30",
        "Line": [
            {"Amount": "0.10", "LinkedTxn": [{"TxnId": "7", "TxnType": "Invoice"}]},
            {"Amount": "0.20", "LinkedTxn": [{"TxnId": "7", "TxnType": "Invoice"}]},
        ],
    }
    assert payment_from_qbo("Payment", payment)["allocations"] == {"Invoice:7": "0.30"}


def test_credit_in_a_payment_goes_to_refunds_first_then_documents_in_order() -> None:
    payment = {
        "TotalAmt": "15.00",
        "Line": [
            {"Amount": "50.00", "LinkedTxn": [{"TxnId": "1", "TxnType": "Invoice"}]},
            {"Amount": "20.00", "LinkedTxn": [{"TxnId": "2", "TxnType": "Invoice"}]},
            {"Amount": "40.00", "LinkedTxn": [{"TxnId": "8", "TxnType": "CreditMemo"}]},
            {"Amount": "25.00", "LinkedTxn": [{"TxnId": "9", "TxnType": "CreditMemo"}]},
            {"Amount": "10.00", "LinkedTxn": [{"TxnId": "5", "TxnType": "Expense"}]},
        ],
    }
    fields = payment_from_qbo("Payment", payment)
    assert fields["credits"] == [
        ["CreditMemo:8", "Expense:5", "10.00"],
        ["CreditMemo:8", "Invoice:1", "30.00"],
        ["CreditMemo:9", "Invoice:1", "20.00"],
        ["CreditMemo:9", "Invoice:2", "5.00"],
    ]
    assert fields["allocations"] == {"Invoice:2": "15.00"}


@settings(max_examples=200, deadline=None)
@given(
    documents=st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=5),
    refunds=st.lists(st.integers(min_value=1, max_value=10_000), max_size=2),
    credits=st.lists(st.integers(min_value=1, max_value=10_000), max_size=4),
)
def test_a_split_payment_accounts_for_every_cent(
    documents: list[int], refunds: list[int], credits: list[int]
) -> None:
    def line(cents: int, txn_type: str, txn_id: int) -> dict[str, object]:
        amount = str(Decimal(cents) / 100)
        return {"Amount": amount, "LinkedTxn": [{"TxnId": str(txn_id), "TxnType": txn_type}]}

    charged = sum(documents) + sum(refunds)
    assume(sum(credits) <= charged)
    assume(sum(refunds) <= sum(credits))  # a refund pays back credit, so credit covers it
    lines = [line(c, "Invoice", n) for n, c in enumerate(documents)]
    lines += [line(c, "Expense", n) for n, c in enumerate(refunds)]
    lines += [line(c, "CreditMemo", n) for n, c in enumerate(credits)]
    fields = payment_from_qbo("Payment", {"TotalAmt": "0", "Line": lines})
    used = [(credit, target, Decimal(amount)) for credit, target, amount in fields["credits"]]
    cash = sum((Decimal(a) for a in fields["allocations"].values()), Decimal(0))
    assert sum(u[2] for u in used) + cash == Decimal(charged) / 100
    for n, cents in enumerate(credits):
        assert sum(u[2] for u in used if u[0] == f"CreditMemo:{n}") == Decimal(cents) / 100
    for n, cents in enumerate(refunds):
        assert sum(u[2] for u in used if u[1] == f"Expense:{n}") == Decimal(cents) / 100
    assert all(amount > 0 for *_, amount in used)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=50),
            st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999"), places=2),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_line_amounts_survive_both_mappings_exactly(lines: list[tuple[int, Decimal]]) -> None:
    qbo_lines = [item_line(str(q), str(p), str(q * p)) for q, p in lines]
    fields = document_from_qbo(INVOICE, qbo_invoice(qbo_lines), None)
    body = document_to_qbo(INVOICE, fields, None)
    assert [Decimal(line["Amount"]) for line in body["Line"]] == [q * p for q, p in lines]
    released = document_to_released(
        INVOICE, fields, {"Customer:3": "c", "Item:5": "a", "Class:9": "o"}
    )
    assert [Decimal(ln["quantity"]) * Decimal(ln["unitAmount"]) for ln in released["lines"]] == [
        q * p for q, p in lines
    ]


def _taxed(amount: str, rate: str | None = "TaxRate:2") -> dict[str, Any]:
    return {"amount": amount, "tax_rate": rate}


def test_document_tax_is_spread_over_taxed_lines_to_the_cent() -> None:
    # 3 x 10.05 at 8 %: each line rounds to 0.80 (2.40), the document's tax is 2.41.
    lines = [_taxed("10.05"), _taxed("10.05"), _taxed("7.00", None), _taxed("10.05")]
    shares = spread(lines, "2.41")
    assert shares[2] is None
    assert sum(Decimal(s) for s in shares if s) == Decimal("2.41")
    assert sorted(s for s in shares if s) == ["0.80", "0.80", "0.81"]


@settings(max_examples=200, deadline=None)
@given(
    amounts=st.lists(st.integers(min_value=-100_000, max_value=1_000_000), min_size=1, max_size=8),
    rate=st.integers(min_value=0, max_value=2500),
)
def test_spread_tax_adds_up_and_stays_within_rounding_of_each_line(
    amounts: list[int], rate: int
) -> None:
    lines = [_taxed(str(Decimal(a) / 100)) for a in amounts]
    base = sum(Decimal(a) / 100 for a in amounts)
    assume(base > 0)
    percent = Decimal(rate) / 100
    total = (base * percent / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    shares = [Decimal(s) for s in spread(lines, str(total)) if s is not None]
    assert sum(shares) == total
    if all(a >= 0 for a in amounts):
        for amount, share in zip(amounts, shares, strict=True):
            own = (Decimal(amount) / 100 * percent / 100).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
            assert abs(share - own) <= Decimal("0.05"), "within Re-Leased's override tolerance"


def test_qbo_tax_detail_overrides_with_the_canonical_tax() -> None:
    fields = {
        "lines": [_taxed("10.05"), _taxed("7.00", None), _taxed("20.10")],
        "total_tax": "2.41",
    }
    detail = qbo_tax_detail(fields, QboTaxCode("3", (("2", "8.00"),)))
    assert detail["TxnTaxCodeRef"] == {"value": "3"}
    assert detail["TotalTax"] == "2.41"
    (line,) = detail["TaxLine"]
    assert line["Amount"] == "2.41"
    assert line["TaxLineDetail"]["NetAmountTaxable"] == "30.15"
    assert line["TaxLineDetail"]["TaxRateRef"] == {"value": "2"}


def test_released_amounts_including_tax_are_refused_with_a_remedy() -> None:
    record = {
        "contactId": "c",
        "lineAmountType": "INCLUSIVE",
        "lines": [{"accountId": "a", "taxRateId": "t", "lineAmount": "115.00"}],
    }
    with pytest.raises(PermanentError) as raised:
        document_from_released(
            INVOICE, record, {"c": "Customer:1", "a": "Item:1", "t": "TaxRate:1"}
        )
    assert raised.value.remedy


def test_a_contact_in_another_currency_is_a_per_record_error_with_a_remedy() -> None:
    with pytest.raises(PermanentError, match="multi-currency") as raised:
        contact_from_qbo({"DisplayName": "Euro Tenant", "CurrencyRef": {"value": "EUR"}})
    assert raised.value.remedy
    home = contact_from_qbo({"DisplayName": "Home Tenant", "CurrencyRef": {"value": "USD"}})
    assert home["name"] == "Home Tenant"
