"""A new company's starting data: enough master data to raise, pay and track an invoice."""

from __future__ import annotations

from sandboxes.released.store import CompanyState, Record, Store, new_id

_ACCOUNTS = (
    ("090", "Business Bank Account", "BANK"),
    ("200", "Rent income", "REVENUE"),
    ("210", "Outgoings recovered", "REVENUE"),
    ("400", "Repairs and maintenance", "EXPENSE"),
    ("420", "Management fees", "EXPENSE"),
)
_TAX_RATES = (("GST 15%", "15.00"), ("Zero rated", "0.00"), ("No GST", "0.00"))


def new_company(
    store: Store, name: str, region: str = "NZ", *, company_id: str | None = None
) -> CompanyState:
    fields = {"name": name, "region": region, "accountingConnection": None}
    company = store.stamp_new({"id": company_id, **fields} if company_id else fields)
    state = CompanyState(company=company)
    for code, account_name, account_type in _ACCOUNTS:
        _add(store, state.accounts, account(code, account_name, account_type))
    for tax_name, rate in _TAX_RATES:
        _add(store, state.tax_rates, {"name": tax_name, "rate": rate, "status": "ACTIVE"})
    prop = _add(store, state.properties, {"name": "12 Quay St", "status": "ACTIVE"})
    option_id = new_id()
    prop["trackingOptionId"] = option_id
    option = {"id": option_id, "name": "12 Quay St", "propertyId": prop["id"], "status": "ACTIVE"}
    tracking = {"name": "Property", "isPropertyMatching": True, "status": "ACTIVE"}
    tracking["options"] = [option]
    _add(store, state.tracking_categories, tracking)
    contact = _add(store, state.contacts, sample_contact())
    tenancy = {
        "propertyId": prop["id"],
        "unit": "G01",
        "status": "CURRENT",
        "startDate": "2024-05-01",
        "endDate": "2029-04-30",
        "primaryContactId": contact["id"],
        "billingContactId": contact["id"],
    }
    _add(store, state.tenancies, tenancy)
    store.companies[state.id] = state
    return state


def account(code: str, name: str, account_type: str, kind: str = "ACCOUNT") -> Record:
    prefixes = {"ACCOUNT": "[A]", "SALES_ITEM": "[S]", "PURCHASE_ITEM": "[P]"}
    return {
        "code": code,
        "name": name,
        "kind": kind,
        "displayPrefix": prefixes.get(kind, "[A]"),
        "type": account_type,
        "status": "ACTIVE",
    }


def sample_contact() -> Record:
    return {
        "name": "Kauri Cafe Ltd",
        "firstName": None,
        "lastName": None,
        "email": "accounts@kauri.example",
        "phones": [],
        "addresses": [],
        "isCustomer": True,
        "isSupplier": False,
        "currency": "NZD",
        "status": "ACTIVE",
        "mergedToContactId": None,
    }


def _add(store: Store, collection: dict[str, Record], record: Record) -> Record:
    store.stamp_new(record)
    collection[record["id"]] = record
    return record
