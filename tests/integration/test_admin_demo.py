"""The demo connection ``make run`` relies on: one active connection, idempotent across restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.admin.demo import sandbox_root
from shared.infra.db import create_pool
from shared.infra.migrations import migrate
from tests.e2e.stack import DEMO_COMPANY, Stack, running_stack
from tests.integration.admin_helpers import running_admin, stack_settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def private_pool(empty_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    # Its own database: "exactly one connection" must not see other tests' rows.
    await migrate(empty_database_url)
    async with create_pool(empty_database_url, min_size=1, max_size=5) as pool:
        yield pool


async def connections(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(
            await conn.fetch(
                "SELECT id, released_company_id, qbo_realm_id, status FROM connections"
            )
        )


async def run_admin_once(stack: Stack) -> None:
    async with running_admin(
        stack_settings(stack), demo_connection=True, demo_released_company_id=DEMO_COMPANY
    ) as admin:
        task = admin.app.state.demo_task
        assert task is not None
        await asyncio.wait_for(task, 30)


def test_sandbox_root_strips_the_api_prefix() -> None:
    assert sandbox_root("http://127.0.0.1:8102/api/v1") == "http://127.0.0.1:8102"
    assert sandbox_root("http://127.0.0.1:8102/api/v1/") == "http://127.0.0.1:8102"


async def test_demo_creates_one_active_connection_and_is_idempotent(
    empty_database_url: str, amqp_url: str, private_pool: asyncpg.Pool
) -> None:
    async with running_stack(empty_database_url, amqp_url, private_pool) as stack:
        await run_admin_once(stack)
        rows = await connections(private_pool)
        assert len(rows) == 1
        (row,) = rows
        assert row["status"] == "active"
        assert row["qbo_realm_id"]
        company = await stack.released_api(row["released_company_id"], "GET", "/company")
        assert company["accountingConnection"]["externalOrgId"] == row["qbo_realm_id"]
        subscriptions = await stack.released_api(row["released_company_id"], "GET", "/webhooks")
        assert [s["status"] for s in subscriptions["items"]] == ["ACTIVE"]

        # A restart finds the active connection and changes nothing.
        await run_admin_once(stack)
        assert await connections(private_pool) == rows


async def test_demo_finishes_a_pending_connection_instead_of_making_another(
    empty_database_url: str, amqp_url: str, private_pool: asyncpg.Pool
) -> None:
    async with running_stack(empty_database_url, amqp_url, private_pool) as stack:
        made = await stack.call(
            "POST", f"{stack.released_base}/_sandbox/companies", json={"name": "Half Done"}
        )
        async with private_pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO connections (released_company_id) VALUES ($1)", str(made["id"])
            )
        await run_admin_once(stack)
        rows = await connections(private_pool)
        assert [(r["released_company_id"], r["status"]) for r in rows] == [
            (str(made["id"]), "active")
        ]


async def test_demo_off_does_nothing(database_url: str, amqp_url: str, pool: asyncpg.Pool) -> None:
    async with (
        running_stack(database_url, amqp_url, pool) as stack,
        running_admin(stack_settings(stack)) as admin,
    ):
        assert admin.app.state.demo_task is None


async def test_demo_replaces_a_connection_whose_sandbox_company_is_gone(
    empty_database_url: str, amqp_url: str, private_pool: asyncpg.Pool
) -> None:
    # What a restart of `make run` leaves: the database remembers, the in-memory sandboxes do not.
    async with private_pool.acquire() as conn:
        stale = await conn.fetchval(
            "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
            "VALUES ('forgotten-company', '1', 'active') RETURNING id"
        )
    async with running_stack(empty_database_url, amqp_url, private_pool) as stack:
        await run_admin_once(stack)
        rows = {r["id"]: r for r in await connections(private_pool)}
        assert rows.pop(stale)["status"] == "revoked"
        assert [r["status"] for r in rows.values()] == ["active"]
