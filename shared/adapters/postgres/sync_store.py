"""The engine's store for one change, on the message's PostgreSQL transaction.

Links, conflicts and the outcome row are written on the transaction's connection, so they commit
or roll back with the change; locks are transaction-scoped advisory locks, held by every replica's
transactions alike; created twins are recorded on a connection of their own (they must outlive a
rollback).
"""

from __future__ import annotations

import asyncpg

from shared.adapters.postgres.links import ConflictRepository, LinkRepository, OutcomeRepository
from shared.adapters.postgres.twins import TransactionTwins, TwinLedger
from shared.domain.outcomes import OutcomeRecord
from shared.infra.db import DbConnection


class AdvisoryLocks:
    """``pg_advisory_xact_lock`` on a 64-bit hash of the key: released at commit or rollback."""

    def __init__(self, db: DbConnection) -> None:
        self._db = db

    async def lock(self, key: str) -> None:
        await self._db.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)

    async def try_lock(self, key: str) -> bool:
        got = await self._db.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", key
        )
        return bool(got)

    async def try_lock_shared(self, key: str) -> bool:
        """The shared form of ``try_lock``: any number of holders, False only while a
        transaction holds ``key`` exclusively (``lock``)."""
        got = await self._db.fetchval(
            "SELECT pg_try_advisory_xact_lock_shared(hashtextextended($1, 0))", key
        )
        return bool(got)


class PgSyncStore:
    def __init__(self, db: DbConnection, ledger: TwinLedger) -> None:
        self.links = LinkRepository(db)
        self.conflicts = ConflictRepository(db)
        self.outcomes = OutcomeRepository(db)
        self.locks = AdvisoryLocks(db)
        self.twins = TransactionTwins(db, ledger)


class PooledOutcomes:
    """Outcome rows written on a connection of their own, committed at once: for errors, whose
    change's transaction rolls back."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, item: OutcomeRecord) -> None:
        async with self._pool.acquire() as conn:
            await OutcomeRepository(conn).record(item)
