"""OAuth 2.0 as Intuit runs it: code flow, rotating refresh tokens, expiry, revocation."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import parse_qs, urlparse

import httpx

from tests.integration.qbo_sandbox_helpers import CLIENT_ID, CLIENT_SECRET, Sandbox, sandbox

BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
REDIRECT = "http://app.test/callback"


async def _authorize(http: httpx.AsyncClient, **extra: str) -> dict[str, list[str]]:
    params = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "scope": "com.intuit.quickbooks.accounting",
        "redirect_uri": REDIRECT,
        "state": "xyz",
        **extra,
    }
    response = await http.get("/connect/oauth2", params=params)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    return parse_qs(urlparse(location).query)


async def _token(http: httpx.AsyncClient, **form: str) -> httpx.Response:
    return await http.post("/oauth2/v1/tokens/bearer", data=form, headers={"Authorization": BASIC})


async def test_code_flow_issues_tokens_that_open_the_api() -> None:
    async with sandbox() as sb:
        query = await _authorize(sb.http, sandbox_realm_id=sb.realm_id)
        assert query["state"] == ["xyz"]
        assert query["realmId"] == [sb.realm_id]
        code = query["code"][0]
        response = await _token(
            sb.http, grant_type="authorization_code", code=code, redirect_uri=REDIRECT
        )
        tokens = response.json()
        assert tokens["expires_in"] == 3600
        assert tokens["x_refresh_token_expires_in"] == 8640000
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        read = await sb.http.get(f"{sb.base}/query?query=select * from Account", headers=headers)
        assert read.status_code == 200
        again = await _token(
            sb.http, grant_type="authorization_code", code=code, redirect_uri=REDIRECT
        )
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"


async def test_authorize_without_realm_choice_creates_a_seeded_company() -> None:
    async with sandbox() as sb:
        query = await _authorize(sb.http)
        assert query["realmId"][0] != sb.realm_id
        realms = (await sb.http.get("/_sandbox/realms")).json()["realms"]
        assert query["realmId"][0] in {r["realmId"] for r in realms}


async def test_bad_client_credentials_are_refused() -> None:
    async with sandbox() as sb:
        response = await sb.http.post(
            "/oauth2/v1/tokens/bearer",
            data={"grant_type": "refresh_token", "refresh_token": sb.refresh_token},
            headers={"Authorization": "Basic " + base64.b64encode(b"test-client:nope").decode()},
        )
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"


async def test_refresh_rotates_and_the_old_refresh_token_is_invalid_grant() -> None:
    async with sandbox() as sb:
        first = await _token(sb.http, grant_type="refresh_token", refresh_token=sb.refresh_token)
        assert first.status_code == 200
        assert first.json()["refresh_token"] != sb.refresh_token
        reused = await _token(sb.http, grant_type="refresh_token", refresh_token=sb.refresh_token)
        assert reused.status_code == 400
        assert reused.json()["error"] == "invalid_grant"
        newest = await _token(
            sb.http, grant_type="refresh_token", refresh_token=first.json()["refresh_token"]
        )
        assert newest.status_code == 200


async def test_access_token_expires_on_the_scaled_clock() -> None:
    # 3600 s at scale 36000 is 0.1 s.
    async with sandbox(qbo_sandbox_time_scale=36000) as sb:
        assert (await sb.get("customer/1")).status_code != 401
        await asyncio.sleep(0.15)
        expired = await sb.get("customer/1")
        assert expired.status_code == 401
        assert expired.json()["fault"]["error"][0]["detail"] == "Token expired"
        refreshed = await _token(
            sb.http, grant_type="refresh_token", refresh_token=sb.refresh_token
        )
        sb.token = refreshed.json()["access_token"]
        assert (await sb.get("customer/1")).status_code != 401


async def test_expiry_and_revocation_fault_switches() -> None:
    async with sandbox() as sb:
        await sb.http.post(f"/_sandbox/realms/{sb.realm_id}/tokens/expire")
        assert (await sb.get("customer/1")).status_code == 401
        refreshed = await _token(
            sb.http, grant_type="refresh_token", refresh_token=sb.refresh_token
        )
        sb.token, sb.refresh_token = (
            refreshed.json()["access_token"],
            refreshed.json()["refresh_token"],
        )
        assert (await sb.get("customer/1")).status_code != 401
        await sb.http.post(f"/_sandbox/realms/{sb.realm_id}/tokens/revoke")
        assert (await sb.get("customer/1")).status_code == 401
        dead = await _token(sb.http, grant_type="refresh_token", refresh_token=sb.refresh_token)
        assert dead.json()["error"] == "invalid_grant"


async def test_revoke_endpoint_kills_the_grant() -> None:
    async with sandbox() as sb:
        response = await sb.http.post(
            "/oauth2/v1/tokens/revoke",
            json={"token": sb.refresh_token},
            headers={"Authorization": BASIC},
        )
        assert response.status_code == 200
        assert (await sb.get("customer/1")).status_code == 401
        dead = await _token(sb.http, grant_type="refresh_token", refresh_token=sb.refresh_token)
        assert dead.status_code == 400


async def test_discovery_document_points_at_the_sandbox() -> None:
    async with sandbox(qbo_sandbox_public_url="http://sandbox.test:8101") as sb:
        doc = (await sb.http.get("/.well-known/openid_configuration")).json()
        assert doc["token_endpoint"] == "http://sandbox.test:8101/oauth2/v1/tokens/bearer"
        assert doc["authorization_endpoint"] == "http://sandbox.test:8101/connect/oauth2"
        assert doc["revocation_endpoint"].endswith("/oauth2/v1/tokens/revoke")
        assert {"issuer", "jwks_uri", "userinfo_endpoint"} <= set(doc)


async def test_control_minted_tokens_belong_to_one_realm() -> None:
    async with sandbox() as sb:
        other = Sandbox(sb.app, sb.http)
        await other.new_realm("Second")
        assert (await other.get("customer/1")).status_code != 401
        mine = await sb.http.get(f"{other.base}/customer/1", headers=sb.auth)
        assert mine.status_code == 403
