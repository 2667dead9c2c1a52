"""Failure routing in the consumer: each error class, the attempt limit, history, parking."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import DEAD_QUEUE, QBO_TO_RELEASED, EventPublisher
from shared.delivery import consumer as consumer_module
from shared.delivery import parking
from shared.delivery.backpressure import BudgetGate, defer_delay
from shared.delivery.consumer import EventConsumer
from shared.delivery.failures import retry_delay, route
from shared.domain.errors import (
    ConnectionRevoked,
    DuplicateName,
    NotFound,
    PermanentError,
    PolicyRejection,
    StaleVersion,
    TransientError,
)
from shared.domain.events import ChangeEvent
from shared.infra.db import DbConnection
from tests.conftest import TEST_TOPOLOGY
from tests.integration.broker_helpers import get_one, make_event, queue_depth
from tests.integration.ops_helpers import Running, dead_letter, wait_for

pytestmark = pytest.mark.integration


def _closed_under(cause: BaseException) -> BaseException:
    """What asyncpg raises when PostgreSQL closed the connection inside a transaction: the
    rollback's InterfaceError, the real cause as its context."""
    exc = asyncpg.exceptions.InterfaceError(
        "cannot call Transaction.__aexit__(): the underlying connection is closed"
    )
    exc.__context__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TransientError("QBO answered 503"), "retry"),
        # A PostgreSQL restart under a handler: retried, never dead-lettered.
        (asyncpg.exceptions.AdminShutdownError(), "retry"),
        (_closed_under(asyncpg.exceptions.AdminShutdownError()), "retry"),
        (_closed_under(asyncpg.exceptions.ConnectionDoesNotExistError()), "retry"),
        (asyncpg.exceptions.InternalClientError("cannot switch to state 15"), "retry"),
        (asyncpg.exceptions.InterfaceError("a misuse of the client"), "dead"),
        (_closed_under(ValueError("a bug")), "dead"),
        (TransientError("429", retry_after=60), "retry"),
        (StaleVersion("5010"), "retry"),
        (TimeoutError(), "retry"),
        (ConnectionResetError(), "retry"),
        (asyncpg.exceptions.DeadlockDetectedError(), "retry"),
        (PermanentError("no mapping"), "dead"),
        (PolicyRejection("QBO owns invoices"), "dead"),
        (NotFound("gone"), "dead"),
        (DuplicateName("6240"), "dead"),
        (ValueError("a bug"), "dead"),
        (KeyError("a bug"), "dead"),
        (ConnectionRevoked("grant revoked"), "park"),
    ],
)
def test_each_error_class_has_one_route(exc: BaseException, expected: str) -> None:
    assert route(exc) == expected


def test_a_deferral_comes_back_no_later_than_the_block_needs() -> None:
    assert defer_delay(60.0, (5, 30, 300)) == 30
    assert defer_delay(400.0, (5, 30, 300)) == 300
    assert defer_delay(7.0, (5, 30, 300)) == 5
    assert defer_delay(3.0, (5, 30, 300)) == 5


def test_retry_after_picks_a_tier_at_least_as_long() -> None:
    tiers = (5, 30, 300)
    assert retry_delay(1, None, tiers) == 5
    assert retry_delay(2, None, tiers) == 30
    assert retry_delay(9, None, tiers) == 300
    assert retry_delay(1, 3.0, tiers) == 5, "a short Retry-After keeps the backoff step"
    assert retry_delay(1, 20.0, tiers) == 30, "QBO asked for 20 s: wait the next tier up"
    assert retry_delay(1, 60.0, tiers) == 300
    assert retry_delay(1, 3600.0, tiers) == 300, "never beyond the longest tier"


@pytest.fixture
async def publisher(broker: AbstractRobustConnection) -> AsyncIterator[EventPublisher]:
    pub = await EventPublisher.open(broker)
    yield pub
    await pub.close()


