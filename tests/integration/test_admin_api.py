"""The admin API without the sandboxes: token gate, list shape, settings, idempotent create."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from shared.admin.oauth_state import sign_state, verify_state
from tests.integration.admin_helpers import (
    ADMIN_TOKEN,
    Admin,
    query_of,
    running_admin,
    standalone_settings,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def admin(database_url: str, amqp_url: str, pool: asyncpg.Pool) -> AsyncIterator[Admin]:
    async with running_admin(standalone_settings(database_url, amqp_url)) as running:
        yield running


def company() -> str:
    return f"rl-{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize(
    "token",
    [None, "wrong-token", ADMIN_TOKEN[:-1], ADMIN_TOKEN + "x", ""],
    ids=["missing", "wrong", "prefix", "longer", "empty"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/connections"),
        ("POST", "/api/connections"),
        ("GET", f"/api/connections/{uuid.uuid4()}"),
        ("GET", f"/api/connections/{uuid.uuid4()}/settings"),
        ("POST", f"/api/connections/{uuid.uuid4()}/pause"),
    ],
)
async def test_api_refuses_requests_without_the_admin_token(
    admin: Admin, token: str | None, method: str, path: str
) -> None:
    status, body = await admin.api(method, path, token=token, json={"released_company_id": "x"})
    assert status == 401
    assert body["error"] == "unauthorized"
    assert body["reason"]


async def test_basic_scheme_with_the_right_secret_is_refused(admin: Admin) -> None:
    async with admin.http.get(
        admin.base + "/api/connections", headers={"Authorization": f"Basic {ADMIN_TOKEN}"}
    ) as response:
        assert response.status == 401


async def test_health_is_public(admin: Admin) -> None:
    status, body = await admin.api("GET", "/healthz", token=None)
    assert (status, body) == (200, {"status": "ok"})


async def test_list_has_exactly_the_documented_shape(admin: Admin) -> None:
    made = {await admin.create(company()) for _ in range(2)}
    status, body = await admin.api("GET", "/api/connections")
    assert status == 200
    assert isinstance(body, list)
    for item in body:
        assert set(item) == {"id", "released_company_id", "qbo_realm_id", "status"}
    ours = {uuid.UUID(item["id"]): item for item in body if uuid.UUID(item["id"]) in made}
    assert set(ours) == made
    assert all(
        item["status"] == "pending" and item["qbo_realm_id"] is None for item in ours.values()
    )


async def test_create_is_idempotent_per_company(admin: Admin) -> None:
    name = company()
    first_status, first = await admin.api(
        "POST", "/api/connections", json={"released_company_id": name}
    )
    again_status, again = await admin.api(
        "POST", "/api/connections", json={"released_company_id": name}
    )
    assert (first_status, again_status) == (201, 200)
    assert first["id"] == again["id"]
    assert set(first) == {"id", "authorize_url"}
    _, listing = await admin.api("GET", "/api/connections")
    assert [item["released_company_id"] for item in listing].count(name) == 1


@pytest.mark.parametrize(
    "body", [{}, {"released_company_id": ""}, {"released_company_id": 7}, [], None]
)
async def test_create_needs_a_company_id(admin: Admin, body: Any) -> None:
    status, answer = await admin.api("POST", "/api/connections", json=body)
    assert status == 400
    assert answer["reason"]


async def test_create_takes_a_sync_from_date(admin: Admin) -> None:
    connection_id = await admin.create(company(), sync_from_date="2025-04-01")
    _, settings = await admin.api("GET", f"/api/connections/{connection_id}/settings")
    assert settings["sync_from_date"] == "2025-04-01"
    status, _ = await admin.api(
        "POST", "/api/connections", json={"released_company_id": company(), "sync_from_date": "x"}
    )
    assert status == 400


async def test_authorize_redirects_to_intuit_with_a_signed_state(admin: Admin) -> None:
    connection_id = await admin.create(company())
    status, _ = await admin.api("GET", f"/api/connections/{connection_id}/authorize")
    assert status == 302
    async with admin.http.get(
        f"{admin.base}/api/connections/{connection_id}/authorize",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        allow_redirects=False,
    ) as response:
        location = response.headers["Location"]
    assert location.startswith(admin.settings.qbo_authorize_url + "?")
    query = query_of(location)
    assert query["client_id"] == admin.settings.qbo_client_id
    assert query["response_type"] == "code"
    assert query["scope"] == "com.intuit.quickbooks.accounting"
    assert query["redirect_uri"] == admin.base + "/oauth/qbo/callback"
    assert verify_state(ADMIN_TOKEN, query["state"]) == connection_id


async def test_details_never_show_tokens(admin: Admin, pool: asyncpg.Pool) -> None:
    connection_id = await admin.create(company())
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE connections SET qbo_tokens = $2 WHERE id = $1", connection_id, b"sealed-blob"
        )
    status, body = await admin.api("GET", f"/api/connections/{connection_id}")
    assert status == 200
    assert "qbo_tokens" not in body
    assert "sealed-blob" not in str(body)
    assert body["has_qbo_tokens"] is True
    assert {"status_reason", "settings"} <= set(body)


async def test_unknown_connection_is_404(admin: Admin) -> None:
    for path in (f"/api/connections/{uuid.uuid4()}", "/api/connections/not-a-uuid/settings"):
        status, _ = await admin.api("GET", path)
        assert status == 404


async def test_settings_defaults_and_round_trip(admin: Admin) -> None:
    connection_id = await admin.create(company(), sync_from_date="2025-01-01")
    path = f"/api/connections/{connection_id}/settings"
    status, defaults = await admin.api("GET", path)
    assert status == 200
    assert defaults["synced_statuses"] == ["AWAITING_APPROVAL", "APPROVED"]
    assert defaults["conflict_winners"] == {
        "contact": "released",
        "document": "qbo",
        "payment": "qbo",
    }
    change = {
        "sync_from_date": "2025-06-30",
        "synced_statuses": ["APPROVED"],
        "conflict_winners": {"contact": "qbo"},
        "contact_clash_suffix": " [S]",
    }
    status, stored = await admin.api("PATCH", path, json=change)
    assert status == 200
    _, read_back = await admin.api("GET", path)
    assert read_back == stored
    assert read_back["sync_from_date"] == "2025-06-30"
    assert read_back["synced_statuses"] == ["APPROVED"]
    # Winners merge per group: the untouched groups keep their values.
    assert read_back["conflict_winners"] == {"contact": "qbo", "document": "qbo", "payment": "qbo"}
    assert read_back["contact_clash_suffix"] == " [S]"
    _, details = await admin.api("GET", f"/api/connections/{connection_id}")
    assert details["settings"] == read_back


@pytest.mark.parametrize(
    "change",
    [
        {"sync_from_date": "2025-13-01"},
        {"sync_from_date": "yesterday"},
        {"sync_from_date": 20250101},
        {"synced_statuses": []},
        {"synced_statuses": ["DRAFT"]},
        {"synced_statuses": ["APPROVED", "APPROVED"]},
        {"synced_statuses": "APPROVED"},
        {"conflict_winners": {"contact": "both"}},
        {"conflict_winners": {"invoice": "qbo"}},
        {"contact_clash_suffix": ""},
        {"contact_clash_suffix": 3},
        {"unknown_setting": True},
        ["not", "an", "object"],
    ],
)
async def test_bad_settings_are_refused_and_nothing_changes(admin: Admin, change: Any) -> None:
    connection_id = await admin.create(company())
    path = f"/api/connections/{connection_id}/settings"
    _, before = await admin.api("GET", path)
    status, body = await admin.api("PATCH", path, json=change)
    assert status == 400, body
    assert body["error"] == "invalid_settings"
    assert body["reason"]
    _, after = await admin.api("GET", path)
    assert after == before


async def test_resume_needs_a_completed_connect(admin: Admin) -> None:
    connection_id = await admin.create(company())
    status, body = await admin.api("POST", f"/api/connections/{connection_id}/resume")
    assert status == 409
    assert body["error"] == "not_connected"


async def test_a_forged_state_does_not_verify() -> None:
    connection_id = uuid.uuid4()
    forged = sign_state("some-other-secret", connection_id, 60)
    with pytest.raises(ValueError, match="signature"):
        verify_state(ADMIN_TOKEN, forged)
    expired = sign_state(ADMIN_TOKEN, connection_id, -1)
    with pytest.raises(ValueError, match="expired"):
        verify_state(ADMIN_TOKEN, expired)
