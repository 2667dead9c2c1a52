"""Tax amounts kept equal on both sides.

QBO (US sales tax) taxes a document once, on the total of its taxable lines; Re-Leased rounds the
tax of each line. Two documents with the same lines can therefore differ by a cent or more. The
canonical document carries ``total_tax``, and each side is told the other's figure instead of
recomputing it: QBO through its tax override (``TxnTaxDetail.TaxLine`` amounts for the taxable
total), Re-Leased through each line's ``taxAmount``, spread here so the lines add up to the total.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shared.domain.mapping.money import CENT, money


def taxable_total(lines: Sequence[Mapping[str, Any]]) -> Decimal:
    return sum((Decimal(line["amount"]) for line in lines if line.get("tax_rate")), Decimal(0))


def spread(lines: Sequence[Mapping[str, Any]], total_tax: str) -> list[str | None]:
    """Each line's share of ``total_tax`` (None for untaxed lines), in proportion to its amount,
    rounded to cents so that the shares add up exactly (largest remainder)."""
    taxed = [i for i, line in enumerate(lines) if line.get("tax_rate")]
    shares: list[str | None] = [None] * len(lines)
    if not taxed:
        return shares
    total, base = Decimal(total_tax), taxable_total(lines)
    exact = {
        i: (Decimal(lines[i]["amount"]) * total / base if base else total / len(taxed))
        for i in taxed
    }
    rounded = {i: exact[i].quantize(CENT, rounding=ROUND_HALF_UP) for i in taxed}
    left = total - sum(rounded.values(), Decimal(0))
    step = CENT if left > 0 else -CENT
    # The cents left over go to the lines rounding moved furthest the other way.
    order = sorted(taxed, key=lambda i: (exact[i] - rounded[i]) * (1 if left > 0 else -1))
    for i in reversed(order):
        if left == 0:
            break
        rounded[i] += step
        left -= step
    for i in taxed:
        shares[i] = money(rounded[i])
    return shares


def qbo_tax_detail(fields: Mapping[str, Any], tax_code: str) -> dict[str, Any]:
    """``TxnTaxDetail`` for a QBO sales document: the code, and the canonical tax as QBO's
    override of its own calculation, for the taxable total of these very lines."""
    detail: dict[str, Any] = {"TxnTaxCodeRef": {"value": tax_code}}
    total_tax = fields.get("total_tax")
    rates = {line["tax_rate"] for line in fields["lines"] if line.get("tax_rate")}
    if total_tax is None or len(rates) != 1:
        return detail
    detail["TotalTax"] = total_tax
    detail["TaxLine"] = [
        {
            "Amount": total_tax,
            "DetailType": "TaxLineDetail",
            "TaxLineDetail": {
                "TaxRateRef": {"value": str(next(iter(rates))).partition(":")[2]},
                "PercentBased": True,
                "NetAmountTaxable": money(taxable_total(fields["lines"])),
            },
        }
    ]
    return detail
