"""Sync results read model: one page of a connection's results, beside a bare page of outcomes.

Seeds a throw-away database with BENCH_OUTCOMES outcome rows (default 200,000) for one connection
over BENCH_RECORDS records (default 50,000; a quarter linked, one in fifty failed with a dead
letter), then times, REPEAT times each, p50 and p95:
- baseline: the newest 50 rows of ``sync_outcomes`` for the connection (no grouping, no joins);
- before: the same first page derived from the whole history (the query used until migration
  0018: latest outcome and latest label per record by DISTINCT ON over ``sync_outcomes``);
- results: ``shared.ops.results.list_results`` first page (latest per record from
  ``sync_results_latest``, link, dead letter);
- results by number: the same with a text search that matches one record;
- results, errors only: outcome filter;
- write: one outcome insert with the triggers that keep ``sync_results_latest``, and without.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shared.infra.db import DbConnection, create_pool
from shared.infra.migrations import migrate
from shared.ops.results import ResultFilter, list_results

# The results page as it was read before migration 0018, kept here as the "before" figure.
FROM_HISTORY = """
WITH latest AS (
    SELECT DISTINCT ON (o.direction, o.entity, o.source_id)
        o.id, o.event_id, o.direction, o.entity, o.source_id, o.target_id, o.outcome,
        o.reason, o.remedy, o.created_at
    FROM sync_outcomes o
    WHERE o.connection_id = $1
      AND ($8::text IS NULL OR o.direction = $8) AND ($2::text IS NULL OR o.entity = $2)
      AND ($9::text IS NULL OR o.source_id = $9)
    ORDER BY o.direction, o.entity, o.source_id, o.created_at DESC, o.id DESC
), picked AS (
    SELECT * FROM latest
    WHERE ($3::text IS NULL OR outcome = $3)
      AND ($6::timestamptz IS NULL OR created_at >= $6)
      AND ($7::timestamptz IS NULL OR created_at < $7)
), labels AS (
    SELECT DISTINCT ON (o.direction, o.entity, o.source_id)
        o.direction, o.entity, o.source_id, o.label
    FROM sync_outcomes o
    WHERE o.connection_id = $1 AND o.label IS NOT NULL
      AND ($9::text IS NULL OR o.source_id = $9)
    ORDER BY o.direction, o.entity, o.source_id, o.created_at DESC
), by_qbo AS (
    SELECT DISTINCT ON (lower(qbo_type), qbo_id) * FROM links
    WHERE connection_id = $1 AND qbo_id IS NOT NULL ORDER BY lower(qbo_type), qbo_id, id
), by_released AS (
    SELECT DISTINCT ON (released_id) * FROM links
    WHERE connection_id = $1 AND released_id IS NOT NULL ORDER BY released_id, id
), letters AS (
    SELECT DISTINCT ON (event->>'entity', event->>'entity_id')
        event->>'entity' AS entity, event->>'entity_id' AS entity_id, id, error_class, remedy
    FROM dead_letters WHERE connection_id = $1 AND status = 'dead'
    ORDER BY event->>'entity', event->>'entity_id', id DESC
), parked AS (
    SELECT DISTINCT event->>'entity_id' AS entity_id FROM parked_events WHERE connection_id = $1
), joined AS (
    SELECT p.*, coalesce(q.id, r.id) AS link_id, coalesce(q.qbo_type, r.qbo_type) AS qbo_type,
        coalesce(q.qbo_id, r.qbo_id) AS qbo_id,
        coalesce(q.released_id, r.released_id) AS released_id,
        coalesce(q.status, r.status) AS link_status,
        coalesce(q.last_synced_at, r.last_synced_at) AS last_synced_at,
        coalesce(q.snapshot->>'number', r.snapshot->>'number', q.snapshot->>'name',
                 r.snapshot->>'name', lb.label) AS label,
        d.id AS dead_letter_id, d.error_class, d.remedy AS dead_letter_remedy,
        (pk.entity_id IS NOT NULL) AS parked
    FROM picked p
    LEFT JOIN by_qbo q ON p.direction = 'qbo_to_released'
        AND q.qbo_id = p.source_id AND lower(q.qbo_type) = p.entity
    LEFT JOIN by_released r ON p.direction = 'released_to_qbo' AND r.released_id = p.source_id
    LEFT JOIN labels lb ON lb.direction = p.direction AND lb.entity = p.entity
        AND lb.source_id = p.source_id
    LEFT JOIN letters d ON d.entity = p.entity AND d.entity_id = p.source_id
    LEFT JOIN parked pk ON pk.entity_id = p.source_id
)
SELECT *, count(*) OVER () AS total FROM joined
WHERE ($4::text IS NULL OR error_class = $4)
  AND ($5::text IS NULL OR source_id ILIKE $5 OR target_id ILIKE $5 OR qbo_id ILIKE $5
       OR released_id ILIKE $5 OR label ILIKE $5)
