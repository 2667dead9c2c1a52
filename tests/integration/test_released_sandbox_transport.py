"""Transport rules: tokens, idempotency, versions, paging, limits, faults, the request log."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sandboxes.released.openapi import DOCUMENT_PATH, build_openapi
from tests.integration.released_sandbox_helpers import (
    CLIENT_ID,
    basic,
    running_sandbox,
)


def code_of(response: Any) -> str:
    return str(response.json()["elements"][0]["validationErrors"][0]["code"])


async def test_token_endpoint_checks_client_credentials() -> None:
    async with running_sandbox() as h:
        form = {"grant_type": "client_credentials"}
        wrong = await h.client.post(
            "/api/v1/oauth/token", data=form, headers={"Authorization": basic(CLIENT_ID, "nope")}
        )
        assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
        grant = await h.client.post(
            "/api/v1/oauth/token", data={"grant_type": "password"}, auth=("a", "b")
        )
        assert grant.status_code == 400
        token = await h.client.post(
            "/api/v1/oauth/token", data=form, auth=(CLIENT_ID, "test-secret")
        )
        assert token.json()["token_type"] == "Bearer"
        assert token.json()["expires_in"] == 1800
        cid = await h.company()
        anonymous = await h.client.get("/api/v1/company", headers={"X-Company-Id": cid})
        assert anonymous.status_code == 401
        no_company = await h.client.get(
            "/api/v1/company", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
        )
        assert (no_company.status_code, code_of(no_company)) == (400, "COMPANY_REQUIRED")


async def test_token_expires_after_thirty_sandbox_minutes() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        assert (await h.call(cid, "GET", "/company")).status_code == 200
        await h.client.post("/_sandbox/clock", json={"advanceSeconds": 29 * 60})
        assert (await h.call(cid, "GET", "/company")).status_code == 200
        await h.client.post("/_sandbox/clock", json={"advanceSeconds": 2 * 60})
        expired = await h.call(cid, "GET", "/company")
        assert (expired.status_code, expired.json()["type"]) == (401, "TokenExpired")
        fresh = await h.token()
        headers = {"Authorization": f"Bearer {fresh}"}
        assert (await h.call(cid, "GET", "/company", headers=headers)).status_code == 200


async def test_time_scale_shortens_the_token_lifetime() -> None:
    async with running_sandbox(released_sandbox_time_scale=1800.0) as h:
        cid = await h.company()
        assert (
            await h.client.post(
                "/api/v1/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(CLIENT_ID, "test-secret"),
            )
        ).json()["expires_in"] == 1
        assert (await h.call(cid, "GET", "/company")).status_code == 200
        await asyncio.sleep(1.1)
        assert (await h.call(cid, "GET", "/company")).json()["type"] == "TokenExpired"


async def test_expire_tokens_switch_and_connection_revocation() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        await h.connect(cid)
        assert (await h.client.post(f"/_sandbox/companies/{cid}/expire-tokens")).status_code == 204
        assert (await h.call(cid, "GET", "/company")).json()["type"] == "TokenExpired"
        minted = await h.client.post(f"/_sandbox/companies/{cid}/tokens")
        headers = {"Authorization": f"Bearer {minted.json()['access_token']}"}
        assert (await h.call(cid, "GET", "/company", headers=headers)).status_code == 200
        other = await h.company("Other Ltd")
        wrong = await h.call(other, "GET", "/company", headers=headers)
        assert wrong.status_code == 401
        await h.client.post(f"/_sandbox/companies/{cid}/accounting/connection/revoke")
        revoked = await h.call(cid, "GET", "/company", headers=headers)
        assert (revoked.status_code, revoked.json()["type"]) == (401, "ConnectionRevoked")
        await h.client.post(f"/_sandbox/companies/{cid}/accounting/connection/restore")
        assert (await h.call(cid, "GET", "/company", headers=headers)).status_code == 200


async def test_idempotency_key_replays_and_refuses_misuse() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        key = {"Idempotency-Key": "evt-1"}
        first = await h.call(cid, "POST", "/contacts", json={"name": "A Ltd"}, headers=key)
        again = await h.call(cid, "POST", "/contacts", json={"name": "A Ltd"}, headers=key)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert again.headers["idempotent-replayed"] == "true"
        named = (await h.call(cid, "GET", "/contacts")).json()["items"]
        assert [c["name"] for c in named].count("A Ltd") == 1
        misuse = await h.call(cid, "POST", "/contacts", json={"name": "B Ltd"}, headers=key)
        assert (misuse.status_code, code_of(misuse)) == (422, "IDEMPOTENCY_KEY_REUSED")
        other_company = await h.company("Other")
        elsewhere = await h.call(
            other_company, "POST", "/contacts", json={"name": "B"}, headers=key
        )
        assert elsewhere.status_code == 201
        log = (await h.client.get(f"/_sandbox/companies/{cid}/requests?method=POST")).json()
        assert [r["replayed"] for r in log["items"]] == [False, True, False]
        await h.client.post("/_sandbox/clock", json={"advanceSeconds": 25 * 3600})
        fresh = await h.client.post(f"/_sandbox/companies/{cid}/tokens")
        headers = {**key, "Authorization": f"Bearer {fresh.json()['access_token']}"}
        expired_key = await h.call(
            cid, "POST", "/contacts", json={"name": "B Ltd"}, headers=headers
        )
        assert expired_key.status_code == 201


async def test_if_match_version_conflict() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        contact = await h.first(cid, "/contacts")
        path = f"/contacts/{contact['id']}"
        stale = await h.call(cid, "PATCH", path, json={"name": "X"}, headers={"If-Match": '"99"'})
        assert (stale.status_code, code_of(stale)) == (412, "VERSION_MISMATCH")
        current = f'"{contact["version"]}"'
        ok = await h.call(cid, "PATCH", path, json={"name": "X"}, headers={"If-Match": current})
        assert ok.status_code == 200
        replay = await h.call(cid, "PATCH", path, json={"name": "Y"}, headers={"If-Match": current})
        assert replay.status_code == 412
        doc = await h.invoice(cid)
        approve = await h.call(
            cid, "POST", f"/invoices/{doc['id']}/approve", headers={"If-Match": '"7"'}
        )
        assert approve.status_code == 412


async def test_paging_order_and_filters() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        for n in range(5):
            await h.call(cid, "POST", "/contacts", json={"name": f"C{n}"})
        page = (await h.call(cid, "GET", "/contacts", params={"pageSize": 2, "page": 2})).json()
        assert page["pagination"] == {"page": 2, "pageSize": 2, "pageCount": 3, "itemCount": 6}
        everything = (await h.call(cid, "GET", "/contacts")).json()["items"]
        keys = [(c["updatedAt"], c["id"]) for c in everything]
        assert keys == sorted(keys)
        assert page["items"] == everything[2:4]
        oldest = everything[0]
        await h.call(cid, "PATCH", f"/contacts/{oldest['id']}", json={"email": "a@b.example"})
        since = everything[-1]["updatedAt"]
        changed = (await h.call(cid, "GET", "/contacts", params={"modifiedSince": since})).json()
        assert oldest["id"] in [c["id"] for c in changed["items"]]
        assert len(changed["items"]) < len(everything)
        ids = f"{everything[1]['id']},{everything[3]['id']}"
        picked = (await h.call(cid, "GET", "/contacts", params={"ids": ids})).json()["items"]
        assert {c["id"] for c in picked} == set(ids.split(","))
        big = await h.call(cid, "GET", "/contacts", params={"pageSize": 1001})
        assert big.status_code == 400
        bad = await h.call(cid, "GET", "/contacts", params={"modifiedSince": "yesterday"})
        assert bad.status_code == 400
        await h.invoice(cid, status="APPROVED")
        drafts = (await h.call(cid, "GET", "/invoices", params={"status": "DRAFT"})).json()
        assert drafts["pagination"]["itemCount"] == 0


async def test_sixty_a_minute_then_429_with_retry_after() -> None:
    async with running_sandbox(released_sandbox_rate_limits=True) as h:
        cid = await h.company()
        statuses = [(await h.call(cid, "GET", "/company")) for _ in range(61)]
        assert [r.status_code for r in statuses[:60]] == [200] * 60
        assert statuses[0].headers["x-minlimit-remaining"] == "59"
        assert statuses[59].headers["x-minlimit-remaining"] == "0"
        limited = statuses[60]
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        other = await h.company("Other")
        missing = await h.call(other, "GET", "/invoices/nope")
        assert (missing.status_code, missing.headers["x-minlimit-remaining"]) == (404, "59")
        await h.client.post("/_sandbox/clock", json={"advanceSeconds": 61})
        assert (await h.call(cid, "GET", "/company")).status_code == 200


async def test_five_concurrent_then_429() -> None:
    async with running_sandbox(released_sandbox_rate_limits=True) as h:
        cid = await h.company()
        await h.client.put(f"/_sandbox/companies/{cid}/faults", json={"latencyMs": 300})
        headers = await h.headers(cid)
        responses = await asyncio.gather(
            *(h.client.get("/api/v1/company", headers=headers) for _ in range(7))
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * 5 + [429] * 2
        assert all("retry-after" in r.headers for r in responses if r.status_code == 429)


async def test_rate_limits_can_be_switched_off() -> None:
    async with running_sandbox(released_sandbox_rate_limits=False) as h:
        cid = await h.company()
        for _ in range(70):
            assert (await h.call(cid, "GET", "/company")).status_code == 200


async def test_fault_switches_inject_errors_and_429() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        faults = f"/_sandbox/companies/{cid}/faults"
        await h.client.put(faults, json={"errorRate": 1.0, "errorStatus": 500})
        failed = await h.call(cid, "GET", "/company")
        assert (failed.status_code, failed.json()["errorNumber"]) == (500, 500)
        await h.client.put(faults, json={"errorRate": 0.0, "rateLimitRate": 1.0})
        limited = await h.call(cid, "GET", "/company")
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "1")
        bad = await h.client.put(faults, json={"errorRate": 2})
        assert bad.status_code == 400
        reset = await h.client.put(faults, json={"rateLimitRate": 0})
        assert reset.json()["rateLimitRate"] == 0
        assert (await h.call(cid, "GET", "/company")).status_code == 200


async def test_request_log_counts_api_writes_but_not_control_calls() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        await h.call(cid, "POST", "/contacts", json={"name": "Via API"})
        await h.call(cid, "GET", "/contacts")
        as_user = f"/_sandbox/companies/{cid}/as-user/contacts"
        created = await h.client.post(as_user, json={"name": "Via UI"})
        assert created.status_code == 201
        log = (await h.client.get(f"/_sandbox/companies/{cid}/requests")).json()
        assert log["count"] == 1
        assert log["items"][0]["path"] == "/api/v1/contacts"
        assert log["total"] == 2


async def test_unknown_routes_and_ids_use_the_error_envelope() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        missing = await h.call(cid, "GET", "/invoices/does-not-exist")
        assert missing.status_code == 404
        assert missing.json()["type"] == "NotFoundException"
        nowhere = await h.client.get("/api/v1/nowhere")
        assert nowhere.status_code == 404
        assert "elements" in nowhere.json()
        broken = await h.call(cid, "POST", "/contacts", content=b"{not json")
        assert (broken.status_code, code_of(broken)) == (400, "INVALID_JSON")


async def test_served_openapi_matches_the_file_in_the_repo() -> None:
    async with running_sandbox() as h:
        served = (await h.client.get("/api/v1/openapi.json")).json()
        on_disk = json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))
        assert served == on_disk == build_openapi()
