"""An import batch's hold on a record (``SyncContext.hold``) hands events for it back at once,
without spending an attempt, instead of letting them wait in a consumer slot (issue 13: live
edits queued behind notifications waiting for an import's lock)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import DEAD_QUEUE, QBO_TO_RELEASED, EventPublisher
from shared.adapters.postgres.sync_store import PgSyncStore
from shared.adapters.postgres.twins import TwinLedger
from shared.delivery.consumer import EventConsumer
from shared.domain.connections import Connection, ConnectionSettings
from shared.domain.errors import RecordHeld
from shared.domain.events import ChangeEvent
from shared.domain.ownership import OwnershipPolicy
from shared.infra.db import DbConnection
from shared.ingest.import_documents import BatchedDocuments
from shared.ingest.import_payments import BatchedPayments, _Planned
from shared.sync.context import SyncContext
from tests.integration.batch_fakes import BatchRoute
from tests.integration.broker_helpers import make_event, queue_depth
from tests.integration.ops_helpers import Running, wait_for

pytestmark = pytest.mark.integration

CONNECTION = Connection(
    id=uuid.uuid4(), released_company_id="co", qbo_realm_id="9130", status="active"
)


@pytest.fixture
async def publisher(broker: AbstractRobustConnection) -> AsyncIterator[EventPublisher]:
    pub = await EventPublisher.open(broker)
    yield pub
    await pub.close()


def _context(conn: DbConnection, pool: asyncpg.Pool, event: ChangeEvent) -> SyncContext:
    unused = cast(Any, None)  # no API call is made here
    return SyncContext(
        event=event,
        connection=CONNECTION,
        store=PgSyncStore(conn, TwinLedger(pool)),
        qbo=unused,
        released=unused,
        policy=OwnershipPolicy(),
        settings=ConnectionSettings.applied({}),
        resolve=unused,
    )


async def test_events_share_the_mark_but_a_batch_hold_hands_them_back_at_once(
    pool: asyncpg.Pool,
) -> None:
    event = make_event(1)
    mark = f"{CONNECTION.id}:held:qbo:invoice:1"
    async with pool.acquire() as one, one.transaction(), pool.acquire() as two:
        await _context(one, pool, event).lock_unless_held("qbo", "invoice", "1")
        async with two.transaction():
            # A second event for that record finds the mark free (it only waits for the record
            # lock, as before): events never hand one another back.
            assert await PgSyncStore(two, TwinLedger(pool)).locks.try_lock_shared(mark)
    async with pool.acquire() as batch, batch.transaction(), pool.acquire() as live:
        await _context(batch, pool, event).hold("qbo", "invoice", "1")
        started = time.perf_counter()
        async with live.transaction():
            with pytest.raises(RecordHeld):
                await _context(live, pool, event).lock_unless_held("qbo", "invoice", "1")
        assert time.perf_counter() - started < 1.0, "not waiting for the batch"
        async with live.transaction():  # another record is not held
            await _context(live, pool, event).lock_unless_held("qbo", "invoice", "2")


async def test_a_held_event_is_deferred_without_an_attempt_and_others_flow(
    broker: AbstractRobustConnection, publisher: EventPublisher, pool: asyncpg.Pool
) -> None:
    started: list[ChangeEvent] = []
    applied: list[str] = []
    held = {"1"}

    async def handler(evt: ChangeEvent, conn: DbConnection) -> None:
        started.append(evt)
        if evt.entity_id in held:
            raise RecordHeld("held by an import batch")
        applied.append(evt.entity_id)

    consumer = EventConsumer(pool, publisher, QBO_TO_RELEASED, handler, retry_tiers=(1,))
    async with Running(broker, consumer, prefetch=1):
        await publisher.publish(make_event(1))
        await publisher.publish(make_event(2))
        await wait_for(lambda: asyncio.sleep(0, "2" in applied), timeout=5)
        held.clear()
        await wait_for(lambda: asyncio.sleep(0, "1" in applied), timeout=10)
    assert [e.attempt for e in started] == [0] * len(started), "handing back spends no attempt"
    assert await queue_depth(broker, DEAD_QUEUE) == 0


async def test_payments_an_import_batch_made_are_held_until_its_read_back_commits(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-Leased announces a payment batch's payments while the batch's transaction still waits
    to read back the documents they settled: their events are handed back at once, not left
    waiting for the commit in a consumer slot."""
    async with pool.acquire() as conn:
        connection_id = await conn.fetchval(
            "INSERT INTO connections (released_company_id) VALUES ($1) RETURNING id",
            f"co-{uuid.uuid4().hex[:8]}",
        )
    connection = Connection(connection_id, "co", "9130", "active")
    released = BatchRoute("rl-pay-")
    event = make_event(1)
    documents = BatchedDocuments(pool, cast(Any, released), cast(Any, None), connection, event)
    payments = BatchedPayments(documents)
    probed: list[str] = []

    async def settled(self: Any, ctx: SyncContext, qbo_type: str, docs: list[str]) -> None:
        async with pool.acquire() as live, live.transaction():
            started = time.perf_counter()
            with pytest.raises(RecordHeld):
                await documents.context(live).lock_unless_held(
                    "released", "payment", released.made[0]
                )
            assert time.perf_counter() - started < 1.0, "not waiting for the batch"
            probed.append(released.made[0])

    monkeypatch.setattr(BatchedPayments, "_settled", settled)
    planned = [
        _Planned(
            record={"Id": "77", "SyncToken": "0"},
            fields={},
            part="Invoice:5",
            body={"documentId": "rl-inv-5", "amount": "10.00"},
        )
    ]
    assert await payments._write("Payment", planned) == []
    assert probed == ["rl-pay-0"]
