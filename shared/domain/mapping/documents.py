"""Invoices, bills, credit notes and vendor credits: each side's record to the canonical document.

Content QBO can hold but Re-Leased cannot (discount, mark-up, bundle and description-only lines;
foreign currency) raises ``PermanentError`` with a remedy.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shared.domain.errors import PermanentError
from shared.domain.mapping.keys import ref_key
from shared.domain.mapping.kinds import BILL, INVOICE, DocKind
from shared.domain.mapping.money import (
    US_DEFAULTS,
    CompanyPrefs,
    check_currency,
    money,
    quantity,
    released_currency,
)

_UNSUPPORTED_LINES = {
    "DiscountLineDetail": "a discount line",
    "GroupLineDetail": "a bundle (group) line",
    "DescriptionOnly": "a description-only line",
    "DescriptionLineDetail": "a description-only line",
}


_REMEDY_LINES = (
    "Re-Leased has no such line: replace it in QBO with an item line (e.g. a negative "
    "item line for a discount), then save the document again"
)


def _qbo_line(
    kind: DocKind,
    line: Mapping[str, Any],
    tax_rate: str | None,
    header_class: str | None,
    inclusive: bool = False,
) -> dict[str, Any]:
    detail_type = str(line.get("DetailType") or "DescriptionOnly")
    if detail_type in _UNSUPPORTED_LINES:
        raise PermanentError(
            f"the document has {_UNSUPPORTED_LINES[detail_type]}", remedy=_REMEDY_LINES
        )
    detail = line.get(detail_type) or {}
    if "MarkupInfo" in detail:
        raise PermanentError("the document has a mark-up line", remedy=_REMEDY_LINES)
    if detail_type == "AccountBasedExpenseLineDetail":
        account = ref_key("Account", detail.get("AccountRef"))
    elif detail_type in ("SalesItemLineDetail", "ItemBasedExpenseLineDetail"):
        account = ref_key("Item", detail.get("ItemRef"))
    else:
        raise PermanentError(f"unsupported line type {detail_type}", remedy=_REMEDY_LINES)
    amount = money(line.get("Amount", 0))
    qty, price = detail.get("Qty"), detail.get("UnitPrice")
    if inclusive:
        # Amounts including tax: the line as entered is TaxInclusiveAmt (Amount is net of tax).
        amount = money(detail.get("TaxInclusiveAmt", line.get("Amount", 0)))
        price = Decimal(amount) / Decimal(quantity(qty)) if qty not in (None, "", 0) else None
    if qty in (None, "", 0) or price in (None, ""):
        qty, price = 1, amount
    # Re-Leased keeps unit amounts to the cent: where that would change the line amount, the
    # line becomes one unit at the line amount, so totals stay exact.
    if money(Decimal(quantity(qty)) * Decimal(money(price))) != amount:
        qty, price = 1, amount
    taxed = ((detail.get("TaxCodeRef") or {}).get("value")) == "TAX"
    return {
        "description": line.get("Description") or None,
        "quantity": quantity(qty),
        "unit_amount": money(price),
        "amount": amount,
        "account": account,
        "tax_rate": tax_rate if (kind.sales and taxed) else None,
        # A class on the whole document (QBO's per-transaction class tracking) applies to every
        # line that has none of its own: Re-Leased tracks per line only.
        "class": ref_key("Class", detail.get("ClassRef")) or header_class,
    }


def document_from_qbo(
    kind: DocKind,
    record: Mapping[str, Any],
    txn_tax_rate: str | None,
    prefs: CompanyPrefs = US_DEFAULTS,
) -> dict[str, Any]:
    """``txn_tax_rate``: the tax key behind the document's TxnTaxCodeRef, if any; ``prefs``:
    the company's home currency (a foreign currency is a field only where it is carried)."""
    currency = check_currency(record, prefs)
    header_class = ref_key("Class", record.get("ClassRef"))
    inclusive = kind.sales and record.get("GlobalTaxCalculation") == "TaxInclusive"
    lines = [
        _qbo_line(kind, line, txn_tax_rate, header_class, inclusive)
        for line in record.get("Line") or []
        if line.get("DetailType") != "SubTotalLineDetail"
    ]
    if not lines:
        raise PermanentError("the document has no lines", remedy="add a line in QBO")
    fields = {
        "number": record.get("DocNumber") or None,
        "contact": ref_key(kind.party, record.get(f"{kind.party}Ref")),
        "date": record.get("TxnDate"),
        "due_date": record.get("DueDate") if kind in (INVOICE, BILL) else None,
        "lines": lines,
    }
    if kind.sales:
        fields["total_tax"] = money((record.get("TxnTaxDetail") or {}).get("TotalTax") or 0)
    if currency:
        fields["currency"] = currency
    if inclusive and any(line["tax_rate"] for line in lines):
        fields["amounts_include_tax"] = True
    return fields


