"""The sandbox serves a company's Preferences as QBO does: ``GET .../preferences`` and the
Preferences query, with the home currency, multi-currency and tax settings the realm was made
with."""

from __future__ import annotations

from tests.integration.qbo_sandbox_helpers import sandbox


async def test_preferences_read_and_query_give_the_realms_home_currency() -> None:
    async with sandbox() as sb:
        prefs = (await sb.get("preferences")).json()["Preferences"]
        assert prefs["CurrencyPrefs"] == {
            "HomeCurrency": {"value": "USD"},
            "MultiCurrencyEnabled": False,
        }
        assert prefs["TaxPrefs"]["UsingSalesTax"] is True
        (queried,) = (await sb.query("select * from Preferences"))["Preferences"]
        assert queried["CurrencyPrefs"] == prefs["CurrencyPrefs"]


async def test_a_realm_made_in_pounds_with_multi_currency_says_so() -> None:
    async with sandbox() as sb:
        made = await sb.http.post(
            "/_sandbox/realms",
            json={
                "companyName": "Quay Ltd",
                "homeCurrency": "GBP",
                "multiCurrency": True,
                "country": "GB",
            },
        )
        assert made.status_code == 201
        sb.realm_id = made.json()["realmId"]
        tokens = (await sb.http.post(f"/_sandbox/realms/{sb.realm_id}/tokens")).json()
        sb.token = tokens["access_token"]
        prefs = (await sb.get("preferences")).json()["Preferences"]
        assert prefs["CurrencyPrefs"]["HomeCurrency"] == {"value": "GBP"}
        assert prefs["CurrencyPrefs"]["MultiCurrencyEnabled"] is True
        bad = await sb.http.post("/_sandbox/realms", json={"homeCurrency": "pounds"})
        assert bad.status_code == 400


async def test_seed_profiles_make_companies_that_look_like_real_ones() -> None:
    async with sandbox() as sb:
        made = await sb.http.post(
            "/_sandbox/realms", json={"companyName": "NYC Props", "profile": "us_property"}
        )
        sb.realm_id = made.json()["realmId"]
        sb.token = (await sb.http.post(f"/_sandbox/realms/{sb.realm_id}/tokens")).json()[
            "access_token"
        ]
        (code,) = (await sb.query("select * from TaxCode where Name = 'NYC Combined'"))["TaxCode"]
        rates = [d["TaxRateRef"]["value"] for d in code["SalesTaxRateList"]["TaxRateDetail"]]
        values = [(await sb.get(f"taxrate/{r}")).json()["TaxRate"]["RateValue"] for r in rates]
        assert [str(v) for v in values] == ["4", "4.5", "0.375"]
        units = await sb.query("select * from Class where Name = 'Unit 1'")
        assert sorted(c["FullyQualifiedName"] for c in units["Class"]) == [
            "Building A:Unit 1",
            "Building B:Unit 1",
        ]
        (job,) = (await sb.query("select * from Customer where Job = true"))["Customer"]
        assert job["ParentRef"]["value"]
        banks = await sb.query("select * from Account where AccountType = 'Bank'")
        assert len(banks["Account"]) == 3
        made = await sb.http.post("/_sandbox/realms", json={"profile": "uk"})
        sb.realm_id = made.json()["realmId"]
        sb.token = (await sb.http.post(f"/_sandbox/realms/{sb.realm_id}/tokens")).json()[
            "access_token"
        ]
        prefs = (await sb.get("preferences")).json()["Preferences"]["CurrencyPrefs"]
        assert prefs == {"HomeCurrency": {"value": "GBP"}, "MultiCurrencyEnabled": True}
        assert (await sb.http.post("/_sandbox/realms", json={"profile": "mars"})).status_code == 400


async def test_documents_default_to_the_home_currency_and_sub_classes_to_their_path() -> None:
    async with sandbox() as sb:
        made = await sb.http.post("/_sandbox/realms", json={"profile": "uk"})
        sb.realm_id = made.json()["realmId"]
        sb.token = (await sb.http.post(f"/_sandbox/realms/{sb.realm_id}/tokens")).json()[
            "access_token"
        ]
        customer = await sb.create("Customer", {"DisplayName": "Pound Co"})
        invoice = await sb.invoice(customer["Id"], "10.00")
        assert invoice["CurrencyRef"]["value"] == "GBP"
        parent = await sb.create("Class", {"Name": "Building C"})
        child = await sb.create("Class", {"Name": "Unit 1", "ParentRef": {"value": parent["Id"]}})
        assert child["FullyQualifiedName"] == "Building C:Unit 1"
