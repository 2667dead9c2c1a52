"""Re-Leased seed profiles: a ``portfolio`` company is a property manager's book (several
properties, each with its option in the property-matching tracking category and a tenancy with
its own tenant), in its region's currency."""

from __future__ import annotations

from tests.integration.released_sandbox_helpers import running_sandbox


async def test_a_portfolio_company_has_properties_tenancies_and_per_property_tracking() -> None:
    async with running_sandbox() as h:
        made = await h.client.post(
            "/_sandbox/companies",
            json={"name": "Harbour PM", "region": "UK", "profile": "portfolio"},
        )
        assert made.status_code == 201
        cid = str(made.json()["id"])
        properties = (await h.call(cid, "GET", "/properties")).json()["items"]
        assert len(properties) == 3
        tenancies = (await h.call(cid, "GET", "/tenancies")).json()["items"]
        assert {t["propertyId"] for t in tenancies} == {p["id"] for p in properties}
        (tracking,) = (await h.call(cid, "GET", "/tracking-categories")).json()["items"]
        assert tracking["isPropertyMatching"] is True
        options = {o["propertyId"]: o["id"] for o in tracking["options"]}
        assert {p["id"]: p["trackingOptionId"] for p in properties} == options
        contacts = (await h.call(cid, "GET", "/contacts")).json()["items"]
        assert {c["currency"] for c in contacts} == {"GBP"}
        assert len({t["billingContactId"] for t in tenancies}) == 3
        bad = await h.client.post("/_sandbox/companies", json={"name": "X", "profile": "mars"})
        assert bad.status_code in (400, 422)
