"""Recovery with the real engine: a revoked grant parks and resumes; a fixed failure replays."""

from __future__ import annotations

import asyncio
import functools
import uuid
from typing import Any

import asyncpg
import pytest

from shared.adapters.qbo.client import QboClient
from shared.adapters.qbo.tokens import QboTokens
from shared.delivery import parking
from shared.domain.errors import PermanentError
from tests.e2e.conftest import Linked
from tests.e2e.stack import Stack, consumers, eventually
from tests.integration.admin_helpers import running_admin, stack_settings

pytestmark = pytest.mark.e2e


async def customers(stack: Stack, realm_connection: Any, name: str) -> list[dict[str, Any]]:
    qbo = stack.factory.qbo(realm_connection)
    found: list[dict[str, Any]] = await qbo.query_all("Customer", f"DisplayName = '{name}'")
    return found


async def dead_letters(pool: asyncpg.Pool, connection_id: uuid.UUID) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT * FROM dead_letters WHERE connection_id = $1 ORDER BY id", connection_id
        )
        return rows


async def test_a_revoked_grant_parks_work_without_burning_attempts_and_reconnect_resumes(
    stack: Stack, pool: asyncpg.Pool, linked: Linked
) -> None:
    tag = uuid.uuid4().hex[:5]
    before, during = f"Before {tag}", [f"During {tag} {n}" for n in range(3)]
    async with consumers(stack.settings), running_admin(stack_settings(stack)) as admin:
        await stack.released_api(linked.company, "POST", "/contacts", json={"name": before})
        await eventually(lambda: customers(stack, linked.connection, before))

        await stack.call("POST", f"{stack.qbo_base}/_sandbox/realms/{linked.realm}/tokens/revoke")
        for name in during:
            await stack.released_api(linked.company, "POST", "/contacts", json={"name": name})

        async def all_parked() -> bool:
            async with pool.acquire() as conn:
                return await parking.count(conn, linked.connection.id) >= len(during)

        await eventually(all_parked, timeout=30)
        _, details = await admin.api("GET", f"/api/connections/{linked.connection.id}")
        assert details["status"] == "paused"
        assert details["status_reason"].startswith(parking.NEEDS_REAUTH)
        async with pool.acquire() as conn:
            attempts = await conn.fetch(
                "SELECT (event ->> 'attempt')::int AS attempt FROM parked_events "
                "WHERE connection_id = $1",
                linked.connection.id,
            )
        assert {r["attempt"] for r in attempts} == {0}, "parking spends no attempt"
        assert await dead_letters(pool, linked.connection.id) == []

        # The person reconnects (new grant), then resumes: parked work runs, in order.
        fresh = await stack.call("POST", f"{stack.qbo_base}/_sandbox/realms/{linked.realm}/tokens")
        await stack.factory.tokens.save(linked.connection.id, QboTokens.from_response(fresh))
        status, body = await admin.api("POST", f"/api/connections/{linked.connection.id}/resume")
        assert status == 200, body
        assert body["released"] >= len(during)
        for name in during:
            await eventually(
                functools.partial(customers, stack, linked.connection, name), timeout=30
            )
        await asyncio.sleep(1.5)
    for name in [before, *during]:
        assert len(await customers(stack, linked.connection, name)) == 1
    async with pool.acquire() as conn:
        assert await parking.count(conn, linked.connection.id) == 0
    assert await dead_letters(pool, linked.connection.id) == []


async def test_a_fixed_failure_replays_to_convergence_and_a_second_replay_is_harmless(
    stack: Stack,
    pool: asyncpg.Pool,
    linked: Linked,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"Replayed {uuid.uuid4().hex[:5]}"
    broken = True
    original = QboClient.write

    async def failing_write(self: QboClient, entity: str, body: dict[str, Any], **kw: Any) -> Any:
        if broken and str(body.get("DisplayName", "")).startswith("Replayed"):
            raise PermanentError("no mapping for this contact's tax code", remedy="map it")
        return await original(self, entity, body, **kw)

    monkeypatch.setattr(QboClient, "write", failing_write)
    async with consumers(stack.settings), running_admin(stack_settings(stack)) as admin:
        await stack.released_api(linked.company, "POST", "/contacts", json={"name": name})
        letters = await eventually(lambda: dead_letters(pool, linked.connection.id), timeout=30)
        assert [r["error_class"] for r in letters] == ["PermanentError"]
        assert await customers(stack, linked.connection, name) == []

        broken = False  # the operator fixed the mapping
        cid = str(linked.connection.id)
        status, plan = await admin.api(
            "POST", "/api/dlq/replay", json={"connection_id": cid, "dry_run": True}
        )
        assert (status, plan["matched"]) == (200, 1)
        status, first = await admin.api("POST", "/api/dlq/replay", json={"connection_id": cid})
        assert (status, len(first["replayed"])) == (200, 1)
        await eventually(lambda: customers(stack, linked.connection, name), timeout=30)

        letter_id = letters[0]["id"]
        status, second = await admin.api("POST", f"/api/dlq/{letter_id}/replay")
        assert status == 200, second
        await asyncio.sleep(3)  # the second copy is applied (or recognised) by now
    assert len(await customers(stack, linked.connection, name)) == 1, "replaying twice is harmless"
    (after,) = await dead_letters(pool, linked.connection.id)
    assert (after["status"], after["replay_count"]) == ("replayed", 2)
    async with pool.acquire() as conn:
        outcomes = await conn.fetch(
            "SELECT outcome FROM sync_outcomes WHERE connection_id = $1 AND entity = 'contact' "
            "AND event_id LIKE 'replay-%' ORDER BY id",
            linked.connection.id,
        )
    assert outcomes, "the replays were handled by the engine"
    assert outcomes[0]["outcome"] == "applied"
