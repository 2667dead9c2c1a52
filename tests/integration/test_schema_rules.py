"""Rules the schema itself enforces."""

from __future__ import annotations

import asyncpg
import pytest

pytestmark = pytest.mark.integration


async def test_a_bound_company_can_never_move_to_another_realm(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        conn_id = await conn.fetchval(
            "INSERT INTO connections (released_company_id) VALUES ('co-schema-1') RETURNING id"
        )
        # Binding a pending connection to its first realm is allowed ...
        await conn.execute(
            "UPDATE connections SET qbo_realm_id = 'realm-A', status = 'active' WHERE id = $1",
            conn_id,
        )
        # ... moving it to another realm is not, and the old binding stays.
        with pytest.raises(asyncpg.CheckViolationError, match="forever"):
            await conn.execute(
                "UPDATE connections SET qbo_realm_id = 'realm-B' WHERE id = $1", conn_id
            )
        realm = await conn.fetchval("SELECT qbo_realm_id FROM connections WHERE id = $1", conn_id)
        assert realm == "realm-A"


async def test_a_realm_serves_one_company_only(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO connections (released_company_id, qbo_realm_id) VALUES ('co-s2', 'r-s2')"
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO connections (released_company_id, qbo_realm_id) "
                "VALUES ('co-s3', 'r-s2')"
            )
