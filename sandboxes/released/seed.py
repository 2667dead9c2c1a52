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


# Seed profiles (``POST /_sandbox/companies {"profile"}``): ``default`` has one property and one
# tenancy; ``portfolio`` is a property manager's book: several properties, each with its option
# in the property-matching tracking category, and a tenancy with its own tenant on each.
PROFILES = ("default", "portfolio")
_PORTFOLIO = (
    ("12 Quay St", "G01", "Kauri Cafe Ltd", "accounts@kauri.example"),
    ("40 Wharf Rd", "L2", "Harbour Dental", "admin@harbourdental.example"),
    ("7 Dock Lane", "Unit 4", "Tide Yoga", "hello@tideyoga.example"),
)
CURRENCY = {"NZ": "NZD", "AU": "AUD", "UK": "GBP", "US": "USD"}


def new_company(
    store: Store,
    name: str,
    region: str = "NZ",
    profile: str = "default",
    *,
    company_id: str | None = None,
) -> CompanyState:
    fields = {"name": name, "region": region, "accountingConnection": None}
    company = store.stamp_new({"id": company_id, **fields} if company_id else fields)
    state = CompanyState(company=company)
    for code, account_name, account_type in _ACCOUNTS:
        _add(store, state.accounts, account(code, account_name, account_type))
    for tax_name, rate in _TAX_RATES:
        _add(store, state.tax_rates, {"name": tax_name, "rate": rate, "status": "ACTIVE"})
    options: list[Record] = []
    tracking = {"name": "Property", "isPropertyMatching": True, "status": "ACTIVE"}
    premises = _PORTFOLIO if profile == "portfolio" else _PORTFOLIO[:1]
    for address, unit, tenant, email in premises:
        prop = _add(store, state.properties, {"name": address, "status": "ACTIVE"})
        option_id = new_id()
        prop["trackingOptionId"] = option_id
        options.append(
            {"id": option_id, "name": address, "propertyId": prop["id"], "status": "ACTIVE"}
        )
        contact = sample_contact(tenant, email, CURRENCY.get(region, "NZD"))
        _add(store, state.contacts, contact)
        tenancy = {
            "propertyId": prop["id"],
            "unit": unit,
            "status": "CURRENT",
            "startDate": "2024-05-01",
            "endDate": "2029-04-30",
            "primaryContactId": contact["id"],
            "billingContactId": contact["id"],
        }
        _add(store, state.tenancies, tenancy)
    _add(store, state.tracking_categories, {**tracking, "options": options})
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


def sample_contact(
    name: str = "Kauri Cafe Ltd", email: str = "accounts@kauri.example", currency: str = "NZD"
) -> Record:
    return {
        "name": name,
        "firstName": None,
        "lastName": None,
        "email": email,
        "phones": [],
        "addresses": [],
        "isCustomer": True,
        "isSupplier": False,
        "currency": currency,
        "status": "ACTIVE",
        "mergedToContactId": None,
    }


def _add(store: Store, collection: dict[str, Record], record: Record) -> Record:
    store.stamp_new(record)
    collection[record["id"]] = record
    return record
