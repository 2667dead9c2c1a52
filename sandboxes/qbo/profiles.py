"""Seed profiles: companies that look like real ones, chosen when a realm is made
(``POST /_sandbox/realms {"profile": ...}``; docs/qbo_sandbox.md).

- ``default``: the fresh US company of ``seed.py`` (one 8 % state rate, one class, USD).
- ``us_property``: a US property manager: New York City sales tax as QBO keeps it (state 4 %,
  city 4.5 %, transit 0.375 % combined in one code), a Texas code of one 6.25 % rate, classes per
  unit under each building with repeated unit names, a tenant with a job (sub-customer), a trust
  bank account beside Checking and Savings, Undeposited Funds.
- ``uk``: a UK company in pounds with other currencies on, VAT 20 % and zero-rated, flat classes
  per property, a tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sandboxes.qbo.store import Obj, Realm, stamp


@dataclass(frozen=True)
class Profile:
    home_currency: str
    multi_currency: bool
    country: str


PROFILES = {
    "default": Profile("USD", False, "US"),
    "us_property": Profile("USD", False, "US"),
    "uk": Profile("GBP", True, "GB"),
}


def _add(realm: Realm, entity: str, fields: dict[str, Any]) -> Obj:
    obj: Obj = {"Id": realm.next_id(), "SyncToken": "0", "domain": "QBO", "sparse": False}
    obj.update(fields)
    stamp(obj)
    realm.put(entity, obj)
    return obj


def _tax_code(realm: Realm, name: str, rates: list[tuple[str, str]]) -> Obj:
    """A sales tax code over new rates (name, percent as a decimal string), in QBO's order."""
    details = []
    for order, (rate_name, value) in enumerate(rates):
        rate = _add(
            realm,
            "TaxRate",
            {
                "Name": rate_name,
                "RateValue": Decimal(value),
                "Active": True,
                "SpecialTaxType": "NONE",
            },
        )
        details.append(
            {
                "TaxRateRef": {"value": rate["Id"], "name": rate_name},
                "TaxTypeApplicable": "TaxOnAmount",
                "TaxOrder": order,
            }
        )
    return _add(
        realm,
        "TaxCode",
        {
            "Name": name,
            "Active": True,
            "Taxable": True,
            "TaxGroup": len(rates) > 1,
            "SalesTaxRateList": {"TaxRateDetail": details},
            "PurchaseTaxRateList": {"TaxRateDetail": []},
        },
    )


def _class(realm: Realm, name: str, parent: Obj | None = None) -> Obj:
    fields: dict[str, Any] = {"Name": name, "Active": True, "FullyQualifiedName": name}
    if parent is not None:
        fields.update(
            SubClass=True,
            ParentRef={"value": parent["Id"]},
            FullyQualifiedName=f"{parent['FullyQualifiedName']}:{name}",
        )
    return _add(realm, "Class", fields)


def _customer(realm: Realm, name: str, currency: str, parent: Obj | None = None) -> Obj:
    fields: dict[str, Any] = {
        "DisplayName": name,
        "FullyQualifiedName": name,
        "Active": True,
        "Balance": Decimal("0"),
        "CurrencyRef": {"value": currency},
    }
    if parent is not None:
        fields.update(
            Job=True,
            ParentRef={"value": parent["Id"]},
            BillWithParent=True,
            FullyQualifiedName=f"{parent['DisplayName']}:{name}",
        )
    return _add(realm, "Customer", fields)


def _bank(realm: Realm, name: str, currency: str) -> None:
    _add(
        realm,
        "Account",
        {
            "Name": name,
            "FullyQualifiedName": name,
            "AccountType": "Bank",
            "AccountSubType": "Checking",
            "Classification": "Asset",
            "Active": True,
            "SubAccount": False,
            "CurrentBalance": Decimal("0"),
            "CurrencyRef": {"value": currency},
        },
    )


def apply_profile(realm: Realm, name: str) -> None:
    """Add what ``name`` has beyond the fresh company (``default`` adds nothing)."""
    if name == "us_property":
        _tax_code(realm, "NYC Combined", [("NY State", "4"), ("NYC", "4.5"), ("MCTD", "0.375")])
        _tax_code(realm, "Texas Sales Tax", [("Texas", "6.25")])
        for building in ("Building A", "Building B"):
            parent = _class(realm, building)
            for unit in ("Unit 1", "Unit 2"):
                _class(realm, unit, parent)
        tenant = _customer(realm, "Harbour Holdings", "USD")
        _customer(realm, "Unit 4 fit-out", "USD", tenant)
        _bank(realm, "Trust Account", "USD")
    elif name == "uk":
        _tax_code(realm, "20.0% S", [("VAT 20%", "20")])
        _tax_code(realm, "0.0% Z", [("Zero rated", "0")])
        for property_name in ("12 Quay St", "40 Wharf Rd"):
            _class(realm, property_name)
        _customer(realm, "Kauri Cafe Ltd", "GBP")
        _bank(realm, "Client Account", "GBP")
