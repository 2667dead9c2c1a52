"""The accounting side: the client that made the connection writes through the public API.

A Re-Leased user (a token the control API minted, or any other API client's token) gets the
contract's 409s for the same routes; the accounting side's writes take Idempotency-Key and
If-Match, count against the limits, meet the fault switches and raise events like any write.
"""

from __future__ import annotations

from typing import Any

from tests.integration.released_sandbox_helpers import Harness, running_sandbox


def code_of(response: Any) -> str:
    return str(response.json()["elements"][0]["validationErrors"][0]["code"])


async def _other_client(h: Harness, company_id: str) -> dict[str, str]:
    """Headers of another integration (a registered API client that did not connect)."""
    body = {"clientId": "other-integration", "clientSecret": "other-secret-1"}
    registered = await h.client.post("/_sandbox/clients", json=body)
    assert registered.status_code == 201, registered.text
    token = await h.client.post(
        "/api/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("other-integration", "other-secret-1"),
    )
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}", "X-Company-Id": company_id}


async def _paid_invoice_with_credit(h: Harness, cid: str) -> tuple[str, str, str]:
    """(payment id, credit note id, allocation id) on an approved invoice."""
    invoice = await h.invoice(cid, status="APPROVED")
    payment = (await h.pay(cid, invoice, "100.00")).json()
    note = await h.call(
        cid,
        "POST",
        "/credit-notes",
        json={
            "type": "INCOME_CREDIT",
            "contactId": invoice["contactId"],
            "date": "2025-01-05",
            "status": "APPROVED",
            "lines": [{"unitAmount": "50.00"}],
        },
    )
    body = {"invoiceId": invoice["id"], "amount": "20.00", "date": "2025-01-06"}
    allocated = await h.call(
        cid, "POST", f"/credit-notes/{note.json()['id']}/allocations", json=body
    )
    assert allocated.status_code == 200, allocated.text
    return payment["id"], note.json()["id"], allocated.json()["allocations"][0]["id"]


async def test_every_accounting_route_refuses_users_and_serves_the_connecting_client() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        contact = await h.first(cid, "/contacts")
        other = (await h.call(cid, "POST", "/contacts", json={"name": "Kauri Ltd"})).json()
        account = await h.first(cid, "/accounts", code="400")
        category = await h.first(cid, "/tracking-categories")
        payment, note, allocation = await _paid_invoice_with_credit(h, cid)
        await h.connect(cid)
        foreign = await _other_client(h, cid)
        option = category["options"][0]["id"]
        routes: list[tuple[str, str, dict[str, Any] | None, str]] = [
            ("POST", "/accounts", {"code": "501", "name": "Gardening"}, "MANAGED_IN_ACCOUNTING"),
            ("PATCH", f"/accounts/{account['id']}", {"name": "Fix"}, "MANAGED_IN_ACCOUNTING"),
            ("POST", "/tax-rates", {"name": "GST 9%", "rate": "9"}, "MANAGED_IN_ACCOUNTING"),
            ("POST", "/tracking-categories", {"name": "Region"}, "MANAGED_IN_ACCOUNTING"),
            (
                "POST",
                f"/tracking-categories/{category['id']}/options",
                {"name": "1 Beach Rd"},
                "MANAGED_IN_ACCOUNTING",
            ),
            (
                "PATCH",
                f"/tracking-categories/{category['id']}/options/{option}",
                {"name": "12 Quay Street"},
                "MANAGED_IN_ACCOUNTING",
            ),
            ("POST", f"/contacts/{contact['id']}/archive", None, "ARCHIVE_IN_ACCOUNTING"),
            (
                "POST",
                f"/contacts/{contact['id']}/merge",
                {"intoContactId": other["id"]},
                "ARCHIVE_IN_ACCOUNTING",
            ),
            ("POST", f"/payments/{payment}/reverse", None, "REVERSE_IN_ACCOUNTING"),
            (
                "DELETE",
                f"/credit-notes/{note}/allocations/{allocation}",
                None,
                "REVERSE_IN_ACCOUNTING",
            ),
        ]
        for method, path, body, code in routes:
            as_user = await h.as_user(cid, method, path, json=body)
            assert (as_user.status_code, code_of(as_user)) == (409, code), (method, path)
            url = f"/api/v1{path}"
            as_other = await h.client.request(method, url, headers=foreign, json=body)
            assert (as_other.status_code, code_of(as_other)) == (409, code), (method, path)
        for method, path, body, _ in routes:
            if path.endswith("/merge"):
                continue  # the archive before it already took the contact out
            done = await h.call(cid, method, path, json=body)
            assert done.status_code in (200, 201), (method, path, done.text)
        reversed_ = (await h.call(cid, "GET", f"/payments/{payment}")).json()
        assert (reversed_["status"], reversed_["reversalSource"]) == ("REVERSED", "ACCOUNTING")
        options = (await h.call(cid, "GET", f"/tracking-categories/{category['id']}")).json()
        assert [o["name"] for o in options["options"]] == ["12 Quay Street", "1 Beach Rd"]
        names = [e["eventName"] for e in (await h.call(cid, "GET", "/events")).json()["items"]]
        assert {"contact.archived", "payment.reversed", "tracking.changed"} <= set(names)