async def test_attempt_limit_holds_and_the_poison_message_keeps_its_history(
    broker: AbstractRobustConnection, publisher: EventPublisher, pool: asyncpg.Pool
) -> None:
    event = make_event(101)
    await publisher.publish(event)
    attempts: list[int] = []

    async def handler(evt: ChangeEvent, conn: DbConnection) -> None:
        attempts.append(evt.attempt)
        raise TransientError("Re-Leased answered 502")

    consumer = EventConsumer(
        pool, publisher, QBO_TO_RELEASED, handler, max_attempts=3, retry_tiers=(1,)
    )
    async with Running(broker, consumer):
        dead = await get_one(broker, DEAD_QUEUE, timeout=20)
        await asyncio.sleep(1.5)  # nothing further may arrive: the limit holds
    assert attempts == [0, 1, 2]
    assert ChangeEvent.from_bytes(dead.body).event_id == event.event_id
    row = await dead_letter(pool, event.event_id)
    assert row is not None
    assert (row["error_class"], row["attempts"], row["status"]) == ("TransientError", 3, "dead")
    history = row["history"]
    assert [(h["attempt"], h["outcome"]) for h in history] == [
        (0, "retry"),
        (1, "retry"),
        (2, "dead"),
    ]
    assert all(h["at"] and h["error"] == "Re-Leased answered 502" for h in history)
    assert "replay" in (row["remedy"] or "")


async def test_permanent_and_policy_failures_die_at_once(
    broker: AbstractRobustConnection, publisher: EventPublisher, pool: asyncpg.Pool
) -> None:
    failures: dict[str, Exception] = {
        "p-1": PermanentError("no account mapping", remedy="map the account"),
        "p-2": PolicyRejection("QBO owns this field"),
        "p-3": ValueError("a bug in a mapper"),
    }
    events = {key: make_event(110 + i, entity_id=key) for i, key in enumerate(failures)}
    calls: list[str] = []

    async def handler(evt: ChangeEvent, conn: DbConnection) -> None:
        calls.append(evt.entity_id)
        raise failures[evt.entity_id]

    consumer = EventConsumer(pool, publisher, QBO_TO_RELEASED, handler, retry_tiers=(1,))
    async with Running(broker, consumer):
        for event in events.values():
            await publisher.publish(event)
        for event in events.values():
            await wait_for(lambda e=event: dead_letter(pool, e.event_id))
        await asyncio.sleep(1.5)  # a retry would have come back by now
    assert sorted(calls) == sorted(failures), "each called exactly once"
    for key, event in events.items():
        row = await dead_letter(pool, event.event_id)
        assert row is not None
        assert row["error_class"] == type(failures[key]).__name__
        assert row["attempts"] == 1
        assert [h["outcome"] for h in row["history"]] == ["dead"]
    first = await dead_letter(pool, events["p-1"].event_id)
    assert first is not None
    assert first["remedy"] == "map the account"


async def _connection(pool: asyncpg.Pool, status: str) -> tuple[UUID, str]:
    realm = f"realm-{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as conn:
        connection_id: UUID = await conn.fetchval(
            "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
            "VALUES ($1, $2, $3) RETURNING id",
            f"co-{realm}",
            realm,
            status,
        )
    return connection_id, realm


def engine_like(pool: asyncpg.Pool, applied: list[ChangeEvent], seen: list[int]) -> Any:
    """What the engine does first: refuse work for a connection that is not active."""

    async def handler(evt: ChangeEvent, conn: DbConnection) -> None:
        seen.append(evt.attempt)
        status = await conn.fetchval(
            "SELECT status FROM connections WHERE qbo_realm_id = $1", evt.account_id
        )
        if status != "active":
            raise ConnectionRevoked(f"connection is {status}", remedy="reconnect, then replay")
        applied.append(evt)

    return handler


