"""Decimal money in, JSON numbers out, as QBO sends them.

Requests are parsed with ``parse_float=Decimal`` so sums are exact; rendering turns each Decimal
into the shortest float that prints the same digits (two decimals round-trip exactly), and drops
the sandbox's private ``_`` keys.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")


def money(value: Any, default: Decimal | None = None) -> Decimal:
    """A Decimal from whatever the client sent (number or numeric string)."""
    if value is None or value == "":
        if default is None:
            raise ValueError("amount missing")
        return default
    if isinstance(value, bool):
        raise ValueError("amount must be a number")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def loads(raw: bytes | str) -> Any:
    return json.loads(raw, parse_float=Decimal)


def plain(value: Any) -> Any:
    """A JSON-ready copy: Decimals as numbers, private keys dropped."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def dumps(value: Any) -> bytes:
    return json.dumps(plain(value), separators=(",", ":")).encode()
