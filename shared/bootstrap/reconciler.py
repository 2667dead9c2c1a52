"""Composition root of the reconciler: builds its pool, broker publisher, HTTP session and API
clients, hands them to the rounds (``shared.ingest.schedule``) and runs one round per interval
until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import aiohttp
import asyncpg

from shared.adapters.broker import EventPublisher, connect_broker, declare_topology
from shared.adapters.clients import ClientFactory
from shared.bootstrap.serve import run_worker
from shared.infra.db import create_pool
from shared.infra.logging import get_logger
from shared.infra.settings import ReconcilerSettings
from shared.ingest.importer import InitialImport
from shared.ingest.reconciler import Reconciler
from shared.ingest.schedule import ReconcileRounds

log = get_logger("reconciler")


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
        factory = ClientFactory(settings, pool, session)
        rounds = ReconcileRounds(
            pool,
            InitialImport(pool, publisher, qbo_batch_budget=factory.qbo_batch_budget),
            Reconciler(pool, publisher, overlap=timedelta(seconds=settings.reconcile_overlap_s)),
            factory,
            settings.reconcile_sweep_at,
        )
        log.info("reconciler_started", interval_s=settings.reconcile_interval_s)
        while not stop.is_set():
            try:
                await rounds.run_round()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("reconcile_round_failed", error=str(exc)[:200])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.reconcile_interval_s)
        await publisher.close()
    log.info("reconciler_stopped")


def main() -> int:
    """``python -m services.reconciler``."""
    return run_worker("reconciler", ReconcilerSettings, run)
