"""The outbox relay: publishes inbox rows that the request path could not.

Rows stay ``pending`` when RabbitMQ was down (or a confirm timed out) while the webhook was
answered from the inbox. The relay claims them page by page with ``FOR UPDATE SKIP LOCKED``, so
any number of receiver replicas can run it, publishes with confirms and marks what was confirmed.
It runs at start-up, after every broker reconnect, and on a short interval. In a receiver it runs
beside the dispatcher (``relay_beside``): a pass goes ahead whenever nothing is queued there,
skipping the ids of the batches still out, so a stream's overflow is published while the stream
lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from shared.adapters.batch_publish import publish_many
from shared.adapters.broker import EventPublisher, UnpublishableError
from shared.adapters.postgres.inbox import PENDING, InboxEntry, InboxRepository
from shared.domain.events import ChangeEvent
from shared.infra.logging import get_logger
from shared.ingest.dispatch import BrokerGate, Dispatcher, Publisher

log = get_logger(__name__)


@dataclass(frozen=True)
class _Page:
    """One claimed page: rows claimed, published, quarantined, and failed (left pending);
    the rest were held by the dispatcher and skipped."""

    claimed: int
    published: int
    doomed: int
    failed: int

    @property
    def settled(self) -> int:
        return self.published + self.doomed


@dataclass
class OutboxRelay:
    pool: asyncpg.Pool
    publisher: Publisher
    gate: BrokerGate
    interval_s: float = 1.0
    # Younger rows are probably still being published by the request that stored them.
    grace_s: float = 5.0
    # A page is published at once and its confirms awaited before the next is claimed, so the
    # broker's round trip is paid once per page: a large page drains a burst's overflow faster.
    page_size: int = 2000
    publish_timeout_s: float = 5.0
    # Whether a pass may run: while the dispatcher has events queued, the oldest pending rows
    # are mostly its own, and a page would be skipped row by row (``in_flight``).
    quiet: Callable[[], bool] = lambda: True
    # Ids this process's dispatcher is still publishing, or waiting on, or marking: not resent.
    in_flight: Callable[[], set[str]] = set
    # Told when a pass leaves nothing older than the grace (the dispatcher's overflow is out).
    caught_up: Callable[[], None] = lambda: None
    _kick: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def kick(self) -> None:
        """Run a pass now (the broker just came back)."""
        self._kick.set()

    async def run(self) -> None:
        # At start-up every row received before this moment is left over from before (a crash,
        # a restart): no grace for those. Rows arriving from now on are this process's own and
        # its dispatcher is publishing them; resending them too would only duplicate them.
        grace: float = 0.0
        before: datetime | None = datetime.now(UTC)
        while True:
            try:
                await self.drain(grace, received_before=before)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("relay_pass_failed", error=str(exc)[:200])
            except Exception:  # the relay's outermost boundary: log it, never stop relaying
                log.exception("relay_pass_crashed")
            grace, before = self.grace_s, None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.interval_s)
            self._kick.clear()

    async def drain(self, grace_s: float, *, received_before: datetime | None = None) -> int:
        """Publish pending rows until none is left or the broker stops confirming."""
        total = 0
        while self.gate.available() and (grace_s == 0 or self.quiet()):
            page = await self._page(grace_s, received_before)
            total += page.published
            if page.failed:
                break  # the broker stopped confirming: the next pass tries again
            if page.claimed < self.page_size:
                self.caught_up()  # nothing older than the grace is left to us
                break
            if not page.settled:
                break  # a whole page the dispatcher still holds: its own pass settles it
        if total:
            log.info("relay_published", count=total)
        return total

    async def _page(self, grace_s: float, received_before: datetime | None) -> _Page:
        async with self.pool.acquire() as conn, conn.transaction():
            repo = InboxRepository(conn)
            claimed = await repo.claim_pending(
                older_than_s=grace_s, limit=self.page_size, received_before=received_before
            )
            busy = self.in_flight()
            events = [e for e in claimed if e.event_id not in busy]
            results = await self._publish_page(events)
            ids = [e.event_id for e, result in zip(events, results, strict=True) if result is None]
            if ids:
                await repo.mark_published(ids)
            doomed = [(e, r) for e, r in zip(events, results, strict=True) if r]
            for event, reason in doomed:
                log.warning("event_quarantined", event_id=event.event_id[:80], reason=reason)
                await repo.quarantine(event.event_id, reason)
        return _Page(len(claimed), len(ids), len(doomed), len(events) - len(ids) - len(doomed))

    async def _publish_page(self, events: list[ChangeEvent]) -> list[str | None]:
        """Publish the page at once; per event as ``_publish`` answers. On our broker publisher
        the page goes to the channel in one step (``publish_many``) and its confirms are
        awaited together, within the same timeout."""
        if not isinstance(self.publisher, EventPublisher):
            return await asyncio.gather(*(self._publish(e) for e in events))
        futures = await publish_many(self.publisher, events)
        if futures:
            await asyncio.wait(futures, timeout=self.publish_timeout_s)
        results: list[str | None] = []
        for future in futures:
            if not future.done() or future.cancelled():
                future.cancel()  # stays pending; the next pass tries again
                results.append("")
            elif isinstance(future.exception(), UnpublishableError):
                results.append(str(future.exception())[:200])
            else:
                results.append(None if future.exception() is None else "")
        return results

    async def _publish(self, event: ChangeEvent) -> str | None:
        """None when confirmed; the reason when it can never be published; "" otherwise."""
        try:
            await asyncio.wait_for(self.publisher.publish(event), self.publish_timeout_s)
        except UnpublishableError as exc:
            return str(exc)[:200]
        except Exception:  # stays pending; the next pass tries again
            return ""
        return None


def relay_beside(
    dispatcher: Dispatcher,
    pool: asyncpg.Pool,
    publisher: Publisher,
    gate: BrokerGate,
    *,
    interval_s: float = 1.0,
) -> OutboxRelay:
    """A receiver's relay, beside its dispatcher: a pass runs whenever nothing is queued
    there (batches may be out, and their ids are skipped), so what overflowed the queue
    during a stream is published while the stream lasts; a pass that finds nothing old
    left clears the dispatcher's overflow lag."""
    return OutboxRelay(
        pool,
        publisher,
        gate,
        interval_s=interval_s,
        quiet=dispatcher.relay_may_run,
        in_flight=dispatcher.unsettled,
        caught_up=dispatcher.overflow_cleared,
    )


async def publish_new(
    pool: asyncpg.Pool, publisher: Publisher, connection_id: UUID, events: list[ChangeEvent]
) -> list[ChangeEvent]:
    """Record events found by polling or import in the inbox, publish the ones it did not
    know yet, and mark them published; returns those. The inbox key makes a second pass over
    the same changes publish nothing."""
    owned = [e.model_copy(update={"connection_id": connection_id}) for e in events]
    async with pool.acquire() as conn:
        new_ids = await InboxRepository(conn).store([InboxEntry(e, PENDING) for e in owned])
    fresh = [e for e in owned if e.event_id in new_ids]
    published: list[ChangeEvent] = []
    doomed: dict[str, str] = {}
    for event in fresh:
        try:
            await publisher.publish(event)
        except UnpublishableError as exc:
            doomed[event.event_id] = str(exc)[:200]
            continue
        published.append(event)
    if published or doomed:
        async with pool.acquire() as conn:
            repo = InboxRepository(conn)
            await repo.mark_published([e.event_id for e in published])
            for event_id, reason in doomed.items():
                log.warning("event_quarantined", event_id=event_id[:80], reason=reason)
                await repo.quarantine(event_id, reason)
    return published
