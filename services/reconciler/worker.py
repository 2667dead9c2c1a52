"""Wiring and the loop of the reconciler process."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg

from shared.adapters.broker import EventPublisher, connect_broker, declare_topology
from shared.adapters.clients import ClientFactory
from shared.adapters.postgres.connections import ConnectionRepository
from shared.adapters.postgres.cursors import CursorRepository
from shared.domain.connections import Connection
from shared.domain.errors import ConnectionRevoked, PermanentError, TransientError
from shared.infra.db import create_pool
from shared.infra.logging import bind_unit_of_work, get_logger
from shared.infra.settings import ReconcilerSettings
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


async def _locked_pass(
    pool: asyncpg.Pool,
    importer: InitialImport,
    reconciler: Reconciler,
    factory: ClientFactory,
    connection: Connection,
    sweep_at: str,
) -> None:
    """One connection, one replica at a time (session advisory lock on a held connection)."""
    async with pool.acquire() as lock_conn:
        key = f"reconcile:{connection.id}"
        if not await lock_conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):
            return
        try:
            cursors = CursorRepository(pool)
            if await cursors.get(connection.id, IMPORT_DONE) is None:
                # Onboarding: a new connection's existing records go through the engine first.
                await importer.run(
                    connection, factory.qbo(connection), factory.released(connection)
                )
                await cursors.set(connection.id, IMPORT_DONE, datetime.now(UTC).isoformat())
            now = datetime.now(UTC)
            sweep = sweep_due(now, sweep_at, await cursors.get(connection.id, SWEEP_CURSOR))
            await reconciler.reconcile(
                connection, factory.qbo(connection), factory.released(connection), sweep=sweep
            )
            if sweep:
                await cursors.set(connection.id, SWEEP_CURSOR, now.date().isoformat())
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock(hashtext($1))", key)


async def reconcile_all(
    pool: asyncpg.Pool,
    importer: InitialImport,
    reconciler: Reconciler,
    factory: ClientFactory,
    sweep_at: str,
) -> None:
    for connection in await ConnectionRepository(pool).active():
        bind_unit_of_work(connection_id=str(connection.id))
        try:
            await _locked_pass(pool, importer, reconciler, factory, connection, sweep_at)
        except ConnectionRevoked as exc:
            log.warning("reconcile_connection_paused", error=str(exc), remedy=exc.remedy)
            await ConnectionRepository(pool).set_status(connection.id, "paused", str(exc))
        except (TransientError, PermanentError) as exc:
            log.warning("reconcile_failed", error_class=type(exc).__name__, error=str(exc))


async def run(settings: ReconcilerSettings, stop: asyncio.Event) -> None:
    async with (
        create_pool(settings.database_url, max_size=settings.db_pool_max) as pool,
        connect_broker(settings.amqp_url) as connection,
        aiohttp.ClientSession() as session,
    ):
        setup = await connection.channel()
        await declare_topology(setup)
        await setup.close()
        publisher = await EventPublisher.open(connection)
        reconciler = Reconciler(
            pool, publisher, overlap=timedelta(seconds=settings.reconcile_overlap_s)
        )
        factory = ClientFactory(settings, pool, session)
        importer = InitialImport(pool, publisher)
        log.info("reconciler_started", interval_s=settings.reconcile_interval_s)
        while not stop.is_set():
            try:
                await reconcile_all(
                    pool, importer, reconciler, factory, settings.reconcile_sweep_at
                )
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("reconcile_round_failed", error=str(exc)[:200])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.reconcile_interval_s)
        await publisher.close()
    log.info("reconciler_stopped")
