"""Batch writes: up to 50 creates or updates per request, each item on its own, one request."""

from __future__ import annotations

from typing import Any

from tests.integration.released_sandbox_helpers import Harness, running_sandbox


def code_of(error: dict[str, Any]) -> str:
    return str(error["elements"][0]["validationErrors"][0]["code"])


async def _batch(h: Harness, cid: str, path: str, items: list[Any], **kw: Any) -> Any:
    response = await h.call(cid, "POST", f"/{path}/batch", json={"items": items}, **kw)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_contacts_batch_answers_each_item_in_order() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        existing = await h.first(cid, "/contacts")
        before = (await h.client.get(f"/_sandbox/companies/{cid}/requests")).json()["total"]
        results = await _batch(
            h,
            cid,
            "contacts",
            [
                {"name": "Kauri Ltd", "email": "a@kauri.example"},
                {"email": "no name"},
                {"id": existing["id"], "version": existing["version"], "name": "Renamed"},
                {"id": existing["id"], "version": existing["version"], "name": "Stale"},
                {"id": existing["id"], "name": "No version"},
                {"id": "missing", "version": 1, "name": "Nobody"},
            ],
        )
        assert [r["status"] for r in results] == [201, 400, 200, 412, 400, 404]
        assert results[0]["item"]["name"] == "Kauri Ltd"
        assert results[2]["item"]["name"] == "Renamed"
        assert code_of(results[3]["error"]) == "VERSION_MISMATCH"
        assert code_of(results[4]["error"]) == "VERSION_REQUIRED"
        current = (await h.call(cid, "GET", f"/contacts/{existing['id']}")).json()
        assert current["name"] == "Renamed"
        after = (await h.client.get(f"/_sandbox/companies/{cid}/requests")).json()["total"]
        # One request against the limits for the whole batch (the GET in between is another).
        assert after - before == 2


async def test_a_failed_item_changes_nothing_and_raises_no_event() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        invoice = await h.invoice(cid, status="APPROVED")
        await h.pay(cid, invoice, "10.00")
        invoice = (await h.call(cid, "GET", f"/invoices/{invoice['id']}")).json()
        events_before = len((await h.call(cid, "GET", "/events")).json()["items"])
        # The reference is applied before the void is refused: the item must be undone whole.
        item = {
            "id": invoice["id"],
            "version": invoice["version"],
            "reference": "changed",
            "status": "VOIDED",
        }
        [result] = await _batch(h, cid, "invoices", [item])
        assert (result["status"], code_of(result["error"])) == (409, "REMOVE_PAYMENTS_FIRST")
        after = (await h.call(cid, "GET", f"/invoices/{invoice['id']}")).json()
        assert after == invoice
        events_after = len((await h.call(cid, "GET", "/events")).json()["items"])
        assert events_after == events_before


async def test_batch_limits_idempotency_and_the_principal_rule() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        too_many = await h.call(
            cid, "POST", "/contacts/batch", json={"items": [{"name": f"C{n}"} for n in range(51)]}
        )
        assert too_many.status_code == 400
        key = {"Idempotency-Key": "batch-1"}
        items = [{"name": f"Tenant {n}"} for n in range(50)]
        first = await _batch(h, cid, "contacts", items, headers=key)
        again = await h.call(cid, "POST", "/contacts/batch", json={"items": items}, headers=key)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["items"] == first
        listed = await h.call(cid, "GET", "/contacts", params={"pageSize": "1000"})
        assert len([c for c in listed.json()["items"] if c["name"].startswith("Tenant")]) == 50
        await h.connect(cid)
        contact = first[0]["item"]
        archive = {"id": contact["id"], "version": contact["version"], "status": "ARCHIVED"}
        body = {"items": [archive]}
        by_user = (await h.as_user(cid, "POST", "/contacts/batch", json=body)).json()["items"]
        assert (by_user[0]["status"], code_of(by_user[0]["error"])) == (
            409,
            "ARCHIVE_IN_ACCOUNTING",
        )
        [by_accounting] = await _batch(h, cid, "contacts", [archive])
        assert (by_accounting["status"], by_accounting["item"]["status"]) == (200, "ARCHIVED")


async def test_documents_and_payments_in_batches() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        contact = await h.first(cid, "/contacts")
        bank = await h.first(cid, "/accounts", type="BANK")
        line = {"unitAmount": "100.00"}
        docs = [
            {"type": "INCOME", "contactId": contact["id"], "date": "2025-01-01", "lines": [line]}
            | {"status": "APPROVED", "number": f"B-{n}"}
            for n in range(3)
        ]
        created = await _batch(h, cid, "invoices", docs)
        assert [r["status"] for r in created] == [201, 201, 201]
        pays = [
            {
                "documentId": r["item"]["id"],
                "date": "2025-01-02",
                "amount": r["item"]["amountDue"],
                "bankAccountId": bank["id"],
            }
            for r in created
        ]
        paid = await _batch(h, cid, "payments", [*pays, {"id": "x", "version": 1}])
        assert [r["status"] for r in paid] == [201, 201, 201, 400]
        assert code_of(paid[3]["error"]) == "UPDATE_NOT_SUPPORTED"
        first = (await h.call(cid, "GET", f"/invoices/{created[0]['item']['id']}")).json()
        assert first["status"] == "PAID"
        notes = [
            {"type": "INCOME_CREDIT", "contactId": contact["id"], "date": "2025-01-01"}
            | {"lines": [line]}
        ]
        assert [r["status"] for r in await _batch(h, cid, "credit-notes", notes)] == [201]
