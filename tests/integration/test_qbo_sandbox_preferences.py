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
