"""Replay and purge of dead letters: convergence, idempotence, dry runs, filters, pacing."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import BULK_SUFFIX, QBO_TO_RELEASED, EventPublisher
from shared.adapters.postgres.dead_letters import DeadLetter, DeadLetterRepository
from shared.delivery.consumer import EventConsumer
from shared.domain.errors import PermanentError
from shared.domain.events import ChangeEvent
from shared.infra.db import DbConnection
from shared.ops import dead_letters, replay
from shared.ops.dead_letters import DeadLetterFilter
from shared.ops.replay import Throttle
from tests.integration.broker_helpers import make_event, queue_depth
from tests.integration.ops_helpers import Running, dead_letter, seed_letters, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def publisher(broker: AbstractRobustConnection) -> AsyncIterator[EventPublisher]:
    pub = await EventPublisher.open(broker)
    yield pub
    await pub.close()


@pytest.fixture
async def effects(pool: asyncpg.Pool) -> AsyncIterator[str]:
    """What a handler did, keyed like the engine's idempotency keys: ``replay_of or event_id``."""
    name = "ops_replay_effects"
    async with pool.acquire() as conn:
        await conn.execute(f"DROP TABLE IF EXISTS {name}")
        await conn.execute(f"CREATE TABLE {name} (key text PRIMARY KEY, applied integer)")
    yield name
    async with pool.acquire() as conn:
        await conn.execute(f"DROP TABLE IF EXISTS {name}")


async def test_replay_of_a_fixed_failure_converges_and_twice_is_harmless(
    broker: AbstractRobustConnection,
    publisher: EventPublisher,
    pool: asyncpg.Pool,
    effects: str,
) -> None:
    fixed = False
    seen: list[ChangeEvent] = []

    async def handler(evt: ChangeEvent, conn: DbConnection) -> None:
        seen.append(evt)
        if not fixed:
            raise PermanentError("no account mapping for 4000", remedy="map account 4000")
        await conn.execute(
            f"INSERT INTO {effects} VALUES ($1, 1) "
            "ON CONFLICT (key) DO UPDATE SET applied = "
            f"{effects}.applied",  # a repeat is recognised, not applied again
            evt.replay_of or evt.event_id,
        )

    event = make_event(201)
    consumer = EventConsumer(pool, publisher, QBO_TO_RELEASED, handler, retry_tiers=(1,))
    async with Running(broker, consumer):
        await publisher.publish(event)
        row = await wait_for(lambda: dead_letter(pool, event.event_id))
        fixed = True  # an operator mapped the account
        first = await replay.replay_one(pool, publisher, row["id"])
        second = await replay.replay_one(pool, publisher, row["id"])
        await wait_for(lambda: _count(pool, effects, event.event_id))
        await wait_for(lambda: _settled(seen, 3))
    assert first is not None
    assert second is not None
    assert first != second, "every replay is a fresh event id, so no dedupe swallows it"
    replays = seen[1:]
    assert {e.event_id for e in replays} == {first, second}
    assert all(e.origin == "replay" and e.replay_of == event.event_id for e in replays)
    assert all(e.attempt == 0 for e in replays)
    assert await _count(pool, effects, event.event_id) == 1, "applied once"
    after = await dead_letter(pool, event.event_id)
    assert after is not None
    assert (after["status"], after["replay_count"]) == ("replayed", 2)
    outcomes = [h["outcome"] for h in after["history"]]
    assert outcomes == ["dead", "replayed", "replayed"]
    assert [h.get("replay_id") for h in after["history"][1:]] == [first, second]


async def _count(pool: asyncpg.Pool, table: str, key: str) -> int:
    async with pool.acquire() as conn:
        found: int = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE key = $1", key)
        return found


async def _settled(seen: list[ChangeEvent], n: int) -> bool:
    return len(seen) >= n


