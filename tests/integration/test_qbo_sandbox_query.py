"""Query language subset, CDC (window, cap, deletions) and batch (limit, per-item faults)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.qbo_sandbox_helpers import Sandbox, sandbox


async def _people(sb: Sandbox) -> None:
    for name, city in (("Alpha", "Austin"), ("Beta", "Boston"), ("Gamma", "Austin")):
        body = {"DisplayName": name, "CompanyName": city, "BillAddr": {"City": city}}
        await sb.create("Customer", body)


async def test_where_in_like_dotted_and_count() -> None:
    async with sandbox() as sb:
        await _people(sb)
        equal = await sb.query("SELECT * FROM Customer WHERE DisplayName = 'alpha'")
        assert [c["DisplayName"] for c in equal["Customer"]] == ["Alpha"]
        within = await sb.query("select * from customer where DisplayName in ('Alpha', 'Gamma')")
        assert {c["DisplayName"] for c in within["Customer"]} == {"Alpha", "Gamma"}
        like = await sb.query("select * from Customer where DisplayName like '%mm%'")
        assert [c["DisplayName"] for c in like["Customer"]] == ["Gamma"]
        both = await sb.query(
            "select * from Customer where CompanyName = 'Austin' and DisplayName like 'A%'"
        )
        assert [c["DisplayName"] for c in both["Customer"]] == ["Alpha"]
        count = await sb.query("select count(*) from Customer where CompanyName = 'Austin'")
        assert count == {"totalCount": 2}
        nothing = await sb.query("select * from Customer where DisplayName = 'Nobody'")
        assert nothing == {}


async def test_last_updated_time_filter_and_orderby() -> None:
    async with sandbox() as sb:
        await _people(sb)
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds")
        future = await sb.query(
            f"select * from Customer where MetaData.LastUpdatedTime > '{later}'"
        )
        assert future == {}
        earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
        recent = await sb.query(
            f"select * from Customer where MetaData.LastUpdatedTime >= '{earlier}' "
            "orderby DisplayName desc"
        )
        assert [c["DisplayName"] for c in recent["Customer"]] == ["Gamma", "Beta", "Alpha"]


async def test_paging_with_startposition_and_maxresults() -> None:
    async with sandbox() as sb:
        await _people(sb)
        page = await sb.query(
            "select * from Customer orderby DisplayName startposition 2 maxresults 1"
        )
        assert page["startPosition"] == 2
        assert page["maxResults"] == 1
        assert [c["DisplayName"] for c in page["Customer"]] == ["Beta"]
        capped = await sb.query("select * from Customer maxresults 5000")
        assert capped["maxResults"] == 3


async def test_projection_and_parse_errors() -> None:
    async with sandbox() as sb:
        await _people(sb)
        some = await sb.query("select Id, DisplayName from Customer where DisplayName = 'Beta'")
        assert set(some["Customer"][0]) <= {"Id", "DisplayName", "domain", "sparse"}
        broken = await sb.get("query", query="select from where")
        assert broken.status_code == 400
        assert broken.json()["Fault"]["Error"][0]["code"] == "4000"
        posted = await sb.http.post(
            f"{sb.base}/query",
            content=b"select count(*) from Customer",
            headers={**sb.auth, "Content-Type": "application/text"},
        )
        assert posted.json()["QueryResponse"]["totalCount"] == 3


async def test_cdc_shape_deleted_entries_and_window() -> None:
    async with sandbox() as sb:
        since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="seconds")
        customer = await sb.create("Customer", {"DisplayName": "Cdc"})
        invoice = await sb.invoice(customer["Id"])
        await sb.post(
            "invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}, operation="delete"
        )
        response = await sb.get("cdc", entities="Customer,Invoice", changedSince=since)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"CDCResponse", "time"}
        groups = body["CDCResponse"][0]["QueryResponse"]
        customers = next(g["Customer"] for g in groups if "Customer" in g)
        assert [c["DisplayName"] for c in customers] == ["Cdc"]
        invoices = next(g["Invoice"] for g in groups if "Invoice" in g)
        assert invoices == [
            {
                "domain": "QBO",
                "status": "Deleted",
                "Id": invoice["Id"],
                "MetaData": invoices[0]["MetaData"],
            }
        ]
        too_old = (datetime.now(UTC) - timedelta(days=31)).isoformat(timespec="seconds")
        refused = await sb.get("cdc", entities="Customer", changedSince=too_old)
        assert refused.status_code == 400
        unsupported = await sb.get("cdc", entities="TaxCode", changedSince=since)
        assert unsupported.status_code == 400


async def test_cdc_caps_at_1000_objects() -> None:
    async with sandbox(qbo_sandbox_rate_limits=False) as sb:
        since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="seconds")
        for start in range(0, 1020, 30):
            items = [
                {"bId": str(i), "operation": "create", "Vendor": {"DisplayName": f"V{i}"}}
                for i in range(start, min(start + 30, 1020))
            ]
            await sb.post("batch", {"BatchItemRequest": items})
        body = (await sb.get("cdc", entities="Vendor", changedSince=since)).json()
        vendors = body["CDCResponse"][0]["QueryResponse"][0]["Vendor"]
        assert len(vendors) == 1000


async def test_batch_limit_and_per_item_results() -> None:
    async with sandbox() as sb:
        too_many = [
            {"bId": str(i), "operation": "create", "Customer": {"DisplayName": f"C{i}"}}
            for i in range(31)
        ]
        refused = await sb.post("batch", {"BatchItemRequest": too_many})
        assert refused.status_code == 400
        items = [
            {"bId": "a", "operation": "create", "Customer": {"DisplayName": "Batchy"}},
            {"bId": "b", "operation": "create", "Vendor": {"DisplayName": "Batchy"}},
            {"bId": "c", "Query": "select count(*) from Customer where DisplayName = 'Batchy'"},
        ]
        response = await sb.post("batch", {"BatchItemRequest": items})
        answers = {a["bId"]: a for a in response.json()["BatchItemResponse"]}
        assert answers["a"]["Customer"]["DisplayName"] == "Batchy"
        assert answers["b"]["Fault"]["Error"][0]["code"] == "6240"
        assert answers["c"]["QueryResponse"]["totalCount"] == 1


async def test_quoted_literals_compare_as_numbers_and_booleans() -> None:
    async with sandbox() as sb:
        customer = await sb.create("Customer", {"DisplayName": "Numbers"})
        await sb.invoice(customer["Id"], "100.00")
        await sb.invoice(customer["Id"], "9.00")
        big = await sb.query("select * from Invoice where TotalAmt > '10'")
        assert [i["TotalAmt"] for i in big["Invoice"]] == [100]
        active = await sb.query("select count(*) from Customer where Active = 'true'")
        assert active["totalCount"] == 1
        by_ref = await sb.query(
            f"select count(*) from Invoice where CustomerRef = '{customer['Id']}'"
        )
        assert by_ref["totalCount"] == 2


async def test_batch_items_cannot_see_objects_created_in_the_same_batch() -> None:
    async with sandbox() as sb:
        item = await sb.first_id("Item")
        line = {
            "DetailType": "SalesItemLineDetail",
            "Amount": 5,
            "SalesItemLineDetail": {"ItemRef": {"value": item}},
        }
        first = await sb.post(
            "batch",
            {
                "BatchItemRequest": [
                    {"bId": "c", "operation": "create", "Customer": {"DisplayName": "A"}}
                ]
            },
        )
        earlier_id = first.json()["BatchItemResponse"][0]["Customer"]["Id"]
        next_id = str(int(earlier_id) + 1)  # what the next create will be given
        items = [
            {"bId": "c", "operation": "create", "Customer": {"DisplayName": "B"}},
            {
                "bId": "i",
                "operation": "create",
                "Invoice": {"CustomerRef": {"value": next_id}, "Line": [line]},
            },
            {
                "bId": "j",
                "operation": "create",
                "Invoice": {"CustomerRef": {"value": earlier_id}, "Line": [line]},
            },
        ]
        answers = {
            a["bId"]: a
            for a in (await sb.post("batch", {"BatchItemRequest": items})).json()[
                "BatchItemResponse"
            ]
        }
        assert answers["c"]["Customer"]["Id"] == next_id
        assert answers["i"]["Fault"]["Error"][0]["code"] == "610"
        assert "Invoice" in answers["j"]  # created by an earlier batch: visible
