"""Issue 17, findings 1 and 2 on real RabbitMQ and PostgreSQL: an event that cannot be
published or stored is set aside on its own; the channel's confirms and the batch it came with
are unaffected."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import EVENTS_EXCHANGE, EventPublisher, UnpublishableError
from shared.adapters.postgres.inbox import IGNORED, PENDING, InboxEntry, InboxRepository
from shared.domain.events import ChangeEvent
from shared.ingest.group_commit import InboxWriter
from shared.ingest.relay import OutboxRelay
from tests.integration.broker_helpers import make_event
from tests.support.receivers import add_connection, cloud_event, post_signed, qbo_receiver

pytestmark = pytest.mark.integration


class AlwaysUp:
    def available(self) -> bool:
        return True


def raw_event(account: str, event_id: str, entity_id: str = "1") -> ChangeEvent:
    """An event built without any check, as if a bug let it through the edge."""
    now = datetime.now(UTC)
    return ChangeEvent.model_construct(
        event_id=event_id,
        source="qbo",
        account_id=account,
        entity="invoice",
        entity_id=entity_id,
        operation="update",
        occurred_at=now,
        received_at=now,
        origin="webhook",
        attempt=0,
    )


async def _bound_queue(broker: AbstractRobustConnection, key: str) -> tuple[object, object]:
    channel = await broker.channel()
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(EVENTS_EXCHANGE, routing_key=key)
    return channel, queue


async def test_finding1_an_oversized_message_id_does_not_shift_later_confirms(
    broker: AbstractRobustConnection,
) -> None:
    account = f"conf-{uuid.uuid4().hex[:8]}"
    publisher = await EventPublisher.open(broker)
    channel = await broker.channel()
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(EVENTS_EXCHANGE, routing_key="qbo.invoice.update")
    with pytest.raises(UnpublishableError, match="300 bytes"):
        await publisher.publish(raw_event(account, "é" * 150))
    # A value the AMQP encoder itself refuses, after the client counted the message.
    with pytest.raises(UnpublishableError):
        await publisher.publish_bytes(
            EVENTS_EXCHANGE, "qbo.invoice.update", b"{}", headers={"bad": object()}
        )
    goods = [make_event(n, account_id=account) for n in range(30)]
    for event in goods:  # each waits for its own confirm; out of step they would hang
        await asyncio.wait_for(publisher.publish(event), 5)
    seen: list[str] = []
    deadline = asyncio.get_running_loop().time() + 10
    while len(seen) < len(goods) and asyncio.get_running_loop().time() < deadline:
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        if json.loads(message.body)["account_id"] == account:
            seen.append(str(message.message_id))
    assert seen == [e.event_id for e in goods]
    await channel.close()
    await publisher.close()


async def test_finding1_a_row_that_can_never_be_published_is_quarantined_once(
    pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    account = f"quar-{uuid.uuid4().hex[:8]}"
    good = make_event(1, account_id=account)
    poisoned = raw_event(account, "é" * 150, "2")
    async with pool.acquire() as conn:
        await InboxRepository(conn).store(
            [InboxEntry(good, PENDING), InboxEntry(poisoned, PENDING)]
        )
    publisher = await EventPublisher.open(broker)
    relay = OutboxRelay(pool, publisher, AlwaysUp())
    await relay.drain(0)
    await relay.drain(0)  # nothing of this account left to resend, no loop
    await publisher.close()
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT entity_id, status, ignore_reason FROM inbox WHERE account_id = $1 "
            "ORDER BY entity_id",
            account,
        )
    assert [(r["entity_id"], r["status"]) for r in rows] == [("1", "published"), ("2", "ignored")]
    # Stored before the edge checked bytes: it no longer even decodes, and is set aside.
    assert "300 bytes" in rows[1]["ignore_reason"]


class RefusingPublisher:
    """The real publisher, except that the AMQP client refuses one event's frames."""

    def __init__(self, inner: EventPublisher, refuse: str) -> None:
        self.inner, self.refuse, self.calls = inner, refuse, 0

    async def publish(self, event: ChangeEvent) -> None:
        if event.event_id == self.refuse:
            self.calls += 1
            raise UnpublishableError("AMQP client could not encode the message: test")
        await self.inner.publish(event)