async def test_filters_select_by_connection_entity_error_class_and_time(pool: asyncpg.Pool) -> None:
    connection_id = await seed_letters(
        pool,
        [
            {"entity": "invoice", "error_class": "PermanentError", "age_h": 0},
            {"entity": "invoice", "error_class": "NotFound", "age_h": 0},
            {"entity": "customer", "error_class": "PermanentError", "age_h": 5},
            {"entity": "customer", "error_class": "PermanentError", "age_h": 30},
        ],
    )
    base = DeadLetterFilter(connection_id=connection_id)
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        assert await dead_letters.count(conn, base) == 4
        assert (
            await dead_letters.count(
                conn, DeadLetterFilter(connection_id=connection_id, entity="Invoice")
            )
            == 2
        )
        assert (
            await dead_letters.count(
                conn, DeadLetterFilter(connection_id=connection_id, error_class="NotFound")
            )
            == 1
        )
        last_day = DeadLetterFilter(connection_id=connection_id, since=now - timedelta(hours=24))
        assert await dead_letters.count(conn, last_day) == 3
        older = DeadLetterFilter(
            connection_id=connection_id,
            since=now - timedelta(hours=24),
            until=now - timedelta(hours=1),
        )
        assert [r["entity"] for r in await dead_letters.select(conn, older)] == ["customer"]


async def test_purge_marks_letters_and_they_are_never_replayed(
    pool: asyncpg.Pool, publisher: EventPublisher, broker: AbstractRobustConnection
) -> None:
    connection_id = await seed_letters(pool, [{"error_class": "NotFound"}, {}])
    gone = DeadLetterFilter(connection_id=connection_id, error_class="NotFound")
    async with pool.acquire() as conn:
        letter_id = (await dead_letters.ids(conn, gone))[0]
        assert await dead_letters.purge(conn, gone) == 1
        assert await dead_letters.purge(conn, gone) == 0
        assert await dead_letters.count(conn, DeadLetterFilter(connection_id=connection_id)) == 1
        shown = await dead_letters.show(conn, letter_id)
    assert shown is not None
    assert shown["status"] == "purged"
    assert shown["history"][-1]["outcome"] == "purged"
    assert await replay.replay_one(pool, publisher, letter_id) is None
    assert await queue_depth(broker, QBO_TO_RELEASED) == 0


async def test_bulk_replay_is_paced(
    pool: asyncpg.Pool, publisher: EventPublisher, broker: AbstractRobustConnection
) -> None:
    connection_id = await seed_letters(pool, [{} for _ in range(5)])
    async with pool.acquire() as conn:
        chosen = await dead_letters.ids(conn, DeadLetterFilter(connection_id=connection_id))
    done: list[int] = []

    async def progress(n: int) -> None:
        done.append(n)

    started = time.monotonic()
    report = await replay.replay_many(pool, publisher, chosen, Throttle(per_minute=300), progress)
    elapsed = time.monotonic() - started
    assert len(report.replayed) == 5
    assert report.skipped == {}
    assert elapsed >= 4 * 0.2 - 0.05, "five replays at 300/min take at least 0.8 s"
    assert done == [1, 2, 3, 4, 5]
    # The bulk lane: live changes never queue behind a bulk replay.
    assert await queue_depth(broker, QBO_TO_RELEASED + BULK_SUFFIX) == 5
    assert await queue_depth(broker, QBO_TO_RELEASED) == 0


async def test_an_unparseable_letter_is_skipped_not_fatal(
    pool: asyncpg.Pool, publisher: EventPublisher
) -> None:
    async with pool.acquire() as conn:
        letter_id = await DeadLetterRepository(conn).record(
            DeadLetter(
                event_id=f"junk-{uuid.uuid4().hex[:6]}",
                routing_key="qbo.invoice.update",
                queue=QBO_TO_RELEASED,
                event={"raw": "not json"},
                error_class="ValidationError",
                error="bad",
                remedy=None,
                attempts=1,
            )
        )
    report = await replay.replay_many(pool, publisher, [letter_id], Throttle(6000))
    assert list(report.skipped) == [letter_id]
    assert report.replayed == {}
