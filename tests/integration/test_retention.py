"""Issue 17, finding 6: the retention job deletes what has aged out, in batches, and never what
the relay, replay, resume, dedupe or single-use state still need; the receivers' account cache
is bounded."""

from __future__ import annotations

import json
import uuid
from uuid import UUID

import asyncpg
import pytest

from shared.adapters.postgres.connections import ConnectionDirectory
from shared.infra.db import DbConnection
from shared.ops.retention import RetentionPolicy, prune

pytestmark = pytest.mark.integration

OLD = "now() - interval '1000 days'"
# Ages far beyond anything other tests in this database create, so only our rows qualify.
POLICY = RetentionPolicy(
    inbox_days=500,
    inbox_unknown_accounts_days=500,
    sync_outcomes_days=500,
    write_ledger_days=500,
    created_twins_days=500,
    dead_letters_days=500,
    batch_rows=2,
    pause_s=0,
)


async def _inbox(conn: DbConnection, tag: str, status: str, old: bool, reason: str = "") -> str:
    event_id = f"ret-{tag}-{uuid.uuid4().hex[:8]}"
    await conn.execute(
        "INSERT INTO inbox (event_id, source, account_id, entity, entity_id, operation, "
        "routing_key, event, status, ignore_reason, received_at) VALUES ($1, 'qbo', 'ret', "
        f"'invoice', '1', 'update', 'qbo.invoice.update', '{{}}', $2, $3, "
        f"{OLD if old else 'now()'})",
        event_id,
        status,
        reason or None,
    )
    return event_id


async def _dead_letter(conn: DbConnection, event_id: str, status: str, old: bool) -> int:
    value: int = await conn.fetchval(
        "INSERT INTO dead_letters (event_id, routing_key, queue, event, error_class, error, "
        f"status, updated_at) VALUES ($1, 'qbo.invoice.update', 'q', $2, 'X', 'x', $3, "
        f"{OLD if old else 'now()'}) RETURNING id",
        event_id,
        json.dumps({}),
        status,
    )
    return value


async def test_finding6_retention_deletes_aged_rows_and_keeps_what_is_still_needed(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        connection_id: UUID = await conn.fetchval(
            "INSERT INTO connections (released_company_id, status) VALUES ($1, 'active') "
            "RETURNING id",
            f"ret-{uuid.uuid4().hex[:8]}",
        )
        gone = [await _inbox(conn, f"old{n}", "published", True) for n in range(5)]
        gone.append(await _inbox(conn, "unknown", "ignored", True, "no_connection"))
        kept = [
            await _inbox(conn, "pending", "pending", True),
            await _inbox(conn, "recent", "published", False),
            await _inbox(conn, "deadletter", "published", True),
            await _inbox(conn, "parked", "published", True),
        ]
        await _dead_letter(conn, kept[2], "dead", True)
        await conn.execute(
            "INSERT INTO parked_events (connection_id, event_id, queue, routing_key, event, "
            "reason) VALUES ($1, $2, 'q', 'qbo.invoice.update', '{}', 'paused')",
            connection_id,
            kept[3],
        )
        purged = await _dead_letter(conn, "ret-dl-1", "purged", True)
        fresh_purged = await _dead_letter(conn, "ret-dl-2", "purged", False)
        for age in (OLD, "now()"):
            await conn.execute(
                "INSERT INTO sync_outcomes (connection_id, event_id, direction, entity, "
                f"source_id, outcome, created_at) VALUES ($1, 'e', 'd', 'invoice', 's', "
                f"'applied', {age})",
                connection_id,
            )
            await conn.execute(
                "INSERT INTO write_ledger (connection_id, side, entity, record_id, content_hash, "
                f"written_at) VALUES ($1, 'qbo', 'invoice', 'r', 'h', {age})",
                connection_id,
            )
            await conn.execute(
                "INSERT INTO created_twins (connection_id, side, entity, record_id, source_id, "
                f"created_at) VALUES ($1, 'qbo', 'invoice', $2, 's', {age})",
                connection_id,
                f"twin-{len(age)}",
            )
        await conn.execute(
            "INSERT INTO oauth_state_uses (fingerprint, expires_at) VALUES "
            "($1, now() - interval '1 hour'), ($2, now() + interval '1 hour')",
            f"expired-{connection_id}",
            f"live-{connection_id}",
        )

    counts = await prune(pool, POLICY)

    assert counts["inbox"] >= 5  # in batches of 2
    async with pool.acquire() as conn:
        left = {r["event_id"] for r in await conn.fetch("SELECT event_id FROM inbox")}
        assert not set(gone) & left
        assert set(kept) <= left
        dead = {r["id"] for r in await conn.fetch("SELECT id FROM dead_letters")}
        assert purged not in dead
        assert fresh_purged in dead
        for table in ("sync_outcomes", "write_ledger", "created_twins"):
            remaining = await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE connection_id = $1",
                connection_id,
            )
            assert remaining == 1, table
        states = {r["fingerprint"] for r in await conn.fetch("SELECT * FROM oauth_state_uses")}
        assert f"live-{connection_id}" in states
        assert f"expired-{connection_id}" not in states


async def test_a_zero_setting_keeps_a_table_forever(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        event_id = await _inbox(conn, "forever", "published", True)
    await prune(pool, RetentionPolicy(**{**POLICY.__dict__, "inbox_days": 0}))
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", event_id)


async def test_finding6_the_account_cache_is_bounded(pool: asyncpg.Pool) -> None:
    directory = ConnectionDirectory(pool, max_entries=10)
    for n in range(5):
        await directory.resolve("qbo", [f"unknown-{n}-{k}" for k in range(7)])
        assert len(directory) <= 10
    assert await directory.resolve("qbo", ["unknown-4-6"]) == {"unknown-4-6": None}