async def test_finding1_a_row_the_broker_refuses_to_encode_is_quarantined_with_its_reason(
    pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    account = f"quar-{uuid.uuid4().hex[:8]}"
    good, doomed = make_event(1, account_id=account), make_event(2, account_id=account)
    async with pool.acquire() as conn:
        await InboxRepository(conn).store([InboxEntry(good, PENDING), InboxEntry(doomed, PENDING)])
    inner = await EventPublisher.open(broker)
    publisher = RefusingPublisher(inner, doomed.event_id)
    relay = OutboxRelay(pool, publisher, AlwaysUp())
    await relay.drain(0)
    await relay.drain(0)
    assert publisher.calls == 1  # quarantined after one try, never retried
    await inner.close()
    async with pool.acquire() as conn:
        reason = await conn.fetchval(
            "SELECT ignore_reason FROM inbox WHERE event_id = $1 AND status = 'ignored'",
            doomed.event_id,
        )
    assert reason == "quarantined: AMQP client could not encode the message: test"


@pytest.mark.parametrize("bad", ["nul\u0000", "\ud800"])
async def test_finding2_one_bad_event_never_sinks_its_group_commit(
    pool: asyncpg.Pool, bad: str
) -> None:
    account = f"iso-{uuid.uuid4().hex[:8]}"
    writer = InboxWriter(pool, writers=1)
    writer.start()
    try:
        good = [
            [
                InboxEntry(raw_event(account, f"{account}-{n}-{k}", str(n)), IGNORED)
                for k in range(2)
            ]
            for n in range(40)
        ]
        poisoned = [
            InboxEntry(raw_event(account, f"{account}-mixed-ok", "ok"), IGNORED),
            InboxEntry(raw_event(account, f"{account}-{bad}", "bad"), IGNORED),
        ]
        results = await asyncio.gather(*(writer.store(e) for e in [*good, poisoned]))
    finally:
        await writer.stop()
    assert all(r.new == {e.event.event_id for e in g} for r, g in zip(results, good, strict=False))
    assert all(not r.rejected for r in results[:-1])
    last = results[-1]
    assert last.new == {f"{account}-mixed-ok"}
    assert list(last.rejected) == [f"{account}-{bad}"]
    async with pool.acquire() as conn:
        stored = await conn.fetchval("SELECT count(*) FROM inbox WHERE account_id = $1", account)
    assert stored == 81


@pytest.mark.parametrize("bad", ["\\ud800", "\\u0000"])
async def test_finding2_a_signed_bad_event_among_concurrent_good_deliveries(
    database_url: str, amqp_url: str, pool: asyncpg.Pool, bad: str
) -> None:
    """Before: 674 of 800 good deliveries answered 500 (surrogate), or 730 answered 200 without
    being stored (NUL). Now every delivery is 200 and every good event is in the inbox."""
    realm, _ = await add_connection(pool)
    goods = [json.dumps([cloud_event(n, realm)]).encode() for n in range(80)]
    poisoned = json.dumps([cloud_event("p", realm)]).replace(realm, realm + bad, 1).encode()
    async with qbo_receiver(database_url, amqp_url) as url, aiohttp.ClientSession() as session:
        answers = await asyncio.gather(
            *(post_signed(session, url, body) for body in [*goods[:40], poisoned, *goods[40:]])
        )
    assert [status for status, _ in answers] == [200] * 81
    async with pool.acquire() as conn:
        stored = await conn.fetchval("SELECT count(*) FROM inbox WHERE account_id = $1", realm)
    assert stored == 80


async def test_finding2_one_bad_event_in_a_large_delivery_costs_only_itself(
    pool: asyncpg.Pool,
) -> None:
    account = f"big-{uuid.uuid4().hex[:8]}"
    entries = [
        InboxEntry(raw_event(account, f"{account}-{n}" + ("\u0000" if n == 150 else "")), IGNORED)
        for n in range(300)
    ]
    writer = InboxWriter(pool, writers=1)
    writer.start()
    try:
        stored = await writer.store(entries)
    finally:
        await writer.stop()
    assert len(stored.new) == 299
    assert list(stored.rejected) == [f"{account}-150\u0000"]


async def test_finding8_the_start_up_pass_leaves_this_process_its_fresh_rows(
    pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    """After a restart the relay resends what was left over, not what the new process is
    already publishing (that made a copy of every event arriving during the start-up pass)."""
    account = f"boot-{uuid.uuid4().hex[:8]}"
    started = datetime.now(UTC)
    left_over = make_event(1, account_id=account, received_at=started - timedelta(seconds=1))
    fresh = make_event(2, account_id=account)
    async with pool.acquire() as conn:
        await InboxRepository(conn).store(
            [InboxEntry(left_over, PENDING), InboxEntry(fresh, PENDING)]
        )
    publisher = await EventPublisher.open(broker)
    await OutboxRelay(pool, publisher, AlwaysUp()).drain(0, received_before=started)
    await publisher.close()
    async with pool.acquire() as conn:
        found = await conn.fetch(
            "SELECT entity_id, status FROM inbox WHERE account_id = $1", account
        )
        rows = {str(r["entity_id"]): str(r["status"]) for r in found}
        await conn.execute("UPDATE inbox SET status = 'published' WHERE account_id = $1", account)
    assert rows == {"1": "published", "2": "pending"}
