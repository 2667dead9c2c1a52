"""What the inbox's indexes are for: each one answers a question the code asks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.ingest.reconciler import _UNCOVERED

pytestmark = pytest.mark.integration


async def test_the_reconcilers_inbox_question_is_answered_by_an_index(
    pool: asyncpg.Pool,
) -> None:
    """Issue 18: "does the inbox hold a notification for this record?" names the connection
    and the record's id; the index it had (source, account, entity, entity id) could not
    narrow by either, so the question read the whole source's rows for each batch. Joined
    record by record, each lookup must now be an index condition on both."""
    async with pool.acquire() as conn:
        connection_id = await conn.fetchval(
            "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
            "VALUES ($1, $2, 'active') RETURNING id",
            f"co-{uuid.uuid4().hex[:8]}",
            f"realm-{uuid.uuid4().hex[:8]}",
        )
        tx = conn.transaction()
        await tx.start()
        try:
            # An inbox of some size, so the planner plans as it would in production (rolled
            # back at the end).
            await conn.execute(
                """
                INSERT INTO inbox (event_id, source, connection_id, account_id, entity,
                                   entity_id, operation, routing_key, event, status)
                SELECT $2 || g, 'qbo', $1, 'realm', 'invoice', (g % 5000)::text, 'update',
                       'qbo.invoice.update', '{}'::jsonb, 'published'
                FROM generate_series(1, 30000) g
                """,
                connection_id,
                f"idx-{uuid.uuid4().hex[:8]}-",
            )
            await conn.execute("ANALYZE inbox")
            at = datetime.now(UTC) - timedelta(minutes=5)
            plan = "\n".join(
                row[0]
                for row in await conn.fetch(
                    "EXPLAIN " + _UNCOVERED,
                    connection_id,
                    "qbo",
                    ["invoice"] * 50,
                    [str(n) for n in range(50)],
                    [at] * 50,
                    ["3"] * 50,
                )
            )
        finally:
            await tx.rollback()
    lines = plan.splitlines()
    at_inbox = next(n for n, line in enumerate(lines) if "on inbox i" in line)
    inbox_lookup = "\n".join(lines[at_inbox:])
    assert "inbox_entity" in inbox_lookup
    assert "connection_id =" in inbox_lookup
    assert "entity_id = c.entity_id" in inbox_lookup
