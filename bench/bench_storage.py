"""Storage per million events, and what one retention pass costs.

In a throw-away database: stores BENCH_EVENTS realistic webhook events in the inbox (the
receivers' own repository, published), one ``sync_outcomes`` row per event, then reads the
tables' total size (heap + indexes + TOAST) and scales it to a million events. Then it ages
every row past the retention setting and times one ``prune`` pass (the baseline beside it: a
single unbatched DELETE of the same rows in a copy of the table).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime

import asyncpg

from shared.adapters.postgres.inbox import PENDING, InboxEntry, InboxRepository
from shared.domain.events import ChangeEvent
from shared.infra.migrations import migrate
from shared.ops.retention import RetentionPolicy, prune

BASE = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
EVENTS = int(os.environ.get("BENCH_EVENTS", "100000"))


def _dsn(database: str) -> str:
    return BASE.rsplit("/", 1)[0] + "/" + database


def _event(n: int, connection_id: uuid.UUID) -> ChangeEvent:
    now = datetime.now(UTC)
    return ChangeEvent.checked(
        event_id=f"ce-{uuid.uuid4()}",
        source="qbo",
        connection_id=connection_id,
        account_id="9341453050349587",
        entity="invoice",
        entity_id=str(1000 + n % 5000),
        operation="update",
        occurred_at=now,
        received_at=now,
        version="2026-11-26T11:59:00.000Z",
    )


async def _fill(pool: asyncpg.Pool, connection_id: uuid.UUID) -> None:
    for start in range(0, EVENTS, 2000):
        events = [_event(n, connection_id) for n in range(start, min(start + 2000, EVENTS))]
        async with pool.acquire() as conn:
            await InboxRepository(conn).store([InboxEntry(e, PENDING) for e in events])
            await InboxRepository(conn).mark_published([e.event_id for e in events])
            await conn.executemany(
                "INSERT INTO sync_outcomes (connection_id, event_id, direction, entity, "
                "source_id, target_id, outcome, reason) VALUES ($1, $2, 'qbo_to_released', "
                "'invoice', $3, $4, 'applied', 'updated amount and due date')",
                [(connection_id, e.event_id, e.entity_id, f"inv-{e.entity_id}") for e in events],
            )


async def main() -> None:
    name = f"bench_storage_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(BASE)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        await migrate(_dsn(name))
        pool = await asyncpg.create_pool(_dsn(name), min_size=1, max_size=4)
        async with pool.acquire() as conn:
            connection_id = await conn.fetchval(
                "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
                "VALUES ('co-bench', '9341453050349587', 'active') RETURNING id"
            )
        await _fill(pool, connection_id)
        async with pool.acquire() as conn:
            await conn.execute("VACUUM ANALYZE inbox")
            await conn.execute("VACUUM ANALYZE sync_outcomes")
            print(f"events stored: {EVENTS}")
            for table in ("inbox", "sync_outcomes"):
                size = await conn.fetchval("SELECT pg_total_relation_size($1)", table)
                per_million = size / EVENTS * 1_000_000 / 1e9
                print(f"{table:<14} {size / 1e6:8.1f} MB  -> {per_million:5.2f} GB per million")
                await conn.execute(f"VACUUM FULL {table}")
                size = await conn.fetchval("SELECT pg_total_relation_size($1)", table)
                per_million = size / EVENTS * 1_000_000 / 1e9
                print(
                    f"{table:<14} {size / 1e6:8.1f} MB  -> {per_million:5.2f} GB per million"
                    " (compacted: VACUUM FULL)"
                )
            await conn.execute("UPDATE inbox SET received_at = now() - interval '30 days'")
            await conn.execute("UPDATE sync_outcomes SET created_at = now() - interval '60 days'")
            await conn.execute("CREATE TABLE inbox_copy AS SELECT * FROM inbox")
            started = time.perf_counter()
            await conn.execute(
                "DELETE FROM inbox_copy WHERE status <> 'pending' "
                "AND received_at < now() - interval '14 days'"
            )
            took = time.perf_counter() - started
            print(f"baseline: one unbatched DELETE of the inbox rows  {took:6.2f} s")
        started = time.perf_counter()
        counts = await prune(pool, RetentionPolicy())
        took = time.perf_counter() - started
        print(f"retention pass (batches of 5000): {took:6.2f} s  deleted {counts}")
        await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