async def test_a_paused_connection_burns_no_attempts_and_resumes_in_order(
    broker: AbstractRobustConnection, publisher: EventPublisher, pool: asyncpg.Pool
) -> None:
    connection_id, realm = await _connection(pool, "paused")
    events = [make_event(120 + i, account_id=realm, entity_id=f"r{i}") for i in range(4)]
    applied: list[ChangeEvent] = []
    seen: list[int] = []
    consumer = EventConsumer(
        pool, publisher, QBO_TO_RELEASED, engine_like(pool, applied, seen), retry_tiers=(1,)
    )
    # One at a time, so "in order" is observable on the way out as well as on the way in.
    async with Running(broker, consumer, prefetch=1):
        for event in events:
            await publisher.publish(event)

        async def all_parked() -> bool:
            async with pool.acquire() as conn:
                return await parking.count(conn, connection_id) == len(events)

        await wait_for(all_parked)
        await asyncio.sleep(1.5)  # a retry ladder pass would show up as a second attempt here
        assert seen == [0, 0, 0, 0], "each seen once, no attempt spent"
        assert applied == []
        assert await queue_depth(broker, QBO_TO_RELEASED) == 0
        assert await queue_depth(broker, "sync.retry.1s") == 0
        for event in events:
            assert await dead_letter(pool, event.event_id) is None

        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE connections SET status = 'active' WHERE id = $1", connection_id
            )
        assert await parking.release(pool, publisher, connection_id) == len(events)
        await wait_for(lambda: asyncio.sleep(0, len(applied) == len(events)))
    assert [e.event_id for e in applied] == [e.event_id for e in events], "in parked order"
    assert all(e.attempt == 0 for e in applied)
    async with pool.acquire() as conn:
        assert await parking.count(conn, connection_id) == 0
        status = await conn.fetchval("SELECT status FROM connections WHERE id = $1", connection_id)
    assert status == "active"


async def test_a_dead_grant_pauses_the_connection_for_reauthorisation(
    broker: AbstractRobustConnection, publisher: EventPublisher, pool: asyncpg.Pool
) -> None:
    connection_id, realm = await _connection(pool, "active")
    calls: list[int] = []

    async def handler(evt: ChangeEvent, conn: DbConnection) -> None:
        calls.append(evt.attempt)
        raise ConnectionRevoked("QBO refused the token (401)", remedy="reconnect")

    event = make_event(130, account_id=realm)
    consumer = EventConsumer(pool, publisher, QBO_TO_RELEASED, handler, retry_tiers=(1,))
    async with Running(broker, consumer):
        await publisher.publish(event)

        async def parked() -> bool:
            async with pool.acquire() as conn:
                return await parking.count(conn, connection_id) == 1

        await wait_for(parked)
        await asyncio.sleep(1.2)
    assert calls == [0]
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT status, status_reason FROM connections WHERE id = $1", connection_id
        )
    assert row is not None
    assert row["status"] == "paused"
    assert row["status_reason"].startswith(parking.NEEDS_REAUTH)
    assert await dead_letter(pool, event.event_id) is None
    assert await queue_depth(broker, DEAD_QUEUE) == 0


async def test_an_event_nobody_owns_is_dead_lettered_not_parked(
    broker: AbstractRobustConnection, publisher: EventPublisher, pool: asyncpg.Pool
) -> None:
    async def handler(evt: ChangeEvent, conn: DbConnection) -> None:
        raise ConnectionRevoked("connection is revoked")

    event = make_event(140, account_id=f"nobody-{uuid.uuid4().hex[:6]}")
    consumer = EventConsumer(pool, publisher, QBO_TO_RELEASED, handler, retry_tiers=(1,))
    async with Running(broker, consumer):
        await publisher.publish(event)
        row = await wait_for(lambda: dead_letter(pool, event.event_id))
    assert row["error_class"] == "ConnectionRevoked"
    assert TEST_TOPOLOGY.retry_tiers == (1,)