def is_qbo_void(record: Mapping[str, Any]) -> bool:
    note = str(record.get("PrivateNote") or "")
    return note.startswith("Voided") and Decimal(str(record.get("TotalAmt", 0))) == 0


def document_from_released(
    kind: DocKind,
    record: Mapping[str, Any],
    refs: Mapping[str, str | None],
    prefs: CompanyPrefs = US_DEFAULTS,
) -> dict[str, Any]:
    """``refs`` maps each Re-Leased id the record uses to its QBO key (None: not linked)."""

    def key(value: Any) -> str | None:
        return refs.get(str(value)) if value else None

    lines = []
    taxed = any(line.get("taxRateId") for line in record.get("lines") or [])
    inclusive = taxed and record.get("lineAmountType") == "INCLUSIVE"
    if inclusive and not (prefs.tax_inclusive and kind.sales):
        raise PermanentError(
            "amounts include tax; QBO sales tax (US) is added to tax-exclusive amounts",
            remedy="enter the document with tax-exclusive amounts (EXCLUSIVE), then approve it",
        )
    for line in record.get("lines") or []:
        if not line.get("accountId"):
            raise PermanentError(
                "a line has no account", remedy="choose an account or item on every line"
            )
        lines.append(
            {
                "description": line.get("description") or None,
                "quantity": quantity(line.get("quantity", 1)),
                "unit_amount": money(line.get("unitAmount", 0)),
                "amount": money(line.get("lineAmount", 0)),
                "account": key(line.get("accountId")),
                "tax_rate": key(line.get("taxRateId")),
                "class": key(line.get("trackingOptionId")),
            }
        )
    fields = {
        "number": record.get("number") or None,
        "contact": key(record.get("contactId")),
        "date": record.get("date"),
        "due_date": record.get("dueDate") if kind in (INVOICE, BILL) else None,
        "lines": lines,
    }
    if kind.sales:
        fields["total_tax"] = money(record.get("totalTax") or 0)
    currency = released_currency(record, prefs)
    if currency:
        fields["currency"] = currency
    if inclusive:
        fields["amounts_include_tax"] = True
    return fields


def tax_rates_of(fields: Mapping[str, Any]) -> set[str]:
    return {line["tax_rate"] for line in fields.get("lines", []) if line.get("tax_rate")}


def references(fields: Mapping[str, Any]) -> list[str]:
    """Every QBO key the document depends on (contact first: guarantee 7)."""
    keys = [fields["contact"]] if fields.get("contact") else []
    for line in fields.get("lines", []):
        keys += [line[k] for k in ("account", "tax_rate", "class") if line.get(k)]
    return list(dict.fromkeys(keys))


def document_total(fields: dict[str, Any]) -> Decimal:
    """The total a canonical document adds up to: its lines plus the tax on them."""
    lines = sum((Decimal(str(line["amount"])) for line in fields.get("lines") or []), Decimal(0))
    return lines + Decimal(str(fields.get("total_tax") or 0))


def applied_in_qbo(record: dict[str, Any]) -> Decimal:
    """The money QBO has applied to a document (payments, credit used): its total less what is
    still open."""
    still_open = record.get("Balance", record.get("RemainingCredit"))
    if still_open is None:
        return Decimal(0)
    return Decimal(str(record.get("TotalAmt") or 0)) - Decimal(str(still_open))


def below_applied(qbo_record: dict[str, Any], merged: dict[str, Any]) -> bool:
    """Would writing ``merged`` take the QBO document's total below the money applied to it?
    QBO refuses that; an edit made in Re-Leased before it heard of a QBO payment asks for it."""
    return document_total(merged) < applied_in_qbo(qbo_record)
