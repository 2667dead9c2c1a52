"""Mapping of invoices, bills, credit notes and vendor credits to a canonical field set.

Pure functions. References inside the canonical record are QBO keys (``"Item:5"``,
``"Customer:12"``, ``"TaxRate:3"``, ``"Class:2"``): both sides can be translated to them through
the links, so a snapshot compares equal whichever side it was read from. Content QBO can hold but
Re-Leased cannot (discount, mark-up, bundle and description-only lines; foreign currency) raises
``PermanentError`` with a remedy, so the record gets a per-record error and nothing half-written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from shared.infra.errors import PermanentError
from shared.sync.mapping_tax import qbo_tax_detail, spread

CENT = Decimal("0.01")
HOME_CURRENCY = "USD"


@dataclass(frozen=True)
class DocKind:
    entity: str  # canonical
    qbo_type: str
    released_path: str  # collection on the Re-Leased API
    released_category: str  # Re-Leased event category, lower-cased
    released_type: str
    party: str  # QBO contact type
    sales: bool  # QBO sales lines (SalesItemLineDetail) vs expense lines
    api_void: bool  # QBO can void it through the API; otherwise a Re-Leased void deletes

    @property
    def qbo_word(self) -> str:
        return self.qbo_type.lower()


INVOICE = DocKind("invoice", "Invoice", "/invoices", "invoice", "INCOME", "Customer", True, True)
BILL = DocKind("bill", "Bill", "/invoices", "invoice", "EXPENSE", "Vendor", False, False)
CREDIT_NOTE = DocKind(
    "credit_note",
    "CreditMemo",
    "/credit-notes",
    "creditnote",
    "INCOME_CREDIT",
    "Customer",
    True,
    False,
)
VENDOR_CREDIT = DocKind(
    "vendor_credit",
    "VendorCredit",
    "/credit-notes",
    "creditnote",
    "EXPENSE_CREDIT",
    "Vendor",
    False,
    False,
)
KINDS = (INVOICE, BILL, CREDIT_NOTE, VENDOR_CREDIT)
BY_QBO_WORD = {k.qbo_word: k for k in KINDS}
BY_RELEASED_TYPE = {k.released_type: k for k in KINDS}

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


def money(value: Any) -> str:
    try:
        return str(Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP))
    except (InvalidOperation, ValueError):
        raise PermanentError(f"{value!r} is not an amount") from None


def quantity(value: Any) -> str:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise PermanentError(f"{value!r} is not a quantity") from None
    return format(number.normalize(), "f") if number else "0"


def ref_key(qbo_type: str, ref: Mapping[str, Any] | None) -> str | None:
    value = (ref or {}).get("value")
    return f"{qbo_type}:{value}" if value not in (None, "") else None


def split_key(key: str) -> tuple[str, str]:
    qbo_type, _, qbo_id = key.partition(":")
    return qbo_type, qbo_id


# -- QBO -> canonical --------------------------------------------------------------------------


def check_currency(record: Mapping[str, Any], home: str = HOME_CURRENCY) -> None:
    """A document or contact in another currency than the company's: a per-record error."""
    currency = str((record.get("CurrencyRef") or {}).get("value") or home)
    if currency != home:
        raise PermanentError(
            f"the record is in {currency}; multi-currency is not supported",
            remedy="unlink the contact, make it inactive and recreate it in the home currency",
        )


def _qbo_line(kind: DocKind, line: Mapping[str, Any], tax_rate: str | None) -> dict[str, Any]:
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
        "class": ref_key("Class", detail.get("ClassRef")),
    }