async def test_an_event_parked_while_its_connection_resumes_is_not_stranded(
    broker: AbstractRobustConnection, publisher: EventPublisher, pool: asyncpg.Pool
) -> None:
    connection_id, realm = await _connection(pool, "paused")
    applied: list[ChangeEvent] = []

    async def handler(evt: ChangeEvent, conn: DbConnection) -> None:
        status = await conn.fetchval("SELECT status FROM connections WHERE id = $1", connection_id)
        if status != "active":
            # An operator resumes (and the resume releases nothing yet) while this event fails.
            async with pool.acquire() as other:
                await other.execute(
                    "UPDATE connections SET status = 'active' WHERE id = $1", connection_id
                )
            raise ConnectionRevoked(f"connection is {status}")
        applied.append(evt)

    event = make_event(150, account_id=realm)
    consumer = EventConsumer(pool, publisher, QBO_TO_RELEASED, handler, retry_tiers=(1,))
    async with Running(broker, consumer):
        await publisher.publish(event)
        await wait_for(lambda: asyncio.sleep(0, bool(applied)))
    assert [e.event_id for e in applied] == [event.event_id]
    async with pool.acquire() as conn:
        assert await parking.count(conn, connection_id) == 0
        status = await conn.fetchval("SELECT status FROM connections WHERE id = $1", connection_id)
    assert status == "active", "a resumed connection is not paused again on stale evidence"


class FakeGate(BudgetGate):
    """A budget block the test switches on and off, for one account."""

    def __init__(self, pool: asyncpg.Pool, account: str) -> None:
        super().__init__(pool)
        self.account = account
        self.seconds = 0.0

    async def blocked_for(self, event: ChangeEvent) -> float:
        return self.seconds if event.account_id == self.account else 0.0


async def test_a_blocked_realm_is_deferred_without_attempts_and_others_flow(
    broker: AbstractRobustConnection,
    publisher: EventPublisher,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(consumer_module, "MAX_IN_PROCESS_WAIT_S", 0.5)
    stormy, calm = f"storm-{uuid.uuid4().hex[:6]}", f"calm-{uuid.uuid4().hex[:6]}"
    gate = FakeGate(pool, stormy)
    started: list[ChangeEvent] = []
    finished: list[ChangeEvent] = []
    release = asyncio.Event()

    async def handler(evt: ChangeEvent, conn: DbConnection) -> None:
        started.append(evt)
        if evt.account_id == stormy and not release.is_set():
            await release.wait()  # waiting inside the budget, as after a 429
        finished.append(evt)

    def count(events: list[ChangeEvent], account: str) -> int:
        return len({e.event_id for e in events if e.account_id == account})

    async def reached(events: list[ChangeEvent], account: str, n: int) -> bool:
        return count(events, account) >= n

    consumer = EventConsumer(
        pool, publisher, QBO_TO_RELEASED, handler, retry_tiers=(1,), gate=gate, watch_s=0.1
    )
    async with Running(broker, consumer, prefetch=2):
        # Already inside the handler when the 429 lands: cancelled and deferred after a moment.
        await publisher.publish(make_event(160, account_id=stormy))
        await wait_for(lambda: reached(started, stormy, 1))
        gate.seconds = 60.0
        # Arriving while the block stands: deferred before the handler runs.
        await publisher.publish(make_event(161, account_id=stormy))
        await asyncio.sleep(1.0)
        assert count(started, stormy) == 1
        # The other realm is not held up by either.
        for n in range(3):
            await publisher.publish(make_event(170 + n, account_id=calm))
        await wait_for(lambda: reached(finished, calm, 3), timeout=5)
        assert count(finished, stormy) == 0
        gate.seconds = 0.0
        release.set()
        await wait_for(lambda: reached(finished, stormy, 2))
    assert all(e.attempt == 0 for e in started), "deferring spends no attempt"
    assert await queue_depth(broker, DEAD_QUEUE) == 0
