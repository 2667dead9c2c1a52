"""Composition root of the reconciler: builds its pool, broker publisher, HTTP session and API
clients, hands them to the rounds (``shared.ingest.schedule``) and runs one round per interval
until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import asyncpg

from shared.adapters.broker import EventPublisher, connect_broker, declare_topology
from shared.adapters.clients import ClientFactory
from shared.adapters.http.session import outgoing_session
from shared.bootstrap.health import OpsServer, broker_check, database_check, ops_port
from shared.bootstrap.serve import run_worker
from shared.infra.db import create_pool
from shared.infra.logging import get_logger
from shared.infra.settings import ReconcilerSettings
from shared.ingest.importer import InitialImport
from shared.ingest.reconciler import Reconciler
from shared.ingest.schedule import ReconcileRounds
from shared.ops.retention import RetentionPolicy, run_retention

log = get_logger("reconciler")


async def run(
    settings: ReconcilerSettings, stop: asyncio.Event, ops: OpsServer | None = None
) -> None:
    async with (
        create_pool(settings.database_url, max_size=settings.db_pool_max) as pool,
        connect_broker(settings.amqp_url) as connection,
        outgoing_session() as session,
    ):
        setup = await connection.channel()
        await declare_topology(setup)
        await setup.close()
        publisher = await EventPublisher.open(connection)
        if ops is not None:
            ops.checks = [database_check(pool), broker_check(connection)]
        # Imports and sweeps are bulk work: they leave live traffic its reserved share of each
        # budget (tokens, places in the window, slots) and take what it leaves.
        factory = ClientFactory(settings, pool, session, bulk=True)
        rounds = ReconcileRounds(
            pool,
            InitialImport(pool, publisher, qbo_batch_budget=factory.qbo_batch_budget),
            Reconciler(pool, publisher, overlap=timedelta(seconds=settings.reconcile_overlap_s)),
            factory,
            settings.reconcile_sweep_at,
        )
        log.info("reconciler_started", interval_s=settings.reconcile_interval_s)
        retention = asyncio.create_task(
            run_retention(pool, retention_policy(settings), settings.retention_interval_s, stop)
        )
        while not stop.is_set():
            try:
                await rounds.run_round()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("reconcile_round_failed", error=str(exc)[:200])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.reconcile_interval_s)
        await retention
        await publisher.close()
    log.info("reconciler_stopped")


def retention_policy(settings: ReconcilerSettings) -> RetentionPolicy:
    return RetentionPolicy(
        inbox_days=settings.retention_inbox_days,
        inbox_unknown_accounts_days=settings.retention_inbox_unknown_accounts_days,
        sync_outcomes_days=settings.retention_sync_outcomes_days,
        write_ledger_days=settings.retention_write_ledger_days,
        created_twins_days=settings.retention_created_twins_days,
        dead_letters_days=settings.retention_dead_letters_days,
        batch_rows=settings.retention_batch_rows,
    )


def main() -> int:
    """``python -m services.reconciler``."""

    async def work(settings: ReconcilerSettings, stop: asyncio.Event) -> None:
        async with OpsServer(settings.ops_host, ops_port(settings, "reconciler")) as ops:
            await run(settings, stop, ops)

    return run_worker("reconciler", ReconcilerSettings, work)
