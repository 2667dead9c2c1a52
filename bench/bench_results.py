"""Sync results read model: one page of a connection's results, beside a bare page of outcomes.

Seeds a throw-away database with BENCH_OUTCOMES outcome rows (default 200,000) for one connection
over BENCH_RECORDS records (default 50,000; a quarter linked, one in fifty failed with a dead
letter), then times, REPEAT times each, p50 and p95:
- baseline: the newest 50 rows of ``sync_outcomes`` for the connection (no grouping, no joins);
- results: ``shared.ops.results.list_results`` first page (latest per record, link, dead letter);
- results by number: the same with a text search that matches one record;
- results, errors only: outcome filter.
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

from shared.infra.db import create_pool
from shared.infra.migrations import migrate
from shared.ops.results import ResultFilter, list_results

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


async def main() -> None:
    name = f"bench_results_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = urlunsplit(urlsplit(PG_ADMIN)._replace(path=f"/{name}"))
    try:
        await migrate(dsn)
        async with create_pool(dsn, max_size=2) as pool:
            cid = await seed(pool)
            print(f"{OUTCOMES} outcomes over {RECORDS} records, one connection")
            async with pool.acquire() as conn:

                async def baseline() -> object:
                    return await conn.fetch(
                        "SELECT * FROM sync_outcomes WHERE connection_id = $1 "
                        "ORDER BY created_at DESC LIMIT 50",
                        cid,
                    )

                await timed("baseline: newest 50 outcomes", baseline)
                await timed("results: first page", lambda: list_results(conn, cid, ResultFilter()))
                await timed(
                    "results: by number",
                    lambda: list_results(conn, cid, ResultFilter(text="INV-4242")),
                )
                await timed(
                    "results: errors only",
                    lambda: list_results(conn, cid, ResultFilter(outcome="error")),
                )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
