"""The sync engine: one change event in, the other side brought in line, the outcome recorded.

Run with a direction (QBO -> Re-Leased or Re-Leased -> QBO); the consumer calls ``handle`` inside
the message's database transaction, so links, ledger, conflicts and the outcome row commit
together and the message is acked only after that (guarantee 3). Per-record advisory locks taken
here are transaction-scoped: two events for one record never apply at once, on any replica
(guarantee 4).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Literal

import asyncpg

from shared.adapters.clients import ClientFactory
from shared.adapters.postgres.connections import ConnectionDirectory, ConnectionRepository
from shared.adapters.postgres.links import OutcomeRecord, OutcomeRepository
from shared.adapters.postgres.twins import TwinLedger
from shared.domain.connections import Connection
from shared.domain.entities import QBO_IGNORED_TYPES
from shared.domain.errors import ConnectionRevoked, PermanentError, StaleVersion
from shared.domain.events import ChangeEvent
from shared.domain.ownership import OwnershipPolicy
from shared.infra.db import DbConnection
from shared.infra.logging import get_logger
from shared.sync import attachments, contacts, credits, documents, masterdata, payments
from shared.sync.context import ConnectionSettings, Result, SyncContext

Direction = Literal["qbo_to_released", "released_to_qbo"]
Handler = Callable[[SyncContext], Awaitable[Result]]

log = get_logger("sync")
MAX_STALE_ROUNDS = 3

_IGNORED_QBO = {t.lower() for t in QBO_IGNORED_TYPES}

ROUTES: dict[tuple[str, str], Handler] = {
    ("qbo", "customer"): contacts.from_qbo,
    ("qbo", "vendor"): contacts.from_qbo,
    ("qbo", "account"): masterdata.from_qbo,
    ("qbo", "item"): masterdata.from_qbo,
    ("qbo", "taxrate"): masterdata.from_qbo,
    ("qbo", "class"): masterdata.from_qbo,
    ("qbo", "invoice"): documents.from_qbo,
    ("qbo", "bill"): documents.from_qbo,
    ("qbo", "creditmemo"): documents.from_qbo,
    ("qbo", "vendorcredit"): documents.from_qbo,
    ("qbo", "payment"): payments.from_qbo,
    ("qbo", "billpayment"): payments.from_qbo,
    ("qbo", "attachable"): attachments.from_qbo,
    ("released", "contact"): contacts.from_released,
    ("released", "invoice"): documents.from_released,
    ("released", "creditnote"): credits.credit_note_from_released,
    ("released", "payment"): payments.from_released,
    ("released", "attachment"): attachments.from_released,
    ("released", "account"): masterdata.from_released,
    ("released", "taxrate"): masterdata.from_released,
    ("released", "tracking"): masterdata.from_released,
}


def _ignore_reason(event: ChangeEvent) -> str:
    if event.source == "qbo" and event.entity in _IGNORED_QBO:
        return "not_synced_type"
    if event.source == "qbo" and event.entity == "taxcode":
        return "tax codes group rates; rates sync through TaxRate"
    return f"no sync for {event.source} {event.entity} yet"


class SyncEngine:
    def __init__(
        self,
        pool: asyncpg.Pool,
        factory: ClientFactory,
        direction: Direction,
        policy: OwnershipPolicy | None = None,
    ) -> None:
        self._pool = pool
        self._factory = factory
        self.direction = direction
        self._policy = policy or OwnershipPolicy()
        self._directory = ConnectionDirectory(pool)
        self._twins = TwinLedger(pool)

    async def handle(self, event: ChangeEvent, db: DbConnection) -> Result:
        started = time.perf_counter()
        connection = await self._connection(event)
        handler = ROUTES.get((event.source, event.entity))
        if connection is None:
            result = Result("ignored", "no connection for this account")
        elif handler is None:
            result = Result("ignored", _ignore_reason(event))
        else:
            result = await self._apply(event, db, connection, handler, started)
        await self._finish(event, db, connection, result, started)
        return result

    async def _apply(
        self,
        event: ChangeEvent,
        db: DbConnection,
        connection: Connection,
        handler: Handler,
        started: float,
    ) -> Result:
        if connection.status != "active":
            raise ConnectionRevoked(
                f"connection is {connection.status}", remedy="reconnect, then replay"
            )
        ctx = SyncContext(
            event=event,
            connection=connection,
            db=db,
            qbo=self._factory.qbo(connection),
            released=self._factory.released(connection),
            policy=self._policy,
            settings=ConnectionSettings.from_row(dict(connection.settings or {})),
            twins=self._twins,
        )
        await ctx.lock(event.source, event.entity, event.entity_id)
        try:
            return await self._with_redo(ctx, handler)
        except PermanentError as exc:
            await self._record_error(event, connection, exc, started)
            raise

    async def _with_redo(self, ctx: SyncContext, handler: Handler) -> Result:
        """A stale version means someone wrote in between: fetch again, merge again, write."""
        while True:
            try:
                return await handler(ctx)
            except StaleVersion:
                if ctx.stale_round >= MAX_STALE_ROUNDS:
                    raise  # transient: the retry ladder takes it from here
                ctx.stale_round += 1
                log.info("sync_stale_redo", event_id=ctx.event.event_id, round=ctx.stale_round)

    async def _connection(self, event: ChangeEvent) -> Connection | None:
        connection_id = event.connection_id
        if connection_id is None:
            owners = await self._directory.resolve(event.source, [event.account_id])
            connection_id = owners.get(event.account_id)
        if connection_id is None:
            return None
        return await ConnectionRepository(self._pool).get(connection_id)

    async def _finish(
        self,
        event: ChangeEvent,
        db: DbConnection,
        connection: Connection | None,
        result: Result,
        started: float,
    ) -> None:
        await OutcomeRepository(db).record(
            OutcomeRecord(
                connection_id=connection.id if connection else None,
                event_id=event.event_id,
                direction=self.direction,
                entity=event.entity,
                source_id=event.entity_id,
                outcome=result.outcome,
                target_id=result.target_id,
                reason=result.reason or None,
            )
        )
        log.info(
            "sync_applied",
            event_id=event.event_id,
            connection_id=str(connection.id) if connection else None,
            direction=self.direction,
            entity=event.entity,
            entity_id=event.entity_id,
            operation=event.operation,
            origin=event.origin,
            attempt=event.attempt,
            outcome=result.outcome,
            reason=result.reason,
            target_id=result.target_id,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            lag_ms=round((time.time() - event.received_at.timestamp()) * 1000, 1),
        )

    async def _record_error(
        self, event: ChangeEvent, connection: Connection, exc: PermanentError, started: float
    ) -> None:
        """Outside the message transaction (it rolls back): the error stays visible per record."""
        async with self._pool.acquire() as conn:
            await OutcomeRepository(conn).record(
                OutcomeRecord(
                    connection_id=connection.id,
                    event_id=event.event_id,
                    direction=self.direction,
                    entity=event.entity,
                    source_id=event.entity_id,
                    outcome="error",
                    reason=str(exc)[:500],
                    remedy=exc.remedy,
                )
            )
        log.warning(
            "sync_applied",
            event_id=event.event_id,
            connection_id=str(connection.id),
            direction=self.direction,
            entity=event.entity,
            entity_id=event.entity_id,
            operation=event.operation,
            attempt=event.attempt,
            outcome="error",
            error_class=type(exc).__name__,
            reason=str(exc),
            remedy=exc.remedy,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
        )
