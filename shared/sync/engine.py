"""The sync engine: one change event in, the other side brought in line, the outcome recorded.

Run with a direction (QBO -> Re-Leased or Re-Leased -> QBO). The consumer calls ``handle`` inside
the message's database transaction, with that transaction's store, so links, ledger, conflicts and
the outcome row commit together and the message is acked only after that (guarantee 3). Per-record
locks taken here last until the transaction ends: two events for one record never apply at once,
on any replica (guarantee 4).

The engine builds nothing: the composition root hands it where connections are looked up, the API
clients, where errors are recorded outside the rolled-back transaction, and the ownership policy.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

from shared.domain.connections import Connection, ConnectionSettings
from shared.domain.errors import ConnectionRevoked, PermanentError, StaleVersion
from shared.domain.events import ChangeEvent
from shared.domain.outcomes import OutcomeRecord
from shared.domain.ownership import OwnershipPolicy
from shared.infra import metrics
from shared.infra.logging import get_logger
from shared.sync import routes
from shared.sync.context import Handler, Resolver, Result, SyncContext
from shared.sync.echoes import known_create
from shared.sync.labels import LabelTap
from shared.sync.listings import ListingCache
from shared.sync.ports import (
    ClientSource,
    ConnectionSource,
    OutcomeStore,
    QboApi,
    ReleasedApi,
    SyncStore,
)

Direction = Literal["qbo_to_released", "released_to_qbo"]

log = get_logger("sync")
MAX_STALE_ROUNDS = 3


@dataclass
class SyncEngine:
    direction: Direction
    connections: ConnectionSource
    clients: ClientSource
    # Records an error outcome on its own connection: the change's transaction rolls back.
    errors: OutcomeStore
    policy: OwnershipPolicy = field(default_factory=OwnershipPolicy)
    handlers: Mapping[tuple[str, str], Handler] = field(default_factory=lambda: routes.ROUTES)
    resolve: Resolver = routes.resolve
    # Kept for the engine's life (one per consumer process): see ``shared.sync.listings``.
    listings: ListingCache = field(default_factory=ListingCache)

    async def handle(self, event: ChangeEvent, store: SyncStore) -> Result:
        started = time.perf_counter()
        connection = await self.connections.connection_for(event)
        handler = routes.handler_for(self.handlers, event)
        label: str | None = None
        if connection is None:
            result = Result("ignored", "no connection for this account")
        elif handler is None:
            result = Result("ignored", routes.ignore_reason(event))
        else:
            result, label = await self._apply(event, store, connection, handler, started)
        await self._finish(event, store, connection, result, started, label)
        return result

    async def _apply(
        self,
        event: ChangeEvent,
        store: SyncStore,
        connection: Connection,
        handler: Handler,
        started: float,
    ) -> tuple[Result, str | None]:
        """The handler's result and the label of the record it read (``shared.sync.labels``)."""
        if connection.status != "active":
            raise ConnectionRevoked(
                f"connection is {connection.status}", remedy="reconnect, then replay"
            )
        qbo, released = self.clients.qbo(connection), self.clients.released(connection)
        tap = LabelTap(qbo if event.source == "qbo" else released, event.entity_id)
        if event.source == "qbo":
            qbo = cast(QboApi, tap)
        else:
            released = cast(ReleasedApi, tap)
        try:
            ctx = SyncContext(
                event=event,
                connection=connection,
                store=store,
                qbo=qbo,
                released=released,
                policy=self.policy,
                settings=ConnectionSettings.applied(connection.settings),
                resolve=self.resolve,
                listings=self.listings,
            )
            # Not behind an import batch's lock: that can last seconds and would hold this
            # consumer slot while live events queue behind it; the event comes back instead.
            await ctx.lock_unless_held(event.source, event.entity, event.entity_id)
            known = await known_create(ctx)
            if known is not None:  # our own create (a batch's): no read needed
                return known, None
            return await self._with_redo(ctx, handler), tap.label
        except PermanentError as exc:
            await self._record_error(event, connection, exc, started, tap.label)
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

    def _row(
        self, event: ChangeEvent, connection: Connection | None, outcome: str, **found: str | None
    ) -> OutcomeRecord:
        return OutcomeRecord(
            connection_id=connection.id if connection else None,
            event_id=event.event_id,
            direction=self.direction,
            entity=event.entity,
            source_id=event.entity_id,
            outcome=outcome,
            **found,
        )

    def _line(
        self, event: ChangeEvent, connection: Connection | None, started: float
    ) -> dict[str, object]:
        """The fields every ``sync_applied`` line carries (docs/logging.md)."""
        return {
            "event_id": event.event_id,
            "connection_id": str(connection.id) if connection else None,
            "direction": self.direction,
            "entity": event.entity,
            "entity_id": event.entity_id,
            "operation": event.operation,
            "origin": event.origin,
            "attempt": event.attempt,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }

    async def _finish(
        self,
        event: ChangeEvent,
        store: SyncStore,
        connection: Connection | None,
        result: Result,
        started: float,
        label: str | None = None,
    ) -> None:
        await store.outcomes.record(
            self._row(
                event,
                connection,
                result.outcome,
                target_id=result.target_id,
                reason=result.reason or None,
                label=label,
            )
        )
        metrics.EVENTS.labels(event.entity, self.direction, result.outcome).inc()
        if result.outcome == "applied":
            metrics.PROPAGATION.labels(self.direction).observe(
                max(time.time() - event.received_at.timestamp(), 0.0)
            )
        log.info(
            "sync_applied",
            **self._line(event, connection, started),
            outcome=result.outcome,
            reason=result.reason,
            target_id=result.target_id,
            lag_ms=round((time.time() - event.received_at.timestamp()) * 1000, 1),
        )

    async def _record_error(
        self,
        event: ChangeEvent,
        connection: Connection,
        exc: PermanentError,
        started: float,
        label: str | None,
    ) -> None:
        """Outside the message transaction (it rolls back): the error stays visible per record."""
        await self.errors.record(
            self._row(
                event, connection, "error", reason=str(exc)[:500], remedy=exc.remedy, label=label
            )
        )
        metrics.EVENTS.labels(event.entity, self.direction, "error").inc()
        log.warning(
            "sync_applied",
            **self._line(event, connection, started),
            outcome="error",
            error_class=type(exc).__name__,
            reason=str(exc),
            remedy=exc.remedy,
        )
