"""The ledger of created twins outlives the transaction of the handler that made the twin."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from shared.adapters.postgres.links import LinkRepository
from shared.adapters.postgres.twins import TwinLedger
from shared.domain.connections import Connection
from shared.ingest import import_batch
from tests.integration.batch_fakes import BatchRoute


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


async def test_contacts_an_import_batch_made_are_known_ours_before_their_links_commit(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-Leased announces a batch's creates while the batch's transaction still saves their
    links; each notification must find its contact ours (and come back), not read it on the
    live lane's budget to find out."""
    connection_id = await new_connection(pool)
    connection = Connection(connection_id, "co", "realm", "active")
    released = BatchRoute("rl-c")
    seen_before_commit: list[int] = []
    save = LinkRepository.save

    async def save_watching(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not seen_before_commit:
            async with pool.acquire() as other:  # what a consumer sees meanwhile
                seen_before_commit.append(
                    await other.fetchval(
                        "SELECT count(*) FROM created_twins WHERE connection_id = $1 "
                        "AND side = 'released' AND entity = 'contact'",
                        connection_id,
                    )
                )
                assert not await other.fetchval(
                    "SELECT count(*) FROM links WHERE connection_id = $1", connection_id
                ), "links not committed yet"
        return await save(self, *args, **kwargs)

    monkeypatch.setattr(LinkRepository, "save", save_watching)
    contacts = import_batch.BatchedContacts(pool, released, connection)  # type: ignore[arg-type]
    customers = [{"Id": str(n), "DisplayName": f"Tenant {n}", "Active": True} for n in range(3)]
    left = await contacts.run("Customer", customers)
    assert left == []
    assert seen_before_commit == [3]
    async with pool.acquire() as conn:
        for n, made in enumerate(released.made):
            assert await TwinLedger.source_of(
                conn, connection_id, "released", "contact", made
            ) == str(n)
