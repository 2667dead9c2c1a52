"""Replay of dead letters, one or many, at an even pace.

A replay publishes a copy of the original event with a fresh ``event_id`` (so no dedupe layer
swallows it), ``origin="replay"`` and ``replay_of`` the first event it descends from. The engine
derives idempotency keys from ``replay_of or event_id`` and checks versions, so replaying twice is
harmless. Bulk replays go through a ``Throttle``: even spacing (not bursts) keeps the replayed
events interleaved with live ones in the work queues, well under QBO's 500 requests per minute
per realm even when each replayed event costs a couple of API calls.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from shared.adapters.broker import EVENTS_EXCHANGE, EventPublisher
from shared.domain.events import ChangeEvent, Lane
from shared.infra.logging import get_logger

log = get_logger("ops.dlq")

DEFAULT_REPLAY_RATE_PER_MINUTE = 120


class Throttle:
    """At most ``per_minute`` calls to ``wait`` return per minute, evenly spaced."""

    def __init__(self, per_minute: float = DEFAULT_REPLAY_RATE_PER_MINUTE) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        # The lock makes concurrent bulk replays (two admin requests) share one pace.
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                await asyncio.sleep(self._next - now)
                now = self._next
            self._next = now + self.interval


Progress = Callable[[int], Awaitable[None]]


class NotReplayable(ValueError):
    """The dead letter's body is not a change event (kept for inspection; purge it)."""


def replay_copy(original: dict[str, Any]) -> ChangeEvent:
    """The event to publish for a dead letter's stored body."""
    try:
        event = ChangeEvent.model_validate(original)
    except ValidationError as exc:
        raise NotReplayable(f"the stored body is not a change event: {exc}") from exc
    return event.model_copy(
        update={
            "event_id": f"replay-{uuid.uuid4().hex}",
            "origin": "replay",
            "replay_of": event.replay_of or event.event_id,
            "attempt": 0,
            "received_at": datetime.now(UTC),
        }
    )


async def replay_one(
    pool: asyncpg.Pool, publisher: EventPublisher, letter_id: int, *, lane: Lane = "live"
) -> str | None:
    """Publish a fresh copy of one dead letter and record it; the copy's event id."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT id, event FROM dead_letters WHERE id = $1 AND status <> 'purged' FOR UPDATE",
            letter_id,
        )
        if row is None:
            return None
        copy = replay_copy(row["event"]).model_copy(update={"lane": lane})
        # Publish inside the row lock: a concurrent replay of the same letter waits, then sees
        # this one recorded. A crash after the confirm replays again, which is harmless.
        await publisher.publish(copy, exchange=EVENTS_EXCHANGE)
        await conn.execute(
            "UPDATE dead_letters SET status = 'replayed', replay_count = replay_count + 1, "
            "updated_at = now(), history = history || jsonb_build_array(jsonb_build_object("
            "'at', now(), 'outcome', 'replayed', 'replay_id', $2::text)) WHERE id = $1",
            letter_id,
            copy.event_id,
        )
    log.info(
        "dead_letter_replayed",
        dead_letter_id=letter_id,
        replay_id=copy.event_id,
        replay_of=copy.replay_of,
        entity=copy.entity,
        entity_id=copy.entity_id,
    )
    return copy.event_id


@dataclass(frozen=True)
class ReplayReport:
    matched: int
    replayed: dict[int, str]
    skipped: dict[int, str]

    def document(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "replayed": {str(k): v for k, v in self.replayed.items()},
            "skipped": {str(k): v for k, v in self.skipped.items()},
        }


# Writes some letters' records in batches itself (``shared.ops.replay_batched``): the ids done.
BatchWriter = Callable[[list[tuple[int, ChangeEvent]]], Awaitable[set[int]]]
BATCHED = "batched"  # the replay id reported for a letter written in a batch


async def replay_many(
    pool: asyncpg.Pool,
    publisher: EventPublisher,
    letter_ids: list[int],
    throttle: Throttle,
    progress: Progress | None = None,
    batched: BatchWriter | None = None,
) -> ReplayReport:
    """Replay in order, paced by ``throttle``; unreplayable letters are reported, not fatal.
    With ``batched``, the letters it can write in batches go that way first."""
    replayed: dict[int, str] = {}
    skipped: dict[int, str] = {}
    if batched is not None:
        replayed = {n: BATCHED for n in await _replay_in_batches(pool, letter_ids, batched)}
    for done, letter_id in enumerate(letter_ids, start=1):
        if letter_id in replayed:
            continue
        await throttle.wait()
        try:
            # Many at once: the bulk lane, so live changes do not wait behind the replay.
            new_id = await replay_one(pool, publisher, letter_id, lane="bulk")
        except NotReplayable as exc:
            skipped[letter_id] = str(exc)[:300]
        else:
            if new_id is None:
                skipped[letter_id] = "no such dead letter (or purged)"
            else:
                replayed[letter_id] = new_id
        if progress is not None:
            await progress(done)
    return ReplayReport(len(letter_ids), replayed, skipped)


async def _replay_in_batches(
    pool: asyncpg.Pool, letter_ids: list[int], batched: BatchWriter
) -> set[int]:
    """The letters whose records ``batched`` wrote, recorded as replayed."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, event FROM dead_letters WHERE id = ANY($1::bigint[]) "
            "AND status <> 'purged'",
            letter_ids,
        )
    letters: list[tuple[int, ChangeEvent]] = []
    for row in rows:
        try:
            letters.append((int(row["id"]), ChangeEvent.model_validate(row["event"])))
        except ValidationError:
            continue  # reported as not replayable by the one-by-one path
    done = await batched(letters)
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE dead_letters SET status = 'replayed', replay_count = replay_count + 1, "
            "updated_at = now(), history = history || jsonb_build_array(jsonb_build_object("
            "'at', now(), 'outcome', 'replayed', 'replay_id', $2::text)) "
            "WHERE id = ANY($1::bigint[])",
            sorted(done),
            BATCHED,
        )
    for letter_id in sorted(done):
        log.info("dead_letter_replayed", dead_letter_id=letter_id, replay_id=BATCHED)
    return done
