"""A document's lines as Re-Leased computes them: amounts, tax per line (exclusive, inclusive or
none), totals and what is still due. A client's ``taxAmount`` may only move a line's tax by
rounding.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from sandboxes.released.errors import invalid
from sandboxes.released.schemas import LineIn
from sandboxes.released.store import CompanyState, Record, new_id

CENT = Decimal("0.01")


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def recompute_lines(state: CompanyState, doc: Record, lines: list[LineIn]) -> None:
    out: list[Record] = []
    total_lines = total_tax = Decimal(0)
    for line in lines:
        rate = _tax_rate(state, line) if doc["lineAmountType"] != "NO_TAX" else Decimal(0)
        _check_refs(state, line)
        amount = (line.quantity * line.unit_amount).quantize(CENT, rounding=ROUND_HALF_UP)
        if doc["lineAmountType"] == "INCLUSIVE":
            tax = (amount * rate / (100 + rate)).quantize(CENT, rounding=ROUND_HALF_UP)
        else:
            tax = (amount * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        if line.tax_amount is not None and rate:
            if abs(line.tax_amount - tax) > TAX_TOLERANCE:
                raise invalid(
                    "TAX_AMOUNT_MISMATCH",
                    f"a line's taxAmount may only adjust rounding (computed {money(tax)})",
                    "taxAmount",
                )
            tax = line.tax_amount.quantize(CENT, rounding=ROUND_HALF_UP)
        total_lines += amount
        total_tax += tax
        out.append(_line_record(line, amount, tax))
    inclusive = doc["lineAmountType"] == "INCLUSIVE"
    sub_total = total_lines - total_tax if inclusive else total_lines
    total = sub_total + total_tax
    applied = Decimal(doc.get("amountPaid", "0")) + Decimal(doc.get("amountCredited", "0"))
    if total < 0 or total < applied:
        raise invalid("INVALID_TOTAL", "the total cannot be negative or below the money applied")
    doc["lines"] = out
    doc["subTotal"], doc["totalTax"], doc["total"] = map(money, (sub_total, total_tax, total))
    doc["amountDue"] = money(total - applied)
    if "allocations" in doc:
        doc["remainingCredit"] = doc["amountDue"]


# How far a client's line taxAmount may move the computed tax: rounding, not a different rate.
TAX_TOLERANCE = Decimal("0.05")


def _tax_rate(state: CompanyState, line: LineIn) -> Decimal:
    if line.tax_rate_id is None:
        return Decimal(0)
    rate = state.tax_rates.get(line.tax_rate_id)
    if rate is None:
        raise invalid("TAX_RATE_NOT_FOUND", "no such tax rate", line.tax_rate_id)
    if rate["status"] == "ARCHIVED":
        raise invalid("TAX_RATE_ARCHIVED", "the tax rate is archived", line.tax_rate_id)
    return Decimal(rate["rate"])


def _check_refs(state: CompanyState, line: LineIn) -> None:
    if line.account_id is not None:
        account = state.accounts.get(line.account_id)
        if account is None:
            raise invalid("ACCOUNT_NOT_FOUND", "no such account", line.account_id)
        if account["status"] == "ARCHIVED":
            raise invalid("ACCOUNT_ARCHIVED", "the account is archived", line.account_id)
    if line.tracking_option_id is not None:
        options = {
            o["id"] for c in state.tracking_categories.values() for o in c.get("options", [])
        }
        if line.tracking_option_id not in options:
            raise invalid("TRACKING_OPTION_NOT_FOUND", "no such option", line.tracking_option_id)


def _line_record(line: LineIn, amount: Decimal, tax: Decimal) -> Record:
    return {
        "id": new_id(),
        "description": line.description,
        "quantity": format(line.quantity.normalize(), "f"),
        "unitAmount": money(line.unit_amount),
        "accountId": line.account_id,
        "taxRateId": line.tax_rate_id,
        "taxAmount": money(tax),
        "lineAmount": money(amount),
        "trackingOptionId": line.tracking_option_id,
    }


def stored_lines(doc: Record) -> list[LineIn]:
    return [LineIn.model_validate(line) for line in doc["lines"]]