def document_from_qbo(
    kind: DocKind, record: Mapping[str, Any], txn_tax_rate: str | None
) -> dict[str, Any]:
    """``txn_tax_rate``: the QBO TaxRate key behind the document's TxnTaxCodeRef, if any."""
    check_currency(record)
    lines = [
        _qbo_line(kind, line, txn_tax_rate)
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
    return fields


def is_qbo_void(record: Mapping[str, Any]) -> bool:
    note = str(record.get("PrivateNote") or "")
    return note.startswith("Voided") and Decimal(str(record.get("TotalAmt", 0))) == 0


# -- Re-Leased -> canonical --------------------------------------------------------------------


def document_from_released(
    kind: DocKind, record: Mapping[str, Any], refs: Mapping[str, str | None]
) -> dict[str, Any]:
    """``refs`` maps each Re-Leased id the record uses to its QBO key (None: not linked)."""

    def key(value: Any) -> str | None:
        return refs.get(str(value)) if value else None

    lines = []
    taxed = any(line.get("taxRateId") for line in record.get("lines") or [])
    if taxed and record.get("lineAmountType") == "INCLUSIVE":
        raise PermanentError(
            "amounts include tax; QBO sales tax is added to tax-exclusive amounts",
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
    return fields


# -- canonical -> each side --------------------------------------------------------------------


def document_to_released(
    kind: DocKind,
    fields: Mapping[str, Any],
    ids: Mapping[str, str],
    whole: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A create/patch body; ``ids`` maps QBO keys to Re-Leased ids (classes: the option id).
    ``fields`` may be the changed part only; ``whole`` is then the full document, which lines
    and tax need (they are always sent together)."""
    whole = fields if whole is None else whole
    body: dict[str, Any] = {}
    if fields.get("number"):
        body["number"] = fields["number"]
    if "contact" in fields:
        body["contactId"] = ids[fields["contact"]]
    if "date" in fields:
        body["date"] = fields["date"]
    if "due_date" in fields and kind in (INVOICE, BILL):
        body["dueDate"] = fields["due_date"]
    if "lines" in fields or "total_tax" in fields:
        lines = whole["lines"]
        taxes = spread(lines, whole["total_tax"]) if "total_tax" in whole else [None] * len(lines)
        body["lineAmountType"] = "EXCLUSIVE"
        body["lines"] = [
            {
                "description": line["description"],
                "quantity": line["quantity"],
                "unitAmount": line["unit_amount"],
                "accountId": ids[line["account"]],
                "taxRateId": ids[line["tax_rate"]] if line["tax_rate"] else None,
                "trackingOptionId": ids[line["class"]] if line["class"] else None,
                **({"taxAmount": tax} if tax is not None else {}),
            }
            for line, tax in zip(lines, taxes, strict=True)
        ]
    return body


def _qbo_line_out(kind: DocKind, line: Mapping[str, Any]) -> dict[str, Any]:
    ref_type, ref_id = split_key(line["account"])
    detail: dict[str, Any] = {}
    if line.get("class"):
        detail["ClassRef"] = {"value": split_key(line["class"])[1]}
    if kind.sales:
        if ref_type != "Item":
            raise PermanentError(
                "a sales line must use a sales item ([S]), not an account",
                remedy="choose an [S] item on the line in Re-Leased",
            )
        detail_type = "SalesItemLineDetail"
        detail["TaxCodeRef"] = {"value": "TAX" if line.get("tax_rate") else "NON"}
    elif ref_type == "Item":
        detail_type = "ItemBasedExpenseLineDetail"
    else:
        detail_type = "AccountBasedExpenseLineDetail"
    if ref_type == "Item":
        detail.update(
            ItemRef={"value": ref_id},
            Qty=line["quantity"],
            UnitPrice=line["unit_amount"],
        )
    else:
        detail["AccountRef"] = {"value": ref_id}
    out: dict[str, Any] = {
        # Decimal strings: exact, and the JSON encoder takes them (it refuses Decimal).
        "Amount": line["amount"],
        "DetailType": detail_type,
        detail_type: detail,
    }
    if line.get("description"):
        out["Description"] = line["description"]
    return out


def document_to_qbo(
    kind: DocKind,
    fields: Mapping[str, Any],
    tax_code: str | None,
    whole: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A create body, or the changed part of a sparse update (``Line`` and the tax are always
    whole, taken from ``whole`` when ``fields`` is only the changed part)."""
    whole = fields if whole is None else whole
    body: dict[str, Any] = {}
    if "contact" in fields:
        body[f"{kind.party}Ref"] = {"value": split_key(fields["contact"])[1]}
    if fields.get("number"):
        body["DocNumber"] = fields["number"]
    if "date" in fields:
        body["TxnDate"] = fields["date"]
    if fields.get("due_date") and kind in (INVOICE, BILL):
        body["DueDate"] = fields["due_date"]
    if "lines" in fields or "total_tax" in fields:
        if not kind.sales and any(line.get("tax_rate") for line in whole["lines"]):
            raise PermanentError(
                "QBO bills and vendor credits carry no sales tax",
                remedy="remove the tax rate from the lines (include tax in the amount)",
            )
        body["Line"] = [_qbo_line_out(kind, line) for line in whole["lines"]]
        if kind.sales and tax_code:
            body["TxnTaxDetail"] = qbo_tax_detail(whole, tax_code)
    return body


def tax_rates_of(fields: Mapping[str, Any]) -> set[str]:
    return {line["tax_rate"] for line in fields.get("lines", []) if line.get("tax_rate")}


def references(fields: Mapping[str, Any]) -> list[str]:
    """Every QBO key the document depends on (contact first: guarantee 7)."""
    keys = [fields["contact"]] if fields.get("contact") else []
    for line in fields.get("lines", []):
        keys += [line[k] for k in ("account", "tax_rate", "class") if line.get(k)]
    return list(dict.fromkeys(keys))


def released_total(record: Mapping[str, Any]) -> Decimal:
    return Decimal(str(record.get("total", "0")))