ORDER BY created_at DESC, id DESC
LIMIT $10 OFFSET $11
"""


async def from_history(conn: DbConnection, cid: uuid.UUID, text: str | None = None) -> object:
    pattern = f"%{text}%" if text else None
    async with conn.transaction():
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        args = (None, None, None, pattern, None, None, None, None, 50, 0)
        return await conn.fetch(FROM_HISTORY, cid, *args)


PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
OUTCOMES = int(os.environ.get("BENCH_OUTCOMES", "200000"))
RECORDS = int(os.environ.get("BENCH_RECORDS", "50000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "20"))


async def seed(pool: asyncpg.Pool) -> uuid.UUID:
    async with pool.acquire() as conn:
        cid: uuid.UUID = await conn.fetchval(
            "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
            "VALUES ('bench-co', 'bench-realm', 'active') RETURNING id"
        )
        await conn.execute(
            "INSERT INTO sync_outcomes (connection_id, event_id, direction, entity, source_id, "
            "outcome, reason, label, created_at) "
            "SELECT $1, 'evt-' || g, 'qbo_to_released', 'invoice', (g % $3)::text, "
            "CASE WHEN g % 50 = 0 THEN 'error' ELSE 'applied' END, 'r', 'INV-' || (g % $3), "
            "now() - make_interval(secs => $2 - g) FROM generate_series(1, $2) g",
            cid,
            OUTCOMES,
            RECORDS,
        )
        await conn.execute(
            "INSERT INTO links (connection_id, entity, qbo_type, qbo_id, released_id, snapshot) "
            "SELECT $1, 'invoice', 'Invoice', g::text, 'rl-' || g, "
            "jsonb_build_object('number', 'INV-' || g) FROM generate_series(0, $2 / 4) g",
            cid,
            RECORDS,
        )
        await conn.execute(
            "INSERT INTO dead_letters (event_id, routing_key, queue, event, error_class, error, "
            "attempts, connection_id) SELECT 'evt-' || g, 'qbo.invoice.update', 'q', "
            "jsonb_build_object('entity', 'invoice', 'entity_id', (g % $3)::text), "
            "'PermanentError', 'e', 1, $1 FROM generate_series(50, $2, 50) g",
            cid,
            OUTCOMES,
            RECORDS,
        )
        await conn.execute("ANALYZE")
    return cid


async def timed(name: str, run: Callable[[], Awaitable[object]]) -> None:
    await run()  # warm
    samples = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        await run()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    print(f"{name:<34} p50 {statistics.median(samples):8.1f} ms   p95 {p95:8.1f} ms")


async def write_cost(conn: DbConnection, cid: uuid.UUID) -> None:
    """What the triggers add to the engine's one outcome insert per event (its own transaction,
    as the consumer commits it), against the same inserts with the triggers switched off."""
    counter = iter(range(10**9))

    async def insert() -> object:
        n = next(counter)
        return await conn.execute(
            "INSERT INTO sync_outcomes (connection_id, event_id, direction, entity, source_id, "
            "outcome, label) VALUES ($1, $2, 'qbo_to_released', 'invoice', $3, 'applied', $4)",
            cid,
            f"evt-w{n}",
            str(n % RECORDS),
            f"INV-{n % RECORDS}",
        )

    await timed("write: one outcome, triggers on", insert)
    await conn.execute("ALTER TABLE sync_outcomes DISABLE TRIGGER USER")
    try:
        await timed("write: one outcome, triggers off", insert)
    finally:
        await conn.execute("ALTER TABLE sync_outcomes ENABLE TRIGGER USER")


async def main() -> None:
    name = f"bench_results_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = urlunsplit(urlsplit(PG_ADMIN)._replace(path=f"/{name}"))
    try:
        await migrate(dsn)
        async with create_pool(dsn, max_size=2) as pool:
            t0 = time.perf_counter()
            cid = await seed(pool)
            print(f"seeded in {time.perf_counter() - t0:.1f} s (triggers fill sync_results_latest)")
            print(f"{OUTCOMES} outcomes over {RECORDS} records, one connection")
            async with pool.acquire() as conn:

                async def baseline() -> object:
                    return await conn.fetch(
                        "SELECT * FROM sync_outcomes WHERE connection_id = $1 "
                        "ORDER BY created_at DESC LIMIT 50",
                        cid,
                    )

                await timed("baseline: newest 50 outcomes", baseline)
                await timed("before: first page from history", lambda: from_history(conn, cid))
                await timed(
                    "before: by number from history",
                    lambda: from_history(conn, cid, "INV-4242"),
                )
                await timed("results: first page", lambda: list_results(conn, cid, ResultFilter()))
                await timed(
                    "results: by number",
                    lambda: list_results(conn, cid, ResultFilter(text="INV-4242")),
                )
                await timed(
                    "results: errors only",
                    lambda: list_results(conn, cid, ResultFilter(outcome="error")),
                )
                await write_cost(conn, cid)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
