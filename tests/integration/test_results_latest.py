"""``sync_results_latest`` (migration 0018): one row per record, kept in step with the history of
outcomes by triggers, whatever order outcomes arrive in and whatever deletes them (retention
included); and the two shapes of the results query answer the same rows."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from shared.infra.db import DbConnection
from shared.ops import results_sql
from shared.ops.results import ResultFilter, list_results
from shared.ops.retention import RetentionPolicy, prune
from tests.integration.results_helpers import seed_results

pytestmark = pytest.mark.integration

# What the listing used to derive from the whole history, per record.
FROM_HISTORY = """
SELECT DISTINCT ON (direction, entity, source_id) direction, entity, source_id, id AS outcome_id,
    outcome, reason, created_at,
    (SELECT b.label FROM sync_outcomes b WHERE b.connection_id = o.connection_id
        AND b.direction = o.direction AND b.entity = o.entity AND b.source_id = o.source_id
        AND b.label IS NOT NULL ORDER BY b.created_at DESC, b.id DESC LIMIT 1) AS label
FROM sync_outcomes o WHERE connection_id = $1
ORDER BY direction, entity, source_id, created_at DESC, id DESC
"""
HELD = """
SELECT direction, entity, source_id, outcome_id, outcome, reason, created_at, label
FROM sync_results_latest WHERE connection_id = $1 ORDER BY direction, entity, source_id
"""


async def _connection(conn: DbConnection) -> UUID:
    connection_id: UUID = await conn.fetchval(
        "INSERT INTO connections (released_company_id, status) VALUES ($1, 'active') RETURNING id",
        f"latest-{uuid.uuid4().hex[:8]}",
    )
    return connection_id


async def _outcome(
    conn: DbConnection,
    connection_id: UUID,
    source_id: str,
    age_min: float,
    outcome: str = "applied",
    label: str | None = None,
) -> int:
    outcome_id: int = await conn.fetchval(
        "INSERT INTO sync_outcomes (connection_id, event_id, direction, entity, source_id, "
        "outcome, reason, label, created_at) VALUES ($1, $2, 'released_to_qbo', 'invoice', $3, "
        "$4, $5, $6, now() - make_interval(mins => $7)) RETURNING id",
        connection_id,
        f"evt-{uuid.uuid4().hex}",
        source_id,
        outcome,
        f"{outcome} {age_min}",
        label,
        float(age_min),
    )
    return outcome_id


async def _agree(conn: DbConnection, connection_id: UUID) -> list[dict[str, Any]]:
    held = [dict(r) for r in await conn.fetch(HELD, connection_id)]
    derived = [dict(r) for r in await conn.fetch(FROM_HISTORY, connection_id)]
    assert held == derived
    return held


async def test_the_table_follows_the_history_in_any_order(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        cid = await _connection(conn)
        await _outcome(conn, cid, "a", 10, "error", label="INV-1")
        newest = await _outcome(conn, cid, "a", 5, "applied")
        await _outcome(conn, cid, "a", 20, "ignored", label="INV-OLD")  # older, arrives late
        await _outcome(conn, cid, "b", 3, "applied")
        await _outcome(conn, cid, "b", 30, "echo", label="Harbour Cafe")  # fills the gap only
        held = await _agree(conn, cid)
        assert [(r["source_id"], r["outcome"], r["label"]) for r in held] == [
            ("a", "applied", "INV-1"),
            ("b", "applied", "Harbour Cafe"),
        ]
        assert held[0]["outcome_id"] == newest
        # Several records in one statement, as a batch writer would insert them.
        await conn.execute(
            "INSERT INTO sync_outcomes (connection_id, event_id, direction, entity, source_id, "
            "outcome, created_at) SELECT $1, 'evt-batch-' || g, 'released_to_qbo', 'invoice', "
            "'c' || (g % 3), 'applied', now() - make_interval(secs => g) "
            "FROM generate_series(1, 9) g",
            cid,
        )
        assert len(await _agree(conn, cid)) == 5


async def test_deleting_the_latest_outcome_falls_back_to_the_one_before(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        cid = await _connection(conn)
        await _outcome(conn, cid, "a", 10, "error", label="INV-1")
        newest = await _outcome(conn, cid, "a", 5, "applied")
        only = await _outcome(conn, cid, "b", 5, "applied")
        await conn.execute("DELETE FROM sync_outcomes WHERE id = ANY($1::bigint[])", [newest, only])
        held = await _agree(conn, cid)
        assert [(r["source_id"], r["outcome"]) for r in held] == [("a", "error")]


async def test_retention_drops_a_record_whose_every_outcome_aged_out(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        cid = await _connection(conn)
        await _outcome(conn, cid, "old", 3 * 24 * 60, "error", label="INV-OLD")
        await _outcome(conn, cid, "old", 2 * 24 * 60, "applied")
        await _outcome(conn, cid, "mixed", 2 * 24 * 60, "error")
        await _outcome(conn, cid, "mixed", 10, "applied", label="INV-NEW")
    policy = RetentionPolicy(
        inbox_days=0,
        inbox_unknown_accounts_days=0,
        sync_outcomes_days=1,
        write_ledger_days=0,
        created_twins_days=0,
        dead_letters_days=0,
        batch_rows=1,  # one outcome per statement: every batch goes through the trigger
        pause_s=0,
    )
    await prune(pool, policy)
    async with pool.acquire() as conn:
        held = await _agree(conn, cid)
        assert [(r["source_id"], r["outcome"]) for r in held] == [("mixed", "applied")]
        total, items = await list_results(conn, cid, ResultFilter())
    assert (total, [i["source_id"] for i in items]) == (1, ["mixed"])


@pytest.mark.parametrize(
    "where",
    [
        ResultFilter(),
        ResultFilter(outcome="error"),
        ResultFilter(direction="qbo_to_released"),
        ResultFilter(entity="invoice"),
    ],
)
async def test_the_page_shape_answers_what_the_search_shape_does(
    pool: asyncpg.Pool, where: ResultFilter
) -> None:
    seeded = await seed_results(pool)
    args = (
        seeded.connection_id,
        where.entity,
        where.outcome,
        None,
        None,
        None,
        None,
        where.direction,
        None,
        50,
        0,
    )
    async with pool.acquire() as conn:
        page = [dict(r) for r in await conn.fetch(results_sql.PAGE, *args)]
        search = [dict(r) for r in await conn.fetch(results_sql.SEARCH, *args)]
        total, _ = await list_results(conn, seeded.connection_id, where)
    for row in search:
        row.pop("total")
    assert page == search
    assert total == len(search) > 0


def _matches(row: dict[str, Any], text: str | None, error_class: str | None) -> bool:
    if error_class is not None and row["error_class"] != error_class:
        return False
    if text is None:
        return True
    columns = ("source_id", "target_id", "qbo_id", "released_id", "label")
    return any(text.casefold() in str(row[c] or "").casefold() for c in columns)


@pytest.mark.parametrize(
    ("text", "error_class"),
    [
        ("inv-1042", None),
        ("harbour", None),
        ("rl-c-7", None),
        ("101", None),
        ("7", None),
        ("INV", None),
        ("5", None),
        (None, "ValidationRefused"),
        ("1042", "ValidationRefused"),
        ("harbour", "ValidationRefused"),
    ],
)
async def test_a_search_finds_exactly_the_rows_whose_joined_columns_match(
    pool: asyncpg.Pool, text: str | None, error_class: str | None
) -> None:
    """The search looks up candidates first; every listed row filtered in full is the oracle."""
    seeded = await seed_results(pool)
    async with pool.acquire() as conn:
        _, everything = await list_results(conn, seeded.connection_id, ResultFilter(), limit=200)
        total, found = await list_results(
            conn, seeded.connection_id, ResultFilter(text=text, error_class=error_class)
        )
    expected = [r for r in everything if _matches(r, text, error_class)]
    assert found == expected
    assert total == len(expected)
