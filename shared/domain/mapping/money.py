"""Amounts, quantities and currency: exact decimals, rounded to the cent the way both sides do."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from shared.domain.errors import PermanentError

CENT = Decimal("0.01")
HOME_CURRENCY = "USD"


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


def check_currency(record: Mapping[str, Any], home: str = HOME_CURRENCY) -> None:
    """A document or contact in another currency than the company's: a per-record error."""
    currency = str((record.get("CurrencyRef") or {}).get("value") or home)
    if currency != home:
        raise PermanentError(
            f"the record is in {currency}; multi-currency is not supported",
            remedy="unlink the contact, make it inactive and recreate it in the home currency",
        )
