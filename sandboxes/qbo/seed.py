"""A fresh company, seeded the way a new QBO company starts out."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandboxes.qbo.store import Obj, Realm, stamp

_ACCOUNTS = (
    ("Checking", "Bank", "Checking"),
    ("Savings", "Bank", "Savings"),
    ("Undeposited Funds", "Other Current Asset", "UndepositedFunds"),
    ("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable"),
    ("Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable"),
    ("Sales of Product Income", "Income", "SalesOfProductIncome"),
    ("Services", "Income", "ServiceFeeIncome"),
    ("Rental Income", "Income", "OtherPrimaryIncome"),
    ("Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs"),
    ("Repairs and Maintenance", "Expense", "RepairMaintenance"),
    ("Utilities", "Expense", "Utilities"),
    ("Office Expenses", "Expense", "OfficeGeneralAdministrativeExpenses"),
    ("Sales Tax Payable", "Other Current Liability", "SalesTaxPayable"),
    ("Visa", "Credit Card", "CreditCard"),
)
_CLASSIFICATION = {
    "Bank": "Asset",
    "Other Current Asset": "Asset",
    "Accounts Receivable": "Asset",
    "Accounts Payable": "Liability",
    "Other Current Liability": "Liability",
    "Credit Card": "Liability",
    "Income": "Revenue",
    "Cost of Goods Sold": "Expense",
    "Expense": "Expense",
}


def _add(realm: Realm, entity: str, fields: dict[str, Any]) -> Obj:
    obj: Obj = {"Id": realm.next_id(), "SyncToken": "0", "domain": "QBO", "sparse": False}
    obj.update(fields)
    stamp(obj)
    realm.put(entity, obj)
    return obj


def _ref(obj: Obj) -> dict[str, str]:
    return {"value": obj["Id"], "name": str(obj.get("Name") or obj.get("DisplayName"))}


def seed_company(
    realm: Realm, home_currency: str = "USD", multi_currency: bool = False, country: str = "US"
) -> None:
    info: Obj = {
        "Id": "1",
        "SyncToken": "0",
        "domain": "QBO",
        "CompanyName": realm.company_name,
        "LegalName": realm.company_name,
        "Country": country,
        "CompanyAddr": {"Line1": "1 Sandbox Way", "City": "Mountain View", "Country": country},
        "FiscalYearStartMonth": "January",
        "SupportedLanguages": "en",
    }
    stamp(info)
    realm.put("CompanyInfo", info)
    realm.put("Preferences", preferences(home_currency, multi_currency, country))
    accounts = {}
    for name, account_type, sub_type in _ACCOUNTS:
        accounts[name] = _add(
            realm,
            "Account",
            {
                "Name": name,
                "FullyQualifiedName": name,
                "AccountType": account_type,
                "AccountSubType": sub_type,
                "Classification": _CLASSIFICATION[account_type],
                "Active": True,
                "SubAccount": False,
                "CurrentBalance": Decimal("0"),
                "CurrencyRef": {"value": home_currency},
            },
        )
    for name, income in (
        ("Services", "Services"),
        ("Rent", "Rental Income"),
        ("Hours", "Services"),
    ):
        _add(
            realm,
            "Item",
            {
                "Name": name,
                "FullyQualifiedName": name,
                "Type": "Service",
                "Active": True,
                "Taxable": False,
                "UnitPrice": Decimal("0"),
                "IncomeAccountRef": _ref(accounts[income]),
                "ExpenseAccountRef": _ref(accounts["Cost of Goods Sold"]),
            },
        )
    _seed_tax(realm)
    _add(realm, "Class", {"Name": "Operations", "FullyQualifiedName": "Operations", "Active": True})


def preferences(home_currency: str, multi_currency: bool, country: str) -> Obj:
    """The company's Preferences as QBO serves them (the parts a client reads: currency and
    tax settings). US companies use sales tax (no tax-inclusive amounts); others use VAT/GST."""
    prefs: Obj = {
        "Id": "1",
        "SyncToken": "0",
        "domain": "QBO",
        "CurrencyPrefs": {
            "HomeCurrency": {"value": home_currency},
            "MultiCurrencyEnabled": multi_currency,
        },
        "TaxPrefs": {"UsingSalesTax": True, "PartnerTaxEnabled": country == "US"},
        "AccountingInfoPrefs": {
            "ClassTrackingPerTxn": False,
            "ClassTrackingPerTxnLine": True,
            "TrackDepartments": False,
        },
    }
    stamp(prefs)
    return prefs


def _seed_tax(realm: Realm) -> None:
    agency = _add(
        realm,
        "TaxAgency",
        {"DisplayName": "State Department of Revenue", "TaxRegistrationNumber": "", "Active": True},
    )
    rate = _add(
        realm,
        "TaxRate",
        {
            "Name": "State Sales Tax",
            "Description": "Sales tax",
            "RateValue": Decimal("8"),
            "AgencyRef": {"value": agency["Id"]},
            "SpecialTaxType": "NONE",
            "DisplayType": "ReadOnly",
            "Active": True,
        },
    )
    rate_list = {
        "TaxRateDetail": [
            {
                "TaxRateRef": {"value": rate["Id"], "name": rate["Name"]},
                "TaxTypeApplicable": "TaxOnAmount",
                "TaxOrder": 0,
            }
        ]
    }
    _add(
        realm,
        "TaxCode",
        {
            "Name": "State Sales Tax",
            "Description": "Taxable at the state rate",
            "Active": True,
            "Hidden": False,
            "Taxable": True,
            "TaxGroup": False,
            "SalesTaxRateList": rate_list,
            "PurchaseTaxRateList": {"TaxRateDetail": []},
        },
    )
    for code in ("TAX", "NON"):
        obj: Obj = {
            "Id": code,
            "SyncToken": "0",
            "domain": "QBO",
            "Name": code,
            "Description": "Taxable" if code == "TAX" else "Non-taxable",
            "Active": True,
            "Taxable": code == "TAX",
            "TaxGroup": False,
        }
        stamp(obj)
        realm.put("TaxCode", obj)
