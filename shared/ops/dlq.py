"""Dead letters for operators: select, show, replay and purge.

A replay publishes a copy of the original event with a fresh ``event_id`` (so no dedupe layer
swallows it), ``origin="replay"`` and ``replay_of`` the first event it descends from. The engine
derives idempotency keys from ``replay_of or event_id`` and checks versions, so replaying twice is
harmless. Bulk replays go through a ``Throttle`` so they never crowd out live traffic.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import ValidationError

from shared.adapters.broker import EVENTS_EXCHANGE, EventPublisher
from shared.domain.events import ChangeEvent
from shared.infra.db import DbConnection
from shared.infra.logging import get_logger
from shared.ops.records import plain
from shared.ops.throttle import Throttle

log = get_logger("ops.dlq")

SUMMARY_COLUMNS = (
    "id, event_id, queue, routing_key, connection_id, event ->> 'entity' AS entity, "
    "event ->> 'entity_id' AS entity_id, error_class, error, remedy, attempts, replay_count, "
    "status, created_at, updated_at"
)
Progress = Callable[[int], Awaitable[None]]


class NotReplayable(ValueError):
    """The dead letter's body is not a change event (kept for inspection; purge it)."""


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters an operation applies to; every given criterion must hold."""

    ids: tuple[int, ...] = ()
    connection_id: UUID | None = None
    entity: str | None = None
    error_class: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = "dead"

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []

        def add(sql: str, value: Any) -> None:
            args.append(value)
            clauses.append(sql.format(f"${len(args)}"))

        if self.ids:
            add("id = ANY({}::bigint[])", list(self.ids))
        if self.connection_id is not None:
            add("connection_id = {}", self.connection_id)
        if self.entity:
            add("event ->> 'entity' = {}", self.entity.lower())
        if self.error_class:
            add("error_class = {}", self.error_class)
        if self.since is not None:
            add("created_at >= {}", self.since)
        if self.until is not None:
            add("created_at < {}", self.until)
        if self.status:
            add("status = {}", self.status)
        return (" AND ".join(clauses) or "TRUE"), args


async def select(
    conn: DbConnection, where: DeadLetterFilter, *, limit: int = 100
) -> list[dict[str, Any]]:
    sql, args = where.where()
    rows = await conn.fetch(
        f"SELECT {SUMMARY_COLUMNS} FROM dead_letters WHERE {sql} "  # noqa: S608 - built above
        f"ORDER BY created_at, id LIMIT ${len(args) + 1}",
        *args,
        limit,
    )
    return [plain(r) for r in rows]


async def count(conn: DbConnection, where: DeadLetterFilter) -> int:
    sql, args = where.where()
    found: int = await conn.fetchval(
        f"SELECT count(*) FROM dead_letters WHERE {sql}",  # noqa: S608 - built above
        *args,
    )
    return found


async def ids(conn: DbConnection, where: DeadLetterFilter, *, limit: int = 10_000) -> list[int]:
    sql, args = where.where()
    rows = await conn.fetch(
        f"SELECT id FROM dead_letters WHERE {sql} "  # noqa: S608 - built above
        f"ORDER BY created_at, id LIMIT ${len(args) + 1}",
        *args,
        limit,
    )
    return [int(r["id"]) for r in rows]


async def show(conn: DbConnection, letter_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM dead_letters WHERE id = $1", letter_id)
    return plain(row) if row else None


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


async def replay_one(pool: asyncpg.Pool, publisher: EventPublisher, letter_id: int) -> str | None:
    """Publish a fresh copy of one dead letter and record it; the copy's event id."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT id, event FROM dead_letters WHERE id = $1 AND status <> 'purged' FOR UPDATE",
            letter_id,
        )
        if row is None:
            return None
        copy = replay_copy(row["event"])
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


async def replay_many(
    pool: asyncpg.Pool,
    publisher: EventPublisher,
    letter_ids: list[int],
    throttle: Throttle,
    progress: Progress | None = None,
) -> ReplayReport:
    """Replay in order, paced by ``throttle``; unreplayable letters are reported, not fatal."""
    replayed: dict[int, str] = {}
    skipped: dict[int, str] = {}
    for done, letter_id in enumerate(letter_ids, start=1):
        await throttle.wait()
        try:
            new_id = await replay_one(pool, publisher, letter_id)
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


async def purge(conn: DbConnection, where: DeadLetterFilter) -> int:
    """Mark matching dead letters purged (kept for audit; never replayed again); how many."""
    sql, args = where.where()
    done: str = await conn.execute(
        f"UPDATE dead_letters SET status = 'purged', updated_at = now(), "  # noqa: S608
        "history = history || jsonb_build_array(jsonb_build_object('at', now(), "
        f"'outcome', 'purged')) WHERE {sql} AND status <> 'purged'",
        *args,
    )
    purged = int(done.split()[-1])
    log.info("dead_letters_purged", count=purged)
    return purged
