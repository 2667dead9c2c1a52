"""The ledger of created twins outlives the transaction of the handler that made the twin."""

from __future__ import annotations

import uuid

import asyncpg

from shared.adapters.postgres.twins import TwinLedger


async def new_connection(pool: asyncpg.Pool) -> uuid.UUID:
    async with pool.acquire() as conn:
        connection_id: uuid.UUID = await conn.fetchval(
            "INSERT INTO connections (released_company_id) VALUES ($1) RETURNING id",
            f"co-{uuid.uuid4().hex[:8]}",
        )
    return connection_id


async def test_a_twin_recorded_inside_a_failed_transaction_is_still_known(
    pool: asyncpg.Pool,
) -> None:
    connection_id = await new_connection(pool)
    ledger = TwinLedger(pool)

    async with pool.acquire() as conn:
        handler = conn.transaction()
        await handler.start()
        await conn.execute(
            "INSERT INTO links (connection_id, entity, qbo_type, qbo_id, released_id) "
            "VALUES ($1, 'invoice', 'Invoice', '42', 'rl-7')",
            connection_id,
        )
        await ledger.record(connection_id, "qbo", "invoice", "42", "rl-7")
        await handler.rollback()  # the handler's transaction fails after the write
        linked = await conn.fetchval(
            "SELECT count(*) FROM links WHERE connection_id = $1", connection_id
        )
        source = await TwinLedger.source_of(conn, connection_id, "qbo", "invoice", "42")
        unknown = await TwinLedger.source_of(conn, connection_id, "released", "invoice", "42")
    assert linked == 0, "the link went with the transaction"
    assert source == "rl-7"
    assert unknown is None, "the side is part of the key"


async def test_recording_twice_keeps_the_first_and_never_raises(pool: asyncpg.Pool) -> None:
    connection_id = await new_connection(pool)
    ledger = TwinLedger(pool)
    await ledger.record(connection_id, "released", "payment", "p-1", "9")
    await ledger.record(connection_id, "released", "payment", "p-1", "10")  # a retry
    missing = uuid.uuid4()  # no such connection: the insert fails, the ledger only logs it
    await ledger.record(missing, "released", "payment", "p-2", "11")
    async with pool.acquire() as conn:
        assert await TwinLedger.source_of(conn, connection_id, "released", "payment", "p-1") == "9"
        assert await TwinLedger.source_of(conn, missing, "released", "payment", "p-2") is None
