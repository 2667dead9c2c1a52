"""Tax amounts kept equal on both sides.

QBO (US sales tax) taxes a document once, on the total of its taxable lines; Re-Leased rounds the
tax of each line. Two documents with the same lines can therefore differ by a cent or more. The
canonical document carries ``total_tax``, and each side is told the other's figure instead of
recomputing it: QBO through its tax override (``TxnTaxDetail.TaxLine`` amounts for the taxable
total), Re-Leased through each line's ``taxAmount``, spread here so the lines add up to the total.

Rates are exact decimals (8.875 stays 8.875). A QBO tax code that combines several rates (US
state + county + city) is one Re-Leased tax rate at their sum; its key is ``TaxCode:<id>``, and on
QBO's side the tax is split back over the components in proportion to their rates, to the cent.
A tax code with a single rate keeps the key of that rate (``TaxRate:<id>``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from shared.domain.errors import PermanentError
from shared.domain.mapping.money import CENT, money


def rate_text(value: Any) -> str:
    """A tax rate as an exact decimal string: never rounded, at least two decimals (8 -> 8.00,
    8.875 -> 8.875), so the same rate read from either side compares equal."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise PermanentError(f"tax rate value {value!r} is not a number") from None
    if not number.is_finite():
        raise PermanentError(f"tax rate value {value!r} is not a number")
    number = number.normalize()
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        number = number.quantize(CENT)
    return format(number, "f")


@dataclass(frozen=True)
class QboTaxCode:
    """A QBO sales tax code as a document needs it: its id and its component rates
    (QBO TaxRate id, percent), in QBO's order."""

    id: str
    components: tuple[tuple[str, str], ...]

    @property
    def rate(self) -> str:
        return rate_text(sum((Decimal(r) for _, r in self.components), Decimal(0)))


def allocate(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """``total`` (cents) split in proportion to ``weights``, rounded to cents so the parts add
    up exactly (largest remainder); equal parts when the weights sum to zero."""
    if not weights:
        return []
    base = sum(weights, Decimal(0))
    exact = [(w * total / base if base else total / len(weights)) for w in weights]
    rounded = [e.quantize(CENT, rounding=ROUND_HALF_UP) for e in exact]
    left = total - sum(rounded, Decimal(0))
    step = CENT if left > 0 else -CENT
    # The cents left over go to the parts rounding moved furthest the other way.
    order = sorted(range(len(weights)), key=lambda i: (exact[i] - rounded[i]) * (step / CENT))
    for i in reversed(order):
        if left == 0:
            break
        rounded[i] += step
        left -= step
    return rounded


def taxable_total(lines: Sequence[Mapping[str, Any]]) -> Decimal:
    return sum((Decimal(line["amount"]) for line in lines if line.get("tax_rate")), Decimal(0))


def spread(lines: Sequence[Mapping[str, Any]], total_tax: str) -> list[str | None]:
    """Each line's share of ``total_tax`` (None for untaxed lines), in proportion to its amount,
    rounded to cents so that the shares add up exactly (largest remainder)."""
    taxed = [i for i, line in enumerate(lines) if line.get("tax_rate")]
    shares: list[str | None] = [None] * len(lines)
    parts = allocate(Decimal(total_tax), [Decimal(lines[i]["amount"]) for i in taxed])
    for i, part in zip(taxed, parts, strict=True):
        shares[i] = money(part)
    return shares


def qbo_tax_detail(fields: Mapping[str, Any], code: QboTaxCode) -> dict[str, Any]:
    """``TxnTaxDetail`` for a QBO sales document: the code, and the canonical tax as QBO's
    override of its own calculation for the taxable total of these very lines, one tax line per
    component rate (the total split over them in proportion to their rates)."""
    detail: dict[str, Any] = {"TxnTaxCodeRef": {"value": code.id}}
    total_tax = fields.get("total_tax")
    rates = {line["tax_rate"] for line in fields["lines"] if line.get("tax_rate")}
    if total_tax is None or len(rates) != 1 or not code.components:
        return detail
    parts = allocate(Decimal(total_tax), [Decimal(rate) for _, rate in code.components])
    detail["TotalTax"] = total_tax
    detail["TaxLine"] = [
        {
            "Amount": money(part),
            "DetailType": "TaxLineDetail",
            "TaxLineDetail": {
                "TaxRateRef": {"value": rate_id},
                "PercentBased": True,
                "TaxPercent": rate,
                "NetAmountTaxable": money(taxable_total(fields["lines"])),
            },
        }
        for (rate_id, rate), part in zip(code.components, parts, strict=True)
    ]
    return detail
