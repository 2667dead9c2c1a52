"""Canonical documents to the bodies each side takes: a create, or the changed part of an update.

Lines and tax always travel together and whole (a side recomputes one from the other), taken from
``whole`` when ``fields`` is only the changed part.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shared.domain.errors import PermanentError
from shared.domain.mapping.keys import split_key
from shared.domain.mapping.kinds import BILL, INVOICE, DocKind
from shared.domain.mapping.money import money
from shared.domain.mapping.tax import QboTaxCode, qbo_tax_detail, spread


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
    if ref_type == "Item" and "gross" in line:
        # Amount net of tax; the unit price with it, exact enough that Qty x UnitPrice rounds to
        # the net amount; the amount as entered in TaxInclusiveAmt.
        price = Decimal(line["amount"]) / Decimal(line["quantity"])
        detail.update(
            ItemRef={"value": ref_id},
            Qty=line["quantity"],
            UnitPrice=format(price.quantize(Decimal("0.0000001")).normalize(), "f"),
            TaxInclusiveAmt=line["gross"],
        )
    elif ref_type == "Item":
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


# Lines, their tax and whether amounts include it always travel together and whole.
_LINES_AND_TAX = ("lines", "total_tax", "amounts_include_tax")


def _net_lines(lines: list[Mapping[str, Any]], total_tax: str) -> list[dict[str, Any]]:
    """Lines whose amounts include tax, as QBO keeps them (``Amount`` net of each line's share
    of the tax, spread to the cent); ``gross`` keeps the amount as entered."""
    shares = spread(lines, total_tax)
    out = []
    for line, share in zip(lines, shares, strict=True):
        net = Decimal(line["amount"]) - Decimal(share or 0)
        out.append({**line, "amount": money(net), "gross": line["amount"]})
    return out


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
    if fields.get("currency"):
        body["currency"] = fields["currency"]
    if any(k in fields for k in _LINES_AND_TAX):
        lines = whole["lines"]
        taxes = spread(lines, whole["total_tax"]) if "total_tax" in whole else [None] * len(lines)
        body["lineAmountType"] = "INCLUSIVE" if whole.get("amounts_include_tax") else "EXCLUSIVE"
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


def document_to_qbo(
    kind: DocKind,
    fields: Mapping[str, Any],
    tax_code: QboTaxCode | None,
    whole: Mapping[str, Any] | None = None,
    global_tax: bool = False,
) -> dict[str, Any]:
    """A create body, or the changed part of a sparse update (``Line`` and the tax are always
    whole, taken from ``whole`` when ``fields`` is only the changed part). ``global_tax``: the
    company is outside the US, where QBO takes ``GlobalTaxCalculation`` (amounts including tax:
    ``TaxInclusive``, the line ``Amount`` net and ``TaxInclusiveAmt`` as entered)."""
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
    if fields.get("currency"):
        body["CurrencyRef"] = {"value": fields["currency"]}
    if any(k in fields for k in _LINES_AND_TAX):
        if not kind.sales and any(line.get("tax_rate") for line in whole["lines"]):
            raise PermanentError(
                "QBO bills and vendor credits carry no sales tax",
                remedy="remove the tax rate from the lines (include tax in the amount)",
            )
        inclusive = bool(whole.get("amounts_include_tax")) and kind.sales
        lines = _net_lines(whole["lines"], whole["total_tax"]) if inclusive else whole["lines"]
        body["Line"] = [_qbo_line_out(kind, line) for line in lines]
        if kind.sales and tax_code:
            body["TxnTaxDetail"] = qbo_tax_detail({**whole, "lines": lines}, tax_code)
        if kind.sales and (global_tax or inclusive):
            body["GlobalTaxCalculation"] = "TaxInclusive" if inclusive else "TaxExcluded"
    return body
