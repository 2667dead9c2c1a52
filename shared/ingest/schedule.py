"""The reconciler's rounds: every active connection in turn, one replica at a time per connection.

A round imports a connection once (its first round: its existing records go through the engine),
then runs the backstop pass (``Reconciler``), with the daily sweep when it is due. A connection
whose grant is dead is paused; any other failure of one connection is logged and the round goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from shared.adapters.clients import ClientFactory
from shared.adapters.postgres.connections import ConnectionRepository
from shared.adapters.postgres.cursors import CursorRepository
from shared.domain.connections import Connection
from shared.domain.errors import ConnectionRevoked, PermanentError, TransientError
from shared.infra.logging import bind_unit_of_work, get_logger
from shared.ingest.importer import InitialImport
from shared.ingest.reconciler import Reconciler

log = get_logger("reconciler")
SWEEP_CURSOR = "daily_sweep"
IMPORT_DONE = "import:done"


def sweep_due(now: datetime, sweep_at: str, last_sweep: str | None) -> bool:
    """True once a day, at or after ``sweep_at`` (UTC), if today's sweep has not run."""
    hour, minute = (int(x) for x in sweep_at.split(":"))
    today_at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return now >= today_at and last_sweep != now.date().isoformat()


@dataclass
class ReconcileRounds:
    pool: asyncpg.Pool
    importer: InitialImport
    reconciler: Reconciler
    clients: ClientFactory
    sweep_at: str

    async def run_round(self) -> None:
        connections = ConnectionRepository(self.pool)
        for connection in await connections.active():
            bind_unit_of_work(connection_id=str(connection.id))
            try:
                await self._locked_pass(connection)
            except ConnectionRevoked as exc:
                log.warning("reconcile_connection_paused", error=str(exc), remedy=exc.remedy)
                await connections.set_status(connection.id, "paused", str(exc))
            except (TransientError, PermanentError) as exc:
                log.warning("reconcile_failed", error_class=type(exc).__name__, error=str(exc))

    async def _locked_pass(self, connection: Connection) -> None:
        """One connection, one replica at a time (session advisory lock on a held connection)."""
        async with self.pool.acquire() as lock_conn:
            key = f"reconcile:{connection.id}"
            if not await lock_conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):
                return
            try:
                await self._pass(connection)
            finally:
                await lock_conn.execute("SELECT pg_advisory_unlock(hashtext($1))", key)

    async def _pass(self, connection: Connection) -> None:
        cursors = CursorRepository(self.pool)
        qbo, released = self.clients.qbo(connection), self.clients.released(connection)
        if await cursors.get(connection.id, IMPORT_DONE) is None:
            # Onboarding: a new connection's existing records go through the engine first.
            await self.importer.run(connection, qbo, released)
            await cursors.set(connection.id, IMPORT_DONE, datetime.now(UTC).isoformat())
        now = datetime.now(UTC)
        sweep = sweep_due(now, self.sweep_at, await cursors.get(connection.id, SWEEP_CURSOR))
        await self.reconciler.reconcile(connection, qbo, released, sweep=sweep)
        if sweep:
            await cursors.set(connection.id, SWEEP_CURSOR, now.date().isoformat())
