"""Issue 17, findings 7 and 10: the admin service answers every bad input with a 400 and a
reason (never a 500), accepts an OAuth state once, and reads no body beyond its cap; the
sandboxes' token and control endpoints have a cap too."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import asyncpg
import pytest

from sandboxes.qbo.app import create_app as create_qbo_sandbox
from sandboxes.qbo.settings import SandboxSettings as QboSandboxSettings
from sandboxes.released.app import create_app as create_released_sandbox
from sandboxes.released.settings import SandboxSettings as ReleasedSandboxSettings
from tests.e2e.stack import running_stack
from tests.integration.admin_helpers import (
    Admin,
    query_of,
    running_admin,
    stack_settings,
    standalone_settings,
)
from tests.support.servers import serving

pytestmark = pytest.mark.integration


@pytest.fixture
async def admin(database_url: str, amqp_url: str) -> AsyncIterator[Admin]:
    async with running_admin(standalone_settings(database_url, amqp_url)) as running:
        yield running


BAD_QUERIES = [
    ("/api/dlq?entity=inv%00oice", "NUL"),
    ("/api/dlq?limit=-1", "limit"),
    ("/api/dlq?limit=99999999999999999999999", "limit"),
    ("/api/dlq/9223372036854775808", "id"),
    ("/api/conflicts?limit=0", "limit"),
    ("/api/connections/00000000-0000-0000-0000-000000000000/links?limit=-5", "limit"),
]


@pytest.mark.parametrize(("path", "reason"), BAD_QUERIES, ids=[p for p, _ in BAD_QUERIES])
async def test_finding7_bad_query_parameters_are_400_with_a_reason(
    admin: Admin, path: str, reason: str
) -> None:
    status, body = await admin.api("GET", path)
    assert status == 400, body
    assert reason in body["reason"]


BAD_BODIES: list[tuple[str, str, Any, str]] = [
    ("POST", "/api/dlq/purge", {"dry_run": True, "ids": [[1]]}, "ids"),
    ("POST", "/api/dlq/purge", {"dry_run": True, "ids": [2**64]}, "out of range"),
    ("POST", "/api/dlq/purge", {"dry_run": True, "ids": "1"}, "ids"),
    ("POST", "/api/dlq/purge", {"dry_run": True, "entity": ["invoice"]}, "entity"),
    ("POST", "/api/dlq/purge", {"dry_run": True, "error_class": "x\u0000"}, "NUL"),
    ("POST", "/api/dlq/replay", {"dry_run": True, "limit": -1}, "limit"),
    ("POST", "/api/dlq/replay", {"dry_run": True, "connection_id": [1]}, "connection id"),
    ("POST", "/api/conflicts/1/resolve", {"resolved_by": {"a": 1}}, "resolved_by"),
    ("POST", "/api/links/1/relink", {"qbo_id": [1, 2]}, "qbo_id"),
    ("POST", "/api/connections", {"released_company_id": "co\u0000"}, "NUL"),
    ("POST", "/api/connections", {"released_company_id": "\ud800"}, "UTF-8"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "reason"),
    BAD_BODIES,
    ids=[f"{p}-{i}" for i, (_, p, _, _) in enumerate(BAD_BODIES)],
)
async def test_finding7_bad_bodies_are_400_with_a_reason(
    admin: Admin, method: str, path: str, body: Any, reason: str
) -> None:
    raw = json.dumps(body).encode()
    status, answer = await admin.api(method, path, data=raw)
    assert status == 400, answer
    assert reason in answer["reason"]


async def test_finding7_settings_with_nul_are_400(admin: Admin) -> None:
    status, created = await admin.api(
        "POST", "/api/connections", json={"released_company_id": "c1"}
    )
    assert status in (200, 201)
    status, body = await admin.api(
        "PATCH", f"/api/connections/{created['id']}/settings", json={"x\u0000": 1}
    )
    assert status == 400, body


@pytest.mark.parametrize("state", ["é" * 40, "1.2.3.é", "ü.1.2.3", "x" * 5000])
async def test_finding7_a_non_ascii_or_huge_state_is_400(admin: Admin, state: str) -> None:
    query = urlencode({"code": "c", "state": state, "realmId": "1"})
    status, body = await admin.api("GET", f"/oauth/qbo/callback?{query}", token=None)
    assert status == 400, body
    assert body["error"] == "invalid_state"


async def test_finding10_the_admin_service_does_not_read_a_huge_body(admin: Admin) -> None:
    big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    status, body = await admin.api("POST", "/api/dlq/purge", data=big)
    assert status == 413
    assert "larger than" in body["reason"]
    # Unauthenticated callers are capped as well (the cap comes before the token check).
    status, _ = await admin.api("POST", "/api/dlq/purge", data=big, token=None)
    assert status == 413


@pytest.mark.parametrize(
    ("which", "paths"),
    [
        ("qbo", ("/oauth2/v1/tokens/bearer", "/_sandbox/realms")),
        ("released", ("/api/v1/oauth/token", "/_sandbox/companies")),
    ],
)
async def test_finding10_sandbox_token_and_control_endpoints_have_a_cap(
    which: str, paths: tuple[str, ...]
) -> None:
    if which == "qbo":
        app = create_qbo_sandbox(QboSandboxSettings())
    else:
        app = create_released_sandbox(ReleasedSandboxSettings())
    big = b"x" * (2 * 1024 * 1024)
    async with serving(app) as base, aiohttp.ClientSession() as http:
        for path in paths:
            async with http.post(base + path, data=big) as response:
                assert response.status == 413, path


async def test_finding7_an_oauth_state_is_accepted_once(
    database_url: str, amqp_url: str, pool: asyncpg.Pool
) -> None:
    async with (
        running_stack(database_url, amqp_url, pool) as stack,
        running_admin(stack_settings(stack)) as admin,
    ):
        made = await stack.call(
            "POST", f"{stack.released_base}/_sandbox/companies", json={"name": "Once Co"}
        )
        connection_id = await admin.create(str(made["id"]))
        first = await admin.callback_url(connection_id)
        async with admin.http.get(first, allow_redirects=False) as response:
            assert response.status == 200, await response.text()
        async with pool.acquire() as conn:
            tokens = await conn.fetchval(
                "SELECT qbo_tokens FROM connections WHERE id = $1", connection_id
            )
        # A fresh grant (new code) presented with the first, already used state.
        second = await admin.callback_url(connection_id)
        replayed = {**query_of(second), "state": query_of(first)["state"]}
        url = urlsplit(second)._replace(query=urlencode(replayed)).geturl()
        async with admin.http.get(url, allow_redirects=False) as response:
            assert response.status == 400
            assert (await response.json())["error"] == "invalid_state"
        async with pool.acquire() as conn:
            after = await conn.fetchval(
                "SELECT qbo_tokens FROM connections WHERE id = $1", connection_id
            )
        assert after == tokens


async def test_finding10_a_chunked_body_without_length_is_cut_off_too(admin: Admin) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b" " * 65536  # 4 MiB in all, never announced

    status, body = await admin.api("POST", "/api/dlq/purge", data=chunks())
    assert status == 413
    assert "larger than" in body["reason"]