async def test_a_user_connecting_leaves_no_accounting_side() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        body = {"provider": "QBO", "externalOrgId": "realm-9", "syncFromDate": "2024-04-01"}
        connected = await h.as_user(cid, "POST", "/company/accounting-connection", json=body)
        assert connected.status_code == 201
        refused = await h.call(cid, "POST", "/tax-rates", json={"name": "GST 9%", "rate": "9"})
        assert (refused.status_code, code_of(refused)) == (409, "MANAGED_IN_ACCOUNTING")


async def test_accounting_writes_take_if_match_and_idempotency_and_meet_faults() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        contact = await h.first(cid, "/contacts")
        await h.connect(cid)
        path = f"/contacts/{contact['id']}/archive"
        stale = await h.call(cid, "POST", path, headers={"If-Match": '"99"'})
        assert (stale.status_code, code_of(stale)) == (412, "VERSION_MISMATCH")
        faults = f"/_sandbox/companies/{cid}/faults"
        await h.client.put(faults, json={"errorRate": 1.0, "errorStatus": 503})
        failed = await h.call(cid, "POST", path)
        assert failed.status_code == 503
        await h.client.put(faults, json={"errorRate": 0.0})
        key = {"Idempotency-Key": "archive-1", "If-Match": f'"{contact["version"]}"'}
        first = await h.call(cid, "POST", path, headers=key)
        again = await h.call(cid, "POST", path, headers=key)
        assert (first.status_code, first.json()["status"]) == (200, "ARCHIVED")
        assert again.headers["Idempotent-Replayed"] == "true"
        assert "X-MinLimit-Remaining" in first.headers
        log = (await h.client.get(f"/_sandbox/companies/{cid}/requests")).json()
        archives = [r for r in log["items"] if r["path"].endswith("/archive")]
        assert [r["status"] for r in archives] == [412, 503, 200, 200]


async def test_accounting_writes_count_against_the_rate_limit() -> None:
    async with running_sandbox(released_sandbox_rate_limits=True) as h:
        cid = await h.company()
        await h.connect(cid)
        statuses = []
        for n in range(62):
            body = {"name": f"Rate {n}", "rate": "1"}
            statuses.append((await h.call(cid, "POST", "/tax-rates", json=body)).status_code)
        assert 429 in statuses
        assert statuses.count(201) < 62
        log = (await h.client.get(f"/_sandbox/companies/{cid}/requests")).json()
        assert log["rateLimited"] == statuses.count(429)


async def test_unknown_client_credentials_are_refused() -> None:
    async with running_sandbox() as h:
        response = await h.client.post(
            "/api/v1/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("nobody", "nothing-at-all"),
        )
        assert response.status_code == 401
        weak = {"clientId": "x", "clientSecret": "1"}
        assert (await h.client.post("/_sandbox/clients", json=weak)).status_code == 400
