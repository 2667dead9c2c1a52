"""Amounts, quantities and currency: exact decimals, rounded to the cent the way both sides do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from shared.domain.errors import PermanentError

CENT = Decimal("0.01")


@dataclass(frozen=True)
class CompanyPrefs:
    """What the mapping needs of the QBO company's Preferences (read from QBO, never assumed):
    its home currency and whether it keeps other currencies."""

    home_currency: str = "USD"
    multi_currency: bool = False
    # Amounts that include tax (GlobalTaxCalculation=TaxInclusive) exist in QBO outside the US
    # only: a US company adds sales tax to tax-exclusive amounts.
    tax_inclusive: bool = False


US_DEFAULTS = CompanyPrefs()


def prefs_from_qbo(
    record: Mapping[str, Any] | None, company: Mapping[str, Any] | None = None
) -> CompanyPrefs:
    """From QBO's Preferences and CompanyInfo (its ``Country``)."""
    currency = (record or {}).get("CurrencyPrefs") or {}
    home = str((currency.get("HomeCurrency") or {}).get("value") or "USD")
    country = str((company or {}).get("Country") or "US")
    return CompanyPrefs(home, bool(currency.get("MultiCurrencyEnabled", False)), country != "US")


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


def check_currency(record: Mapping[str, Any], prefs: CompanyPrefs = US_DEFAULTS) -> str | None:
    """The foreign currency of a QBO document or contact (None: the home currency). Foreign
    currencies are carried where the QBO company keeps them (multi-currency on; Re-Leased takes
    any ISO currency); otherwise the record is a per-record error naming its currency."""
    currency = str((record.get("CurrencyRef") or {}).get("value") or prefs.home_currency)
    if currency == prefs.home_currency:
        return None
    if not prefs.multi_currency:
        raise PermanentError(
            f"the record is in {currency}; the QBO company's home currency is "
            f"{prefs.home_currency} and multi-currency is off",
            remedy=f"turn on multi-currency in QBO, or re-enter the record in "
            f"{prefs.home_currency}",
        )
    return currency


def released_currency(record: Mapping[str, Any], prefs: CompanyPrefs) -> str | None:
    """The foreign currency of a Re-Leased document (None: the home currency). Read only where
    the QBO company keeps several currencies: a single-currency QBO company holds every document
    in its home currency (docs/mapping.md)."""
    currency = record.get("currency")
    if not prefs.multi_currency or not currency or currency == prefs.home_currency:
        return None
    return str(currency)
