"""The accounting connection, contacts and master data: who may change what while connected."""

from __future__ import annotations

from typing import Any

from tests.integration.released_sandbox_helpers import running_sandbox


def code_of(response: Any) -> str:
    return str(response.json()["elements"][0]["validationErrors"][0]["code"])


async def test_connection_is_write_once_and_one_to_one() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        assert (await h.call(cid, "GET", "/company")).json()["accountingConnection"] is None
        first = await h.connect(cid, "realm-1")
        assert first.status_code == 201
        connection = first.json()["accountingConnection"]
        assert (connection["provider"], connection["externalOrgId"], connection["status"]) == (
            "QBO",
            "realm-1",
            "ACTIVE",
        )
        assert (await h.connect(cid, "realm-1")).status_code == 200
        other = await h.connect(cid, "realm-2")
        assert (other.status_code, code_of(other)) == (409, "ONE_TO_ONE_CONNECTION")
        moved = await h.call(
            cid,
            "POST",
            "/company/accounting-connection",
            json={"provider": "QBO", "externalOrgId": "realm-1", "syncFromDate": "2020-01-01"},
        )
        assert (moved.status_code, code_of(moved)) == (409, "ONE_TO_ONE_CONNECTION")
        company = (await h.call(cid, "GET", "/company")).json()
        assert company["accountingConnection"]["externalOrgId"] == "realm-1"


async def test_archive_only_in_accounting_while_connected() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        contact = await h.first(cid, "/contacts")
        await h.connect(cid)
        refused = await h.as_user(
            cid, "PATCH", f"/contacts/{contact['id']}", json={"status": "ARCHIVED"}
        )
        assert (refused.status_code, code_of(refused)) == (409, "ARCHIVE_IN_ACCOUNTING")
        action = await h.as_user(cid, "POST", f"/contacts/{contact['id']}/archive")
        assert (action.status_code, code_of(action)) == (409, "ARCHIVE_IN_ACCOUNTING")
        renamed = await h.as_user(
            cid, "PATCH", f"/contacts/{contact['id']}", json={"name": "Kauri"}
        )
        assert renamed.status_code == 200
        # The client that made the connection is the accounting side.
        archived = await h.call(cid, "POST", f"/contacts/{contact['id']}/archive")
        assert archived.json()["status"] == "ARCHIVED"
        listed = (await h.call(cid, "GET", "/contacts")).json()["items"]
        assert contact["id"] not in [c["id"] for c in listed]
        everything = await h.call(cid, "GET", "/contacts", params={"includeArchived": "true"})
        assert contact["id"] in [c["id"] for c in everything.json()["items"]]


async def test_archive_through_the_api_when_not_connected() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        contact = await h.first(cid, "/contacts")
        response = await h.call(
            cid, "PATCH", f"/contacts/{contact['id']}", json={"status": "ARCHIVED"}
        )
        assert (response.status_code, response.json()["status"]) == (200, "ARCHIVED")


async def test_accounting_merge_archives_and_points_to_the_survivor() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        await h.connect(cid)
        old = await h.first(cid, "/contacts")
        new = (await h.call(cid, "POST", "/contacts", json={"name": "Kauri Ltd"})).json()
        path = f"/contacts/{old['id']}/merge"
        refused = await h.as_user(cid, "POST", path, json={"intoContactId": new["id"]})
        assert (refused.status_code, code_of(refused)) == (409, "ARCHIVE_IN_ACCOUNTING")
        merged = (await h.call(cid, "POST", path, json={"intoContactId": new["id"]})).json()
        assert (merged["status"], merged["mergedToContactId"]) == ("ARCHIVED", new["id"])
        events = (await h.call(cid, "GET", "/events")).json()["items"]
        assert events[-1]["eventName"] == "contact.merged"
        assert events[-1]["data"]["mergedToContactId"] == new["id"]
        invoice = await h.call(
            cid,
            "POST",
            "/invoices",
            json={
                "type": "INCOME",
                "contactId": old["id"],
                "date": "2025-01-01",
                "status": "APPROVED",
            },
        )
        assert (invoice.status_code, code_of(invoice)) == (400, "CONTACT_ARCHIVED")


async def test_master_data_is_managed_in_accounting_while_connected() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        account = {"code": "500", "name": "Cleaning", "type": "EXPENSE"}
        before = await h.call(cid, "POST", "/accounts", json=account)
        assert before.status_code == 201
        await h.connect(cid)
        writes = [
            ("POST", "/accounts", {"code": "501", "name": "Gardening"}),
            ("PATCH", f"/accounts/{before.json()['id']}", {"name": "Cleaning and waste"}),
            ("POST", "/tax-rates", {"name": "GST 9%", "rate": "9"}),
            ("POST", "/tracking-categories", {"name": "Region"}),
        ]
        for method, path, body in writes:
            response = await h.as_user(cid, method, path, json=body)
            assert (response.status_code, code_of(response)) == (409, "MANAGED_IN_ACCOUNTING")
        created = await h.call(cid, "POST", "/tax-rates", json={"name": "GST 9%", "rate": "9"})
        assert created.status_code == 201
        assert created.json()["rate"] == "9.00"
        archived = await h.call(
            cid, "PATCH", f"/accounts/{before.json()['id']}", json={"status": "ARCHIVED"}
        )
        assert archived.json()["status"] == "ARCHIVED"
        assert archived.json()["version"] == 2
        names = [e["eventName"] for e in (await h.call(cid, "GET", "/events")).json()["items"]]
        assert names.count("account.changed") == 2
        assert "taxrate.changed" in names
        category = await h.first(cid, "/tracking-categories")
        options = [*category["options"], {"name": "1 Beach Rd"}]
        patched = await h.call(
            cid, "PATCH", f"/tracking-categories/{category['id']}", json={"options": options}
        )
        assert [o["name"] for o in patched.json()["options"]] == ["12 Quay St", "1 Beach Rd"]
        assert patched.json()["options"][0]["id"] == category["options"][0]["id"]


async def test_context_is_read_only_and_seeded() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        tenancy = await h.first(cid, "/tenancies")
        prop = await h.first(cid, "/properties")
        assert tenancy["propertyId"] == prop["id"]
        assert (await h.call(cid, "POST", "/properties", json={})).status_code == 405
        doc = await h.invoice(cid, relatedPropertyId=prop["id"], relatedTenancyId=tenancy["id"])
        assert doc["relatedTenancyId"] == tenancy["id"]


async def test_reset_removes_everything() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        assert (await h.client.post("/_sandbox/reset")).status_code == 204
        response = await h.call(cid, "GET", "/company")
        assert response.status_code in (401, 404)


async def test_approval_refused_when_accounting_archived_the_master_data() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        await h.connect(cid)
        draft = await h.invoice(cid)
        line = draft["lines"][0]
        archive = {"status": "ARCHIVED"}
        await h.call(cid, "PATCH", f"/tax-rates/{line['taxRateId']}", json=archive)
        refused = await h.call(cid, "POST", f"/invoices/{draft['id']}/approve")
        assert (refused.status_code, code_of(refused)) == (400, "TAX_RATE_ARCHIVED")
        await h.call(cid, "PATCH", f"/tax-rates/{line['taxRateId']}", json={"status": "ACTIVE"})
        await h.call(cid, "PATCH", f"/accounts/{line['accountId']}", json=archive)
        refused = await h.call(cid, "POST", f"/invoices/{draft['id']}/approve")
        assert (refused.status_code, code_of(refused)) == (400, "ACCOUNT_ARCHIVED")
        current = (await h.call(cid, "GET", f"/invoices/{draft['id']}")).json()
        assert current["status"] == "DRAFT"
