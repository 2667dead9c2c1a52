"""The ledger of twins the engine created (table ``created_twins``, migration 0006).

``record`` commits on its own connection, not in the handler's transaction: it must outlive that
transaction's failure. It is a safety net, so a failure to record is logged, never raised (the
create already happened; failing the event for the ledger would only make a retry more likely).
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.infra.db import DbConnection
from shared.infra.logging import get_logger

log = get_logger(__name__)


class TwinLedger:
    """Writes on its own pool connection; reads through the connection it is given (the
    change's transaction), see ``TransactionTwins``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(
        self, connection_id: UUID, side: str, entity: str, record_id: str, source_id: str
    ) -> None:
        try:
            async with self._pool.acquire() as conn:
                await conn.execute(
                    "INSERT INTO created_twins (connection_id, side, entity, record_id, source_id) "
                    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    connection_id,
                    side,
                    entity,
                    record_id,
                    source_id,
                )
        except (OSError, asyncpg.PostgresError):
            log.warning(
                "twin_record_failed",
                connection_id=str(connection_id),
                side=side,
                entity=entity,
                record_id=record_id,
                exc_info=True,
            )

    async def record_many(
        self, connection_id: UUID, side: str, entity: str, made: list[tuple[str, str]]
    ) -> None:
        """``record`` for a batch's creates, (record id, source id) each, in one statement: the
        sooner they are all known, the sooner their notifications find them ours."""
        if not made:
            return
        try:
            async with self._pool.acquire() as conn:
                await conn.execute(
                    "INSERT INTO created_twins (connection_id, side, entity, record_id, source_id) "
                    "SELECT $1, $2, $3, r, s FROM unnest($4::text[], $5::text[]) AS m(r, s) "
                    "ON CONFLICT DO NOTHING",
                    connection_id,
                    side,
                    entity,
                    [m[0] for m in made],
                    [m[1] for m in made],
                )
        except (OSError, asyncpg.PostgresError):
            log.warning(
                "twin_record_failed",
                connection_id=str(connection_id),
                side=side,
                entity=entity,
                record_id=made[0][0],
                exc_info=True,
            )

    @staticmethod
    async def source_of(
        db: DbConnection, connection_id: UUID, side: str, entity: str, record_id: str
    ) -> str | None:
        """What the engine made ``record_id`` (on ``side``) from; None when it did not make it."""
        found = await db.fetchval(
            "SELECT source_id FROM created_twins WHERE connection_id = $1 AND side = $2 "
            "AND entity = $3 AND record_id = $4",
            connection_id,
            side,
            entity,
            record_id,
        )
        return str(found) if found is not None else None

    @staticmethod
    async def twin_of(
        db: DbConnection, connection_id: UUID, side: str, entity: str, source_id: str
    ) -> str | None:
        """The newest twin the engine created on ``side`` from ``source_id``, if any."""
        found = await db.fetchval(
            "SELECT record_id FROM created_twins WHERE connection_id = $1 AND side = $2 "
            "AND entity = $3 AND source_id = $4 ORDER BY created_at DESC LIMIT 1",
            connection_id,
            side,
            entity,
            source_id,
        )
        return str(found) if found is not None else None


class TransactionTwins:
    """The ledger as one change sees it: records through the ledger's own connection, reads in
    the change's transaction."""

    def __init__(self, db: DbConnection, ledger: TwinLedger) -> None:
        self._db = db
        self._ledger = ledger

    async def record(
        self, connection_id: UUID, side: str, entity: str, record_id: str, source_id: str
    ) -> None:
        await self._ledger.record(connection_id, side, entity, record_id, source_id)

    async def source_of(
        self, connection_id: UUID, side: str, entity: str, record_id: str
    ) -> str | None:
        return await TwinLedger.source_of(self._db, connection_id, side, entity, record_id)

    async def twin_of(
        self, connection_id: UUID, side: str, entity: str, source_id: str
    ) -> str | None:
        return await TwinLedger.twin_of(self._db, connection_id, side, entity, source_id)
