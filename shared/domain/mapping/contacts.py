"""Contacts: QBO Customer/Vendor and Re-Leased contact to the canonical contact and back."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.domain.errors import PermanentError
from shared.domain.mapping.money import US_DEFAULTS, CompanyPrefs, check_currency


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value not in (None, "") else None


_ADDRESS = ("line1", "city", "postal_code", "country")


def _address(values: Iterable[Any]) -> dict[str, str | None] | None:
    """The canonical address: what both sides hold (first line, city, postcode, country); None
    when all are blank. QBO's further lines and state, and Re-Leased's street address, stay on
    their own side (docs/mapping.md)."""
    found = dict(zip(_ADDRESS, (_text(v) for v in values), strict=True))
    return found if any(found.values()) else None


def _postal(record: dict[str, Any]) -> dict[str, Any] | None:
    addresses = [a for a in record.get("addresses") or [] if isinstance(a, dict)]
    postal = [a for a in addresses if a.get("type", "POSTAL") == "POSTAL"]
    return postal[0] if postal else None


def contact_from_qbo(
    record: dict[str, Any], clash_suffix: str = "", prefs: CompanyPrefs = US_DEFAULTS
) -> dict[str, Any]:
    # A contact in a foreign currency is synced only where QBO keeps several currencies.
    check_currency(record, prefs)
    name = str(record.get("DisplayName") or "").strip()
    if clash_suffix and name.endswith(clash_suffix):
        name = name[: -len(clash_suffix)].rstrip()
    return {
        "name": name,
        "first_name": _text(record.get("GivenName")),
        "last_name": _text(record.get("FamilyName")),
        "email": _text((record.get("PrimaryEmailAddr") or {}).get("Address")),
        "phone": _text((record.get("PrimaryPhone") or {}).get("FreeFormNumber")),
        "address": _address(
            (record.get("BillAddr") or {}).get(q)
            for q in ("Line1", "City", "PostalCode", "Country")
        ),
        "active": bool(record.get("Active", True)),
    }


def contact_from_released(record: dict[str, Any]) -> dict[str, Any]:
    phones = record.get("phones") or []
    email = record.get("email")
    if isinstance(email, list):
        raise PermanentError(
            "the contact has several e-mail addresses; QBO takes one",
            remedy="keep one e-mail address on the contact",
        )
    return {
        "name": str(record.get("name") or "").strip(),
        "first_name": _text(record.get("firstName")),
        "last_name": _text(record.get("lastName")),
        "email": _text(email),
        "phone": _text(phones[0].get("number")) if phones and isinstance(phones[0], dict) else None,
        "address": _address(
            (_postal(record) or {}).get(r) for r in ("line1", "city", "postalCode", "country")
        ),
        "active": record.get("status", "ACTIVE") != "ARCHIVED",
    }


def contact_to_qbo(fields: dict[str, Any], display_name: str) -> dict[str, Any]:
    body: dict[str, Any] = {"DisplayName": display_name}
    if "first_name" in fields:
        body["GivenName"] = fields["first_name"] or ""
    if "last_name" in fields:
        body["FamilyName"] = fields["last_name"] or ""
    if fields.get("email"):
        body["PrimaryEmailAddr"] = {"Address": fields["email"]}
    if fields.get("phone"):
        body["PrimaryPhone"] = {"FreeFormNumber": fields["phone"]}
    if "address" in fields:
        address = fields["address"] or {}
        body["BillAddr"] = {
            "Line1": address.get("line1") or "",
            "City": address.get("city") or "",
            "PostalCode": address.get("postal_code") or "",
            "Country": address.get("country") or "",
        }
    if "active" in fields:
        body["Active"] = bool(fields["active"])
    return body


def contact_to_released(
    fields: dict[str, Any], current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A create/patch body; status is never written through the API (QBO owns archiving).
    ``current``: the Re-Leased contact being patched (its street addresses are kept)."""
    body: dict[str, Any] = {}
    if "name" in fields:
        body["name"] = fields["name"]
    if "first_name" in fields:
        body["firstName"] = fields["first_name"]
    if "last_name" in fields:
        body["lastName"] = fields["last_name"]
    if "email" in fields:
        body["email"] = fields["email"]
    if "phone" in fields:
        body["phones"] = [{"type": "DEFAULT", "number": fields["phone"]}] if fields["phone"] else []
    if "address" in fields:
        kept = [
            a
            for a in (current or {}).get("addresses") or []
            if isinstance(a, dict) and a.get("type", "POSTAL") != "POSTAL"
        ]
        address = fields["address"]
        postal = (
            [{"type": "POSTAL", **{_CAMEL[k]: v for k, v in address.items() if v}}]
            if address
            else []
        )
        body["addresses"] = postal + kept
    return body


_CAMEL = {"line1": "line1", "city": "city", "postal_code": "postalCode", "country": "country"}
